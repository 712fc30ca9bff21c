"""What the tests that run privline's command-line peers share: key files,
keygen, a server process and its stderr lines, the server's death with its
test, a pseudo-terminal's output, and a proxy that cuts or damages a
connection.

Used by tests/interop (the matrix), tests/shs1/test_live_interop.py,
tests/python/test_cli.py, tests/load and tests/tunnel; those outside this
directory put it on ``sys.path`` first. Python standard library only.
"""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

_KEY_DIR: Optional[str] = None
_KEY_FILES: Dict[str, str] = {}
_KEY_LOCK = threading.Lock()


def key_file(content: str) -> str:
    """A file holding `content` (a key as hex, or a malformed one) and a
    newline, mode 0600, in a directory removed at exit: the peers take
    their keys from files (--secret-file, --network-key-file), since a key
    on a command line can be read by other local users. The same content
    gives the same file."""
    global _KEY_DIR
    with _KEY_LOCK:
        if _KEY_DIR is None:
            _KEY_DIR = tempfile.mkdtemp(prefix="privline-test-keys-")
            atexit.register(shutil.rmtree, _KEY_DIR, True)
        path = _KEY_FILES.get(content)
        if path is None:
            path = os.path.join(_KEY_DIR, f"key{len(_KEY_FILES)}")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(content + "\n")
            _KEY_FILES[content] = path
        return path


def keygen(program: Union[str, Path]) -> Tuple[str, str]:
    """A new identity from `program` (privline-keygen): (secret, public) as
    hex, from its "secret ..." and "public ..." lines."""
    out = subprocess.run([str(program)], capture_output=True, text=True, timeout=30, check=True).stdout
    fields = dict(line.split() for line in out.splitlines())
    return fields["secret"], fields["public"]


class Keys:
    """A random network key and two identities made by `keygen_program`
    (privline-keygen), the server's and the client's, as hex and as key
    files (``*_file``)."""

    def __init__(self, keygen_program: Union[str, Path]) -> None:
        self.network_key = os.urandom(32).hex()
        self.server_secret, self.server_public = keygen(keygen_program)
        self.client_secret, self.client_public = keygen(keygen_program)
        self.network_key_file = key_file(self.network_key)
        self.server_secret_file = key_file(self.server_secret)
        self.client_secret_file = key_file(self.client_secret)


class LoggedServer:
    """A server process (any peer's command line) whose stderr lines are
    collected in :attr:`lines` as they come. Made, it has printed its
    "listening HOST:PORT" line (:attr:`host`, :attr:`port`) within
    `listen_timeout` seconds; otherwise the constructor kills it and fails
    with what it printed. `timeout`: how long the waits below wait unless
    told otherwise."""

    def __init__(self, argv: Sequence[str], env: Optional[Dict[str, str]], listen_timeout: float,
                 name: str = "server", timeout: float = 30.0) -> None:
        self.argv = [str(arg) for arg in argv]
        self.timeout = timeout
        self.lines: List[str] = []
        self.host: Optional[str] = None
        self.port: Optional[int] = None
        self._changed = threading.Condition()
        self._eof = False
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self.wait_for_line(lambda line: line.startswith("listening "), listen_timeout):
            self.kill()
            raise AssertionError(f"{name} did not print 'listening' ({self.argv}): {self.stderr()!r}")
        listening = next(line for line in self.lines if line.startswith("listening "))
        host, _, port = listening[len("listening ") :].rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            with self._changed:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\r\n"))
                self._changed.notify_all()
        with self._changed:
            self._eof = True
            self._changed.notify_all()

    def wait_for_line(self, match: Callable[[str], bool], timeout: Optional[float] = None) -> bool:
        """Waits until a stderr line matches (True) or stderr ends or the
        time is up (False)."""
        with self._changed:
            self._changed.wait_for(
                lambda: self._eof or any(match(line) for line in self.lines), self._timeout(timeout)
            )
            return any(match(line) for line in self.lines)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stderr(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def _timeout(self, timeout: Optional[float]) -> float:
        return self.timeout if timeout is None else timeout

    def wait(self, timeout: Optional[float] = None) -> int:
        """The exit status, once the process has ended and its stderr is read."""
        code = self.proc.wait(self._timeout(timeout))
        self._reader.join(5)
        return code

    def stop(self, timeout: Optional[float] = None) -> None:
        """SIGTERM, and SIGKILL if that has not ended it within `timeout`."""
        timeout = self._timeout(timeout)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._end_reader(timeout)

    def kill(self) -> None:
        kill(self.proc)
        self._end_reader(5)

    def _end_reader(self, timeout: float) -> None:
        # Closed here, not left to the collector: an unclosed pipe is a
        # ResourceWarning (an error in tests/python) in whichever test
        # happens to run then.
        self._reader.join(timeout)
        if not self._reader.is_alive() and self.proc.stderr is not None:
            self.proc.stderr.close()


def die_with_parent() -> None:
    """For ``preexec_fn``: the child gets SIGTERM when the test process dies,
    so that a test killed half-way leaves no server behind."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort only
        pass


def kill(proc: "subprocess.Popen[bytes]") -> None:
    """Kills `proc` unless it has ended, and reaps it (waiting up to 10 s)."""
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        pass


def read_pty(main_fd: int) -> bytes:
    """Everything written to a pseudo-terminal until its other end closed
    (Linux reports that as EIO, not as an empty read)."""
    output = b""
    while True:
        try:
            chunk = os.read(main_fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    return output


class Proxy:
    """A loopback TCP proxy for one connection between a client and a server.

    Counts the bytes each side sent and notes when the server's side of the
    stream ended. `cut_after`: forward only that many server bytes, then end
    the stream to the client (a truncation). `corrupt_at`: flip one bit of the
    server byte at that offset.
    """

    def __init__(self, upstream_port: int, cut_after: Optional[int] = None, corrupt_at: Optional[int] = None):
        self.upstream_port = upstream_port
        self.cut_after = cut_after
        self.corrupt_at = corrupt_at
        self.server_bytes = 0
        self.client_bytes = 0
        self.connected_at: Optional[float] = None  # the server accepted (upstream connect done)
        self.server_eof_at: Optional[float] = None  # the server's side ended
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self._sockets: List[socket.socket] = []
        self._threads: List[threading.Thread] = []
        self._main = threading.Thread(target=self._run, daemon=True)
        self._main.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self) -> None:
        try:
            client, _ = self.listener.accept()
        except OSError:
            return
        self.listener.close()
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        self.connected_at = time.monotonic()
        self._sockets += [client, upstream]
        for args in ((client, upstream, False), (upstream, client, True)):
            thread = threading.Thread(target=self._pump, args=args, daemon=True)
            thread.start()
            self._threads.append(thread)

    def _pump(self, src: socket.socket, dst: socket.socket, from_server: bool) -> None:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            if from_server:
                offset = self.server_bytes
                if self.corrupt_at is not None and offset <= self.corrupt_at < offset + len(data):
                    i = self.corrupt_at - offset
                    data = data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]
                if self.cut_after is not None and offset + len(data) >= self.cut_after:
                    data = data[: self.cut_after - offset]
                    self.server_bytes += len(data)
                    self._send(dst, data)
                    break
                self.server_bytes += len(data)
            else:
                self.client_bytes += len(data)
            if not self._send(dst, data):
                break
        if from_server:
            self.server_eof_at = time.monotonic()
        try:
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    @staticmethod
    def _send(dst: socket.socket, data: bytes) -> bool:
        try:
            dst.sendall(data)
            return True
        except OSError:
            return False

    def join(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        self._main.join(max(0.0, deadline - time.monotonic()))
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        for sock in [self.listener] + self._sockets:
            try:
                sock.close()
            except OSError:
                pass
