"""privline over blocking sockets: :func:`connect`, :func:`accept`,
:class:`SecureSocket` and a small threaded :class:`Server`.

Each takes ``protocol`` (``"privline1"``, the default, or ``"shs1"`` for
Scuttlebutt secret-handshake and box-stream) and an :class:`Identity` that
may serve any number of connections.

A :class:`SecureSocket` may be used from two threads at once, one sending
and one receiving.
"""

from __future__ import annotations

import selectors
import socket
import threading
import time
from typing import Any, Callable, Optional, Tuple, Union

from .core import (
    BytesLike,
    Channel,
    ClientHandshake,
    Handshake,
    Identity,
    Protocol,
    RecordType,
    ServerHandshake,
    validate_pad_block,
)
from ._handshake_loop import HandshakeLoop, Need, report_failure
from .errors import BufferTooSmall, Error, NotSupported, Timeout, Truncated

__all__ = [
    "SecureSocket",
    "connect",
    "wrap_client",
    "accept",
    "Server",
    "serve",
    "Authorizer",
]

#: ``authorize(public_key) -> bool``: decides on a client's proven key.
Authorizer = Callable[[bytes], bool]

_RECV_CHUNK = 65536
_SEAL_RECORDS = 16  # records sealed per library call by sendall


def _record_max_payload_len() -> int:
    from . import RECORD_MAX_PAYLOAD_LEN

    return int(RECORD_MAX_PAYLOAD_LEN)


class _Deadline:
    """A monotonic deadline for a blocking handshake."""

    def __init__(self, seconds: Optional[float]) -> None:
        self.at = None if seconds is None else time.monotonic() + seconds

    def remaining(self) -> Optional[float]:
        """Seconds left (``None`` without a deadline); raises
        :class:`~privline.Timeout` when it has passed."""
        if self.at is None:
            return None
        left = self.at - time.monotonic()
        if left <= 0:
            raise Timeout("handshake timed out")
        return left


def _sendall(sock: socket.socket, data: bytes, deadline: _Deadline) -> None:
    sock.settimeout(deadline.remaining())
    try:
        sock.sendall(data)
    except socket.timeout:
        raise Timeout("handshake timed out") from None


def _recv(sock: socket.socket, deadline: _Deadline) -> bytes:
    sock.settimeout(deadline.remaining())
    try:
        return sock.recv(4096)
    except socket.timeout:
        raise Timeout("handshake timed out") from None


def _handshake(
    sock: socket.socket,
    handshake: Handshake,
    deadline: _Deadline,
    authorize: Optional[Authorizer],
) -> Tuple[Channel, bytes]:
    """Runs ``handshake`` over ``sock``; returns the channel and the bytes
    that arrived after the last handshake message (the peer's first
    records)."""
    loop = HandshakeLoop(handshake)
    for need, argument in loop:
        if need is Need.SEND:
            _sendall(sock, argument, deadline)
        elif need is Need.RECV:
            loop.answer = _recv(sock, deadline)
        else:
            loop.answer = True if authorize is None else bool(authorize(argument))
    return loop.result


def _linger(sock: socket.socket, deadline: _Deadline) -> None:
    """Keeps ``sock`` open and silent until ``deadline``, discarding what
    arrives."""
    while True:
        try:
            left = deadline.remaining()
        except Timeout:
            return
        if left is None:
            return
        try:
            sock.settimeout(left)
            if not sock.recv(_RECV_CHUNK):
                time.sleep(max(0.0, deadline.at - time.monotonic()))  # type: ignore[operator]
                return
        except socket.timeout:
            return
        except OSError:
            return


class SecureSocket:
    """A privline channel over a connected socket, with a socket-like API.

    ``recv`` returns ``b""`` only at the peer's clean close (privline/1: the
    close record; SHS1: the box-stream goodbye) and raises
    :class:`~privline.Truncated` when the connection ends without it.

    :meth:`close_write` sends this side's close record (the half-close that
    says "I have sent everything"); :meth:`close` ends the connection and
    releases everything, sending the close record first unless asked not
    to. A ``with`` block that ends with an exception closes without the
    close record, so the peer sees a truncation, not a clean end.
    """

    def __init__(self, sock: socket.socket, channel: Channel, buffered: bytes = b"", pad_block: int = 0) -> None:
        """Wraps ``sock`` and ``channel``, which it owns from now on;
        ``buffered`` holds bytes already received after the handshake.
        Usually made by :func:`connect` or :func:`accept`."""
        self._sock = sock
        self._channel = channel
        self._pad_block = pad_block
        self._raw = bytearray(buffered)
        self._pending = bytearray()  # the unread rest of one data record
        self._send_lock = threading.Lock()
        self._recv_lock = threading.Lock()
        self._protocol = channel.protocol
        self._session_id: Optional[bytes] = None
        if self._protocol is not Protocol.SHS1:
            self._session_id = channel.session_id
        self._peer_key = channel.peer_key
        # Payload bytes sealed per library call by sendall.
        self._step = _SEAL_RECORDS * _record_max_payload_len()
        self._peer_closed = False
        self._error: Optional[BaseException] = None
        self._close_sent = False
        self._closed = False
        # sendall seals into this buffer (grown on demand) and sends from it.
        self._out = bytearray(4096)

    # -- identity of the connection -------------------------------------

    @property
    def protocol(self) -> Protocol:
        """The protocol of the connection."""
        return self._protocol

    @property
    def session_id(self) -> bytes:
        """The channel's 32-byte session id (equal on both ends, secret).
        SHS1 has none: :class:`~privline.NotSupported`."""
        if self._session_id is None:
            raise NotSupported()
        return self._session_id

    @property
    def channel(self) -> Channel:
        """The channel (for :meth:`Channel.export_shs1_keys` and the like;
        sealing or opening on it directly breaks the stream)."""
        return self._channel

    @property
    def peer_key(self) -> bytes:
        """The peer's public key, as proven in the handshake."""
        return self._peer_key

    @property
    def peer_closed(self) -> bool:
        """Whether the peer's close record has arrived."""
        return self._peer_closed

    @property
    def socket(self) -> socket.socket:
        """The underlying socket (do not read or write it directly)."""
        return self._sock

    def fileno(self) -> int:
        """The underlying socket's file descriptor."""
        return self._sock.fileno()

    def settimeout(self, value: Optional[float]) -> None:
        """Sets the timeout of the underlying socket's operations."""
        self._sock.settimeout(value)

    def gettimeout(self) -> Optional[float]:
        """The timeout of the underlying socket's operations."""
        return self._sock.gettimeout()

    def getpeername(self) -> Any:
        """The remote address of the underlying socket."""
        return self._sock.getpeername()

    def getsockname(self) -> Any:
        """The local address of the underlying socket."""
        return self._sock.getsockname()

    # -- sending ---------------------------------------------------------

    def sendall(self, data: BytesLike) -> None:
        """Seals ``data`` (privline/1: records of at most 65518 bytes, one
        empty record for ``b""``; SHS1: boxes of at most 4096 bytes, nothing
        for ``b""``) and sends all of it. ``data`` is read in place (a
        ``bytes``, ``bytearray`` or writable ``memoryview``) and sealed into
        a buffer the socket keeps."""
        view = data if type(data) is bytes else memoryview(data).cast("B")
        channel = self._channel
        with self._send_lock:
            if self._closed:
                raise OSError("SecureSocket is closed")
            total = len(view)
            step = self._step
            start = 0
            while True:
                part = view[start : start + step] if start or total > step else view
                out = self._out
                while True:
                    try:
                        written = channel.seal_into(part, out, self._pad_block)
                        break
                    except BufferTooSmall as error:
                        # Nothing changed; grown once, the buffer is reused.
                        out = self._out = bytearray(error.needed or 2 * len(out) + 64)
                with memoryview(out) as sent:
                    self._sock.sendall(sent[:written])
                start += step
                if start >= total:
                    break
    def send(self, data: BytesLike) -> int:
        """Like :meth:`sendall` (records cannot be sent in part); returns
        ``len(data)``."""
        self.sendall(data)
        return memoryview(data).nbytes

    def update_key(self) -> None:
        """Sends a key-update record and replaces the sending key (SHS1:
        :class:`~privline.NotSupported`, nothing sent)."""
        with self._send_lock:
            if self._closed:
                raise OSError("SecureSocket is closed")
            self._sock.sendall(self._channel.update_key(self._pad_block))

    def close_write(self) -> None:
        """Half-close: sends this side's close (SHS1: the goodbye) and shuts down the
        socket's write side. :meth:`recv` keeps working until the peer's
        close. Idempotent."""
        with self._send_lock:
            if self._close_sent or self._closed:
                return
            self._close_sent = True
            self._sock.sendall(self._channel.seal_close(self._pad_block))
            try:
                self._sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    # -- receiving -------------------------------------------------------

    def _next_record(self) -> Optional[bytes]:
        """The next data record's payload, ``None`` at the peer's close.
        Called with the receive lock held."""
        while True:
            if self._closed:
                raise OSError("SecureSocket is closed")
            if self._error is not None:
                raise self._error
            if self._peer_closed:
                return None
            if self._raw:
                try:
                    opened = self._channel.open(self._raw)
                except Error as error:
                    self._error = error
                    raise
                if opened.consumed:
                    del self._raw[: opened.consumed]
                if opened.record_type is RecordType.DATA:
                    return opened.payload
                if opened.record_type is RecordType.CLOSE:
                    self._peer_closed = True
                    return None
                if opened.record_type is RecordType.KEY_UPDATE:
                    continue
            chunk = self._sock.recv(_RECV_CHUNK)
            if not chunk:
                self._error = Truncated()
                raise self._error
            self._raw += chunk

    def recv(self, bufsize: int) -> bytes:
        """Up to ``bufsize`` bytes of plaintext (blocking until some
        arrive); ``b""`` once the peer has closed cleanly. Raises
        :class:`~privline.Truncated` when the connection ends without the
        peer's close, and a :class:`~privline.ChannelError` on a bad
        record (fatal)."""
        if bufsize < 0:
            raise ValueError("negative buffersize in recv")
        if bufsize == 0:
            return b""
        with self._recv_lock:
            while not self._pending:
                payload = self._next_record()
                if payload is None:
                    return b""
                self._pending += payload
            data = bytes(self._pending[:bufsize])
            del self._pending[:bufsize]
            return data

    def recv_record(self) -> Optional[bytes]:
        """The payload of the next data record (possibly ``b""``; SHS1: the
        next box, at most 4096 bytes), keeping the sender's record
        boundaries; ``None`` at the peer's clean close.
        If :meth:`recv` returned part of a record, this returns its rest."""
        with self._recv_lock:
            if self._pending:
                data = bytes(self._pending)
                self._pending.clear()
                return data
            return self._next_record()

    def recv_all(self) -> bytes:
        """Everything until the peer's clean close."""
        parts = []
        while True:
            part = self.recv(_RECV_CHUNK)
            if not part:
                return b"".join(parts)
            parts.append(part)

    # -- closing ---------------------------------------------------------

    def close(self, send_close: bool = True) -> None:
        """Ends the connection and releases everything: sends this side's
        close record (unless already sent, ``send_close`` is false, or the
        channel is dead), shuts down the write side, closes the socket and
        closes the channel. Idempotent; errors while sending the close are
        ignored. Every later send or receive raises ``OSError``."""
        if self._closed:
            return
        try:
            if send_close and (self._error is None or isinstance(self._error, Truncated)):
                try:
                    self.close_write()
                except (OSError, Error, ValueError):
                    pass
        finally:
            self._closed = True
            try:
                self._sock.close()
            finally:
                self._channel.close()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def __enter__(self) -> "SecureSocket":
        return self

    def __exit__(self, exc_type: Any, *exc_info: Any) -> None:
        # An exception may have cut the data short: no close record then.
        self.close(send_close=exc_type is None)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<SecureSocket {self._protocol.value} peer_key={self._peer_key.hex()} {state}>"


def _secure_socket(
    sock: socket.socket,
    new_handshake: Callable[[Protocol], Handshake],
    deadline: _Deadline,
    authorize: Optional[Authorizer],
    pad_block: int,
    protocol: Union[Protocol, str],
) -> SecureSocket:
    """The handshake ``new_handshake(protocol)`` over ``sock`` as a
    :class:`SecureSocket` (in blocking mode); on failure the handshake's
    state is freed at once and the error raised, ``sock`` left open."""
    handshake: Optional[Handshake] = None
    try:
        proto = Protocol.of(protocol)
        pad_block = validate_pad_block(proto, pad_block)
        handshake = new_handshake(proto)
        channel, rest = _handshake(sock, handshake, deadline, authorize)
        sock.settimeout(None)
        return SecureSocket(sock, channel, rest, pad_block)
    except BaseException:
        if handshake is not None:
            handshake.close()
        raise


def wrap_client(
    sock: socket.socket,
    network_key: BytesLike,
    identity: Identity,
    server_key: BytesLike,
    timeout: Optional[float] = 10.0,
    pad_block: int = 0,
    protocol: Union[Protocol, str] = Protocol.PRIVLINE1,
) -> SecureSocket:
    """Runs the client handshake of ``protocol`` over the connected
    ``sock`` within ``timeout`` seconds and returns a :class:`SecureSocket`
    (in blocking mode). On failure ``sock`` is closed and the error raised:
    a :class:`~privline.HandshakeError`, :class:`~privline.Truncated` (the
    server hung up: wrong network or server key, refused, or another
    protocol), :class:`~privline.Timeout` or ``OSError``."""

    def client(proto: Protocol) -> Handshake:
        return ClientHandshake(network_key, identity, server_key, proto)

    try:
        return _secure_socket(sock, client, _Deadline(timeout), None, pad_block, protocol)
    except BaseException:
        sock.close()
        raise


def connect(
    address: Tuple[str, int],
    network_key: BytesLike,
    identity: Identity,
    server_key: BytesLike,
    timeout: Optional[float] = 10.0,
    pad_block: int = 0,
    protocol: Union[Protocol, str] = Protocol.PRIVLINE1,
) -> SecureSocket:
    """Connects to ``address`` (``(host, port)``) and runs the client
    handshake of ``protocol``, both within ``timeout`` seconds; see
    :func:`wrap_client`."""
    proto = Protocol.of(protocol)
    validate_pad_block(proto, pad_block)
    deadline = _Deadline(timeout)
    try:
        sock = socket.create_connection(address, timeout=deadline.remaining())
    except socket.timeout:
        raise Timeout("connect timed out") from None
    return wrap_client(sock, network_key, identity, server_key, deadline.remaining(), pad_block, proto)


def accept(
    sock: socket.socket,
    network_key: BytesLike,
    identity: Identity,
    authorize: Optional[Authorizer] = None,
    timeout: Optional[float] = 10.0,
    silent_until_deadline: bool = True,
    on_failure: Optional[Callable[[BaseException], Any]] = None,
    pad_block: int = 0,
    protocol: Union[Protocol, str] = Protocol.PRIVLINE1,
) -> SecureSocket:
    """Runs the server handshake of ``protocol`` over ``sock``, an accepted
    connection, and returns a :class:`SecureSocket` (in blocking mode).

    ``authorize(client_public_key) -> bool`` decides on the client (``None``
    accepts every client of the network). The handshake must finish within
    ``timeout`` seconds. On any failure the library state is freed at once,
    ``on_failure(error)`` is called, the connection is kept open and silent
    until the deadline (unless ``silent_until_deadline`` is false), then
    closed, and the error is raised.
    """

    def server(proto: Protocol) -> Handshake:
        return ServerHandshake(network_key, identity, proto)

    deadline = _Deadline(timeout)
    try:
        return _secure_socket(sock, server, deadline, authorize, pad_block, protocol)
    except BaseException as error:
        try:
            if report_failure(error, on_failure, silent_until_deadline):
                _linger(sock, deadline)
        finally:
            sock.close()
        raise


class Server:
    """A threaded privline server: each connection gets a thread that runs
    :func:`accept` and then ``handler(secure_socket)``; the socket is closed
    when the handler returns.

    Use as a context manager, run :meth:`serve_forever` (maybe in a thread)
    and stop it with :meth:`shutdown`. Every connection's handshake uses
    the one ``identity`` (its keys are not derived again per connection).
    """

    def __init__(
        self,
        address: Tuple[str, int],
        network_key: BytesLike,
        identity: Identity,
        handler: Callable[[SecureSocket], Any],
        authorize: Optional[Authorizer] = None,
        timeout: Optional[float] = 10.0,
        on_failure: Optional[Callable[[BaseException, Any], Any]] = None,
        backlog: int = 128,
        pad_block: int = 0,
        protocol: Union[Protocol, str] = Protocol.PRIVLINE1,
    ) -> None:
        """Listens on ``address`` (port 0 picks a free port, see
        :attr:`address`). ``on_failure(error, peer_address)`` hears of
        failed handshakes; the other arguments are those of :func:`accept`."""
        if not isinstance(identity, Identity):
            raise TypeError("identity must be a privline.Identity")
        self._protocol = Protocol.of(protocol)
        pad_block = validate_pad_block(self._protocol, pad_block)
        self._listener = socket.create_server(address, backlog=backlog)
        self._network_key = network_key
        self._identity = identity
        self._handler = handler
        self._authorize = authorize
        self._timeout = timeout
        self._on_failure = on_failure
        self._pad_block = pad_block
        self._stop = threading.Event()
        self._stopped = threading.Event()
        self._stopped.set()

    @property
    def protocol(self) -> Protocol:
        """The protocol the server speaks."""
        return self._protocol

    @property
    def address(self) -> Tuple[str, int]:
        """The ``(host, port)`` the server listens on."""
        name = self._listener.getsockname()
        return name[0], name[1]

    def serve_forever(self, poll_interval: float = 0.2) -> None:
        """Accepts connections until :meth:`shutdown`."""
        self._stopped.clear()
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self._listener, selectors.EVENT_READ)
                while not self._stop.is_set():
                    if not selector.select(poll_interval):
                        continue
                    try:
                        conn, peer = self._listener.accept()
                    except OSError:
                        continue
                    threading.Thread(target=self._serve_one, args=(conn, peer), daemon=True).start()
        finally:
            self._stopped.set()

    def _serve_one(self, conn: socket.socket, peer: Any) -> None:
        def failed(error: BaseException) -> None:
            if self._on_failure is not None:
                self._on_failure(error, peer)

        try:
            secure = accept(
                conn, self._network_key, self._identity, self._authorize,
                self._timeout, True, failed, self._pad_block, self._protocol,
            )
        except Exception:
            return
        with secure:
            self._handler(secure)

    def shutdown(self) -> None:
        """Stops :meth:`serve_forever` and waits until it has returned.
        Connections being served go on in their threads."""
        self._stop.set()
        self._stopped.wait()

    def close(self) -> None:
        """Stops serving and closes the listening socket."""
        self.shutdown()
        self._listener.close()

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def serve(
    address: Tuple[str, int],
    network_key: BytesLike,
    identity: Identity,
    handler: Callable[[SecureSocket], Any],
    authorize: Optional[Authorizer] = None,
    timeout: Optional[float] = 10.0,
    protocol: Union[Protocol, str] = Protocol.PRIVLINE1,
    **kwargs: Any,
) -> None:
    """Serves forever on ``address``: a :class:`Server` speaking
    ``protocol`` that runs ``handler(secure_socket)`` per client in its own
    thread. Other keyword arguments (``pad_block=``...) go to
    :class:`Server`."""
    with Server(address, network_key, identity, handler, authorize, timeout, protocol=protocol, **kwargs) as server:
        server.serve_forever()
