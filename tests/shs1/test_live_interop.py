"""SHS1 interoperability over loopback TCP: privline's peers against the
reference implementation (the npm packages secret-handshake and
pull-box-stream, driven by tests/shs1/client.js and echo_server.js).

Run by tests/shs1/run.sh, which installs the npm packages, builds the
library and the C peers and sets the environment:

- SHS1_NODE_DIR: the installed npm packages (default target/shs1-node);
- SHS1_C_PEERS: the directory of privline-client and privline-server
  (default examples-c/build);
- PRIVLINE_LIBRARY and PYTHONPATH: the library and the Python binding that
  ``python -m privline`` uses.

Echo, for each pair and for 0 B (goodbyes only), 1 B, 4096 B (one full
box), 4097 B (one byte more) and 1 MiB of random data through the client's
stdin: the client exits 0, which for every client here means the server's
goodbye arrived; the SHA-256 of its stdout equals the input's; the server saw
the client's goodbye (the Node server logs it, privline's servers run with
--once and exit 0 only after a clean close).

Every peer gets its secret as the 64-byte Scuttlebutt/libsodium secret, and
once (test_secret_given_as_seed) as the bare 32-byte seed: privline's peers
in files of mode 0600 (--secret-file, --network-key-file), never on the
command line; the Node peers (this directory's test tools) as --secret and
--network-key arguments.

Failures: a wrong server key fails the handshake on either side, and a
stream cut after the handshake (no goodbye) makes every client exit 1.

Stdlib only besides pytest. The timeouts are safety nets against a hang,
never assertions about speed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Sequence

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "interop"))
from peerkit import LoggedServer, Proxy, key_file  # noqa: E402 - needs the path above
NETWORK_KEY = "d4a1cb88a66f02f8db635ce26441cc5dac1b08420ceaac230839b755845a9ffb"  # the main Scuttlebutt network
C_PEERS = Path(os.environ.get("SHS1_C_PEERS", str(ROOT / "examples-c" / "build")))
NODE = shutil.which("node") or "node"
MIB = 1024 * 1024
SIZES = [0, 1, 4096, 4097, MIB]
SIZE_IDS = ["0B", "1B", "4096B", "4097B", "1MiB"]
M2_LEN, M4_LEN, BOX_HEADER_LEN = 64, 80, 34
SAFETY_TIMEOUT = 120.0  # seconds: only so that a hang ends the test


def key_options(impl: str, secret: str) -> List[str]:
    """The network key and `secret` as options of `impl`'s peers."""
    if impl == "node":
        return ["--network-key", NETWORK_KEY, "--secret", secret]
    return ["--network-key-file", key_file(NETWORK_KEY), "--secret-file", key_file(secret)]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def child_env() -> Dict[str, str]:
    env = dict(os.environ)
    binding = str(ROOT / "bindings" / "python")
    if binding not in env.get("PYTHONPATH", "").split(os.pathsep):
        env["PYTHONPATH"] = binding + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    return env


ENV = child_env()


class Keys:
    """An ed25519 identity from keys.js (libsodium through chloride)."""

    def __init__(self) -> None:
        result = subprocess.run(
            [NODE, str(HERE / "keys.js")], capture_output=True, text=True, timeout=SAFETY_TIMEOUT, env=ENV
        )
        assert result.returncode == 0, f"keys.js failed: {result.stderr}"
        made = json.loads(result.stdout)
        self.seed: str = made["seed"]
        self.secret: str = made["secret"]  # 64-byte libsodium form, seed || public
        self.public: str = made["public"]

    def secret_for(self, form: str = "secret") -> str:
        # Every peer takes the Scuttlebutt/libsodium form (128 hex digits)
        # and the bare 32-byte seed (64 hex digits); the form is the test's.
        return self.seed if form == "seed" else self.secret


def client_command(impl: str) -> List[str]:
    if impl == "node":
        return [NODE, str(HERE / "client.js")]
    if impl == "c":
        return [str(C_PEERS / "privline-client"), "--protocol", "shs1"]
    if impl == "python":
        return [sys.executable, "-m", "privline", "client", "--protocol", "shs1"]
    raise ValueError(impl)


def server_command(impl: str, keys: Keys, extra: Sequence[str] = (), form: str = "secret") -> List[str]:
    common = key_options(impl, keys.secret_for(form))
    if impl == "node":
        return [NODE, str(HERE / "echo_server.js"), *common, "--port", "0", *extra]
    if impl == "c":
        return [str(C_PEERS / "privline-server"), "--protocol", "shs1", "--listen", "127.0.0.1:0", *common, *extra]
    if impl == "python":
        return [
            sys.executable, "-m", "privline", "server", "--protocol", "shs1",
            "--listen", "127.0.0.1:0", *common, *extra,
        ]  # fmt: skip
    raise ValueError(impl)


class Server(LoggedServer):
    """A server process of `impl` speaking SHS1 with `keys`."""

    def __init__(self, impl: str, keys: Keys, extra: Sequence[str] = (), form: str = "secret") -> None:
        self.impl = impl
        self.keys = keys
        super().__init__(
            server_command(impl, keys, extra, form), ENV, SAFETY_TIMEOUT, f"{impl} server", timeout=SAFETY_TIMEOUT
        )


@pytest.fixture(scope="module")
def node_server():
    """One Node echo server for the whole module: it serves many clients."""
    server = Server("node", Keys())
    yield server
    server.stop()


@pytest.fixture
def servers():
    started: List[Server] = []

    def start(impl: str, keys: Keys, extra: Sequence[str] = (), form: str = "secret") -> Server:
        server = Server(impl, keys, extra, form)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def run_client(
    impl: str, address: str, keys: Keys, server_public: str, data: bytes, form: str = "secret"
) -> subprocess.CompletedProcess:
    argv = client_command(impl) + [
        "--connect", address,
        *key_options(impl, keys.secret_for(form)),
        "--server-key", server_public,
    ]  # fmt: skip
    return subprocess.run(argv, input=data, capture_output=True, timeout=SAFETY_TIMEOUT, env=ENV)


def describe(result: subprocess.CompletedProcess) -> str:
    return f"exit {result.returncode}, stderr: {result.stderr.decode('utf-8', 'replace').strip()!r}"


def check_echo(result: subprocess.CompletedProcess, data: bytes) -> None:
    assert result.returncode == 0, describe(result)
    assert len(result.stdout) == len(data), describe(result)
    assert sha256(result.stdout) == sha256(data)


# --------------------------------------------------------------------------
# Echo: each client against the Node echo server, the Node client against
# each server (Node against Node is the baseline).


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
@pytest.mark.parametrize("client", ["c", "python", "node"])
def test_client_against_node_server(client, size, node_server):
    keys = Keys()
    data = os.urandom(size)
    result = run_client(client, node_server.address, keys, node_server.keys.public, data)
    check_echo(result, data)
    # The Node server logs the client's goodbye before it sends its own, so
    # the line is there (or on its way) once the client has exited 0.
    closed = f"closed {keys.public}: goodbye both ways"
    assert node_server.wait_for_line(lambda line: line == closed), node_server.stderr()


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
@pytest.mark.parametrize("server_impl", ["c", "python"])
def test_node_client_against_privline_server(server_impl, size, servers):
    server_keys = Keys()
    server = servers(server_impl, server_keys, ["--once"])
    data = os.urandom(size)
    result = run_client("node", server.address, Keys(), server_keys.public, data)
    check_echo(result, data)
    # --once: 0 only when the handshake completed and the close was clean.
    assert server.wait() == 0, server.stderr()


@pytest.mark.parametrize("impl", ["c", "python", "node"])
def test_secret_given_as_seed(impl, node_server, servers):
    """The 32-byte seed works as the secret too, for a client and a server."""
    data = os.urandom(4097)
    keys = Keys()
    result = run_client(impl, node_server.address, keys, node_server.keys.public, data, form="seed")
    check_echo(result, data)
    closed = f"closed {keys.public}: goodbye both ways"
    assert node_server.wait_for_line(lambda line: line == closed), node_server.stderr()
    if impl != "node":
        server_keys = Keys()
        server = servers(impl, server_keys, ["--once"], form="seed")
        result = run_client("node", server.address, Keys(), server_keys.public, data)
        check_echo(result, data)
        assert server.wait() == 0, server.stderr()


# --------------------------------------------------------------------------
# Failures


@pytest.mark.parametrize("client", ["c", "python", "node"])
def test_wrong_server_key_fails_against_node_server(client, node_server):
    result = run_client(client, node_server.address, Keys(), Keys().public, b"hello")
    assert result.returncode == 1, describe(result)
    assert result.stdout == b""
    lines = [line for line in result.stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    assert len(lines) == 1, describe(result)


@pytest.mark.parametrize("server_impl", ["c", "python"])
def test_node_client_with_wrong_server_key_fails(server_impl, servers):
    server = servers(server_impl, Keys(), ["--once", "--handshake-timeout", "1"])
    result = run_client("node", server.address, Keys(), Keys().public, b"hello")
    assert result.returncode == 1, describe(result)
    assert result.stdout == b""
    assert server.wait() == 1, server.stderr()


# Where the cut falls in what the server sends for 5000 bytes: after the
# handshake, inside a box header, after a whole box, and just before the
# goodbye (M2, M4, then boxes of 4096 and 904 bytes, then the goodbye).
FIRST_BOX = M2_LEN + M4_LEN
CUTS = {
    "after-handshake": FIRST_BOX,
    "inside-header": FIRST_BOX + 20,
    "after-first-box": FIRST_BOX + BOX_HEADER_LEN + 4096,
    "before-goodbye": FIRST_BOX + 2 * BOX_HEADER_LEN + 5000,
}


@pytest.mark.parametrize("cut", list(CUTS.values()), ids=list(CUTS))
@pytest.mark.parametrize("client", ["c", "python", "node"])
def test_truncated_stream_fails(client, cut, node_server):
    proxy = Proxy(node_server.port, cut_after=cut)
    try:
        data = os.urandom(5000)
        result = run_client(client, proxy.address, Keys(), node_server.keys.public, data)
    finally:
        proxy.close()
    assert result.returncode == 1, describe(result)
    assert data.startswith(result.stdout)  # never more than what was echoed
