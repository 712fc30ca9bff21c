"""privline over asyncio streams: :func:`open_connection`,
:func:`start_server` and :func:`accept`, with :class:`SecureReader` and
:class:`SecureWriter` shaped like :class:`asyncio.StreamReader` and
:class:`asyncio.StreamWriter`.

``SecureReader.read`` returns ``b""`` only at the peer's clean close
(privline/1: the close record; SHS1: the box-stream goodbye) and raises
:class:`~privline.Truncated` when the connection ends without it.

Each function takes ``protocol`` (``"privline1"``, the default, or
``"shs1"``) and an :class:`Identity` that may serve any number of
connections.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
from typing import Any, Awaitable, Callable, Deque, Optional, Tuple, Union

from .core import (
    BytesLike,
    Channel,
    ClientHandshake,
    Handshake,
    Identity,
    Protocol,
    RecordType,
    ServerHandshake,
    validate_network_key,
    validate_pad_block,
)
from ._handshake_loop import HandshakeLoop, Need, report_failure
from .errors import Error, NotSupported, Timeout, Truncated

__all__ = [
    "SecureReader",
    "SecureWriter",
    "open_connection",
    "start_server",
    "accept",
]

_RECV_CHUNK = 65536

#: ``authorize(public_key)`` returning a bool or an awaitable of one.
AsyncAuthorizer = Callable[[bytes], Union[bool, Awaitable[bool]]]


def _deadline(timeout: Optional[float]) -> Optional[float]:
    return None if timeout is None else asyncio.get_running_loop().time() + timeout


async def _wait(awaitable: Awaitable[Any], deadline: Optional[float], what: str = "handshake timed out") -> Any:
    """Awaits ``awaitable`` until ``deadline`` (loop time); raises
    :class:`~privline.Timeout` after it."""
    if deadline is None:
        return await awaitable
    remaining = max(0.0, deadline - asyncio.get_running_loop().time())
    try:
        return await asyncio.wait_for(awaitable, remaining)
    except asyncio.TimeoutError:
        raise Timeout(what) from None


async def _handshake(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    handshake: Handshake,
    deadline: Optional[float],
    authorize: Optional[AsyncAuthorizer],
) -> Tuple[Channel, bytes]:
    loop = HandshakeLoop(handshake)
    for need, argument in loop:
        if need is Need.SEND:
            writer.write(argument)
            await _wait(writer.drain(), deadline)
        elif need is Need.RECV:
            loop.answer = await _wait(reader.read(4096), deadline)
        else:
            decision: Any = True if authorize is None else authorize(argument)
            if inspect.isawaitable(decision):
                decision = await _wait(decision, deadline)
            loop.answer = decision
    return loop.result


async def _linger(reader: asyncio.StreamReader, deadline: Optional[float]) -> None:
    """Keeps the connection open and silent until ``deadline``, discarding
    what arrives."""
    if deadline is None:
        return
    loop = asyncio.get_running_loop()
    while True:
        remaining = deadline - loop.time()
        if remaining <= 0:
            return
        try:
            chunk = await asyncio.wait_for(reader.read(_RECV_CHUNK), remaining)
        except asyncio.TimeoutError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            return


class _Shared:
    """The channel shared by a reader and a writer; closed when both are
    done with it, or when the writer is closed."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.protocol = channel.protocol
        #: None for SHS1, which has no session id.
        self.session_id: Optional[bytes] = None if self.protocol is Protocol.SHS1 else channel.session_id
        self.peer_key = channel.peer_key
        self.reader_done = False
        self.writer_done = False

    def get_session_id(self) -> bytes:
        if self.session_id is None:
            raise NotSupported()
        return self.session_id

    def done(self, reader: bool) -> None:
        if reader:
            self.reader_done = True
        else:
            self.writer_done = True
        if self.reader_done and self.writer_done:
            self.channel.close()


class _Half:
    """What the reader and the writer of one connection both tell about it."""

    _shared: _Shared

    @property
    def protocol(self) -> Protocol:
        """The protocol of the connection."""
        return self._shared.protocol

    @property
    def session_id(self) -> bytes:
        """The channel's 32-byte session id (SHS1 has none:
        :class:`~privline.NotSupported`)."""
        return self._shared.get_session_id()


class SecureReader(_Half):
    """The receiving half of a privline connection (like
    :class:`asyncio.StreamReader`)."""

    def __init__(self, raw: asyncio.StreamReader, shared: _Shared, buffered: bytes = b"") -> None:
        """Internal: made by :func:`open_connection` and :func:`accept`."""
        self._reader = raw
        self._shared = shared
        self._channel = shared.channel
        self._raw = bytearray(buffered)
        self._records: Deque[bytes] = collections.deque()
        self._pos = 0  # bytes already read from self._records[0]
        self._size = 0  # unread plaintext bytes in self._records
        self._eof = False
        self._error: Optional[BaseException] = None
        self.peer_key: bytes = shared.peer_key
        """The peer's public key, as proven in the handshake."""

    def _fail(self, error: BaseException) -> None:
        self._error = error
        self._shared.done(reader=True)

    async def _fill(self) -> bool:
        """Opens at least one more data record into the buffer (reading
        from the connection as needed); False at the peer's close."""
        while True:
            if self._error is not None:
                raise self._error
            if self._eof:
                return False
            got = False
            while self._raw:
                try:
                    opened = self._channel.open(self._raw)
                except Error as error:
                    self._fail(error)
                    raise
                if opened.consumed:
                    del self._raw[: opened.consumed]
                if opened.record_type is RecordType.DATA:
                    self._records.append(opened.payload)
                    self._size += len(opened.payload)
                    got = True
                elif opened.record_type is RecordType.CLOSE:
                    self._eof = True
                    self._shared.done(reader=True)
                    break
                elif opened.record_type is RecordType.NONE:
                    break
            if got:
                return True
            if self._eof:
                return False
            chunk = await self._reader.read(_RECV_CHUNK)
            if not chunk:
                self._fail(Truncated())
                raise self._error  # type: ignore[misc]
            self._raw += chunk

    def _take(self, n: int) -> bytes:
        """Removes up to ``n`` buffered plaintext bytes."""
        parts = []
        while n > 0 and self._records:
            record = self._records[0]
            available = len(record) - self._pos
            if available <= n:
                parts.append(record[self._pos :] if self._pos else record)
                self._records.popleft()
                self._pos = 0
                self._size -= available
                n -= available
            else:
                parts.append(record[self._pos : self._pos + n])
                self._pos += n
                self._size -= n
                n = 0
        # Drop empty records that are now in front.
        while self._records and len(self._records[0]) == self._pos:
            self._records.popleft()
            self._pos = 0
        return b"".join(parts)

    def _peek(self) -> bytes:
        if not self._records:
            return b""
        first = self._records[0][self._pos :]
        return first + b"".join(list(self._records)[1:])

    async def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (``n < 0``: everything until the peer's
        close). ``b""`` at the peer's clean close; raises
        :class:`~privline.Truncated` when the connection ends without it."""
        if n == 0:
            return b""
        if n < 0:
            parts = []
            while True:
                parts.append(self._take(self._size))
                if not await self._fill():
                    parts.append(self._take(self._size))
                    return b"".join(parts)
        while self._size == 0:
            # Only empty records are buffered: drop them.
            self._records.clear()
            self._pos = 0
            if not await self._fill():
                return b""
        return self._take(n)

    async def readexactly(self, n: int) -> bytes:
        """Exactly ``n`` bytes; :class:`asyncio.IncompleteReadError` if the
        peer closes cleanly before."""
        if n < 0:
            raise ValueError("readexactly size can not be less than zero")
        while self._size < n:
            if not await self._fill():
                partial = self._take(self._size)
                raise asyncio.IncompleteReadError(partial, n)
        return self._take(n)

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        """Bytes up to and including ``separator``;
        :class:`asyncio.IncompleteReadError` if the peer closes before it."""
        if not separator:
            raise ValueError("Separator should be at least one-byte string")
        while True:
            index = self._peek().find(separator)
            if index >= 0:
                return self._take(index + len(separator))
            if not await self._fill():
                partial = self._take(self._size)
                raise asyncio.IncompleteReadError(partial, None)

    async def readline(self) -> bytes:
        """One line including ``b"\\n"``; at the peer's close, what is left
        (possibly ``b""``)."""
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as error:
            return error.partial

    async def read_record(self) -> Optional[bytes]:
        """The payload of the next data record (possibly ``b""``; SHS1: the
        next box, at most 4096 bytes), keeping
        the sender's record boundaries; ``None`` at the peer's clean close.
        After a partial :meth:`read`, returns the rest of that record."""
        if not self._records:
            if not await self._fill():
                return None
        record = self._records.popleft()
        rest = record[self._pos :] if self._pos else record
        self._pos = 0
        self._size -= len(rest)
        return rest

    def at_eof(self) -> bool:
        """True when the peer's close has arrived and everything was read."""
        return self._eof and self._size == 0

    def exception(self) -> Optional[BaseException]:
        """The error that ended the stream, if any."""
        return self._error

    def __aiter__(self) -> "SecureReader":
        return self

    async def __anext__(self) -> bytes:
        line = await self.readline()
        if not line:
            raise StopAsyncIteration
        return line


class SecureWriter(_Half):
    """The sending half of a privline connection (like
    :class:`asyncio.StreamWriter`)."""

    def __init__(self, raw: asyncio.StreamWriter, shared: _Shared, pad_block: int = 0) -> None:
        """Internal: made by :func:`open_connection` and :func:`accept`."""
        self._writer = raw
        self._shared = shared
        self._channel = shared.channel
        self._pad_block = pad_block
        self._close_sent = False
        self._closed = False
        self.peer_key: bytes = shared.peer_key
        """The peer's public key, as proven in the handshake."""

    @property
    def transport(self) -> asyncio.BaseTransport:
        """The underlying transport (do not write to it directly)."""
        return self._writer.transport

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """The underlying transport's extra information (``peername``...)."""
        return self._writer.get_extra_info(name, default)

    def write(self, data: BytesLike) -> None:
        """Seals ``data`` (privline/1: one or more data records, ``b""`` is
        one empty record; SHS1: boxes of at most 4096 bytes, nothing for
        ``b""``) and buffers it for sending; call :meth:`drain`."""
        if self._closed:
            raise ValueError("I/O operation on a closed SecureWriter")
        self._writer.write(self._channel.seal(data, self._pad_block))

    def writelines(self, data: Any) -> None:
        """Writes the concatenation of an iterable of bytes-like objects."""
        self.write(b"".join(data))

    async def drain(self) -> None:
        """Waits until the transport's buffer is low enough to write more."""
        await self._writer.drain()

    def update_key(self) -> None:
        """Sends a key-update record and replaces the sending key (SHS1:
        :class:`~privline.NotSupported`, nothing sent)."""
        self._writer.write(self._channel.update_key(self._pad_block))

    def can_write_eof(self) -> bool:
        """Always True: :meth:`write_eof` sends the close record."""
        return True

    def close_write(self) -> None:
        """Half-close: sends this side's close record (SHS1: the goodbye),
        which tells the peer that everything was sent, and shuts down the
        transport's write side. The reader keeps reading until the peer's
        close. Idempotent. Also named :meth:`write_eof`, as on
        :class:`asyncio.StreamWriter`."""
        if self._close_sent:
            return
        if self._closed:
            raise ValueError("I/O operation on a closed SecureWriter")
        self._writer.write(self._channel.seal_close(self._pad_block))
        self._close_sent = True
        self._shared.done(reader=False)
        if self._writer.can_write_eof():
            self._writer.write_eof()

    #: The asyncio name of :meth:`close_write`.
    write_eof = close_write

    def close(self, send_close: bool = True) -> None:
        """Ends the connection and releases everything: sends this side's
        close record (unless already sent, the channel is dead, or
        ``send_close`` is false, as after a fatal error or a truncation),
        closes the transport and closes the channel (the reader can still
        return what it had already opened). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if send_close and not self._close_sent:
            try:
                self._writer.write(self._channel.seal_close(self._pad_block))
                self._close_sent = True
            except (Error, ValueError, OSError, RuntimeError):
                pass
        self._shared.done(reader=False)
        self._shared.channel.close()
        self._writer.close()

    def is_closing(self) -> bool:
        """True once the transport is closing or closed."""
        return self._writer.is_closing()

    async def wait_closed(self) -> None:
        """Waits until the transport is closed."""
        await self._writer.wait_closed()

    @property
    def close_sent(self) -> bool:
        """Whether this side's close record was sent."""
        return self._close_sent


def _streams(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    channel: Channel,
    rest: bytes,
    pad_block: int,
) -> Tuple[SecureReader, SecureWriter]:
    shared = _Shared(channel)
    return SecureReader(reader, shared, rest), SecureWriter(writer, shared, pad_block)


async def open_connection(
    host: Optional[str],
    port: Optional[int],
    network_key: BytesLike,
    identity: Identity,
    server_key: BytesLike,
    timeout: Optional[float] = 10.0,
    pad_block: int = 0,
    protocol: Union[Protocol, str] = Protocol.PRIVLINE1,
    **kwargs: Any,
) -> Tuple[SecureReader, SecureWriter]:
    """Connects to ``host:port`` and runs the client handshake of
    ``protocol``, both within ``timeout`` seconds. Extra keyword arguments
    go to :func:`asyncio.open_connection`. Raises a
    :class:`~privline.HandshakeError`, :class:`~privline.Truncated` (the
    server hung up: wrong network or server key, refused, or another
    protocol), :class:`~privline.Timeout` or ``OSError``."""
    deadline = _deadline(timeout)
    proto = Protocol.of(protocol)
    pad_block = validate_pad_block(proto, pad_block)
    handshake = ClientHandshake(network_key, identity, server_key, proto)
    try:
        reader, writer = await _wait(asyncio.open_connection(host, port, **kwargs), deadline, "connect timed out")
    except BaseException:
        handshake.close()
        raise
    try:
        channel, rest = await _handshake(reader, writer, handshake, deadline, None)
    except BaseException:
        handshake.close()
        writer.close()
        raise
    return _streams(reader, writer, channel, rest, pad_block)


async def accept(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    network_key: BytesLike,
    identity: Identity,
    authorize: Optional[AsyncAuthorizer] = None,
    timeout: Optional[float] = 10.0,
    silent_until_deadline: bool = True,
    on_failure: Optional[Callable[[BaseException], Any]] = None,
    pad_block: int = 0,
    protocol: Union[Protocol, str] = Protocol.PRIVLINE1,
) -> Tuple[SecureReader, SecureWriter]:
    """Runs the server handshake of ``protocol`` over an accepted
    connection's raw streams.

    ``authorize(client_public_key)`` returns a bool (or an awaitable of
    one); ``None`` accepts every client of the network. The handshake must
    finish within ``timeout`` seconds from now. On any failure the library
    state is freed at once, ``on_failure(error)`` is called, the connection
    is kept open and silent until the deadline (unless
    ``silent_until_deadline`` is false), then closed, and the error is
    raised."""
    deadline = _deadline(timeout)
    handshake: Optional[ServerHandshake] = None
    try:
        proto = Protocol.of(protocol)
        pad_block = validate_pad_block(proto, pad_block)
        handshake = ServerHandshake(network_key, identity, proto)
        channel, rest = await _handshake(reader, writer, handshake, deadline, authorize)
    except BaseException as error:
        if handshake is not None:
            handshake.close()
        try:
            if report_failure(error, on_failure, silent_until_deadline):
                await _linger(reader, deadline)
        finally:
            writer.close()
        raise
    return _streams(reader, writer, channel, rest, pad_block)


async def start_server(
    client_connected_cb: Callable[[SecureReader, SecureWriter], Any],
    host: Any,
    port: Optional[int],
    network_key: BytesLike,
    identity: Identity,
    authorize: Optional[AsyncAuthorizer] = None,
    handshake_timeout: Optional[float] = 10.0,
    on_failure: Optional[Callable[[BaseException, Any], Any]] = None,
    pad_block: int = 0,
    protocol: Union[Protocol, str] = Protocol.PRIVLINE1,
    **kwargs: Any,
) -> asyncio.AbstractServer:
    """Starts a privline server (like :func:`asyncio.start_server`): each
    connection runs the handshake of ``protocol`` with the one
    ``identity`` (see :func:`accept`; the deadline is
    ``handshake_timeout`` seconds from the moment the connection was
    accepted), then ``client_connected_cb(reader, writer)`` (a function or
    a coroutine function). ``on_failure(error, peername)`` hears of failed
    handshakes. Extra keyword arguments (``sock=``, ``reuse_address=``...)
    go to :func:`asyncio.start_server`."""
    if not isinstance(identity, Identity):
        raise TypeError("identity must be a privline.Identity")
    network_key = validate_network_key(network_key)
    proto = Protocol.of(protocol)
    pad_block = validate_pad_block(proto, pad_block)

    async def on_connection(raw_reader: asyncio.StreamReader, raw_writer: asyncio.StreamWriter) -> None:
        peer = raw_writer.get_extra_info("peername")

        def failed(error: BaseException) -> None:
            if on_failure is not None:
                on_failure(error, peer)

        try:
            reader, writer = await accept(
                raw_reader, raw_writer, network_key, identity, authorize,
                handshake_timeout, True, failed, pad_block, proto,
            )
        except Exception:
            return
        result = client_connected_cb(reader, writer)
        if inspect.isawaitable(result):
            await result

    return await asyncio.start_server(on_connection, host, port, **kwargs)
