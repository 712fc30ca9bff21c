#!/usr/bin/env python3
"""The echo server's limits (examples-c/server.c, security review finding 8),
each phase against a fresh server on loopback addresses only:

  flood     the server runs with ulimit -n 256 (so --max-connections is
            240 by default) and --handshake-timeout 20. 300 connections from
            127.0.1.1..127.0.1.10 (30 each, under the per-address cap) send
            one byte and stall; then a genuine client from 127.0.0.1 must
            complete its handshake, a 1000-byte echo and close while all of
            them are still held: within 15 s, before any of the stalled
            connections reaches its handshake deadline (the old server left
            it in the backlog until then). The server must have evicted
            unfinished handshakes (one "evicted" line each), sent nothing to
            any stalled connection, and never hit EMFILE.
  per-ip    default --max-per-ip (64), --handshake-timeout 30: 64 stalled
            connections from 127.0.0.2, then 5 more from 127.0.0.2 that send
            a valid M1: each is closed unanswered (0 bytes) within 10 s, long
            before the deadline, with one "refused" line each; a client
            from 127.0.0.1 is served meanwhile.
  idle      --idle-timeout 2: a client that goes quiet after its first echo
            is disconnected (one "idle timeout" line) within its 8 s wait;
            one that echoes every 0.5 s for 6 s is served to the end and
            closes cleanly.
  memory    20 authenticated clients that send 64 KiB records as fast as
            the server takes them and never read (receive buffer at the
            kernel's minimum). The server's heap in use (heapwatch.so,
            exact) once it stops growing must be below the stated bound of
            260 KiB per connection (the old server: over 1 MiB); after the
            clients hang up it must be back within 16 KiB of where it was.

--server PATH tests another build; --legacy leaves out the options the old
server does not know (--idle-timeout), so that its behaviour, not a usage
error, is what fails. Exit 0 only if every check passed. Python 3.9+
standard library, Linux; run by tests/load/run.sh after building
target/load/limitpeer and target/load/heapwatch.so.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "interop"))
from peerkit import Keys, die_with_parent  # noqa: E402 - needs the path above

BUILD = ROOT / "examples-c" / "build"
KEYGEN = BUILD / "privline-keygen"
LOAD_DIR = ROOT / "target" / "load"
LIMITPEER = LOAD_DIR / "limitpeer"
HEAPWATCH = LOAD_DIR / "heapwatch.so"

BOUND_PER_CONNECTION = 260 * 1024  # the bound stated in server.c's usage text
M1_LEN = 64

failures: List[str] = []


def log(text: str) -> None:
    print(text, flush=True)


def check(ok: bool, what: str) -> bool:
    log(f"  {'ok' if ok else 'FAIL'}: {what}")
    if not ok:
        failures.append(what)
    return ok


class Server:
    def __init__(self, path: str, keys: Keys, workdir: Path, name: str, options: List[str],
                 nofile: Optional[int] = None, heapwatch: bool = False) -> None:
        self.log_path = workdir / f"{name}.log"
        self.heap_path = workdir / f"{name}.heap"
        for p in (self.log_path, self.heap_path):
            if p.exists():
                p.unlink()
        env = dict(os.environ)
        if heapwatch:
            env.update(LD_PRELOAD=str(HEAPWATCH), HEAPWATCH_FILE=str(self.heap_path),
                       GLIBC_TUNABLES="glibc.malloc.tcache_count=0")

        def preexec() -> None:
            if nofile is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
            die_with_parent()

        argv = [path, "--listen", "127.0.0.1:0", "--network-key-file", keys.network_key_file, "--secret-file",
                keys.server_secret_file] + options
        self.log_file = open(self.log_path, "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.log_file, env=env, preexec_fn=preexec)
        self.port = 0
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and self.proc.poll() is None:
            match = re.search(r"^listening 127\.0\.0\.1:(\d+)$", self.log_path.read_text("utf-8", "replace"), re.M)
            if match:
                self.port = int(match.group(1))
                break
            time.sleep(0.02)
        if heapwatch:
            while time.monotonic() < deadline and not self.heap_path.exists():
                time.sleep(0.02)

    def started(self) -> bool:
        return self.port != 0

    def lines(self) -> List[str]:
        return self.log_path.read_text("utf-8", "replace").splitlines()

    def sockets(self) -> int:
        n = 0
        for fd in os.listdir(f"/proc/{self.proc.pid}/fd"):
            try:
                n += os.readlink(f"/proc/{self.proc.pid}/fd/{fd}").startswith("socket:")
            except OSError:
                pass
        return n

    def heap(self) -> int:
        for _ in range(50):
            try:
                f = self.heap_path.read_text().split()
                return int(f[1]) + int(f[3])
            except (OSError, IndexError, ValueError):
                time.sleep(0.01)
        return -1

    def stop(self) -> Optional[int]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        self.log_file.close()
        return code


def peer(keys: Keys, server: Server, mode: str, *options: str, timeout: float = 60) -> subprocess.Popen:
    """Starts limitpeer; the client's secret goes through stdin."""
    argv = [str(LIMITPEER), "--connect", f"127.0.0.1:{server.port}", "--network-key", keys.network_key,
            "--server-key", keys.server_public, "--mode", mode] + list(options)
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdin is not None
    proc.stdin.write(keys.client_secret + "\n")
    proc.stdin.flush()
    return proc


def finish(proc: subprocess.Popen, timeout: float) -> str:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        out += "\n(killed: no answer in time)"
    return out.strip()


def stalled_connections(port: int, sources: List[str], per_source: int, payload: bytes) -> List[socket.socket]:
    socks = []
    for source in sources:
        for _ in range(per_source):
            s = socket.socket()
            s.bind((source, 0))
            s.connect(("127.0.0.1", port))
            s.sendall(payload)
            s.setblocking(False)
            socks.append(s)
    return socks


def received(sock: socket.socket) -> tuple:
    """(bytes waiting, whether the server has hung up), without blocking."""
    data, closed = b"", False
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            data += chunk
    except BlockingIOError:
        pass
    except OSError:
        closed = True
    return data, closed


def wait_settled(server: Server, limit: float) -> None:
    """Waits until the server's socket count stops changing for 0.5 s."""
    deadline, last, since = time.monotonic() + limit, -1, time.monotonic()
    while time.monotonic() < deadline:
        n = server.sockets()
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= 0.5:
            return
        time.sleep(0.05)


def capture_m1(keys: Keys) -> bytes:
    """A valid M1: limitpeer dials a listener that keeps its first 64 bytes."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    fake = type("S", (), {"port": listener.getsockname()[1]})()
    proc = peer(keys, fake, "echo", "--timeout", "10")  # type: ignore[arg-type]
    listener.settimeout(10)
    conn, _ = listener.accept()
    conn.settimeout(10)
    data = b""
    while len(data) < M1_LEN:
        chunk = conn.recv(M1_LEN - len(data))
        if not chunk:
            break
        data += chunk
    conn.close()
    listener.close()
    finish(proc, 15)
    return data


# --------------------------------------------------------------------------


def phase_flood(args: argparse.Namespace, keys: Keys, workdir: Path) -> None:
    log("== flood: ulimit -n 256, 300 connections that send one byte and stall, then a genuine client")
    server = Server(args.server, keys, workdir, "flood", ["--handshake-timeout", "20"], nofile=256)
    if not check(server.started(), f"the server starts with ulimit -n 256 ({server.lines()[:2]})"):
        server.stop()
        return
    start = time.monotonic()
    sources = [f"127.0.1.{i}" for i in range(1, 11)]
    flood = stalled_connections(server.port, sources, 30, b"\x00")
    wait_settled(server, 5)
    log(f"  300 stalled connections made in {time.monotonic() - start:.1f} s; the server holds "
        f"{server.sockets()} sockets")
    client = peer(keys, server, "echo", "--bind", "127.0.0.1", "--timeout", "15")
    out = finish(client, 20)
    held_until = time.monotonic() - start
    check(client.returncode == 0 and out.startswith("echo: ok"),
          f"the genuine client completes its handshake, echo and close while the flood is held: {out!r}")
    check(held_until < 20, f"... before the stalled connections' handshake deadline (20 s): {held_until:.1f} s")
    replies = sum(len(received(s)[0]) for s in flood)
    hung_up = sum(1 for s in flood if received(s)[1])
    check(replies == 0, f"no byte was sent to any stalled connection (got {replies})")
    lines = server.lines()
    evicted = [x for x in lines if x.startswith("evicted ")]
    emfile = [x for x in lines if "Too many open files" in x or "out of file descriptors" in x]
    check(len(evicted) >= 60, f"one 'evicted' line per connection taken beyond the cap: {len(evicted)} "
                              f"(e.g. {evicted[:1]})")
    check(not emfile, f"the server never ran out of descriptors ({len(emfile)} lines, e.g. {emfile[:1]})")
    log(f"  {hung_up} stalled connections were hung up on (evicted), {300 - hung_up} still held")
    for s in flood:
        s.close()
    check(server.proc.poll() is None, "the server is still running")
    code = server.stop()
    check(code == 0, f"SIGTERM ends it with 0 (got {code})")
    log(f"  phase time {time.monotonic() - start:.1f} s")


def phase_per_ip(args: argparse.Namespace, keys: Keys, workdir: Path) -> None:
    log("== per-ip: 64 stalled connections from 127.0.0.2 (the default --max-per-ip), then 5 more with M1")
    m1 = capture_m1(keys)
    if not check(len(m1) == M1_LEN, f"captured a valid M1 ({len(m1)} bytes)"):
        return
    server = Server(args.server, keys, workdir, "per-ip", ["--handshake-timeout", "30"])
    if not check(server.started(), f"the server starts ({server.lines()[:2]})"):
        server.stop()
        return
    start = time.monotonic()
    held = stalled_connections(server.port, ["127.0.0.2"], 64, b"\x00")
    wait_settled(server, 5)
    extra = stalled_connections(server.port, ["127.0.0.2"], 5, m1)
    deadline = time.monotonic() + 10
    states = [received(s) for s in extra]
    while time.monotonic() < deadline and not all(closed for _, closed in states):
        select.select([], [], [], 0.05)
        now = [received(s) for s in extra]
        states = [(d + d2, c or c2) for (d, c), (d2, c2) in zip(states, now)]
    closed = sum(1 for _, c in states if c)
    got = sum(len(d) for d, _ in states)
    check(closed == 5, f"the 5 connections over the cap are closed within 10 s of connecting "
                       f"(the deadline is 30 s): {closed} closed")
    check(got == 0, f"... without a byte of reply to their valid M1 (got {got} bytes)")
    still = sum(1 for s in held if not received(s)[1])
    check(still == 64, f"the 64 within the cap are still held ({still})")
    client = peer(keys, server, "echo", "--bind", "127.0.0.1", "--timeout", "15")
    out = finish(client, 20)
    check(client.returncode == 0 and out.startswith("echo: ok"), f"a client from 127.0.0.1 is served: {out!r}")
    refused = [x for x in server.lines() if x.startswith("refused 127.0.0.2:")]
    check(len(refused) == 5, f"one 'refused' line per connection over the cap: {len(refused)} (e.g. {refused[:1]})")
    for s in held + extra:
        s.close()
    code = server.stop()
    check(code == 0, f"SIGTERM ends the server with 0 (got {code})")
    log(f"  phase time {time.monotonic() - start:.1f} s")


def phase_idle(args: argparse.Namespace, keys: Keys, workdir: Path) -> None:
    log("== idle: --idle-timeout 2; a quiet client and a talking one")
    options = [] if args.legacy else ["--idle-timeout", "2"]
    server = Server(args.server, keys, workdir, "idle", options)
    if not check(server.started(), f"the server starts ({server.lines()[:2]})"):
        server.stop()
        return
    start = time.monotonic()
    quiet = peer(keys, server, "idle", "--wait", "8")
    talker = peer(keys, server, "talk", "--interval", "0.5", "--duration", "6")
    quiet_out, talk_out = finish(quiet, 30), finish(talker, 30)
    match = re.match(r"idle: closed_by_server after=([\d.]+)", quiet_out)
    check(match is not None and float(match.group(1)) >= 1.0,
          f"the quiet client is disconnected within its 8 s wait, not before 1 s: {quiet_out!r}")
    check(talker.returncode == 0 and talk_out.startswith("talk: ok"),
          f"the talking client is served for 6 s and closes cleanly: {talk_out!r}")
    idle_lines = [x for x in server.lines() if "idle timeout" in x]
    check(len(idle_lines) == 1, f"one 'idle timeout' line on the server: {idle_lines}")
    code = server.stop()
    check(code == 0, f"SIGTERM ends the server with 0 (got {code})")
    log(f"  phase time {time.monotonic() - start:.1f} s")


def phase_memory(args: argparse.Namespace, keys: Keys, workdir: Path) -> None:
    n = args.pushers
    log(f"== memory: {n} authenticated clients that send and never read")
    if args.no_heapwatch:
        check(False, "memory: needs heapwatch.so (glibc 2.33+)")
        return
    server = Server(args.server, keys, workdir, "memory", [], heapwatch=True)
    if not check(server.started() and server.heap_path.exists(), f"the server starts with heapwatch ({server.lines()[:2]})"):
        server.stop()
        return
    start = time.monotonic()
    warm = peer(keys, server, "echo", "--size", "60000")
    finish(warm, 20)
    time.sleep(0.2)
    base = server.heap()
    pusher = peer(keys, server, "push", "--count", str(n))
    assert pusher.stdout is not None
    first = pusher.stdout.readline().strip()
    check(first == f"push: established {n}", f"{n} clients established: {first!r}")
    # Until the heap stops growing (1 s unchanged), at most 30 s.
    peak, last, since, deadline = base, -1, time.monotonic(), time.monotonic() + 30
    while time.monotonic() < deadline:
        h = server.heap()
        peak = max(peak, h)
        if h != last:
            last, since = h, time.monotonic()
        elif time.monotonic() - since >= 1.0:
            break
        time.sleep(0.05)
    per = (peak - base) / n
    rss = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{server.proc.pid}/status").read_text()).group(1))
    log(f"  heap in use {base} B at rest -> {peak} B with {n} clients that do not read: {per / 1024:.1f} KiB "
        f"per client (RSS now {rss} KiB)")
    check(per <= BOUND_PER_CONNECTION, f"at most the stated {BOUND_PER_CONNECTION // 1024} KiB per client "
                                      f"({per:.0f} B)")
    check(per >= 64 * 1024, f"the clients did fill the server's buffers ({per:.0f} B each): the test measured "
                            "something")
    out = finish(pusher, 20)  # closes its stdin: the clients hang up
    log(f"  {out}")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and server.sockets() > 1:
        time.sleep(0.05)
    time.sleep(0.2)
    after = server.heap()
    check(after <= base + 16 * 1024, f"heap back within 16 KiB of its resting value after they hang up: "
                                     f"{after} B (was {base} B)")
    code = server.stop()
    check(code == 0, f"SIGTERM ends the server with 0 (got {code})")
    log(f"  phase time {time.monotonic() - start:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", default=str(BUILD / "privline-server"))
    parser.add_argument("--legacy", action="store_true", help="leave out options the old server does not know")
    parser.add_argument("--phases", default="flood,per-ip,idle,memory")
    parser.add_argument("--pushers", type=int, default=20)
    parser.add_argument("--no-heapwatch", action="store_true")
    args = parser.parse_args()
    for path in (Path(args.server), KEYGEN, LIMITPEER):
        if not path.exists():
            print(f"limits.py: {path} is missing: run tests/load/run.sh", file=sys.stderr)
            return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1024:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    keys = Keys(KEYGEN)
    workdir = LOAD_DIR / "limits"
    workdir.mkdir(parents=True, exist_ok=True)
    phases = {"flood": phase_flood, "per-ip": phase_per_ip, "idle": phase_idle, "memory": phase_memory}
    start = time.monotonic()
    for name in args.phases.split(","):
        if name not in phases:
            print(f"limits.py: unknown phase {name!r}; known: {','.join(phases)}", file=sys.stderr)
            return 2
        phases[name](args, keys, workdir)
    log(f"\nlimits: {len(failures)} failed checks, {time.monotonic() - start:.1f} s")
    if failures:
        log("limits: FAILED")
        for f in failures:
            log(f"  - {f}")
        return 1
    log("limits: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
