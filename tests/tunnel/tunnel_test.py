#!/usr/bin/env python3
"""The privline-tunnel test (run by tests/tunnel/run.sh, which builds and
installs what it needs first).

Every check prints `ok N - ...` or `not ok N - ...`; the last line is
`tunnel: N passed, M failed`, and the exit status is 1 if any check failed.
Everything listens on 127.0.0.1 on free ports; every process started here
is stopped here (also on failure); every wait has a deadline.

    python3 tests/tunnel/tunnel_test.py BUILD_DIR [--phases a,b,...]

Phases (all by default): keys, peers, relay, faults, limits, scale, redis, nginx,
postgres, haproxy, valgrind, snippet.
"""

import argparse
import asyncio
import hashlib
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "tunnel"))
sys.path.insert(0, str(ROOT / "tests" / "interop"))
from peerkit import read_pty  # noqa: E402 - needs the path above
from tunnelkit import (  # noqa: E402
    HOST, free_port, listening_port, start, start_nginx, stop, stop_all, wait_for, wait_port,
    write_nginx_conf,
)

PASSED = 0
FAILED = 0


def check(condition, name, detail=""):
    global PASSED, FAILED
    if condition:
        PASSED += 1
        print(f"ok {PASSED + FAILED} - {name}", flush=True)
    else:
        FAILED += 1
        print(f"not ok {PASSED + FAILED} - {name}" + (f": {detail}" if detail else ""), flush=True)
    return bool(condition)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ------------------------------------------------------------------ keys and tunnels

class Keys:
    def __init__(self, tmp):
        self.dir = tmp / "keys"
        self.dir.mkdir(mode=0o700)
        self.server_secret, self.server_public = self.make("server")
        self.client_secret, self.client_public = self.make("client")
        self.other_secret, self.other_public = self.make("stranger")
        self.network = self.dir / "network.key"
        fd = os.open(self.network, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, os.urandom(32))  # raw form
        os.close(fd)
        self.allow = self.dir / "allow"
        self.allow.write_text(f"# the test client\n{self.client_public}  # trailing comment\n\n")

    def make(self, name):
        path = self.dir / f"{name}.secret"
        out = subprocess.run([BUILD / "privline-keygen", "--out", path], capture_output=True, text=True,
                             timeout=10)
        public = out.stdout.split()[1]
        return path, public


class Tunnel:
    """One end of privline-tunnel, started and waited for (its port)."""

    count = 0

    def __init__(self, role, args, keys, secret=None, tool=None, name=None, expect_start=True):
        Tunnel.count += 1
        self.name = name or f"{role}{Tunnel.count}"
        self.log_path = TMP / f"tunnel-{self.name}.log"
        cmd = (tool or []) + [BUILD / "privline-tunnel", role, "--listen", f"{HOST}:0",
                              "--secret-file", secret or (keys.server_secret if role == "server"
                                                          else keys.client_secret),
                              "--network-key-file", keys.network] + args
        self.proc = start(cmd, self.log_path)
        self.port = None
        if expect_start:
            wait_for(lambda: self._port() is not None or self.proc.poll() is not None, 60 if tool else 15)
            self.port = self._port()
            if self.port is None:
                raise RuntimeError(f"{self.name} did not start: {self.log()}")

    def _port(self):
        return listening_port(self.log())

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        return stop(self.proc, sig, timeout)


def pair(keys, server_args=(), client_args=(), target_port=None, protocol=None, server_key=None):
    proto = ["--protocol", protocol] if protocol else []
    server = Tunnel("server", ["--target", f"{HOST}:{target_port}", "--allow-file", str(keys.allow)]
                    + proto + list(server_args), keys)
    client = Tunnel("client", ["--connect", f"{HOST}:{server.port}",
                               "--server-key", server_key or keys.server_public] + proto + list(client_args), keys)
    return server, client


# ------------------------------------------------------------------ in-process targets

class Target:
    """A TCP server on a free port; each connection runs handler(sock) in a
    thread. Counts the connections it accepted."""

    def __init__(self, handler):
        self.handler = handler
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((HOST, 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.results = []
        self.closed = False
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.settimeout(60)
            self.results.append(self.handler(conn))
        except Exception as e:  # noqa: BLE001 - recorded for the checks
            self.results.append(e)
        finally:
            conn.close()

    def close(self):
        self.closed = True
        self.sock.close()


def echo_handler(conn):
    total = 0
    while True:
        data = conn.recv(1 << 16)
        if not data:
            break
        conn.sendall(data)
        total += len(data)
    conn.shutdown(socket.SHUT_WR)
    return total


def recv_all(sock, timeout=30.0):
    """Reads to EOF. Returns (bytes, None) or (bytes, the exception)."""
    sock.settimeout(timeout)
    chunks = []
    try:
        while True:
            data = sock.recv(1 << 20)
            if not data:
                return b"".join(chunks), None
            chunks.append(data)
    except OSError as e:
        return b"".join(chunks), e


def exchange(port, payload, timeout=60.0):
    """Sends payload (then FIN) while reading to EOF; returns (received, error)."""
    sock = socket.create_connection((HOST, port), timeout=timeout)
    result = {}

    def reader():
        result["r"] = recv_all(sock, timeout)

    t = threading.Thread(target=reader)
    t.start()
    try:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
    except OSError as e:
        result["send"] = e
    t.join(timeout + 5)
    sock.close()
    received, error = result.get("r", (b"", TimeoutError("no answer")))
    return received, error or result.get("send")


def expect_reset(port, payload=b"hello", timeout=20.0):
    """Connects, sends, reads: returns (how it ended, seconds taken)."""
    started = time.monotonic()
    try:
        sock = socket.create_connection((HOST, port), timeout=timeout)
    except OSError as e:
        return f"connect: {e}", time.monotonic() - started
    try:
        sock.sendall(payload)
    except OSError:
        pass
    data, error = recv_all(sock, timeout)
    sock.close()
    if isinstance(error, ConnectionResetError):
        how = "reset"
    elif error is None:
        how = f"clean EOF after {len(data)} bytes"
    else:
        how = f"error {error!r}"
    return how, time.monotonic() - started


# ------------------------------------------------------------------ phases

def phase_keys(keys):
    print("# key files", flush=True)
    mode = os.stat(keys.server_secret).st_mode & 0o777
    check(mode == 0o600, "privline-keygen --out writes the secret with mode 0600", oct(mode))
    out = subprocess.run([BUILD / "privline-keygen", "--out", keys.server_secret], capture_output=True, text=True,
                         timeout=10)
    check(out.returncode != 0 and "refusing to overwrite" in out.stderr,
          "privline-keygen --out refuses to overwrite an existing file", out.stderr.strip())
    loose = keys.dir / "loose.secret"
    shutil.copy(keys.client_secret, loose)
    os.chmod(loose, 0o644)
    out = subprocess.run([BUILD / "privline-tunnel", "client", "--listen", f"{HOST}:0", "--connect", f"{HOST}:9",
                          "--server-key", keys.server_public, "--secret-file", loose,
                          "--network-key-file", keys.network], capture_output=True, text=True, timeout=10)
    check(out.returncode == 2 and "too open" in out.stderr and "group or others" in out.stderr,
          "a group/world-readable secret file is refused, and the message says so", out.stderr.strip()[:200])
    out = subprocess.run([BUILD / "privline-tunnel", "server", "--listen", f"{HOST}:0", "--target", f"{HOST}:9",
                          "--secret", "00" * 32, "--network-key-file", keys.network], capture_output=True, text=True,
                         timeout=10)
    check(out.returncode == 2 and "--secret-file" in out.stderr, "privline-tunnel takes no secret on the command line")
    bad_allow = keys.dir / "bad-allow"
    bad_allow.write_text("not-a-key\n")
    out = subprocess.run([BUILD / "privline-tunnel", "server", "--listen", f"{HOST}:0", "--target", f"{HOST}:9",
                          "--secret-file", keys.server_secret, "--network-key-file", keys.network,
                          "--allow-file", bad_allow], capture_output=True, text=True, timeout=10)
    check(out.returncode == 2 and "bad-allow:1" in out.stderr, "an allow file that does not parse stops start-up",
          out.stderr.strip()[:200])
    # The same key as raw bytes and as hex: both forms are read.
    raw = keys.dir / "client-raw.secret"
    fd = os.open(raw, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, bytes.fromhex(keys.client_secret.read_text().strip()))
    os.close(fd)
    hexnet = keys.dir / "network-hex.key"
    hexnet.write_text(keys.network.read_bytes().hex().upper() + "\n")
    target = Target(echo_handler)
    server, client = pair(keys, target_port=target.port)
    client2 = Tunnel("client", ["--connect", f"{HOST}:{server.port}", "--server-key", keys.server_public],
                     keys, secret=str(raw))
    client2.proc.kill()
    client2.proc.wait()
    # Restart with the hex network key (a key file option given a new path).
    log = TMP / "raw-hex.log"
    proc = start([BUILD / "privline-tunnel", "client", "--listen", f"{HOST}:0", "--connect", f"{HOST}:{server.port}",
                  "--server-key", keys.server_public, "--secret-file", raw, "--network-key-file", hexnet], log)
    wait_for(lambda: "listening" in log.read_text(), 10)
    m = re.search(r"listening 127\.0\.0\.1:(\d+)", log.read_text())
    received, error = exchange(int(m.group(1)), b"raw seed, hex network key") if m else (b"", "no port")
    check(received == b"raw seed, hex network key" and error is None,
          "a raw 32-byte secret file and an upper-case hex network key file work", repr(error))
    stop(proc)
    client.stop()
    server.stop()
    target.close()


def phase_peers(keys):
    print("# privline-server and privline-client with key files", flush=True)
    allow = keys.dir / "peers.allow"
    allow.write_text("# nobody yet\n")
    log = TMP / "peers-server.log"
    server = start([BUILD / "privline-server", "--listen", f"{HOST}:0", "--secret-file", keys.server_secret,
                    "--network-key-file", keys.network, "--allow-file", allow, "--handshake-timeout", "1"], log)
    wait_for(lambda: "listening" in log.read_text(), 10)
    m = re.search(r"listening 127\.0\.0\.1:(\d+)", log.read_text())
    if not check(m is not None, "privline-server starts with --secret-file, --network-key-file, --allow-file",
                 log.read_text()[-300:]):
        stop(server)
        return
    port = m.group(1)

    def client(data):
        return subprocess.run([BUILD / "privline-client", "--connect", f"{HOST}:{port}",
                               "--secret-file", keys.client_secret, "--network-key-file", keys.network,
                               "--server-key", keys.server_public], input=data, capture_output=True, timeout=30)
    out = client(b"not yet")
    check(out.returncode == 1 and "refused" in log.read_text(), "privline-server: a client not in --allow-file is "
          "refused", out.stderr.decode()[-200:])
    allow.write_text(f"{keys.client_public}\n")
    server.send_signal(signal.SIGHUP)
    wait_for(lambda: "reloaded 1 allowed keys" in log.read_text(), 10)
    out = client(b"echo through key files")
    check(out.returncode == 0 and out.stdout == b"echo through key files",
          "privline-server reloads --allow-file on SIGHUP; privline-client with key files is echoed",
          out.stderr.decode()[-200:])
    allow.write_text("nonsense\n")
    server.send_signal(signal.SIGHUP)
    wait_for(lambda: "keeping the old list" in log.read_text(), 10)
    out = client(b"old list")
    check(out.returncode == 0 and out.stdout == b"old list" and "keeping the old list (1 keys)" in log.read_text(),
          "privline-server: a reload that fails keeps the old list and says so")
    stop(server)
    loose = keys.dir / "loose2.secret"
    shutil.copy(keys.server_secret, loose)
    os.chmod(loose, 0o604)
    out = subprocess.run([BUILD / "privline-server", "--listen", f"{HOST}:0", "--secret-file", loose,
                          "--network-key-file", keys.network], capture_output=True, text=True, timeout=10)
    check(out.returncode == 2 and "too open" in out.stderr, "privline-server refuses a world-readable secret file")
    # --secret HEX still works, and warns (one line on stderr), on a terminal
    # or not. The one place here that passes a secret on a command line.
    import pty
    seed = keys.client_secret.read_text().strip()
    main, secondary = pty.openpty()
    proc = subprocess.run([BUILD / "privline-client", "--connect", f"{HOST}:{free_port()}", "--secret", seed,
                           "--network-key-file", keys.network, "--server-key", keys.server_public],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=secondary, timeout=30)
    os.close(secondary)
    output = read_pty(main)
    os.close(main)
    check(b"warning: --secret puts the key on the command line" in output and proc.returncode == 1,
          "privline-client --secret HEX still works, and warns on a terminal", output.decode(errors="replace"))
    out = subprocess.run([BUILD / "privline-client", "--connect", f"{HOST}:{free_port()}", "--secret", seed,
                          "--network-key-file", keys.network, "--server-key", keys.server_public],
                         stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    lines = out.stderr.splitlines()
    check(out.returncode == 1 and len(lines) == 2
          and lines[0] == "privline-client: warning: --secret puts the key on the command line, where other local "
                          "users can read it (ps); use --secret-file"
          and "warning" not in lines[1],
          "not on a terminal (a pipe): the same warning line, then the one-line reason", out.stderr)


def phase_relay(keys):
    print("# relaying, both protocols, half-closes", flush=True)
    for protocol in ("privline1", "shs1"):
        target = Target(echo_handler)
        server, client = pair(keys, target_port=target.port, protocol=protocol)
        payload = os.urandom(8 << 20)
        received, error = exchange(client.port, payload)
        check(received == payload and error is None,
              f"{protocol}: 8 MiB through the pair and back, equal, ended by a clean FIN",
              f"{len(received)} bytes, {error!r}")
        # Many small writes keep their order.
        sock = socket.create_connection((HOST, client.port), timeout=20)
        for i in range(200):
            sock.sendall(b"%05d" % i)
        sock.shutdown(socket.SHUT_WR)
        data, error = recv_all(sock)
        sock.close()
        check(data == b"".join(b"%05d" % i for i in range(200)) and error is None,
              f"{protocol}: 200 small writes arrive in order")
        client.stop()
        server.stop()
        target.close()

    # Client -> target ends first; the target answers after it saw the FIN.
    def answer_after_eof(conn):
        data, error = recv_all(conn)
        conn.sendall(b"digest " + hashlib.sha256(data).hexdigest().encode())
        conn.shutdown(socket.SHUT_WR)
        return len(data), error
    target = Target(answer_after_eof)
    server, client = pair(keys, target_port=target.port)
    payload = os.urandom(3 << 20)
    received, error = exchange(client.port, payload)
    check(received == b"digest " + hashlib.sha256(payload).hexdigest().encode() and error is None,
          "half-close client->target: the target sees the FIN, still answers, the client gets all of it")
    target.close()
    # Target -> client ends first; the client keeps sending afterwards.
    def greet_then_read(conn):
        conn.sendall(b"greeting")
        conn.shutdown(socket.SHUT_WR)
        data, error = recv_all(conn)
        return data, error
    target2 = Target(greet_then_read)
    server2, client2 = pair(keys, target_port=target2.port)
    sock = socket.create_connection((HOST, client2.port), timeout=20)
    data, error = recv_all(sock)
    late = os.urandom(1 << 20)
    sock.sendall(late)
    sock.shutdown(socket.SHUT_WR)
    wait_for(lambda: target2.results, 20)
    sock.close()
    check(data == b"greeting" and error is None, "half-close target->client: the client gets the data, then a FIN")
    check(target2.results and target2.results[0] == (late, None),
          "half-close target->client: the client's data sent after that FIN still reaches the target, then its FIN")
    for t in (client, server, client2, server2):
        t.stop()
    target2.close()


def phase_faults(keys):
    print("# faults: resets, truncation, refused and unknown clients, targets that refuse", flush=True)
    # The target resets mid-stream: the plain client gets an RST.
    def reset_after_some(conn):
        conn.recv(1000)
        conn.sendall(b"partial")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        return "reset"
    target = Target(reset_after_some)
    server, client = pair(keys, target_port=target.port)
    how, _ = expect_reset(client.port)
    check(how == "reset", "the target resets: the plain client is reset, not given a FIN", how)
    # The plain client resets: the target is reset.
    def read_until_error(conn):
        data, error = recv_all(conn)
        return error
    target2 = Target(read_until_error)
    server2, client2 = pair(keys, target_port=target2.port)
    sock = socket.create_connection((HOST, client2.port), timeout=10)
    sock.sendall(b"x" * 1000)
    wait_for(lambda: target2.accepted == 1, 10)
    time.sleep(0.2)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
    wait_for(lambda: target2.results, 10)
    check(target2.results and isinstance(target2.results[0], ConnectionResetError),
          "the plain client resets: the target is reset, not given a FIN", repr(target2.results))
    # The server end dies mid-stream (privline stream truncated): reset.
    def hold(conn):
        return recv_all(conn, 30)
    target3 = Target(hold)
    server3, client3 = pair(keys, target_port=target3.port)
    sock = socket.create_connection((HOST, client3.port), timeout=10)
    sock.sendall(b"data")
    wait_for(lambda: target3.accepted == 1, 10)
    time.sleep(0.2)
    server3.proc.kill()
    server3.proc.wait()
    data, error = recv_all(sock, 10)
    sock.close()
    check(isinstance(error, ConnectionResetError),
          "the privline stream ends without close (server end killed): the plain client is reset", repr(error))
    check("truncated" in client3.log(), "the client end says the stream was truncated")
    # A target that refuses: the plain client is reset, the server end serves on.
    dead_port = free_port()
    server4, client4 = pair(keys, target_port=dead_port)
    how, _ = expect_reset(client4.port)
    check(how == "reset", "the target refuses: the plain client is reset", how)
    check("cannot connect to the target" in server4.log(), "the server end says it could not reach the target")
    # The same server end keeps serving once the target is there.
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((HOST, dead_port))
    srv.listen(8)
    def serve_one():
        conn, _ = srv.accept()
        echo_handler(conn)
        conn.close()
    threading.Thread(target=serve_one, daemon=True).start()
    received, error = exchange(client4.port, b"back again")
    srv.close()
    check(received == b"back again" and error is None and server4.proc.poll() is None,
          "after the refusal the server end keeps serving (the target came back)")
    # A target that does not answer (its accept queue is full, so its SYNs are
    # dropped): the dial times out at the handshake deadline, the plain
    # client is reset.
    black = socket.socket()
    black.bind((HOST, 0))
    black.listen(0)
    fillers = []
    for _ in range(4):
        f = socket.socket()
        f.setblocking(False)
        f.connect_ex(black.getsockname())
        fillers.append(f)
    time.sleep(0.3)
    server7, client7 = pair(keys, target_port=black.getsockname()[1], server_args=["--handshake-timeout", "1.5"])
    how, took = expect_reset(client7.port)
    check(how == "reset" and 1.0 <= took < 10, "a target that does not answer: the plain client is reset at the "
          "dial deadline", f"{how} after {took:.2f} s; {server7.log()[-200:]}")
    check("cannot connect to the target: timed out" in server7.log(), "the server end says the dial timed out")
    for f in fillers:
        f.close()
    black.close()
    # A record damaged on the way (one bit flipped after the handshake): the
    # server end resets the target and the privline side; the plain client is reset.
    def relay_flipping(listener, upstream_port):
        """A one-connection TCP relay (one thread, select) that flips one bit
        at byte 2000 of the client end's stream; a reset on either side is
        passed on as a reset."""
        import select
        conn, _ = listener.accept()
        up = socket.create_connection((HOST, upstream_port))
        peer = {conn: up, up: conn}
        seen = 0
        open_socks = [conn, up]
        deadline = time.monotonic() + 30
        while open_socks and time.monotonic() < deadline:
            ready, _, _ = select.select(open_socks, [], [], 0.5)
            for src in ready:
                dst = peer[src]
                try:
                    data = src.recv(65536)
                except OSError:
                    dst.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    dst.close()
                    src.close()
                    return
                if not data:
                    open_socks.remove(src)
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    continue
                if src is conn and seen < 2000 <= seen + len(data):
                    i = 2000 - seen
                    data = data[:i] + bytes([data[i] ^ 1]) + data[i + 1:]
                if src is conn:
                    seen += len(data)
                try:
                    dst.sendall(data)
                except OSError:
                    src.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    src.close()
                    dst.close()
                    return
        conn.close()
        up.close()
    target8 = Target(read_until_error)
    server8 = Tunnel("server", ["--target", f"{HOST}:{target8.port}", "--allow-file", str(keys.allow)], keys)
    flipper = socket.socket()
    flipper.bind((HOST, 0))
    flipper.listen(1)
    threading.Thread(target=relay_flipping, args=(flipper, server8.port), daemon=True).start()
    client8 = Tunnel("client", ["--connect", f"{HOST}:{flipper.getsockname()[1]}", "--server-key",
                                keys.server_public], keys)
    sock = socket.create_connection((HOST, client8.port), timeout=10)
    try:
        sock.sendall(os.urandom(8000))
    except OSError:
        pass
    data, error = recv_all(sock, 10)
    sock.close()
    wait_for(lambda: target8.results, 10)
    check(isinstance(error, ConnectionResetError), "a damaged record: the plain client is reset", repr(error))
    check(target8.results and isinstance(target8.results[0], ConnectionResetError),
          "a damaged record: the target is reset, not given a FIN", repr(target8.results))
    check("bad record" in server8.log(), "the server end names the bad record", server8.log()[-200:])
    flipper.close()
    for t in (server7, client7, server8, client8):
        t.stop()
    target8.close()
    # Refused client (not in the allow list), wrong server key, garbage: the
    # server end answers nothing, hangs up only at its deadline, never dials.
    target5 = Target(echo_handler)
    server5 = Tunnel("server", ["--target", f"{HOST}:{target5.port}", "--allow-file", str(keys.allow),
                                "--handshake-timeout", "2"], keys)
    stranger = Tunnel("client", ["--connect", f"{HOST}:{server5.port}", "--server-key", keys.server_public], keys,
                      secret=str(keys.other_secret))
    how, took = expect_reset(stranger.port)
    check(how == "reset" and 1.5 <= took < 10, "a client not in the allow list: its plain connection is reset",
          f"{how} after {took:.2f} s")
    check(f"refused {keys.other_public}" in server5.log(), "the server end logs the refusal")
    wrong = Tunnel("client", ["--connect", f"{HOST}:{server5.port}", "--server-key", keys.other_public], keys)
    how, took = expect_reset(wrong.port)
    check(how == "reset", "a wrong --server-key: the plain connection is reset", f"{how} after {took:.2f} s")
    raw = socket.create_connection((HOST, server5.port), timeout=10)
    raw.sendall(os.urandom(200))
    started = time.monotonic()
    data, error = recv_all(raw, 10)
    took = time.monotonic() - started
    raw.close()
    check(data == b"" and 1.5 <= took < 5, "garbage to the server end: no byte back, hang-up only at the deadline",
          f"{len(data)} bytes, {took:.2f} s, {error!r}")
    check(target5.accepted == 0, "the target was never dialled for a refused, unknown or failed client",
          f"{target5.accepted} connections")
    received, error = exchange(pair_client(keys, server5).port, b"still serving")
    check(received == b"still serving" and error is None, "the server end keeps serving after all of that")
    # Allow-file reload on SIGHUP, without dropping connections.
    held = socket.create_connection((HOST, stranger.port), timeout=10)
    keys.allow.write_text(f"{keys.client_public}\n{keys.other_public}\n")
    server5.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "reloaded 2 allowed keys" in server5.log(), 10)
    received, error = exchange(stranger.port, b"now allowed")
    check(received == b"now allowed" and error is None, "SIGHUP reloads the allow file: the new key is accepted")
    held.sendall(b"held")
    held.shutdown(socket.SHUT_WR)
    # (the held connection was made before the reload, by a client not yet allowed: it is reset at the deadline)
    recv_all(held, 10)
    held.close()
    good = socket.create_connection((HOST, pair_client(keys, server5).port), timeout=10)
    good.sendall(b"across the reload ")
    time.sleep(0.2)
    keys.allow.write_text("garbage line\n")
    server5.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "keeping the old list" in server5.log(), 10)
    check("keeping the old list (2 keys)" in server5.log(), "a reload that fails keeps the old list and says so",
          server5.log()[-300:])
    good.sendall(b"and a failed one")
    good.shutdown(socket.SHUT_WR)
    data, error = recv_all(good)
    good.close()
    check(data == b"across the reload and a failed one" and error is None,
          "a connection open across both reloads is not dropped")
    received, error = exchange(stranger.port, b"old list kept")
    check(received == b"old list kept", "after the failed reload the old list still applies")
    keys.allow.write_text(f"{keys.client_public}\n")
    # Idle timeout: a quiet pair is reset.
    server6, client6 = pair(keys, target_port=target5.port, server_args=["--idle-timeout", "1"])
    sock = socket.create_connection((HOST, client6.port), timeout=10)
    sock.sendall(b"ping")
    started = time.monotonic()
    data, error = recv_all(sock, 10)
    took = time.monotonic() - started
    sock.close()
    check(data == b"ping" and isinstance(error, ConnectionResetError) and 0.8 <= took < 6,
          "--idle-timeout 1: a quiet pair is reset after about a second", f"{error!r} after {took:.2f} s")
    for t in [client, server, client2, server2, client3, client4, server4, server5, stranger, wrong, server6,
              client6] + EXTRA:
        t.stop()
    for t in (target, target2, target3, target5):
        t.close()


EXTRA = []


def pair_client(keys, server):
    """A client end (cached) for a running server end."""
    for t in EXTRA:
        if getattr(t, "for_port", None) == server.port:
            return t
    client = Tunnel("client", ["--connect", f"{HOST}:{server.port}", "--server-key", keys.server_public], keys)
    client.for_port = server.port
    EXTRA.append(client)
    return client


def phase_limits(keys):
    print("# memory per connection with a stalled reader; flood; SIGTERM drain", flush=True)
    release = threading.Event()

    def stall_then_read(conn):
        release.wait(60)
        data, error = recv_all(conn, 30)
        return hashlib.sha256(data).hexdigest(), len(data), error
    target = Target(stall_then_read)
    server, client = pair(keys, target_port=target.port, server_args=["--workers", "2"],
                          client_args=["--workers", "2"])
    for _ in range(4):  # start the workers' allocators (these connections stall too, then end)
        with socket.create_connection((HOST, client.port), timeout=10) as warm:
            warm.sendall(b"warm up")
    time.sleep(0.5)
    base = {t.name: rss_kib(t.proc.pid) for t in (server, client)}
    n = 16
    socks, sent, digests = [], [0] * n, [hashlib.sha256() for _ in range(n)]
    chunk = os.urandom(1 << 16)
    for _ in range(n):
        s = socket.create_connection((HOST, client.port), timeout=10)
        s.setblocking(False)
        socks.append(s)
    last_progress = time.monotonic()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and time.monotonic() - last_progress < 1.5:
        moved = False
        for i, s in enumerate(socks):
            try:
                k = s.send(chunk)
                sent[i] += k
                digests[i].update(chunk[:k])
                moved = True
            except BlockingIOError:
                pass
        if moved:
            last_progress = time.monotonic()
        else:
            time.sleep(0.01)
    stalled = time.monotonic() - last_progress >= 1.5
    grown = {t.name: rss_kib(t.proc.pid) - base[t.name] for t in (server, client)}
    limit = n * 386 + 8 * 1024
    check(stalled, f"a target that does not read stops {n} senders (backpressure), after {max(sent) >> 10} KiB "
          "at most per connection")
    check(all(g <= limit for g in grown.values()),
          f"tunnel memory with {n} stalled connections: grew {grown} KiB, bound {n} x 386 KiB + 8 MiB = {limit} KiB")
    release.set()
    for s in socks:
        s.setblocking(True)
        s.shutdown(socket.SHUT_WR)
    wait_for(lambda: len(target.results) >= n + 4, 30)
    got = sorted((r[1], r[0]) for r in target.results if isinstance(r, tuple) and r[1] > 100)
    want = sorted((sent[i], digests[i].hexdigest()) for i in range(n))
    check(got == want, "when the target reads again every stalled byte arrives, in order (SHA-256 per connection)")
    for s in socks:
        s.close()
    client.stop()
    server.stop()
    target.close()

    # Flood: connections that never finish a handshake do not delay a
    # genuine client (the oldest unfinished handshake gives way).
    echo = Target(echo_handler)
    server = Tunnel("server", ["--target", f"{HOST}:{echo.port}", "--allow-file", str(keys.allow),
                               "--max-connections", "64", "--max-per-ip", "1000", "--handshake-timeout", "30",
                               "--quiet"], keys)
    client = Tunnel("client", ["--connect", f"{HOST}:{server.port}", "--server-key", keys.server_public], keys)
    flood = []
    for _ in range(300):
        s = socket.socket()
        s.bind(("127.0.0.2", 0))
        s.connect((HOST, server.port))
        s.sendall(b"\x00" * 10)  # a beginning of M1, never finished
        flood.append(s)
    started = time.monotonic()
    received, error = exchange(client.port, b"genuine", timeout=20)
    took = time.monotonic() - started
    check(received == b"genuine" and error is None and took < 5,
          f"300 stalled handshakes against --max-connections 64: a genuine client is served in {took:.2f} s "
          "(handshake timeout 30 s)")
    for s in flood:
        s.close()
    client.stop()
    server.stop()

    # SIGTERM: stop accepting, let open connections finish, then exit.
    server, client = pair(keys, target_port=echo.port, server_args=["--drain-timeout", "20"])
    sock = socket.create_connection((HOST, client.port), timeout=10)
    sock.sendall(b"before ")
    time.sleep(0.3)
    server.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: "draining" in server.log(), 10)
    try:
        socket.create_connection((HOST, server.port), timeout=2).close()
        refused = False
    except OSError:
        refused = True
    check(refused, "after SIGTERM the server end accepts no new connection")
    sock.sendall(b"and after SIGTERM")
    sock.shutdown(socket.SHUT_WR)
    data, error = recv_all(sock)
    sock.close()
    check(data == b"before and after SIGTERM" and error is None, "an open connection finishes during the drain")
    check(wait_for(lambda: server.proc.poll() is not None, 10) and server.proc.returncode == 0,
          "the server end exits 0 once its connections are done", str(server.proc.returncode))
    client.stop()
    # --drain-timeout: what is still open then is reset.
    server, client = pair(keys, target_port=echo.port, server_args=["--drain-timeout", "1"])
    sock = socket.create_connection((HOST, client.port), timeout=10)
    sock.sendall(b"x")
    time.sleep(0.3)
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    data, error = recv_all(sock, 10)
    took = time.monotonic() - started
    sock.close()
    check(isinstance(error, ConnectionResetError) and 0.8 <= took < 5 and wait_for(
        lambda: server.proc.poll() is not None, 5),
        "a connection still open at --drain-timeout 1 is reset, and the server end exits", f"{error!r} {took:.2f} s")
    client.stop()
    echo.close()


def phase_scale(keys, count):
    print(f"# {count} concurrent relayed connections", flush=True)

    async def main():
        async def echo(reader, writer):
            try:
                while True:
                    data = await reader.read(4096)
                    if not data:
                        break
                    writer.write(data)
                    await writer.drain()
            finally:
                writer.close()
        server_sock = await asyncio.start_server(echo, HOST, 0, backlog=4096)
        port = server_sock.sockets[0].getsockname()[1]
        server, client = await asyncio.to_thread(
            pair, keys, ["--max-per-ip", "100000", "--quiet", "--handshake-timeout", "60"],
            ["--quiet", "--handshake-timeout", "60"], port)
        all_open = asyncio.Event()
        opened = 0
        done_ok = 0
        sem = asyncio.Semaphore(200)  # connection attempts in flight

        async def one(i):
            nonlocal opened, done_ok
            async with sem:
                reader, writer = await asyncio.open_connection(HOST, client.port)
                message = b"connection %06d" % i
                writer.write(message)
                echoed = await asyncio.wait_for(reader.readexactly(len(message)), 120)
            opened += 1
            if opened == count:
                all_open.set()
            await asyncio.wait_for(all_open.wait(), 180)  # all held open at once
            writer.write_eof()
            rest = await asyncio.wait_for(reader.read(), 60)
            writer.close()
            if echoed == message and rest == b"":
                done_ok += 1

        started = time.monotonic()
        results = await asyncio.gather(*(one(i) for i in range(count)), return_exceptions=True)
        took = time.monotonic() - started
        errors = [r for r in results if isinstance(r, BaseException)]
        check(opened == count and done_ok == count and not errors,
              f"{count} concurrent connections through the pair: {opened} held open at once, {done_ok} echoed and "
              f"closed cleanly in {took:.1f} s", f"{len(errors)} errors, first {errors[:1]!r}")
        server_sock.close()
        await asyncio.to_thread(client.stop)
        await asyncio.to_thread(server.stop)
    asyncio.run(asyncio.wait_for(main(), 300))


class Redis:
    def __init__(self):
        self.port = free_port()
        self.dir = TMP / "redis"
        self.dir.mkdir(exist_ok=True)
        self.proc = start(["redis-server", "--port", str(self.port), "--bind", HOST, "--save", "",
                           "--appendonly", "no", "--dir", str(self.dir), "--proto-max-bulk-len", "512mb",
                           "--client-query-buffer-limit", "512mb"], TMP / "redis.log")
        if not wait_port(self.port):
            raise RuntimeError("redis-server did not start")

    def stop(self):
        stop(self.proc)


def resp_command(sock, *args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    sock.sendall(out)


def resp_read(f):
    line = f.readline()
    if line[:1] == b"$":
        n = int(line[1:])
        if n < 0:
            return None
        data = f.read(n + 2)
        return data[:-2]
    return line.rstrip(b"\r\n")


def phase_redis(keys):
    print("# Redis through the tunnel", flush=True)
    redis = Redis()
    server, client = pair(keys, target_port=redis.port, server_args=["--max-per-ip", "1000"])
    out = subprocess.run(["redis-benchmark", "-h", HOST, "-p", str(client.port), "-c", "50", "-n", "20000", "-q",
                          "-t", "ping,set,get,incr,lpush,lpop"], capture_output=True, text=True, timeout=120)
    lines = [l for l in re.split(r"[\r\n]", out.stdout) if "requests per second" in l]
    check(out.returncode == 0 and len(lines) >= 6 and "rror" not in out.stdout + out.stderr,
          f"redis-benchmark -c 50 -n 20000 through the pair: no errors ({len(lines)} tests)",
          (out.stdout + out.stderr)[-400:])
    print("# " + " | ".join(l.strip() for l in lines), flush=True)
    value = os.urandom(64 << 20)
    sock = socket.create_connection((HOST, client.port), timeout=120)
    f = sock.makefile("rb")
    resp_command(sock, "SET", "big", value)
    reply = resp_read(f)
    resp_command(sock, "GET", "big")
    back = resp_read(f)
    resp_command(sock, "STRLEN", "big")
    strlen = resp_read(f)
    f.close()  # (the file object holds the socket open too)
    sock.close()
    check(reply == b"+OK" and back == value and strlen == b":%d" % len(value),
          "a 64 MiB value written through the tunnel and read back equal")
    client.stop()
    server.stop()
    return redis


def phase_nginx(keys):
    print("# nginx through the tunnel", flush=True)
    port = free_port()
    root = TMP / "nginx"
    (root / "www").mkdir(parents=True, exist_ok=True)
    big = root / "www" / "big.bin"
    h = hashlib.sha256()
    with open(big, "wb") as f:
        block = os.urandom(1 << 20)
        for i in range(256):
            piece = hashlib.sha256(block + struct.pack("I", i)).digest() * (1 << 15)
            f.write(piece)
            h.update(piece)
    (root / "www" / "index.html").write_text("hello from nginx\n")
    write_nginx_conf(root, port, 4096, keepalive_requests=1000000)
    proc = start_nginx(root, TMP / "nginx.log")
    if not wait_port(port):
        check(False, "nginx starts", (TMP / "nginx.log").read_text()[-300:])
        return
    server, client = pair(keys, target_port=port, server_args=["--max-per-ip", "1000"])
    out = subprocess.run(["curl", "-sS", "--fail", "-o", TMP / "big.out", f"http://{HOST}:{client.port}/big.bin"],
                         capture_output=True, text=True, timeout=120)
    got = hashlib.sha256()
    if out.returncode == 0:
        with open(TMP / "big.out", "rb") as f:
            for piece in iter(lambda: f.read(1 << 20), b""):
                got.update(piece)
    check(out.returncode == 0 and got.hexdigest() == h.hexdigest(),
          "a 256 MiB file fetched with curl through the tunnel, SHA-256 equal", out.stderr[-300:])
    (TMP / "big.out").unlink(missing_ok=True)
    out = subprocess.run(["wrk", "-t", "2", "-c", "50", "-d", "3s", f"http://{HOST}:{client.port}/index.html"],
                         capture_output=True, text=True, timeout=60)
    m = re.search(r"(\d+) requests in", out.stdout)
    check(out.returncode == 0 and m and int(m.group(1)) > 0 and "Socket errors" not in out.stdout
          and "Non-2xx" not in out.stdout,
          f"wrk -c 50 with keep-alive through the tunnel: {m.group(1) if m else 0} requests, no errors",
          out.stdout[-500:])
    print("# " + " ".join(l.strip() for l in out.stdout.splitlines() if "Requests/sec" in l or "Latency" in l))
    client.stop()
    server.stop()
    stop(proc, signal.SIGQUIT)
    big.unlink()


def phase_postgres(keys):
    print("# PostgreSQL through the tunnel", flush=True)
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: (len(p.parent.name), p.parent.name))
    if not bins:
        check(False, "PostgreSQL binaries in /usr/lib/postgresql/*/bin")
        return
    bindir = bins[-1]
    data = TMP / "pg"
    data.mkdir()
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        shutil.chown(data, "postgres")
        shutil.chown(TMP, "postgres")
    out = subprocess.run((["runuser", "-u", user, "--"] if user else []) +
                         [str(bindir / "initdb"), "-N", "-D", str(data / "db"), "-A", "trust", "-U", "bench"],
                         capture_output=True, text=True, timeout=120)
    if not check(out.returncode == 0, "initdb", out.stderr[-300:]):
        return
    port = free_port()
    proc = start([bindir / "postgres", "-D", data / "db", "-p", str(port), "-c", f"listen_addresses={HOST}",
                  "-c", f"unix_socket_directories={data}", "-c", "fsync=off", "-c", "max_connections=50"],
                 TMP / "postgres.log", user=user)
    if not wait_port(port, 60):
        check(False, "postgres starts", (TMP / "postgres.log").read_text()[-300:])
        return
    server, client = pair(keys, target_port=port, server_args=["--max-per-ip", "1000"])
    env = dict(os.environ, PGHOST=HOST, PGPORT=str(client.port), PGUSER="bench", PGDATABASE="postgres")
    out = subprocess.run([bindir / "pgbench", "-i", "-s", "2"], capture_output=True, text=True, timeout=120, env=env)
    check(out.returncode == 0 and "done" in out.stderr, "pgbench -i -s 2 through the tunnel", out.stderr[-300:])
    out = subprocess.run([bindir / "pgbench", "-c", "4", "-j", "2", "-T", "5"], capture_output=True, text=True, timeout=120,
                         env=env)
    m = re.search(r"number of transactions actually processed: (\d+)", out.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", out.stdout)
    check(out.returncode == 0 and m and int(m.group(1)) > 0 and (failed is None or failed.group(1) == "0"),
          f"a timed pgbench run (-c 4 -T 5) through the tunnel: {m.group(1) if m else 0} transactions, none failed",
          (out.stdout + out.stderr)[-400:])
    tps = re.search(r"tps = ([\d.]+)", out.stdout)
    print(f"# pgbench tps {tps.group(1) if tps else '?'}", flush=True)
    client.stop()
    server.stop()
    # pg_ctl stops the server (a signal to runuser would not reach it at once).
    subprocess.run((["runuser", "-u", user, "--"] if user else []) +
                   [str(bindir / "pg_ctl"), "-D", str(data / "db"), "stop", "-m", "fast", "-w", "-t", "30"],
                   capture_output=True, timeout=60)
    stop(proc, signal.SIGTERM, 15)


def phase_haproxy(keys):
    print("# two server ends behind HAProxy (TCP mode)", flush=True)
    echo = Target(echo_handler)
    # (wait_port's probes reach the server ends as handshakes that never start: they are kept silent
    # until the handshake deadline, which the drain at the end waits for; hence a short one)
    ends = [Tunnel("server", ["--target", f"{HOST}:{echo.port}", "--allow-file", str(keys.allow),
                              "--max-per-ip", "1000", "--handshake-timeout", "2"], keys, name=f"ha{i}")
            for i in range(2)]
    port = free_port()
    conf = TMP / "haproxy.cfg"
    conf.write_text(f"""
global
    maxconn 2000
defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s
listen privline
    bind {HOST}:{port}
    balance roundrobin
    server a {HOST}:{ends[0].port}
    server b {HOST}:{ends[1].port}
""")
    proc = start(["haproxy", "-db", "-f", conf], TMP / "haproxy.log")
    if not wait_port(port):
        check(False, "haproxy starts", (TMP / "haproxy.log").read_text()[-300:])
        return
    client = Tunnel("client", ["--connect", f"{HOST}:{port}", "--server-key", keys.server_public], keys)
    ok = 0
    for i in range(100):
        payload = os.urandom(1000 + i * 100)
        received, error = exchange(client.port, payload, timeout=20)
        ok += received == payload and error is None
    served = [e.log().count("accepted ") for e in ends]
    check(ok == 100 and all(s > 0 for s in served),
          f"100 connections through HAProxy to two server ends all complete (served {served[0]} and {served[1]})")
    client.stop()
    for e in ends:
        e.stop()
    stop(proc)
    echo.close()


def phase_valgrind(keys, redis):
    print("# the client end under valgrind", flush=True)
    if shutil.which("valgrind") is None:
        check(False, "valgrind installed")
        return
    server = Tunnel("server", ["--target", f"{HOST}:{redis.port}", "--allow-file", str(keys.allow),
                               "--max-per-ip", "1000"], keys)
    vg_log = TMP / "valgrind.log"
    client = Tunnel("client", ["--connect", f"{HOST}:{server.port}", "--server-key", keys.server_public,
                               "--workers", "2"], keys,
                    tool=["valgrind", "--quiet", "--leak-check=full", "--show-leak-kinds=definite,indirect,possible",
                          "--errors-for-leak-kinds=definite,indirect,possible", "--error-exitcode=99",
                          f"--log-file={vg_log}"])
    exe = os.readlink(f"/proc/{client.proc.pid}/exe")
    check("memcheck" in exe, f"the client end runs under valgrind ({os.path.basename(exe)})")
    out = subprocess.run(["redis-benchmark", "-h", HOST, "-p", str(client.port), "-c", "10", "-n", "2000", "-q",
                          "-t", "set,get"], capture_output=True, text=True, timeout=300)
    check(out.returncode == 0 and "rror" not in out.stdout + out.stderr,
          "redis-benchmark (-c 10 -n 2000) through a client end under valgrind", out.stdout[-300:])
    value = os.urandom(1 << 20)
    sock = socket.create_connection((HOST, client.port), timeout=60)
    f = sock.makefile("rb")
    resp_command(sock, "SET", "vg", value)
    resp_read(f)
    resp_command(sock, "GET", "vg")
    back = resp_read(f)
    f.close()
    sock.close()
    check(back == value, "a 1 MiB value through the client end under valgrind")
    status = client.stop(timeout=120)
    report = vg_log.read_text() if vg_log.exists() else "(no log)"
    check(status == 0 and report.strip() == "",
          "valgrind: no errors and no leaks in the client end (exit 0, empty report)",
          f"exit {status}: {report[-800:]}")
    server.stop()


def phase_snippet(keys, redis):
    print("# README.md's 'Securing an existing server' snippet, as written", flush=True)
    text = (ROOT / "README.md").read_text()
    m = re.search(r"^<!-- tunnel-snippet: redis -->\n```sh\n(.*?)\n```$", text, re.M | re.S)
    if not check(m is not None, "README.md has the marked Redis snippet (<!-- tunnel-snippet: redis -->)"):
        return
    work = TMP / "snippet"
    work.mkdir()
    script = work / "snippet.sh"
    script.write_text(m.group(1) + "\n")
    env = dict(os.environ, PATH=f"{BUILD}:{os.environ['PATH']}", REDIS_PORT=str(redis.port),
               TUNNEL_SERVER_PORT=str(free_port()), TUNNEL_CLIENT_PORT=str(free_port()),
               PRIVLINE_DIR=str(work / "keys"))
    out = subprocess.run(["bash", "-euo", "pipefail", script], capture_output=True, text=True, timeout=120,
                         env=env, cwd=work)
    check(out.returncode == 0 and "PONG" in out.stdout and "through privline" in out.stdout,
          "the README snippet runs: keygen --out, both ends, redis-cli through the tunnel",
          (out.stdout + out.stderr)[-600:])


# The phases that need nothing but the keys, by name.
KEYS_ONLY_PHASES = {
    "keys": phase_keys,
    "peers": phase_peers,
    "relay": phase_relay,
    "faults": phase_faults,
    "limits": phase_limits,
    "nginx": phase_nginx,
    "postgres": phase_postgres,
    "haproxy": phase_haproxy,
}


def main():
    global BUILD, TMP
    parser = argparse.ArgumentParser()
    parser.add_argument("build")
    parser.add_argument("--phases", default="keys,peers,relay,faults,limits,scale,redis,nginx,postgres,haproxy,valgrind,"
                                            "snippet")
    parser.add_argument("--connections", type=int, default=5000)
    args = parser.parse_args()
    BUILD = Path(args.build).resolve()
    phases = args.phases.split(",")
    TMP = Path(tempfile.mkdtemp(prefix="privline-tunnel."))
    os.chmod(TMP, 0o755)
    keys = Keys(TMP)
    redis = None
    started = time.monotonic()
    try:
        for name in phases:
            t0 = time.monotonic()
            try:
                if name in KEYS_ONLY_PHASES:
                    KEYS_ONLY_PHASES[name](keys)
                elif name == "scale":
                    phase_scale(keys, args.connections)
                elif name == "redis":
                    redis = phase_redis(keys)
                elif name in ("valgrind", "snippet"):
                    if redis is None:
                        redis = Redis()
                    (phase_valgrind if name == "valgrind" else phase_snippet)(keys, redis)
                else:
                    check(False, f"unknown phase {name}")
            except Exception as e:  # noqa: BLE001 - a phase that breaks is a failure, the rest still run
                import traceback
                traceback.print_exc()
                check(False, f"phase {name} ran to its end", repr(e))
            print(f"# phase {name}: {time.monotonic() - t0:.1f} s", flush=True)
    finally:
        if redis is not None:
            redis.stop()
        stop_all(signal.SIGKILL)
        if FAILED == 0:
            shutil.rmtree(TMP, ignore_errors=True)
        else:
            print(f"# logs kept in {TMP}", flush=True)
    print(f"# total {time.monotonic() - started:.1f} s", flush=True)
    print(f"tunnel: {PASSED} passed, {FAILED} failed", flush=True)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
