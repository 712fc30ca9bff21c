"""``python -m privline keygen|server|client`` as separate processes over
127.0.0.1."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import List, Optional

import pytest

import privline

from conftest import NETWORK_KEY, OTHER_NETWORK_KEY, SSB_NETWORK_KEY, subprocess_env

# key_file: keys go to files of mode 0600 (--secret-file, --network-key-file):
# no test but test_a_secret_on_the_command_line_still_works_and_warns passes
# one on a command line, where other local users can read it.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "interop"))
from peerkit import LoggedServer, key_file, read_pty  # noqa: E402 - needs the path above

PYTHON = [sys.executable, "-m", "privline"]
ENV = subprocess_env()


def run(*args: str, stdin: bytes = b"", timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*PYTHON, *args], input=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, timeout=timeout
    )


def client_args(
    port: int,
    identity: privline.Identity,
    server_key: bytes,
    network_key: bytes = NETWORK_KEY,
    protocol: Optional[str] = None,
    secret: Optional[str] = None,
) -> List[str]:
    return [
        "client", "--connect", f"127.0.0.1:{port}", "--network-key-file", key_file(network_key.hex()),
        "--secret-file", key_file(secret or identity.seed.hex()), "--server-key", server_key.hex(),
        *(["--protocol", protocol] if protocol else []),
    ]


class ServerProcess(LoggedServer):
    """``python -m privline server`` on 127.0.0.1 port 0 (its keys in
    files, `extra` options after them, or exactly `argv` when given); its
    stderr lines are collected in :attr:`lines`, the first of them the
    listening line."""

    def __init__(
        self, identity: Optional[privline.Identity] = None, *extra: str, network_key: bytes = NETWORK_KEY,
        secret: Optional[str] = None, argv: Optional[List[str]] = None,
    ) -> None:
        if argv is None:
            assert identity is not None
            argv = [
                *PYTHON, "server", "--listen", "127.0.0.1:0", "--network-key-file", key_file(network_key.hex()),
                "--secret-file", key_file(secret or identity.seed.hex()), *extra,
            ]
        super().__init__(argv, ENV, 30)
        assert self.lines[0] == f"listening 127.0.0.1:{self.port}", f"unexpected first line {self.lines[0]!r}"


@pytest.fixture
def servers():
    started: List[ServerProcess] = []

    def start(*args, **kwargs) -> ServerProcess:
        server = ServerProcess(*args, **kwargs)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


# --------------------------------------------------------------------------
# Slow cases (a client waits 10 s for a silent server) start when the module
# starts and are checked by its last test, so that they overlap the others.


def _silent_after_handshake(listener: socket.socket, identity: privline.Identity) -> None:
    conn, _ = listener.accept()
    try:
        secure = privline.accept(conn, NETWORK_KEY, identity, timeout=5)
        secure.recv(100)  # read the client's data, never answer
        time.sleep(15)
    except Exception:
        pass
    finally:
        conn.close()  # not left to the collector (a ResourceWarning in whichever test runs then)


@pytest.fixture(scope="module")
def silent_clients(client_identity, server_identity):
    raw_listener = socket.create_server(("127.0.0.1", 0))  # accepts (backlog), never speaks
    secure_listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=_silent_after_handshake, args=(secure_listener, server_identity), daemon=True).start()
    started = time.monotonic()
    processes = {}
    for name, listener in (("handshake", raw_listener), ("data", secure_listener)):
        processes[name] = subprocess.Popen(
            [*PYTHON, *client_args(listener.getsockname()[1], client_identity, server_identity.public_key)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
        )
    processes["data"].stdin.write(b"echo me, please")
    processes["data"].stdin.flush()  # stdin stays open: the client waits for the echo
    yield started, processes
    for process in processes.values():
        if process.poll() is None:
            process.kill()
        process.wait()
        for stream in (process.stdin, process.stdout, process.stderr):
            stream.close()
    raw_listener.close()
    secure_listener.close()


def test_start_the_slow_cases(silent_clients):
    """Only starts the module fixture (see test_client_gives_up_on_a_silent_server)."""


# --------------------------------------------------------------------------


def test_keygen_prints_a_secret_and_its_public_key():
    result = run("keygen")
    assert result.returncode == 0, result.stderr
    match = re.fullmatch(rb"secret ([0-9a-f]{64})\npublic ([0-9a-f]{64})\n", result.stdout)
    assert match, result.stdout
    secret, public = (bytes.fromhex(g.decode()) for g in match.groups())
    assert privline.Identity.from_seed(secret).public_key == public
    assert run("keygen").stdout != result.stdout


def assert_once_echo(result, data, server, client_identity):
    """The client echoed `data` through a --once server and both ended
    cleanly: exit 0, nothing on the client's stderr, and the server said
    only where it listened and whom it accepted."""
    assert result.returncode == 0, result.stderr
    assert result.stdout == data
    assert result.stderr == b""
    assert server.wait() == 0
    assert server.lines == [f"listening 127.0.0.1:{server.port}", f"accepted {client_identity.public_key.hex()}"]


def test_echo_four_mib_with_once(servers, client_identity, server_identity):
    server = servers(server_identity, "--once")
    data = os.urandom(4 * 1024 * 1024)
    result = run(*client_args(server.port, client_identity, server_identity.public_key), stdin=data)
    assert_once_echo(result, data, server, client_identity)


def test_empty_input_and_upper_case_hex(servers, client_identity, server_identity):
    server = servers(server_identity, "--once")
    args = [a.upper() if re.fullmatch(r"[0-9a-f]{64}", a) else a for a in client_args(server.port, client_identity, server_identity.public_key)]
    result = run(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert server.wait() == 0


def test_server_serves_many_clients_at_once(servers, client_identity, server_identity):
    server = servers(server_identity)
    inputs = [os.urandom(n) for n in (0, 100, 70000, 1024 * 1024)]
    clients = [
        subprocess.Popen(
            [*PYTHON, *client_args(server.port, privline.Identity.generate() if i else client_identity, server_identity.public_key)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
        )
        for i in range(len(inputs))
    ]
    # all connected and waiting: feed them now
    outputs = [None] * len(clients)

    def talk(i):
        outputs[i] = clients[i].communicate(inputs[i], timeout=30)

    threads = [threading.Thread(target=talk, args=(i,)) for i in range(len(clients))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, client in enumerate(clients):
        assert client.returncode == 0, outputs[i][1]
        assert outputs[i][0] == inputs[i]
    assert server.proc.poll() is None  # still serving
    deadline = time.monotonic() + 5
    while sum(line.startswith("accepted ") for line in server.lines) < len(clients) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sum(line.startswith("accepted ") for line in server.lines) == len(clients)


def _refused(servers, server_identity, server_args, client_cmd):
    server = servers(server_identity, "--once", "--handshake-timeout", "1", *server_args)
    started = time.monotonic()
    result = run(*client_cmd(server.port), stdin=b"hello")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert result.stdout == b""
    assert len(result.stderr.decode().strip().splitlines()) == 1, result.stderr
    assert server.wait() == 1
    # silent until the handshake deadline, then closed
    assert 0.8 <= elapsed < 8, elapsed
    assert len(server.lines) == 2 and server.lines[1].startswith(("failed ", "refused ")), server.lines
    return result, server


def test_wrong_server_key_fails(servers, client_identity, server_identity):
    impostor = privline.Identity.generate()
    result, server = _refused(
        servers, server_identity, [], lambda port: client_args(port, client_identity, impostor.public_key)
    )
    assert "M3 does not open" in server.lines[1]
    assert b"after M2" in result.stderr


def test_wrong_network_key_fails(servers, client_identity, server_identity):
    result, server = _refused(
        servers, server_identity, [],
        lambda port: client_args(port, client_identity, server_identity.public_key, OTHER_NETWORK_KEY),
    )
    assert "M1" in server.lines[1]
    assert b"without answering" in result.stderr


def test_client_outside_allow_fails(servers, client_identity, server_identity):
    allowed = privline.Identity.generate()
    _, server = _refused(
        servers, server_identity, ["--allow", allowed.public_key.hex()],
        lambda port: client_args(port, client_identity, server_identity.public_key),
    )
    assert server.lines[1].startswith(f"refused {client_identity.public_key.hex()} ")


def test_client_inside_allow_succeeds(servers, client_identity, server_identity):
    other = privline.Identity.generate()
    server = servers(
        server_identity, "--once", "--allow", other.public_key.hex(), "--allow", client_identity.public_key.hex().upper()
    )
    result = run(*client_args(server.port, client_identity, server_identity.public_key), stdin=b"allowed")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"allowed"
    assert server.wait() == 0


def test_server_drops_a_handshake_at_its_deadline(servers):
    server = servers(privline.Identity.generate(), "--once", "--handshake-timeout", "1")
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        assert sock.recv(100) == b""  # nothing, then the close
    assert 0.8 <= time.monotonic() - started < 8
    assert server.wait() == 1
    assert server.lines[1].startswith("failed ")


def test_server_once_fails_on_a_truncated_connection(servers, client_identity, server_identity):
    server = servers(server_identity, "--once")
    secure = privline.connect(("127.0.0.1", server.port), NETWORK_KEY, client_identity, server_identity.public_key)
    secure.sendall(b"ping")
    assert secure.recv(4) == b"ping"
    secure.socket.close()  # no close record
    secure.channel.close()
    assert server.wait() == 1
    assert server.lines[1] == f"accepted {client_identity.public_key.hex()}"
    assert server.lines[2].startswith("failed ")


def test_client_fails_when_nobody_listens(client_identity, server_identity):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]
    result = run(*client_args(port, client_identity, server_identity.public_key))
    assert result.returncode == 1
    assert len(result.stderr.decode().strip().splitlines()) == 1


def test_an_invalid_server_key_is_a_bad_argument(client_identity):
    result = run(*client_args(1, client_identity, bytes(32)))
    assert result.returncode == 2
    assert b"not a valid identity public key" in result.stderr and b"usage:" in result.stderr


KEY = "ab" * 32
NK, SECRET = ["--network-key-file", "@" + KEY], ["--secret-file", "@" + KEY]  # "@CONTENT": a key file


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["bogus"],
        ["keygen", "extra"],
        ["server"],
        ["server", *NK, *SECRET],
        ["server", "--listen", "127.0.0.1", *NK, *SECRET],
        ["server", "--listen", "127.0.0.1:99999", *NK, *SECRET],
        ["server", "--listen", "127.0.0.1:0", "--network-key-file", "@abc", *SECRET],
        ["server", "--listen", "127.0.0.1:0", *NK, "--secret-file", "@" + "zz" * 32],
        ["server", "--listen", "127.0.0.1:0", *NK, *SECRET, "--allow", "12"],
        ["server", "--listen", "127.0.0.1:0", *NK, *SECRET, "--handshake-timeout", "-1"],
        ["server", "--listen", "127.0.0.1:0", *NK, *SECRET, "--handshake-timeout", "x"],
        ["server", "--listen", "127.0.0.1:0", *NK, *SECRET, "--bogus"],
        ["client", "--connect", "127.0.0.1:1", *NK, *SECRET],
        ["client", "--connect", "127.0.0.1", *NK, *SECRET, "--server-key", KEY],
        ["client", "--connect", "127.0.0.1:0", *NK, *SECRET, "--server-key", KEY],
        ["client", "--connect", "127.0.0.1:1", "--network-key-file", "@" + KEY + "00", *SECRET, "--server-key", KEY],
        ["client", "--connect", "nowhere", *NK, *SECRET, "--server-key", KEY],
        ["client", "--connect", "127.0.0.1:1", *NK, *NK, *SECRET, "--server-key", KEY],
        # --protocol and the 128-digit secret
        ["server", "--listen", "127.0.0.1:0", *NK, *SECRET, "--protocol", "shs2"],
        ["server", "--listen", "127.0.0.1:0", *NK, *SECRET, "--protocol"],
        ["server", "--listen", "127.0.0.1:0", *NK, *SECRET, "--protocol", "SHS"],
        ["server", "--listen", "127.0.0.1:0", *NK, *SECRET, "--protocol", "shs1", "--protocol", "shs1"],
        ["server", "--listen", "127.0.0.1:0", *NK, "--secret-file", "@" + KEY + KEY[:32]],
        ["server", "--listen", "127.0.0.1:0", *NK, "--secret-file", "@" + KEY * 2 + "ab"],
        ["server", "--listen", "127.0.0.1:0", *NK, "--secret-file", "@" + KEY * 2],  # public half is not KEY's
        ["client", "--connect", "127.0.0.1:1", *NK, *SECRET, "--server-key", KEY,
         "--protocol", "privline2"],
        ["client", "--connect", "127.0.0.1:1", *NK, "--secret-file", "@" + KEY * 2, "--server-key", KEY,
         "--protocol", "shs1"],
        ["client", "--connect", "127.0.0.1:1", *NK, *SECRET, "--server-key", KEY * 2,
         "--protocol", "shs1"],
    ],
)
def test_bad_arguments_exit_2_with_usage(args):
    # "@CONTENT": a key file (mode 0600) holding CONTENT
    result = run(*(key_file(arg[1:]) if arg.startswith("@") else arg for arg in args), timeout=10)
    assert result.returncode == 2, (args, result.stderr)
    assert b"usage:" in result.stderr
    assert result.stdout == b""


# --------------------------------------------------------------------------
# --protocol shs1


def _keypair_hex(identity: privline.Identity) -> str:
    return (identity.seed + identity.public_key).hex()


def test_shs1_echo_on_the_scuttlebutt_network(servers, client_identity, server_identity):
    server = servers(
        server_identity, "--once", "--protocol", "shs1", network_key=SSB_NETWORK_KEY,
        secret=_keypair_hex(server_identity),
    )
    data = os.urandom(1024 * 1024 + 4097)
    result = run(
        *client_args(server.port, client_identity, server_identity.public_key, SSB_NETWORK_KEY, "shs1",
                     secret=_keypair_hex(client_identity).upper()),
        stdin=data,
    )
    assert_once_echo(result, data, server, client_identity)


def test_shs1_empty_input_and_explicit_privline1(servers, client_identity, server_identity):
    server = servers(server_identity, "--once", "--protocol", "shs1")
    result = run(*client_args(server.port, client_identity, server_identity.public_key, protocol="shs1"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert server.wait() == 0
    # --protocol privline1 is the default spelled out
    server = servers(server_identity, "--once", "--protocol", "privline1")
    result = run(*client_args(server.port, client_identity, server_identity.public_key), stdin=b"plain")
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"plain"
    assert server.wait() == 0


def test_shs1_server_serves_many_clients(servers, server_identity):
    server = servers(server_identity, "--protocol", "shs1")
    inputs = [os.urandom(n) for n in (0, 1, 4096, 70000)]
    clients = [
        subprocess.Popen(
            [*PYTHON, *client_args(server.port, privline.Identity.generate(), server_identity.public_key, protocol="shs1")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV,
        )
        for _ in inputs
    ]
    outputs = [client.communicate(data, timeout=30) for client, data in zip(clients, inputs)]
    for client, data, (out, err) in zip(clients, inputs, outputs):
        assert client.returncode == 0, err
        assert out == data
    assert server.proc.poll() is None


@pytest.mark.parametrize("client_protocol,server_protocol", [("shs1", "privline1"), ("privline1", "shs1")])
def test_protocol_mismatch_fails_cleanly(servers, client_identity, server_identity, client_protocol, server_protocol):
    server = servers(server_identity, "--once", "--handshake-timeout", "1", "--protocol", server_protocol)
    result = run(
        *client_args(server.port, client_identity, server_identity.public_key, protocol=client_protocol),
        stdin=b"hello",
    )
    assert result.returncode == 1
    assert result.stdout == b""
    assert result.stderr.decode() == (
        "privline client: handshake failed: the server hung up without answering (wrong network key?)\n"
    )
    assert server.wait() == 1
    assert len(server.lines) == 2, server.lines
    assert server.lines[1].startswith("failed 127.0.0.1:")
    assert server.lines[1].endswith(": handshake: " + privline.M1BadMac().message)


def test_shs1_client_outside_allow_fails(servers, client_identity, server_identity):
    allowed = privline.Identity.generate()
    server = servers(
        server_identity, "--once", "--handshake-timeout", "1", "--protocol", "shs1",
        "--allow", allowed.public_key.hex(),
    )
    result = run(*client_args(server.port, client_identity, server_identity.public_key, protocol="shs1"))
    assert result.returncode == 1
    assert b"after M2" in result.stderr
    assert server.wait() == 1
    assert server.lines[1].startswith(f"refused {client_identity.public_key.hex()} ")


def test_client_gives_up_on_a_silent_server(silent_clients):
    """Runs last: the two clients started with the module must each have
    given up after 10 s of silence (in the handshake, and waiting for an
    echo)."""
    started, processes = silent_clients
    for name, process in processes.items():
        if name == "data":
            process.stdin.close()
        process.wait(timeout=max(1.0, started + 20 - time.monotonic()))
    elapsed = time.monotonic() - started
    assert elapsed >= 9.5
    for name, process in processes.items():
        assert process.returncode == 1, name
        errors = process.stderr.read().decode()
        assert len(errors.strip().splitlines()) == 1 and "silent" in errors, (name, errors)


def test_shs1_truncation_is_named_after_the_goodbye(servers, client_identity, server_identity):
    # the server's side: a client that hangs up without the goodbye
    server = servers(server_identity, "--once", "--protocol", "shs1")
    secure = privline.connect(
        ("127.0.0.1", server.port), NETWORK_KEY, client_identity, server_identity.public_key, protocol="shs1"
    )
    secure.sendall(b"ping")
    assert secure.recv(4) == b"ping"
    secure.socket.close()  # no goodbye
    secure.channel.free()
    assert server.wait() == 1
    assert server.lines[2].startswith("failed 127.0.0.1:")
    assert server.lines[2].endswith(": truncated: the client hung up without goodbye")
    # the client's side: a server that hangs up without the goodbye
    with socket.create_server(("127.0.0.1", 0)) as listener:

        def truncating():
            conn, _ = listener.accept()
            peer = privline.accept(conn, NETWORK_KEY, server_identity, timeout=10, protocol="shs1")
            assert peer.recv(4) == b"ping"
            assert peer.recv(4) == b""  # the client's goodbye: nothing left unread
            peer.sendall(b"pi")
            peer.socket.close()  # no goodbye
            peer.channel.free()

        thread = threading.Thread(target=truncating, daemon=True)
        thread.start()
        result = run(
            *client_args(listener.getsockname()[1], client_identity, server_identity.public_key, protocol="shs1"),
            stdin=b"ping",
        )
        thread.join(10)
    assert result.returncode == 1
    assert result.stdout == b"pi"
    assert result.stderr == b"privline client: truncated: the server hung up without goodbye\n"


# --------------------------------------------------------------------------
# Key files: keygen --out, --secret-file, --network-key-file, --allow-file


def _write_key(path, data: bytes, mode: int = 0o600) -> str:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    os.write(fd, data)
    os.close(fd)
    os.chmod(path, mode)
    return str(path)


def _file_server(tmp_path, identity, *extra: str) -> ServerProcess:
    """A server whose keys come from files (secret as hex, network key raw)."""
    secret = _write_key(tmp_path / "server.secret", identity.seed.hex().encode() + b"\n")
    network = _write_key(tmp_path / "network.key", NETWORK_KEY, 0o644)
    return ServerProcess(argv=[*PYTHON, "server", "--listen", "127.0.0.1:0", "--network-key-file", network,
                               "--secret-file", secret, *extra])


def _file_client(tmp_path, port: int, secret_path: str, server_key: bytes, data: bytes) -> subprocess.CompletedProcess:
    network = str(tmp_path / "network.key")
    return subprocess.run(
        [*PYTHON, "client", "--connect", f"127.0.0.1:{port}", "--network-key-file", network,
         "--secret-file", secret_path, "--server-key", server_key.hex()],
        input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, timeout=30,
    )


def test_keygen_out_writes_a_private_file_and_never_overwrites(tmp_path):
    path = tmp_path / "id.secret"
    result = run("keygen", "--out", str(path))
    assert result.returncode == 0, result.stderr
    public = re.fullmatch(rb"public ([0-9a-f]{64})\n", result.stdout)
    assert public, result.stdout
    assert os.stat(path).st_mode & 0o777 == 0o600
    seed = bytes.fromhex(path.read_text().strip())
    assert privline.Identity(seed).public_key.hex().encode() == public.group(1)
    again = run("keygen", "--out", str(path))
    assert again.returncode == 1 and b"refusing to overwrite" in again.stderr
    assert bytes.fromhex(path.read_text().strip()) == seed


def test_key_files_and_allow_file_with_a_sighup_reload(tmp_path, server_identity, client_identity):
    allow = tmp_path / "allow"
    allow.write_text("# nobody yet\n")
    server = _file_server(tmp_path, server_identity, "--allow-file", str(allow))
    try:
        # The client's secret raw (32 bytes).
        secret = _write_key(tmp_path / "client.secret", client_identity.seed)
        refused = _file_client(tmp_path, server.port, secret, server_identity.public_key, b"x")
        assert refused.returncode == 1, refused.stderr
        allow.write_text(f"# the client\n{client_identity.public_key.hex()}  # trailing comment\n")
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(l.startswith("reloaded 1 allowed") for l in server.lines):
            time.sleep(0.05)
        ok = _file_client(tmp_path, server.port, secret, server_identity.public_key, b"through key files")
        assert ok.returncode == 0 and ok.stdout == b"through key files", ok.stderr
        allow.write_text("not a key\n")
        server.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any("keeping the old list (1 keys)" in l for l in server.lines):
            time.sleep(0.05)
        assert any("keeping the old list (1 keys)" in l for l in server.lines), server.lines
        still = _file_client(tmp_path, server.port, secret, server_identity.public_key, b"old list kept")
        assert still.returncode == 0 and still.stdout == b"old list kept", still.stderr
    finally:
        server.stop()


def test_a_secret_file_others_can_read_is_refused(tmp_path):
    secret = _write_key(tmp_path / "loose.secret", b"ab" * 32, 0o640)
    result = run("server", "--listen", "127.0.0.1:0", "--network-key-file", key_file("ab" * 32),
                 "--secret-file", secret, timeout=10)
    assert result.returncode == 2
    assert b"too open" in result.stderr and b"group or others" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["server", "--listen", "127.0.0.1:0", "--network-key-file", "@" + KEY, "--secret-file", "@" + KEY,
         "--secret-file", "/dev/null"],
        ["server", "--listen", "127.0.0.1:0", "--network-key-file", "@" + KEY, "--secret-file", "/nonexistent/secret"],
        ["server", "--listen", "127.0.0.1:0", "--network-key-file", "/dev/null", "--secret-file", "@" + KEY],
        ["server", "--listen", "127.0.0.1:0", "--network-key-file", "@" + KEY, "--secret-file", "@" + KEY,
         "--allow-file", "/nonexistent"],
        ["keygen", "--out"],
    ],
)
def test_bad_key_file_arguments_exit_2(args):
    # "@CONTENT": a key file (mode 0600) holding CONTENT
    result = run(*(key_file(arg[1:]) if arg.startswith("@") else arg for arg in args), timeout=10)
    assert result.returncode == 2, (args, result.stderr)
    assert b"usage:" in result.stderr


def test_a_secret_on_the_command_line_still_works_and_warns(server_identity):
    """--secret HEX and --network-key HEX still work, and print one warning
    line each on stderr, on a terminal or not. The one test that passes a
    secret on a command line."""
    import pty

    argv = ["client", "--connect", f"127.0.0.1:{_closed_port()}", "--network-key", KEY, "--secret",
            server_identity.seed.hex(), "--server-key", server_identity.public_key.hex()]
    main, secondary = pty.openpty()
    try:
        result = subprocess.run([*PYTHON, *argv], stdout=subprocess.PIPE, stderr=secondary, env=ENV, timeout=10)
        os.close(secondary)
        secondary = -1
        output = read_pty(main)
    finally:
        os.close(main)
        if secondary >= 0:
            os.close(secondary)
    assert result.returncode == 1, output  # the options were taken; the dial failed
    assert b"warning: --network-key puts the key on the command line" in output, output
    assert b"warning: --secret puts the key on the command line" in output, output
    assert b"use --secret-file" in output, output
    # Not a terminal (a pipe): the same warnings, one line each, then the
    # client's one-line reason.
    piped = run(*argv, timeout=10)
    assert piped.returncode == 1, piped.stderr
    lines = piped.stderr.decode().splitlines()
    assert len(lines) == 3, lines
    assert sorted(lines[:2]) == [
        "privline: warning: --network-key puts the key on the command line, where other local users can read it "
        "(ps); use --network-key-file",
        "privline: warning: --secret puts the key on the command line, where other local users can read it (ps); "
        "use --secret-file",
    ], lines
    assert "warning" not in lines[2], lines
    # Still exclusive with the file option.
    both = run("server", "--listen", "127.0.0.1:0", "--network-key-file", key_file(KEY), "--secret", KEY,
               "--secret-file", "/dev/null", timeout=10)
    assert both.returncode == 2 and b"usage:" in both.stderr, both.stderr


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
