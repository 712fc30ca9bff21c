"""The privline interoperability matrix: every client implementation against
every server implementation, over real TCP on 127.0.0.1.

    python -m pytest tests/interop                          # C and Python
    PRIVLINE_INTEROP_IMPLS=c python -m pytest tests/interop # C x C only
    python -m pytest tests/interop -m "not slow"            # skip the 10 s test

For each (client, server) pair:

- echo: 0 B, 1 B, 65518 B (one full record), 65519 B (one byte more) and
  4 MiB of random data through the client's stdin; the SHA-256 of the
  client's stdout equals the input's; both peers exit 0 (the server runs
  with --once); the server reports "accepted <client key>".
- refusals: a wrong --server-key, a wrong network key, and a client outside
  --allow each make the client exit 1 with a one-line reason. A proxy between
  the two counts what the server sent: exactly M2 (64 bytes) for the wrong
  server key and the refused client, nothing for the wrong network key. The
  server stays silent until its handshake deadline (--handshake-timeout 1)
  and only then hangs up, prints one line with the reason, and exits 1.
- a truncated stream and a damaged record make the client fail, with no
  plaintext from the damaged record.
- many clients at once against one server, next to an idle connection.

Per implementation: keygen output, bad arguments (exit 2), the server's
handshake deadline, and the client's 10 s limit for a silent server.

The command lines and the helpers (Server, Proxy, run_client) are in
conftest.py. Stdlib only besides pytest.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import threading
import time
from typing import List

import pytest

from conftest import IMPLS, ENV, command, key_file, run_client, run_keygen

PAIRS = [(client, server) for client in IMPLS for server in IMPLS]
PAIR_IDS = [f"client-{client}-server-{server}" for client, server in PAIRS]
M2_LEN = 64
M4_LEN = 112
RECORD_MAX_PAYLOAD = 65518
MIB = 1024 * 1024
HANDSHAKE_TIMEOUT = 1.0  # --handshake-timeout for the negative cases


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def one_line(text: bytes) -> bool:
    lines = [line for line in text.decode("utf-8", "replace").splitlines() if line.strip()]
    return len(lines) == 1


# --------------------------------------------------------------------------
# Per implementation


@pytest.mark.parametrize("impl", IMPLS)
def test_keygen_prints_a_new_identity(impl):
    first, second = run_keygen(impl), run_keygen(impl)  # checks the format
    assert first.secret != second.secret and first.public != second.public
    assert first.secret != first.public


def _bad_argument_cases():
    # "@CONTENT": a key file (mode 0600) holding CONTENT, made by the test
    key = "ab" * 32
    nk, secret = ["--network-key-file", "@" + key], ["--secret-file", "@" + key]
    cases = []
    for impl in IMPLS:
        cases += [
            (impl, "keygen", ["--bogus"]),
            (impl, "server", []),
            (impl, "server", ["--listen", "127.0.0.1:0", *nk]),  # no --secret-file
            (impl, "server", ["--listen", "127.0.0.1:0", "--network-key-file", "@" + key[:-1], *secret]),
            (impl, "server", ["--listen", "127.0.0.1", *nk, *secret]),
            (impl, "server", ["--listen", "127.0.0.1:0", *nk, "--secret-file", "@" + "xy" * 32]),
            (impl, "server", ["--listen", "127.0.0.1:0", *nk, *secret, "--allow", "12"]),
            (impl, "server", ["--listen", "127.0.0.1:0", *nk, *secret, "--handshake-timeout", "-1"]),
            (impl, "server", ["--listen", "127.0.0.1:0", *nk, *secret, "--bogus"]),
            (impl, "client", ["--connect", "127.0.0.1:1", *nk, *secret]),
            (impl, "client", ["--connect", "127.0.0.1:1", *nk, "--secret-file", "@" + key + "0", "--server-key", key]),
            (impl, "client", ["--connect", "nowhere", *nk, *secret, "--server-key", key]),
        ]
    return cases


@pytest.mark.parametrize(
    "impl,tool,args", _bad_argument_cases(), ids=lambda v: v if isinstance(v, str) else "-".join(v) or "none"
)
def test_bad_arguments_exit_2(impl, tool, args):
    args = [key_file(arg[1:]) if arg.startswith("@") else arg for arg in args]
    result = subprocess.run(
        command(impl, tool) + args, capture_output=True, timeout=30, env=ENV, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip(), "no usage message"
    assert b"listening" not in result.stderr


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("first_bytes", ["nothing", "garbage"])
def test_server_drops_an_unfinished_handshake_at_the_deadline(servers, network_key, identities, impl, first_bytes):
    """--handshake-timeout 0.5: a client that sends nothing, or a bad M1,
    gets no byte back and is hung up on at the deadline, not before."""
    server = servers(impl, ["--listen", "127.0.0.1:0", "--network-key-file", key_file(network_key),
                            "--secret-file", key_file(identities.get(impl, 0).secret),
                            "--handshake-timeout", "0.5", "--once"])
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        start = time.monotonic()
        if first_bytes == "garbage":
            sock.sendall(os.urandom(64))
        sock.settimeout(15)
        received = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
        elapsed = time.monotonic() - start
    assert received == b""
    assert 0.4 <= elapsed <= 4.0, f"hung up after {elapsed:.2f} s"
    assert server.wait(15) == 1
    assert server.accepted() == []
    assert len(server.reason_lines()) == 1, server.stderr()


@pytest.mark.slow
@pytest.mark.parametrize("impl", IMPLS)
def test_client_gives_up_on_a_silent_server(network_key, identities, impl):
    """A 'server' that accepts and reads but never answers: the client fails
    after 10 seconds with a one-line reason."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held: List[socket.socket] = []

    def accept_and_read() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        held.append(conn)
        try:
            while conn.recv(4096):
                pass
        except OSError:
            pass

    thread = threading.Thread(target=accept_and_read, daemon=True)
    thread.start()
    try:
        start = time.monotonic()
        result = run_client(impl, f"127.0.0.1:{port}", network_key, identities.get(impl, 1).secret,
                            identities.get(impl, 0).public, b"hello", timeout=60)
        elapsed = time.monotonic() - start
    finally:
        listener.close()
        for conn in held:
            conn.close()
    assert result.returncode == 1, result.stderr
    assert one_line(result.stderr), result.stderr
    assert result.stdout == b""
    assert 9.5 <= elapsed <= 25, f"gave up after {elapsed:.1f} s"


# --------------------------------------------------------------------------
# Per (client, server) pair


SIZES = [0, 1, RECORD_MAX_PAYLOAD, RECORD_MAX_PAYLOAD + 1, 4 * MIB]


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size}B")
@pytest.mark.parametrize("client_impl,server_impl", PAIRS, ids=PAIR_IDS)
def test_echo(servers, network_key, identities, client_impl, server_impl, size):
    server_id = identities.get(server_impl, 0)
    client_id = identities.get(client_impl, 1)
    nk, server_secret, client_secret, server_public = network_key, server_id.secret, client_id.secret, server_id.public
    if size == 1:  # hex input is accepted in upper case too
        nk, server_secret, client_secret, server_public = (x.upper() for x in (nk, server_secret, client_secret,
                                                                               server_public))
    args = ["--listen", "127.0.0.1:0", "--network-key-file", key_file(nk), "--secret-file", key_file(server_secret),
            "--once"]
    if size in (1, RECORD_MAX_PAYLOAD + 1):  # an allow-list that admits the client
        args += ["--allow", identities.get(server_impl, 2).public, "--allow", client_id.public]
    server = servers(server_impl, args)
    data = os.urandom(size)

    result = run_client(client_impl, server.address, nk, client_secret, server_public, data)

    assert result.returncode == 0, f"client: {result.stderr!r}; server: {server.stderr()!r}"
    assert len(result.stdout) == size
    assert sha256(result.stdout) == sha256(data)
    assert server.wait(30) == 0, server.stderr()
    assert server.accepted() == [client_id.public], server.stderr()
    assert server.reason_lines() == [], server.stderr()


NEGATIVE_CASES = {
    # case: (server bytes the proxy may see, words the C server's reason has)
    "wrong-server-key": (M2_LEN, ["M3"]),
    "wrong-network-key": (0, ["M1"]),
    "outside-allow": (M2_LEN, ["refused"]),
}


@pytest.mark.parametrize("case", list(NEGATIVE_CASES))
@pytest.mark.parametrize("client_impl,server_impl", PAIRS, ids=PAIR_IDS)
def test_refused_client_gets_nothing_after_m2(servers, proxies, network_key, identities, client_impl, server_impl,
                                             case):
    expected_bytes, c_words = NEGATIVE_CASES[case]
    server_id = identities.get(server_impl, 0)
    client_id = identities.get(client_impl, 1)
    stranger = identities.get(server_impl, 2)
    args = ["--listen", "127.0.0.1:0", "--network-key-file", key_file(network_key),
            "--secret-file", key_file(server_id.secret), "--once", "--handshake-timeout", str(HANDSHAKE_TIMEOUT)]
    client_nk, server_key = network_key, server_id.public
    if case == "wrong-server-key":
        server_key = stranger.public
    elif case == "wrong-network-key":
        client_nk = os.urandom(32).hex()
    else:
        args += ["--allow", stranger.public]
    server = servers(server_impl, args)
    proxy = proxies(server.port)

    result = run_client(client_impl, proxy.address, client_nk, client_id.secret, server_key, b"let me in")
    server_status = server.wait(30)
    proxy.join(10)

    assert result.returncode == 1, result.stderr
    assert one_line(result.stderr), result.stderr
    assert result.stdout == b""
    assert proxy.server_bytes == expected_bytes, f"the server sent {proxy.server_bytes} bytes"
    assert proxy.server_eof_at is not None and proxy.connected_at is not None
    held = proxy.server_eof_at - proxy.connected_at
    assert HANDSHAKE_TIMEOUT - 0.1 <= held <= HANDSHAKE_TIMEOUT + 4, f"the server hung up after {held:.2f} s"
    assert server_status == 1, server.stderr()
    assert server.accepted() == [], server.stderr()
    reasons = server.reason_lines()
    assert len(reasons) == 1, server.stderr()
    if server_impl == "c":
        assert all(word in reasons[0] for word in c_words), reasons[0]


@pytest.mark.parametrize("client_impl,server_impl", PAIRS, ids=PAIR_IDS)
def test_truncated_stream_fails_the_client(servers, proxies, network_key, identities, client_impl, server_impl):
    server_id = identities.get(server_impl, 0)
    server = servers(server_impl, ["--listen", "127.0.0.1:0", "--network-key-file", key_file(network_key),
                                   "--secret-file", key_file(server_id.secret), "--once"])
    cut = M2_LEN + M4_LEN + 100_000  # the handshake, then part of the echo
    proxy = proxies(server.port, cut_after=cut)
    data = os.urandom(MIB)

    result = run_client(client_impl, proxy.address, network_key, identities.get(client_impl, 1).secret,
                        server_id.public, data)

    assert result.returncode == 1, result.stderr
    assert one_line(result.stderr), result.stderr
    assert len(result.stdout) < 100_000 and data.startswith(result.stdout)


@pytest.mark.parametrize("client_impl,server_impl", PAIRS, ids=PAIR_IDS)
def test_damaged_record_fails_the_client(servers, proxies, network_key, identities, client_impl, server_impl):
    server_id = identities.get(server_impl, 0)
    server = servers(server_impl, ["--listen", "127.0.0.1:0", "--network-key-file", key_file(network_key),
                                   "--secret-file", key_file(server_id.secret), "--once"])
    proxy = proxies(server.port, corrupt_at=M2_LEN + M4_LEN + 10)  # in the first record

    result = run_client(client_impl, proxy.address, network_key, identities.get(client_impl, 1).secret,
                        server_id.public, os.urandom(1000))

    assert result.returncode == 1, result.stderr
    assert one_line(result.stderr), result.stderr
    assert result.stdout == b"", "plaintext from a damaged record"


@pytest.mark.parametrize("client_impl,server_impl", PAIRS, ids=PAIR_IDS)
def test_many_clients_at_once(servers, network_key, identities, client_impl, server_impl):
    """Eight clients at once against one server, while an idle connection
    that never finishes its handshake is held open."""
    server_id = identities.get(server_impl, 0)
    client_id = identities.get(client_impl, 1)
    server = servers(server_impl, ["--listen", "127.0.0.1:0", "--network-key-file", key_file(network_key),
                                   "--secret-file", key_file(server_id.secret), "--handshake-timeout", "30"])
    idle = socket.create_connection(("127.0.0.1", server.port))
    inputs = [os.urandom(256 * 1024 + i) for i in range(8)]
    results: List[subprocess.CompletedProcess] = [None] * len(inputs)  # type: ignore[list-item]

    def run(i: int) -> None:
        results[i] = run_client(client_impl, server.address, network_key, client_id.secret, server_id.public,
                                inputs[i])

    try:
        threads = [threading.Thread(target=run, args=(i,)) for i in range(len(inputs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        idle.close()
    for data, result in zip(inputs, results):
        assert result is not None
        assert result.returncode == 0, result.stderr
        assert sha256(result.stdout) == sha256(data)
    assert server.proc.poll() is None, "the server exited"
    assert server.accepted() == [client_id.public] * len(inputs)
