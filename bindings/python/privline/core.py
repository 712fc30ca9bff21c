"""The sans-IO core: identities, handshakes and channels over ``libprivline``.

Two protocols (:class:`Protocol`): privline/1 (``"privline1"``, the default)
and Scuttlebutt secret-handshake v1 with box-stream (``"shs1"``). Every
handshake takes a ``protocol`` argument; the channel it becomes speaks the
same protocol.

Nothing here touches a socket: :meth:`Handshake.step` and the
:class:`Channel` methods take the bytes that arrived from the peer and
return the bytes to send. :mod:`privline.sockets` and :mod:`privline.aio`
move them over real connections.

Every object that owns a library handle frees it (and the library wipes the
secrets inside) when :meth:`~Channel.free` is called, when a ``with`` block
ends, or when the object is garbage-collected. One object may be used from
several threads: calls on one handle are serialised by a lock.
"""

from __future__ import annotations

import ctypes
import enum
import functools
import threading
from typing import Any, List, NamedTuple, Optional, Tuple, Union

from . import _lib
from .errors import InvalidArgument, NotSupported, check

__all__ = [
    "Protocol",
    "Identity",
    "Handshake",
    "ClientHandshake",
    "ServerHandshake",
    "Channel",
    "Status",
    "RecordType",
    "StepResult",
    "Opened",
    "Record",
    "sealed_len",
    "version",
    "BytesLike",
]

#: What the binding accepts where it reads bytes: ``bytes``, ``bytearray``,
#: ``memoryview`` or any other object with the buffer protocol.
BytesLike = Union[bytes, bytearray, memoryview]

_BUFFER_TOO_SMALL = 1
# privline/1's record sizes (PRIVLINE_RECORD_MAX_PAYLOAD_LEN and
# PRIVLINE_RECORD_OVERHEAD_LEN), for sizing seal buffers without a call.
_RECORD_MAX_PAYLOAD_LEN = 65518
_RECORD_OVERHEAD_LEN = 19
_SIZE_MAX = ctypes.c_size_t(-1).value

# include/privline.h defines these without functions that return them.
#: Bytes of an identity secret in the libsodium / Scuttlebutt form.
IDENTITY_KEYPAIR_LEN = 64
#: SHS1: most payload bytes in one box-stream body.
SHS1_MAX_BODY_LEN = 4096
#: SHS1: bytes of an encrypted box-stream header (one per body, and the goodbye).
SHS1_HEADER_LEN = 34
#: SHS1: bytes :meth:`Channel.export_shs1_keys` returns.
SHS1_KEYS_LEN = 112


class Status(enum.IntEnum):
    """What a handshake waits for after :meth:`Handshake.step`
    (``privline_handshake_status``)."""

    #: Send the output (if any), read more from the peer, step again.
    NEED_INPUT = 1
    #: Server: look at :attr:`ServerHandshake.peer_key`, then call
    #: :meth:`ServerHandshake.authorize`; after accepting, step once more.
    AUTHORIZE_PEER = 2
    #: Complete: send the output, then call :meth:`Handshake.into_channel`.
    DONE = 3


class RecordType(enum.IntEnum):
    """What :meth:`Channel.open` found (``privline_record_type``)."""

    #: The input does not hold a whole record yet; nothing was consumed.
    NONE = 0
    #: A data record; its payload (possibly empty) is returned.
    DATA = 1
    #: The peer's close: it sends nothing more.
    CLOSE = 2
    #: The peer updated its key; nothing to do.
    KEY_UPDATE = 3


class Protocol(str, enum.Enum):
    """The wire protocol of a handshake and its channel
    (``privline_protocol``). A ``str`` enum: ``Protocol.SHS1 == "shs1"``,
    and every ``protocol`` argument takes the member or its string."""

    #: privline/1 (PROTOCOL.md), the default.
    PRIVLINE1 = "privline1"
    #: Scuttlebutt secret-handshake v1, then box-stream. Its channel has no
    #: key update, padding or session id (:class:`~privline.NotSupported`).
    SHS1 = "shs1"

    @classmethod
    def of(cls, value: Any) -> "Protocol":
        """``value`` (a :class:`Protocol`, its string in any case, or the C
        value 1 or 2) as a :class:`Protocol`; ``ValueError`` otherwise."""
        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            try:
                return cls(value.lower())
            except ValueError:
                pass
        elif isinstance(value, int) and not isinstance(value, bool):
            for member in cls:
                if member.c_value == value:
                    return member
        names = " or ".join(repr(member.value) for member in cls)
        raise ValueError(f"protocol must be {names}, not {value!r}")

    @property
    def c_value(self) -> int:
        """The ``privline_protocol`` value (1 or 2)."""
        return _C_PROTOCOL[self.value]

    def __str__(self) -> str:
        return self.value


_C_PROTOCOL = {"privline1": 1, "shs1": 2}


class StepResult(NamedTuple):
    """The outcome of :meth:`Handshake.step`."""

    #: Input bytes the handshake took; the rest stays the caller's (bytes
    #: after the last handshake message belong to the channel).
    consumed: int
    #: The message to send to the peer (may be empty).
    output: bytes
    #: What to do next.
    status: Status


class Opened(NamedTuple):
    """The outcome of :meth:`Channel.open`: one record."""

    #: Input bytes taken (0 with :attr:`RecordType.NONE`).
    consumed: int
    #: What was found.
    record_type: RecordType
    #: The payload of a data record (``b""`` for every other type).
    payload: bytes


class Record(NamedTuple):
    """One opened record, as listed by :meth:`Channel.open_all`."""

    record_type: RecordType
    payload: bytes


@functools.lru_cache(maxsize=None)
def _size(name: str) -> int:
    """A size the library reports (``privline_*_len()``), asked once per
    process: the sizes are constants, and each ctypes call costs about as
    much as a small seal."""
    return int(getattr(_lib.lib(), name)())


def _key(value: Any, what: str, length: int) -> bytes:
    """``value`` as ``bytes`` of exactly ``length`` bytes."""
    if isinstance(value, str):
        raise TypeError(f"{what} must be bytes, not str (use bytes.fromhex() for hex)")
    try:
        data = bytes(memoryview(value))
    except TypeError:
        raise TypeError(f"{what} must be a bytes-like object, not {type(value).__name__}") from None
    if len(data) != length:
        raise ValueError(f"{what} must be {length} bytes, not {len(data)}")
    return data


def _secret(value: Any) -> bytes:
    """An identity secret: ``bytes`` of 32 (seed) or 64 (seed then public
    key) bytes."""
    if isinstance(value, str):
        raise TypeError("secret must be bytes, not str (use bytes.fromhex() for hex)")
    try:
        data = bytes(memoryview(value))
    except TypeError:
        raise TypeError(f"secret must be a bytes-like object, not {type(value).__name__}") from None
    if len(data) not in (32, IDENTITY_KEYPAIR_LEN):
        raise ValueError(f"secret must be 32 bytes (a seed) or 64 bytes (seed and public key), not {len(data)}")
    return data


def _borrow(data: Any, offset: int = 0) -> Tuple[Any, int]:
    """``data[offset:]`` as an argument for a ``const uint8_t *`` parameter
    and its length, without copying ``bytes`` and ``bytearray``. The caller
    must drop the returned argument (``del``) before resizing a bytearray."""
    if isinstance(data, bytes):
        length = len(data) - offset
        if length <= 0:
            return None, 0
        if offset == 0:
            return data, length
        # The address inside ``data``, which the caller keeps alive.
        base = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p).value
        return base + offset, length  # type: ignore[operator]
    if isinstance(data, bytearray):
        length = len(data) - offset
        if length <= 0:
            return None, 0
        return (ctypes.c_ubyte * length).from_buffer(data, offset), length
    if isinstance(data, str):
        raise TypeError("data must be bytes-like, not str")
    return _borrow(bytes(memoryview(data)), offset)


def _check_padding(protocol: "Protocol", pad_block: int) -> int:
    """``pad_block`` for a connection speaking ``protocol``: a
    ``ValueError`` when negative, :class:`~privline.NotSupported` when above
    1 for SHS1 (found before connecting rather than at the first send)."""
    pad_block = int(pad_block)
    if pad_block < 0:
        raise ValueError("pad_block must be >= 0")
    if pad_block > 1 and protocol is Protocol.SHS1:
        raise NotSupported("SHS1 has no padding (pad_block must be 0)")
    return pad_block


def sealed_len(payload_len: int) -> int:
    """Bytes a privline/1 :meth:`Channel.seal` writes for ``payload_len``
    payload bytes without padding (``privline_sealed_len``; without the
    rare automatic key update). :meth:`Channel.sealed_len` is exact for any
    channel, SHS1 included."""
    if payload_len < 0:
        raise ValueError("payload_len must be >= 0")
    if payload_len > _SIZE_MAX:
        raise OverflowError("sealed size does not fit in size_t")
    size = _lib.lib().privline_sealed_len(payload_len)
    if size == _SIZE_MAX:
        raise OverflowError("sealed size does not fit in size_t")
    return int(size)


def version() -> str:
    """The version of the loaded ``libprivline`` (``privline_version``)."""
    return _lib.lib().privline_version().decode("ascii")


class _Handle:
    """Shared life-cycle of the objects that own a library handle."""

    _kind = "handle"
    _free_name = ""

    def _setup(self, handle: Any) -> None:
        self._lib = _lib.lib()
        self._lock = threading.Lock()
        self._h = handle
        # Bound now, so that __del__ needs no module globals at interpreter
        # shutdown.
        self._c_free = getattr(self._lib, self._free_name)

    def _live(self) -> Any:
        handle = getattr(self, "_h", None)
        if not handle:
            raise ValueError(f"I/O operation on a freed or consumed {self._kind}")
        return handle

    def _free(self) -> None:
        """Free the library handle now (idempotent)."""
        handle = getattr(self, "_h", None)
        if handle:
            with self._lock:
                handle = self._h
                if handle:
                    self._h = type(handle)()  # NULL
                    self._c_free(handle)

    def free(self) -> None:
        """Free the library state now; the library wipes the secrets in it.
        Idempotent. Every later call raises ``ValueError``."""
        self._free()

    @property
    def freed(self) -> bool:
        """True once the handle is freed (or, for a handshake, consumed by
        :meth:`Handshake.into_channel`)."""
        return not getattr(self, "_h", None)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._free()

    def __del__(self) -> None:
        try:
            self._free()
        except Exception:  # noqa: BLE001 - interpreter shutdown, half-built object
            pass


class Identity(_Handle):
    """A long-term identity: an Ed25519 key pair, its secret kept inside the
    library (a ``privline_identity`` handle).

    Made from a 32-byte seed or a 64-byte libsodium / Scuttlebutt secret
    (the seed, then the public key). The seed is secret; the public key is
    what peers know (a client must know its server's, a server learns its
    clients' in the handshake).

    One identity serves any number of handshakes, from any thread, without
    deriving its keys again; handshakes keep working after it is freed.
    :meth:`free` (or :meth:`close`, the end of a ``with`` block, garbage
    collection) releases the handle; afterwards it makes no handshakes
    (``ValueError``) but still tells its :attr:`public_key`.
    """

    _kind = "identity"
    _free_name = "privline_identity_free"

    def __init__(self, secret: BytesLike) -> None:
        """The identity of ``secret``: a 32-byte seed or a 64-byte
        seed-and-public-key secret (whose public half must belong to the
        seed, else :class:`~privline.InvalidArgument`)."""
        lib = _lib.lib()
        data = _secret(secret)
        handle = _lib.IdentityHandle()
        check(lib.privline_identity_new(data, len(data), ctypes.byref(handle)))
        self._setup(handle)
        public = ctypes.create_string_buffer(_size("privline_public_key_len"))
        check(lib.privline_identity_public_key(handle, public))
        self._seed = data[: _size("privline_seed_len")]
        self._public = public.raw

    @classmethod
    def generate(cls) -> "Identity":
        """A new identity from the operating system's random generator."""
        lib = _lib.lib()
        seed = ctypes.create_string_buffer(_size("privline_seed_len"))
        public = ctypes.create_string_buffer(_size("privline_public_key_len"))
        check(lib.privline_identity_generate(seed, public))
        identity = cls(seed.raw)
        ctypes.memset(seed, 0, len(seed))
        return identity

    @classmethod
    def from_seed(cls, seed: BytesLike) -> "Identity":
        """The identity whose secret seed is ``seed`` (32 bytes)."""
        lib = _lib.lib()
        return cls(_key(seed, "seed", _size("privline_seed_len")))

    @classmethod
    def from_secret(cls, secret: BytesLike) -> "Identity":
        """The identity of a 32-byte seed or a 64-byte libsodium /
        Scuttlebutt secret; same as the constructor."""
        return cls(secret)

    @property
    def seed(self) -> bytes:
        """The secret seed (32 bytes). Keep it secret."""
        return self._seed

    @property
    def secret_key(self) -> bytes:
        """The secret in the 64-byte libsodium / Scuttlebutt form (seed,
        then public key). Keep it secret."""
        return self._seed + self._public

    @property
    def public_key(self) -> bytes:
        """The public key (32 bytes)."""
        return self._public

    def close(self) -> None:
        """Same as :meth:`free`."""
        self._free()

    def _new_handshake(self, call: Any) -> Any:
        """Runs ``call(identity_handle, handshake_out)`` under the lock (so
        that the handle is not freed meanwhile) and returns the new
        handshake handle."""
        handle = _lib.HandshakeHandle()
        with self._lock:
            live = self._live()
            check(call(live, ctypes.byref(handle)))
        return handle

    def __repr__(self) -> str:
        state = " freed" if self.freed else ""
        return f"Identity(public_key={self._public.hex()!r}){state}"


class Handshake(_Handle):
    """A handshake in progress; see :class:`ClientHandshake` and
    :class:`ServerHandshake`.

    Drive it with :meth:`step` until the status is :attr:`Status.DONE`,
    then turn it into a :class:`Channel` with :meth:`into_channel`, which
    consumes it. Any error it raises (other than :class:`~privline.WrongState`)
    is fatal and sticks: every later call raises it again; send nothing more,
    close the connection and :meth:`free` it.
    """

    _kind = "handshake"
    _free_name = "privline_handshake_free"

    def __init__(self) -> None:
        raise TypeError("use ClientHandshake or ServerHandshake")

    def _setup(self, handle: Any) -> None:
        super()._setup(handle)
        self._out = ctypes.create_string_buffer(_size("privline_handshake_max_message_len"))
        self._status: Optional[Status] = None

    def step(self, data: BytesLike = b"") -> StepResult:
        """Advance with ``data``, the bytes received from the peer that the
        handshake has not consumed yet (any fragmentation; ``b""`` when none
        arrived). Returns how many bytes were consumed, at most one message
        to send and the new status. With status NEED_INPUT, no output and
        nothing consumed, read more from the peer before stepping again.
        """
        lib = self._lib
        consumed = ctypes.c_size_t(0)
        out_len = ctypes.c_size_t(0)
        status = ctypes.c_uint32(0)
        arg, length = _borrow(data)
        try:
            with self._lock:
                handle = self._live()
                out = self._out
                while True:
                    out_len.value = len(out)
                    result = lib.privline_handshake_step(
                        handle, arg, length, ctypes.byref(consumed), out,
                        ctypes.byref(out_len), ctypes.byref(status),
                    )
                    if result == _BUFFER_TOO_SMALL and out_len.value > len(out):
                        out = self._out = ctypes.create_string_buffer(out_len.value)
                        continue
                    break
                check(result)
                output = ctypes.string_at(out, out_len.value) if out_len.value else b""
        finally:
            del arg
        self._status = Status(status.value)
        return StepResult(consumed.value, output, self._status)

    @property
    def protocol(self) -> Protocol:
        """The protocol this handshake speaks."""
        return self._protocol

    @property
    def status(self) -> Optional[Status]:
        """The status of the last successful :meth:`step` (``None`` before
        the first)."""
        return self._status

    @property
    def done(self) -> bool:
        """True once a step returned :attr:`Status.DONE`."""
        return self._status is Status.DONE

    @property
    def peer_key(self) -> bytes:
        """The peer's public key: for a client the server key it dials; for
        a server the client's key once the status is AUTHORIZE_PEER (before
        that :class:`~privline.WrongState`)."""
        out = ctypes.create_string_buffer(_size("privline_public_key_len"))
        with self._lock:
            check(self._lib.privline_handshake_peer_key(self._live(), out))
        return out.raw

    def into_channel(self) -> "Channel":
        """Turn the finished handshake into a :class:`Channel`. The
        handshake is consumed (its handle now belongs to the channel) and
        every later call on it raises ``ValueError``. Before the handshake is
        done: :class:`~privline.WrongState` (or its fatal error), and the
        handshake stays usable."""
        channel = _lib.ChannelHandle()
        with self._lock:
            self._live()
            check(self._lib.privline_handshake_into_channel(ctypes.byref(self._h), ctypes.byref(channel)))
        return Channel(channel, self._protocol)

    def close(self) -> None:
        """Same as :meth:`free`."""
        self._free()

    def __repr__(self) -> str:
        state = "freed" if self.freed else (self._status.name if self._status else "new")
        return f"<{type(self).__name__} {self._protocol.value} {state}>"


class ClientHandshake(Handshake):
    """The client (Alice) side: dials the server whose public key it knows.

    Its first :meth:`~Handshake.step`, with no input, returns M1.
    """

    def __init__(
        self,
        network_key: BytesLike,
        identity: Identity,
        server_key: BytesLike,
        protocol: Union[Protocol, str] = Protocol.PRIVLINE1,
    ) -> None:
        """Dial ``server_key`` (32 bytes) on the network ``network_key`` (32
        bytes; for SHS1 the Scuttlebutt network identifier) as ``identity``,
        speaking ``protocol`` (``"privline1"`` or ``"shs1"``). Raises
        :class:`~privline.InvalidServerKey` when ``server_key`` is not a
        valid identity key."""
        lib = _lib.lib()
        proto = Protocol.of(protocol)
        network = _key(network_key, "network_key", _size("privline_network_key_len"))
        server = _key(server_key, "server_key", _size("privline_public_key_len"))
        if not isinstance(identity, Identity):
            raise TypeError("identity must be a privline.Identity")
        handle = identity._new_handshake(
            lambda me, out: lib.privline_handshake_new_client_with_identity(proto.c_value, network, me, server, out)
        )
        self._setup(handle)
        self._protocol = proto


class ServerHandshake(Handshake):
    """The server (Bob) side: answers clients on a network.

    When a step returns :attr:`Status.AUTHORIZE_PEER`, decide on
    :attr:`peer_key` with :meth:`authorize`; after accepting, step once more
    (with the remaining input, usually ``b""``) to get M4.
    """

    def __init__(
        self,
        network_key: BytesLike,
        identity: Identity,
        protocol: Union[Protocol, str] = Protocol.PRIVLINE1,
    ) -> None:
        """Answer on the network ``network_key`` (32 bytes) as ``identity``,
        speaking ``protocol`` (``"privline1"`` or ``"shs1"``). A server
        makes one :class:`Identity` and passes it to every handshake."""
        lib = _lib.lib()
        proto = Protocol.of(protocol)
        network = _key(network_key, "network_key", _size("privline_network_key_len"))
        if not isinstance(identity, Identity):
            raise TypeError("identity must be a privline.Identity")
        handle = identity._new_handshake(
            lambda me, out: lib.privline_handshake_new_server_with_identity(proto.c_value, network, me, out)
        )
        self._setup(handle)
        self._protocol = proto

    def authorize(self, accept: bool) -> None:
        """The application's decision on :attr:`peer_key` at status
        AUTHORIZE_PEER. Accepting prepares M4 (step again to get it).
        Refusing ends the handshake: this call returns normally, and every
        later step or :meth:`into_channel` raises
        :class:`~privline.ClientRefused`; send nothing, keep the connection
        silent until the handshake deadline, then close it. In any other
        state: :class:`~privline.WrongState`."""
        with self._lock:
            result = self._lib.privline_handshake_authorize(self._live(), bool(accept))
        if result == 27 and not accept:  # CLIENT_REFUSED: what was asked for
            return
        check(result)


class Channel(_Handle):
    """An established channel: seals and opens records.

    Made by :meth:`Handshake.into_channel`. :meth:`free` (or the end of a
    ``with`` block, or garbage collection) releases it; :meth:`close` is the
    protocol's close record, not the release.

    An SHS1 channel (:attr:`protocol` ``"shs1"``) speaks box-stream: a seal
    writes one box (a 34-byte header and a body) per 4096 payload bytes and
    nothing for ``b""``; :meth:`open` returns one box per call, and the
    peer's goodbye as :attr:`RecordType.CLOSE`. It has no key update,
    padding or session id: those raise :class:`~privline.NotSupported` and
    change nothing.
    """

    _kind = "channel"
    _free_name = "privline_channel_free"

    def __init__(self, _handle: Any, _protocol: Optional[Protocol] = None) -> None:
        """Internal: wraps a channel handle (use
        :meth:`Handshake.into_channel`, which also says its protocol)."""
        if not isinstance(_handle, _lib.ChannelHandle) or not _handle:
            raise TypeError("channels are made by Handshake.into_channel()")
        self._setup(_handle)
        if _protocol is None:
            value = ctypes.c_uint32(0)
            check(self._lib.privline_channel_protocol(_handle, ctypes.byref(value)))
            _protocol = Protocol.of(int(value.value))
        self._protocol = _protocol
        # Output buffers, reused from call to call (under the lock) and
        # grown when a call needs more; made on first use, so that a
        # channel costs no zero-filled 64 KiB until it opens something.
        self._open_out: Optional[Any] = None
        self._seal_out: Optional[Any] = None
        self._close_sent = False

    @staticmethod
    def _pad(pad_block: int) -> int:
        pad_block = int(pad_block)
        if pad_block < 0:
            raise ValueError("pad_block must be >= 0")
        # ctypes would wrap a larger value around; SIZE_MAX is refused by
        # the library like any pad_block that is too large.
        return min(pad_block, _SIZE_MAX)

    @property
    def protocol(self) -> Protocol:
        """The protocol this channel speaks."""
        return self._protocol

    def sealed_len(self, payload_len: int, pad_block: int = 0) -> int:
        """The exact bytes :meth:`seal` writes on this channel right now for
        ``payload_len`` bytes with ``pad_block`` (privline/1: including an
        automatic key-update record when one is due; SHS1: 34 bytes per
        4096-byte box, 0 for an empty payload). Padding this channel cannot
        do raises :class:`~privline.NotSupported` (SHS1) or
        :class:`~privline.InvalidArgument` (a ``pad_block`` above 65519)."""
        payload_len = int(payload_len)
        if payload_len < 0:
            raise ValueError("payload_len must be >= 0")
        if payload_len > _SIZE_MAX:
            raise OverflowError("sealed size does not fit in size_t")
        pad_block = self._pad(pad_block)
        with self._lock:
            size = self._lib.privline_channel_sealed_len(self._live(), payload_len, pad_block)
        if size == _SIZE_MAX:
            if pad_block > 1 and self._protocol is Protocol.SHS1:
                raise NotSupported()
            if pad_block > _size("privline_open_max_output_len"):
                raise InvalidArgument()
            raise OverflowError("sealed size does not fit in size_t")
        return int(size)

    def seal(self, data: BytesLike = b"", pad_block: int = 0) -> bytes:
        """Seal ``data`` and return the bytes to send: privline/1, one or
        more data records (one per 65518 bytes, one empty record for
        ``b""``); SHS1, one box per 4096 bytes (``b""`` for ``b""``). A
        ``pad_block`` above 1 pads each privline/1 record's plaintext with
        zeros to a multiple of it (at most 65519) to hide lengths (SHS1:
        :class:`~privline.NotSupported`). After :meth:`close`:
        :class:`~privline.AlreadyClosed`."""
        pad_block = self._pad(pad_block)
        arg, length = _borrow(data)
        try:
            with self._lock:
                handle = self._live()
                if pad_block > 1:
                    capacity = self._lib.privline_channel_sealed_len(handle, length, pad_block)
                    if capacity == _SIZE_MAX:
                        capacity = 0  # the seal call reports why
                elif self._protocol is Protocol.SHS1:
                    capacity = length + -(-length // SHS1_MAX_BODY_LEN) * SHS1_HEADER_LEN
                else:
                    # privline_sealed_len without the ctypes call; the rare
                    # automatic key update is a BUFFER_TOO_SMALL and a retry.
                    capacity = length + max(1, -(-length // _RECORD_MAX_PAYLOAD_LEN)) * _RECORD_OVERHEAD_LEN
                out = self._seal_out
                if out is None or len(out) < capacity:
                    out = self._seal_out = ctypes.create_string_buffer(capacity)
                out_len = ctypes.c_size_t(0)
                while True:
                    out_len.value = len(out)
                    result = self._lib.privline_channel_seal(
                        handle, arg, length, pad_block, out, ctypes.byref(out_len)
                    )
                    if result == _BUFFER_TOO_SMALL and out_len.value > len(out):
                        out = self._seal_out = ctypes.create_string_buffer(out_len.value)
                        continue
                    break
                check(result)
                return ctypes.string_at(out, out_len.value)
        finally:
            del arg

    def _write_call(self, capacity: int, call: Any) -> bytes:
        """Run a sealing ``call(out, out_len)`` with an output buffer of
        ``capacity`` bytes, retrying with the size the library asks for on
        BUFFER_TOO_SMALL. Runs under the lock."""
        out_len = ctypes.c_size_t(0)
        while True:
            out = ctypes.create_string_buffer(capacity)
            out_len.value = capacity
            result = call(out, ctypes.byref(out_len))
            if result == _BUFFER_TOO_SMALL and out_len.value > capacity:
                capacity = out_len.value
                continue
            check(result)
            return ctypes.string_at(out, out_len.value)

    def _control_len(self) -> int:
        """The size of an unpadded close (or key-update) record."""
        if self._protocol is Protocol.SHS1:
            return SHS1_HEADER_LEN
        return int(_size("privline_record_overhead_len"))

    def close(self, pad_block: int = 0) -> bytes:
        """Seal this side's close and return it (send it): privline/1 a
        close record, SHS1 the box-stream goodbye. Afterwards the channel
        seals nothing more but still opens the peer's records until the
        peer's close. This does not free the channel."""
        pad_block = self._pad(pad_block)
        with self._lock:
            handle = self._live()
            record = self._write_call(
                self._control_len(),
                lambda out, out_len: self._lib.privline_channel_close(handle, pad_block, out, out_len),
            )
            self._close_sent = True
            return record

    def update_key(self, pad_block: int = 0) -> bytes:
        """Seal a key-update record (send it) and replace the sending key.
        The library also does this by itself every 2**32 records. SHS1:
        :class:`~privline.NotSupported`, nothing changed."""
        pad_block = self._pad(pad_block)
        with self._lock:
            handle = self._live()
            return self._write_call(
                self._control_len(),
                lambda out, out_len: self._lib.privline_channel_update_key(
                    handle, pad_block, out, out_len
                ),
            )

    def open(self, data: BytesLike) -> Opened:
        """Open the first record in ``data`` (bytes received from the peer).

        One record per call: returns ``(consumed, record_type, payload)``;
        call again with ``data[consumed:]``. :attr:`RecordType.NONE` with
        ``consumed == 0`` means ``data`` does not hold a whole record yet:
        read more. Every damaged, replayed, reordered or malformed record
        raises a fatal :class:`~privline.ChannelError`.
        """
        return self._open_at(data, 0)

    def _open_at(self, data: Any, offset: int) -> Opened:
        """:meth:`open` on ``data[offset:]`` without copying a bytearray."""
        lib = self._lib
        consumed = ctypes.c_size_t(0)
        out_len = ctypes.c_size_t(0)
        record_type = ctypes.c_uint32(0)
        arg, length = _borrow(data, offset)
        try:
            with self._lock:
                handle = self._live()
                out = self._open_out
                if out is None:
                    size = SHS1_MAX_BODY_LEN if self._protocol is Protocol.SHS1 else _size("privline_open_max_output_len")
                    out = self._open_out = ctypes.create_string_buffer(size)
                while True:
                    out_len.value = len(out)
                    result = lib.privline_channel_open(
                        handle, arg, length, ctypes.byref(consumed), out,
                        ctypes.byref(out_len), ctypes.byref(record_type),
                    )
                    if result == _BUFFER_TOO_SMALL and out_len.value > len(out):
                        out = self._open_out = ctypes.create_string_buffer(out_len.value)
                        continue
                    break
                check(result)
                kind = RecordType(record_type.value)
                payload = ctypes.string_at(out, out_len.value) if kind is RecordType.DATA and out_len.value else b""
        finally:
            del arg
        return Opened(consumed.value, kind, payload)

    def open_all(self, data: BytesLike) -> Tuple[int, List[Record]]:
        """Open every whole record in ``data``: returns the bytes consumed
        and the records found (data, key update and close), in order. Stops
        after the peer's close (any bytes after it stay unconsumed) and
        before an incomplete record (keep ``data[consumed:]`` and add what
        arrives next)."""
        if not isinstance(data, (bytes, bytearray)):
            data = bytes(memoryview(data))
        total = 0
        records: List[Record] = []
        while True:
            opened = self._open_at(data, total)
            if opened.record_type is RecordType.NONE:
                break
            total += opened.consumed
            records.append(Record(opened.record_type, opened.payload))
            if opened.record_type is RecordType.CLOSE:
                break
        return total, records

    @property
    def session_id(self) -> bytes:
        """The 32-byte session id: equal on both ends and secret to them;
        use it to bind application-level authentication to this channel.
        SHS1 has none: :class:`~privline.NotSupported`."""
        out = ctypes.create_string_buffer(_size("privline_session_id_len"))
        with self._lock:
            check(self._lib.privline_channel_session_id(self._live(), out))
        return out.raw

    def export_shs1_keys(self) -> bytes:
        """SHS1 only: the current box-stream keys and nonces, 112 bytes:
        encryption key (32), encryption nonce (24), decryption key (32),
        decryption nonce (24), as interoperability tests such as shs1-test
        compare them. Whoever holds them reads and forges the channel: never
        log or send them. privline/1: :class:`~privline.NotSupported`."""
        out = ctypes.create_string_buffer(SHS1_KEYS_LEN)
        try:
            with self._lock:
                check(self._lib.privline_channel_export_shs1_keys(self._live(), out))
            return out.raw
        finally:
            ctypes.memset(out, 0, len(out))

    @property
    def peer_key(self) -> bytes:
        """The peer's public key, as proven in the handshake."""
        out = ctypes.create_string_buffer(_size("privline_public_key_len"))
        with self._lock:
            check(self._lib.privline_channel_peer_key(self._live(), out))
        return out.raw

    @property
    def peer_closed(self) -> bool:
        """Whether the peer's close record has arrived. When the connection
        ends and this is False, the stream was truncated."""
        closed = ctypes.c_bool(False)
        with self._lock:
            check(self._lib.privline_channel_peer_closed(self._live(), ctypes.byref(closed)))
        return bool(closed.value)

    @property
    def close_sent(self) -> bool:
        """Whether this side has sealed its close record (:meth:`close`)."""
        return self._close_sent

    def __repr__(self) -> str:
        return f"<Channel {self._protocol.value} {'freed' if self.freed else 'open'}>"
