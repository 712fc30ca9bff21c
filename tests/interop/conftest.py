"""Shared machinery of the privline interoperability matrix (test_matrix.py).

Implementations of the peers (the same command-line contract each):

- ``c``: examples-c/build/privline-{keygen,server,client}, built here with
  ``make -C examples-c`` at the start of the session;
- ``python``: ``python -m privline keygen|server|client`` with the
  interpreter running the tests (the Python binding; when it is not
  installed, ``bindings/python`` of this checkout is put on PYTHONPATH).

``PRIVLINE_INTEROP_IMPLS`` (default ``c,python``) selects the implementations
to include, for example ``PRIVLINE_INTEROP_IMPLS=c`` for C x C alone.

Stdlib only besides pytest.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Sequence

import pytest

import peerkit
from peerkit import Proxy, key_file  # noqa: F401 - key_file: also for test_matrix.py

ROOT = Path(__file__).resolve().parents[2]
C_BUILD = ROOT / "examples-c" / "build"
KNOWN_IMPLS = ("c", "python")
LISTEN_TIMEOUT = 20.0  # seconds for a server to print its "listening" line
LINE_RE = {
    "secret": re.compile(r"^secret ([0-9a-f]{64})$"),
    "public": re.compile(r"^public ([0-9a-f]{64})$"),
}


def selected_impls() -> List[str]:
    raw = os.environ.get("PRIVLINE_INTEROP_IMPLS", "c,python")
    impls = [name.strip().lower() for name in raw.split(",") if name.strip()]
    unknown = [name for name in impls if name not in KNOWN_IMPLS]
    if unknown or not impls:
        raise pytest.UsageError(
            f"PRIVLINE_INTEROP_IMPLS={raw!r}: expected a comma-separated subset of {','.join(KNOWN_IMPLS)}"
        )
    return list(dict.fromkeys(impls))


IMPLS = selected_impls()


def command(impl: str, tool: str) -> List[str]:
    """The command line that starts `tool` (keygen, server, client) of `impl`."""
    if impl == "c":
        return [str(C_BUILD / f"privline-{tool}")]
    if impl == "python":
        return [sys.executable, "-m", "privline", tool]
    raise ValueError(impl)


def child_env() -> Dict[str, str]:
    env = dict(os.environ)
    if "python" in IMPLS and importlib.util.find_spec("privline") is None:
        # Not installed: use the binding from this checkout.
        extra = str(ROOT / "bindings" / "python")
        env["PYTHONPATH"] = extra + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


ENV = child_env()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes ten seconds or more (the client's silence limit)")


def pytest_report_header(config: pytest.Config) -> str:
    return f"privline interop implementations: {','.join(IMPLS)}"


@pytest.fixture(scope="session", autouse=True)
def built_c_peers() -> None:
    """Builds the library and the C peers once per session (a no-op when up to date)."""
    if "c" not in IMPLS:
        return
    result = subprocess.run(
        ["make", "-C", str(ROOT / "examples-c"), "all"], capture_output=True, text=True, timeout=900
    )
    if result.returncode != 0:
        pytest.exit(f"make -C examples-c failed:\n{result.stdout}\n{result.stderr}", returncode=1)


class Identity:
    def __init__(self, secret: str, public: str) -> None:
        self.secret = secret
        self.public = public


def run_keygen(impl: str) -> Identity:
    result = subprocess.run(command(impl, "keygen"), capture_output=True, text=True, timeout=60, env=ENV)
    assert result.returncode == 0, f"{impl} keygen failed: {result.stderr}"
    lines = result.stdout.splitlines()
    assert len(lines) == 2, f"{impl} keygen printed {result.stdout!r}"
    secret = LINE_RE["secret"].match(lines[0])
    public = LINE_RE["public"].match(lines[1])
    assert secret and public, f"{impl} keygen printed {result.stdout!r}"
    return Identity(secret.group(1), public.group(1))


class Identities:
    """Identities made by each implementation's keygen, made on first use."""

    def __init__(self) -> None:
        self._made: Dict[str, List[Identity]] = {}
        self._lock = threading.Lock()

    def get(self, impl: str, index: int = 0) -> Identity:
        with self._lock:
            made = self._made.setdefault(impl, [])
            while len(made) <= index:
                made.append(run_keygen(impl))
            return made[index]


@pytest.fixture(scope="session")
def identities() -> Identities:
    return Identities()


@pytest.fixture(scope="session")
def network_key() -> str:
    return os.urandom(32).hex()


class Server(peerkit.LoggedServer):
    """A running server process of `impl`; stderr is collected line by line."""

    def __init__(self, impl: str, args: Sequence[str]) -> None:
        self.impl = impl
        super().__init__(command(impl, "server") + list(args), ENV, LISTEN_TIMEOUT, f"{impl} server")

    def reason_lines(self) -> List[str]:
        """Lines other than the 'listening' and 'accepted' ones."""
        return [
            line
            for line in self.lines
            if line.strip() and not line.startswith("listening ") and not line.startswith("accepted ")
        ]

    def accepted(self) -> List[str]:
        return [line[len("accepted ") :].strip() for line in self.lines if line.startswith("accepted ")]


@pytest.fixture
def servers():
    """Starts servers for a test: servers(impl, args) -> Server; all killed at the end."""
    started: List[Server] = []

    def start(impl: str, args: Sequence[str]) -> Server:
        server = Server(impl, args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.kill()


def run_client(
    impl: str,
    address: str,
    network_key: str,
    secret: str,
    server_key: str,
    data: bytes,
    timeout: float = 90.0,
) -> subprocess.CompletedProcess:
    argv = command(impl, "client") + [
        "--connect",
        address,
        "--network-key-file",
        key_file(network_key),
        "--secret-file",
        key_file(secret),
        "--server-key",
        server_key,
    ]
    return subprocess.run(argv, input=data, capture_output=True, timeout=timeout, env=ENV)


@pytest.fixture
def proxies():
    made: List[Proxy] = []

    def make(upstream_port: int, **kwargs) -> Proxy:
        proxy = Proxy(upstream_port, **kwargs)
        made.append(proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.close()
