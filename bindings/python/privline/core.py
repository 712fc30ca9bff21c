"""The sans-IO core: identities, handshakes and channels over ``libprivline``.

Two protocols (:class:`Protocol`): privline/1 (``"privline1"``, the default)
and Scuttlebutt secret-handshake v1 with box-stream (``"shs1"``). Every
handshake takes a ``protocol`` argument; the channel it becomes speaks the
same protocol.

Nothing here touches a socket: :meth:`Handshake.step` and the
:class:`Channel` methods take the bytes that arrived from the peer and
return the bytes to send. :mod:`privline.sockets` and :mod:`privline.aio`
move them over real connections.

Every object that owns a library handle releases it (and the library wipes
the secrets inside) when :meth:`~Channel.close` is called, when a ``with``
block ends, or when the object is garbage-collected; afterwards every call
that needs the handle raises ``ValueError`` (like a closed file). Sending
privline's close record is :meth:`Channel.seal_close`, not ``close``.

One object may be used from several threads: a channel takes one sealing
and one opening thread at the same time (as the C library does); other
calls on one handle are serialised by locks.
"""

from __future__ import annotations

import ctypes
import enum
import functools
import threading
from typing import Any, List, NamedTuple, Optional, Tuple, Union

from . import _lib
from .errors import BufferTooSmall, InvalidArgument, NotSupported, check, error_from_result

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
    "validate_network_key",
    "validate_pad_block",
    "BytesLike",
]

#: What the binding accepts where it reads bytes: ``bytes``, ``bytearray``,
#: ``memoryview`` or any other object with the buffer protocol (read in
#: place, without a copy, when it is ``bytes`` or a writable contiguous
#: buffer such as ``bytearray``; other buffers are copied once).
BytesLike = Union[bytes, bytearray, memoryview]

_BUFFER_TOO_SMALL = 1
_CLIENT_REFUSED = 27
_SIZE_MAX = ctypes.c_size_t(-1).value

# include/privline.h defines these three without functions that return them
# (tests/python/test_header.py checks them against the header). Every other
# size comes from the library's privline_*_len functions.
#: SHS1: most payload bytes in one box-stream body.
SHS1_MAX_BODY_LEN = 4096
#: SHS1: bytes of an encrypted box-stream header (one per body, and the goodbye).
SHS1_HEADER_LEN = 34
#: SHS1: bytes :meth:`Channel.export_shs1_keys` returns.
SHS1_KEYS_LEN = 112


def __getattr__(name: str) -> Any:
    """``IDENTITY_KEYPAIR_LEN``: the seed, then the public key, with both
    sizes from the library (read on first use, so that importing never
    loads the library)."""
    if name == "IDENTITY_KEYPAIR_LEN":
        return _size("privline_seed_len") + _size("privline_public_key_len")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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


# Enum members by C value, without the cost of calling the enum class.
_STATUS = {member.value: member for member in Status}
_RECORD_TYPE = {member.value: member for member in RecordType}
_NONE, _DATA, _CLOSE = RecordType.NONE, RecordType.DATA, RecordType.CLOSE
# tuple.__new__(NamedTupleClass, (fields...)) makes the named tuple without
# the Python-level __new__ that calling the class runs.
_tuple_new = tuple.__new__


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
    process: the sizes are constants."""
    return int(getattr(_lib.lib(), name)())


def _bytes_of(value: Any, what: str) -> bytes:
    if isinstance(value, str):
        raise TypeError(f"{what} must be bytes, not str (use bytes.fromhex() for hex)")
    try:
        return bytes(memoryview(value))
    except TypeError:
        raise TypeError(f"{what} must be a bytes-like object, not {type(value).__name__}") from None


def _key(value: Any, what: str, length: int) -> bytes:
    """``value`` as ``bytes`` of exactly ``length`` bytes."""
    data = _bytes_of(value, what)
    if len(data) != length:
        raise ValueError(f"{what} must be {length} bytes, not {len(data)}")
    return data


def _secret(value: Any) -> bytes:
    """An identity secret: ``bytes`` of a seed or of the seed and the public
    key (32 or 64 bytes)."""
    data = _bytes_of(value, "secret")
    seed = _size("privline_seed_len")
    keypair = seed + _size("privline_public_key_len")
    if len(data) not in (seed, keypair):
        raise ValueError(
            f"secret must be {seed} bytes (a seed) or {keypair} bytes (seed and public key), not {len(data)}"
        )
    return data


def _input(data: Any) -> Tuple[Any, int, Any]:
    """``data`` as ``(argument, length, keep)`` for a ``const uint8_t *``
    parameter, without copying ``bytes`` or a writable contiguous buffer
    (``bytearray``, its memoryviews, ``array``, ``mmap``): ``argument`` is
    the ``bytes`` object itself, ``None`` when empty, or a ready ctypes
    pointer (``byref``) to ``keep``, a ``c_char`` over the buffer's first
    byte (``ctypes.addressof(keep)`` is the address), valid while
    referenced; ``keep`` also holds a buffer export, so the caller must drop
    both before resizing a ``bytearray``. Read-only buffers other than
    ``bytes`` are copied (``argument`` is then that copy)."""
    cls = data.__class__
    if cls is bytes:
        return data, len(data), None
    if cls is bytearray:
        # The common writable buffer, without a memoryview.
        length = len(data)
        if not length:
            return None, 0, None
        keep = ctypes.c_char.from_buffer(data)
        return ctypes.byref(keep), length, keep
    if isinstance(data, str):
        raise TypeError("data must be a bytes-like object, not str")
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"data must be a bytes-like object, not {type(data).__name__}") from None
    length = view.nbytes
    if not length:
        return None, 0, None
    if view.readonly or not view.c_contiguous:
        copy = view.tobytes()
        return copy, length, None
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    keep = ctypes.c_char.from_buffer(view)
    return ctypes.byref(keep), length, keep


def _address(arg: Any, keep: Any) -> int:
    """The address of the bytes an :func:`_input` result points to."""
    if keep is not None:
        return ctypes.addressof(keep)
    return ctypes.cast(ctypes.c_char_p(arg), ctypes.c_void_p).value or 0


def _output(out: Any) -> Tuple[Any, int, Any]:
    """A writable contiguous buffer as ``(argument, capacity, keep)``:
    ``argument`` a ready ctypes pointer (``None`` when empty) valid while
    ``keep`` is referenced."""
    if out.__class__ is bytearray:
        capacity = len(out)
        if not capacity:
            return None, 0, None
        keep = ctypes.c_char.from_buffer(out)
        return ctypes.byref(keep), capacity, keep
    try:
        view = memoryview(out)
    except TypeError:
        raise TypeError(f"out must be a writable bytes-like object, not {type(out).__name__}") from None
    if view.readonly or not view.c_contiguous:
        raise TypeError("out must be a writable contiguous buffer (a bytearray, for example)")
    capacity = view.nbytes
    if not capacity:
        return None, 0, None
    if view.ndim != 1 or view.itemsize != 1:
        view = view.cast("B")
    keep = ctypes.c_char.from_buffer(view)
    return ctypes.byref(keep), capacity, keep


#: Seals and opens of at most this many input bytes (and pad_block) call
#: the library through function objects that keep the GIL: a call that
#: takes a few microseconds is cheaper without releasing and taking it back,
#: and other threads wait no longer than for any Python code. Larger ones
#: release it, so that other threads run meanwhile.
_SMALL_CALL = 4096


@functools.lru_cache(maxsize=None)
def _gil_holding_library() -> Any:
    """The loaded library again (the same handle) as a ``ctypes.PyDLL``,
    whose functions keep the GIL during the call."""
    return ctypes.PyDLL(_lib.library_path(), handle=_lib.lib()._handle)


def _raw_function(lib: Any, name: str, keep_gil: bool = False) -> Any:
    """A second function object for ``name`` with no argtypes (its callers
    pass ctypes objects only) and the ``privline_result`` return type;
    ``keep_gil``: one that does not release the GIL during the call."""
    function = (_gil_holding_library() if keep_gil else lib)[name]
    function.restype = ctypes.c_uint32
    return function


class _Buffer:
    """A reusable output buffer of ``size`` bytes: a ``bytearray``, a ctypes
    array over it (the argument for ``uint8_t *``; slicing it makes
    ``bytes`` in one copy), the array's address as a ready argument
    (``ref``: ctypes converts nothing when it is passed) and a memoryview."""

    __slots__ = ("data", "arg", "ref", "view", "size")

    def __init__(self, size: int) -> None:
        self.size = size = max(1, size)
        self.data = bytearray(size)
        self.arg = (ctypes.c_char * size).from_buffer(self.data)
        self.ref = ctypes.byref(self.arg)
        self.view = memoryview(self.data)


def validate_pad_block(protocol: Union["Protocol", str], pad_block: int) -> int:
    """``pad_block`` checked for a connection speaking ``protocol``, before
    connecting rather than at the first send: ``ValueError`` when negative,
    :class:`~privline.NotSupported` when above 1 for SHS1 (which has no
    padding). Returns it as an ``int``."""
    pad_block = int(pad_block)
    if pad_block < 0:
        raise ValueError("pad_block must be >= 0")
    if pad_block > 1 and Protocol.of(protocol) is Protocol.SHS1:
        raise NotSupported("SHS1 has no padding (pad_block must be 0)")
    return pad_block


def validate_network_key(network_key: BytesLike) -> bytes:
    """``network_key`` as ``bytes``; ``TypeError`` when it is not
    bytes-like, ``ValueError`` when it is not the library's network key
    size (32 bytes)."""
    return _key(network_key, "network_key", _size("privline_network_key_len"))


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
    """Shared life-cycle of the objects that own a library handle:
    :meth:`close` (also ``free``, the ``with`` block's end and garbage
    collection) releases it."""

    _kind = "handle"
    _free_name = ""

    def _setup(self, handle: Any) -> None:
        self._lib = _lib.lib()
        self._lock = threading.Lock()
        #: Every lock a call on the handle may hold, in the order to take
        #: them; releasing takes them all.
        self._locks: Tuple[Any, ...] = (self._lock,)
        self._h = handle
        self._consumed = False
        # Bound now, so that __del__ needs no module globals at interpreter
        # shutdown.
        self._c_free = getattr(self._lib, self._free_name)

    def _closed_error(self) -> ValueError:
        if getattr(self, "_consumed", False):
            return ValueError(f"this {self._kind} was consumed by into_channel()")
        return ValueError(f"I/O operation on a closed {self._kind}")

    def _live(self) -> Any:
        handle = getattr(self, "_h", None)
        if not handle:
            raise self._closed_error()
        return handle

    def _free(self) -> None:
        """Release the library handle now (idempotent)."""
        handle = getattr(self, "_h", None)
        if handle:
            locks = self._locks
            for lock in locks:
                lock.acquire()
            try:
                handle = self._h
                if handle:
                    self._h = type(handle)()  # NULL
                    self._c_free(handle)
            finally:
                for lock in reversed(locks):
                    lock.release()

    def close(self) -> None:
        """Release the library handle now; the library wipes the secrets in
        it. Idempotent. Every later call that needs the handle raises
        ``ValueError``."""
        self._free()

    #: Same as :meth:`close` (the C name).
    free = close

    @property
    def closed(self) -> bool:
        """True once the handle is released by :meth:`close` (or, for a
        handshake, consumed by :meth:`Handshake.into_channel`)."""
        return not getattr(self, "_h", None)

    #: Same as :attr:`closed`.
    freed = closed

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
    deriving its keys again; handshakes keep working after it is closed.
    :meth:`close` (or the end of a ``with`` block, or garbage collection)
    releases the handle; afterwards it makes no handshakes (``ValueError``)
    but still tells its :attr:`public_key`.
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
        state = " closed" if self.closed else ""
        return f"Identity(public_key={self._public.hex()!r}){state}"


class Handshake(_Handle):
    """A handshake in progress; see :class:`ClientHandshake` and
    :class:`ServerHandshake`.

    Drive it with :meth:`step` until the status is :attr:`Status.DONE`,
    then turn it into a :class:`Channel` with :meth:`into_channel`, which
    consumes it. Any error it raises (other than :class:`~privline.WrongState`)
    is fatal and sticks: every later call raises it again; send nothing more,
    close the connection and :meth:`close` it.
    """

    _kind = "handshake"
    _free_name = "privline_handshake_free"

    def __init__(self) -> None:
        raise TypeError("use ClientHandshake or ServerHandshake")

    def _setup(self, handle: Any) -> None:
        super()._setup(handle)
        self._out = _Buffer(_size("privline_handshake_max_message_len"))
        self._status: Optional[Status] = None
        # Out-parameters and the function, prepared once per handshake.
        self._consumed_c = ctypes.c_size_t(0)
        self._out_len = ctypes.c_size_t(0)
        self._status_c = ctypes.c_uint32(0)
        self._step_args = (
            ctypes.byref(self._consumed_c), ctypes.byref(self._out_len), ctypes.byref(self._status_c)
        )
        self._c_step = self._lib.privline_handshake_step

    def step(self, data: BytesLike = b"") -> StepResult:
        """Advance with ``data``, the bytes received from the peer that the
        handshake has not consumed yet (any fragmentation; ``b""`` when none
        arrived). Returns how many bytes were consumed, at most one message
        to send and the new status. With status NEED_INPUT, no output and
        nothing consumed, read more from the peer before stepping again.
        """
        arg, length, keep = _input(data)
        consumed_p, out_len_p, status_p = self._step_args
        out_len = self._out_len
        with self._lock:
            handle = self._h
            if not handle:
                raise self._closed_error()
            out = self._out
            while True:
                out_len.value = out.size
                result = self._c_step(handle, arg, length, consumed_p, out.arg, out_len_p, status_p)
                if result == _BUFFER_TOO_SMALL and out_len.value > out.size:
                    out = self._out = _Buffer(out_len.value)
                    continue
                break
            del arg, keep
            if result:
                raise error_from_result(result)
            n = out_len.value
            output = bytes(out.view[:n]) if n else b""
            self._status = status = _STATUS[self._status_c.value]
            return StepResult(self._consumed_c.value, output, status)

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
            self._consumed = True
        return Channel(channel, self._protocol)

    def __repr__(self) -> str:
        if self.closed:
            state = "consumed" if self._consumed else "closed"
        else:
            state = self._status.name if self._status else "new"
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
        if result == _CLIENT_REFUSED and not accept:  # what was asked for
            return
        check(result)


class Channel(_Handle):
    """An established channel: seals and opens records.

    Made by :meth:`Handshake.into_channel`. :meth:`close` (or the end of a
    ``with`` block, or garbage collection) releases it; :meth:`seal_close`
    seals the protocol's close record, which tells the peer that this side
    has sent everything.

    An SHS1 channel (:attr:`protocol` ``"shs1"``) speaks box-stream: a seal
    writes one box (a 34-byte header and a body) per 4096 payload bytes and
    nothing for ``b""``; :meth:`open` returns one box per call, and the
    peer's goodbye as :attr:`RecordType.CLOSE`. It has no key update,
    padding or session id: those raise :class:`~privline.NotSupported` and
    change nothing.

    Threads: one thread may seal (:meth:`seal`, :meth:`seal_into`,
    :meth:`seal_close`, :meth:`update_key`) while another opens; two
    sealers (or two openers) take turns. Seals and opens of at most 4 KiB
    keep the GIL during their library call (a few microseconds); larger
    ones release it.
    """

    _kind = "channel"
    _free_name = "privline_channel_free"

    def __init__(self, _handle: Any, _protocol: Optional[Protocol] = None) -> None:
        """Internal: wraps a channel handle (use
        :meth:`Handshake.into_channel`, which also says its protocol)."""
        if not isinstance(_handle, _lib.ChannelHandle) or not _handle:
            raise TypeError("channels are made by Handshake.into_channel()")
        self._setup(_handle)
        # The sealing side holds self._lock, the opening side this one; a
        # call that is neither (and close) holds both.
        self._open_lock = threading.Lock()
        self._locks = (self._lock, self._open_lock)
        lib = self._lib
        if _protocol is None:
            value = ctypes.c_uint32(0)
            check(lib.privline_channel_protocol(_handle, ctypes.byref(value)))
            _protocol = Protocol.of(int(value.value))
        self._protocol = _protocol
        self._close_sent = False
        self._peer_key: Optional[bytes] = None
        # Sizes for the output buffers, asked of the library once per
        # process: a seal's capacity is computed without a call (a rare
        # automatic key update is a BUFFER_TOO_SMALL and a retry).
        if _protocol is Protocol.SHS1:
            self._chunk, self._per_chunk = SHS1_MAX_BODY_LEN, SHS1_HEADER_LEN
            self._min_chunks = 0
            self._control_len = SHS1_HEADER_LEN
            open_size = SHS1_MAX_BODY_LEN
        else:
            self._chunk = _size("privline_record_max_payload_len")
            self._per_chunk = self._control_len = _size("privline_record_overhead_len")
            self._min_chunks = 1
            open_size = _size("privline_open_max_output_len")
        self._open_size = open_size
        # Output buffers, reused from call to call (each under its side's
        # lock) and replaced by a bigger one when a call needs more; made on
        # first use, so that a channel costs no 64 KiB until it opens.
        self._seal_out: Optional[_Buffer] = None
        self._open_out: Optional[_Buffer] = None
        # The buffer of small seals without padding (at most _SMALL_CALL
        # bytes): room for their record or box, and for the key-update
        # record the library adds every 2**32 records (more would be a
        # BUFFER_TOO_SMALL and a retry).
        self._seal_small_out: Optional[_Buffer] = None
        self._small_seal_overhead = 2 * self._control_len
        # Out-parameters and functions, prepared once per channel.
        self._seal_len = ctypes.c_size_t(0)
        self._seal_len_p = ctypes.byref(self._seal_len)
        self._open_len = ctypes.c_size_t(0)
        self._open_in_len = ctypes.c_size_t(0)
        self._consumed_c = ctypes.c_size_t(0)
        self._type_c = ctypes.c_uint32(0)
        self._open_args = (
            ctypes.byref(self._consumed_c), ctypes.byref(self._open_len), ctypes.byref(self._type_c)
        )
        # The hot calls go through their own function objects without
        # argtypes, given only ready ctypes objects (the handle as a
        # c_void_p, sizes as c_size_t, pointers as byref or arrays): ctypes
        # then converts nothing, which is most of a small call's cost.
        # The handle and a zero pad_block as ready ctypes arguments
        # (from_param's results, which a call takes as they are, where a
        # c_void_p or c_size_t object is converted again at every call).
        self._hv = ctypes.c_void_p.from_param(ctypes.cast(_handle, ctypes.c_void_p).value)
        self._no_pad = ctypes.c_size_t.from_param(0)
        self._in_len = ctypes.c_size_t(0)
        self._pad_c = ctypes.c_size_t(0)
        self._c_seal = _raw_function(lib, "privline_channel_seal")
        self._c_open = _raw_function(lib, "privline_channel_open")
        # The same for calls on at most _SMALL_CALL bytes.
        self._c_seal_small = _raw_function(lib, "privline_channel_seal", keep_gil=True)
        self._c_open_small = _raw_function(lib, "privline_channel_open", keep_gil=True)

    @staticmethod
    def _pad(pad_block: int) -> int:
        if pad_block.__class__ is not int:
            pad_block = int(pad_block)
        if pad_block < 0:
            raise ValueError("pad_block must be >= 0")
        # ctypes would wrap a larger value around; SIZE_MAX is refused by
        # the library like any pad_block that is too large.
        return pad_block if pad_block <= _SIZE_MAX else _SIZE_MAX

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
        with self._lock, self._open_lock:
            size = self._lib.privline_channel_sealed_len(self._live(), payload_len, pad_block)
        if size == _SIZE_MAX:
            if pad_block > 1 and self._protocol is Protocol.SHS1:
                raise NotSupported()
            if pad_block > _size("privline_open_max_output_len"):
                raise InvalidArgument()
            raise OverflowError("sealed size does not fit in size_t")
        return int(size)

    def _capacity(self, handle: Any, length: int, pad_block: int) -> int:
        """Output bytes a seal of ``length`` bytes needs (without a rare
        automatic key update)."""
        if pad_block > 1:
            capacity = self._lib.privline_channel_sealed_len(handle, length, pad_block)
            return 0 if capacity == _SIZE_MAX else capacity  # the seal reports why
        chunks = -(-length // self._chunk)
        if chunks < self._min_chunks:
            chunks = self._min_chunks
        return length + chunks * self._per_chunk

    def seal(self, data: BytesLike = b"", pad_block: int = 0) -> bytes:
        """Seal ``data`` and return the bytes to send: privline/1, one or
        more data records (one per 65518 bytes, one empty record for
        ``b""``); SHS1, one box per 4096 bytes (``b""`` for ``b""``). A
        ``pad_block`` above 1 pads each privline/1 record's plaintext with
        zeros to a multiple of it (at most 65519) to hide lengths (SHS1:
        :class:`~privline.NotSupported`). After :meth:`seal_close`:
        :class:`~privline.AlreadyClosed`.

        ``data`` is read in place when it is ``bytes`` or a writable buffer
        (``bytearray``, ``memoryview`` of one); the records are written into
        a buffer the channel keeps and returned as one ``bytes``."""
        if pad_block:
            pad_block = self._pad(pad_block)
        if data.__class__ is bytes:
            arg = data
            length = len(data)
        else:
            arg, length, keep = _input(data)
        # lock.acquire and try/finally instead of ``with``: half the cost.
        lock = self._lock
        lock.acquire()
        try:
            if not self._h:
                raise self._closed_error()
            if not pad_block and length <= _SMALL_CALL:
                # A small write without padding: its own buffer, made once
                # with room for any such seal, and the GIL kept.
                small = True
                out = self._seal_small_out
                if out is None:
                    out = self._seal_small_out = _Buffer(_SMALL_CALL + self._small_seal_overhead)
                c_seal = self._c_seal_small
                pad = self._no_pad
            else:
                small = False
                if pad_block > 1:
                    capacity = self._capacity(self._h, length, pad_block)
                else:
                    chunks = -(-length // self._chunk)
                    if chunks < self._min_chunks:
                        chunks = self._min_chunks
                    capacity = length + chunks * self._per_chunk
                out = self._seal_out
                if out is None or out.size < capacity:
                    out = self._seal_out = _Buffer(capacity)
                if length <= _SMALL_CALL and pad_block <= _SMALL_CALL:
                    c_seal = self._c_seal_small
                else:
                    c_seal = self._c_seal
                pad = self._pad_c
                pad.value = pad_block
            self._in_len.value = length
            out_len = self._seal_len
            out_len.value = out.size
            result = c_seal(self._hv, arg, self._in_len, pad, out.ref, self._seal_len_p)
            if result:
                # BUFFER_TOO_SMALL changes nothing: retry with the size asked for.
                while result == _BUFFER_TOO_SMALL and out_len.value > out.size:
                    out = _Buffer(out_len.value)
                    if small:
                        self._seal_small_out = out
                    else:
                        self._seal_out = out
                    out_len.value = out.size
                    result = c_seal(self._hv, arg, self._in_len, pad, out.ref, self._seal_len_p)
                if result:
                    raise error_from_result(result)
            # Slicing the ctypes array makes the bytes in one copy.
            return out.arg[: out_len.value]
        finally:
            lock.release()

    def seal_into(self, data: BytesLike, out: Any, pad_block: int = 0) -> int:
        """Seal ``data`` as :meth:`seal` does, writing the records into
        ``out`` (a writable buffer such as a ``bytearray``, which must not
        overlap ``data``), and return the bytes written: no copy of the
        records. When ``out`` is too small nothing changes and
        :class:`~privline.BufferTooSmall` is raised, its ``needed``
        attribute holding the size needed (:meth:`sealed_len` tells it
        beforehand)."""
        pad_block = self._pad(pad_block)
        arg, length, keep = _input(data)
        out_arg, capacity, out_keep = _output(out)
        out_len = self._seal_len
        with self._lock:
            handle = self._h
            if not handle:
                raise self._closed_error()
            out_len.value = capacity
            self._in_len.value = length
            self._pad_c.value = pad_block
            c_seal = self._c_seal_small if length <= _SMALL_CALL and pad_block <= _SMALL_CALL else self._c_seal
            result = c_seal(
                self._hv, arg, self._in_len, self._pad_c, out_arg, self._seal_len_p,
            )
            written = out_len.value
        # The buffer exports end here, before an error is raised.
        del arg, keep, out_arg, out_keep
        if result:
            error = error_from_result(result)
            if result == _BUFFER_TOO_SMALL:
                error.needed = written  # type: ignore[attr-defined]
            raise error
        return written

    def _control(self, function: Any, pad_block: int) -> bytes:
        """A close or key-update record (``function(handle, pad_block, out,
        out_len)``), under the sealing lock."""
        handle = self._h
        if not handle:
            raise self._closed_error()
        capacity = self._control_len
        out_len = ctypes.c_size_t(0)
        while True:
            out = ctypes.create_string_buffer(capacity)
            out_len.value = capacity
            result = function(handle, pad_block, out, ctypes.byref(out_len))
            if result == _BUFFER_TOO_SMALL and out_len.value > capacity:
                capacity = out_len.value
                continue
            check(result)
            return out.raw[: out_len.value]

    def seal_close(self, pad_block: int = 0) -> bytes:
        """Seal this side's close and return it (send it): privline/1 a
        close record, SHS1 the box-stream goodbye. It tells the peer that
        this side has sent everything (a peer that sees the connection end
        without it reports a truncation). Afterwards the channel seals
        nothing more (:class:`~privline.AlreadyClosed`) but still opens the
        peer's records until the peer's close. This does not release the
        channel: :meth:`close` does."""
        pad_block = self._pad(pad_block)
        with self._lock:
            record = self._control(self._lib.privline_channel_close, pad_block)
            self._close_sent = True
            return record

    def update_key(self, pad_block: int = 0) -> bytes:
        """Seal a key-update record (send it) and replace the sending key.
        The library also does this by itself every 2**32 records. SHS1:
        :class:`~privline.NotSupported`, nothing changed."""
        pad_block = self._pad(pad_block)
        with self._lock:
            return self._control(self._lib.privline_channel_update_key, pad_block)

    def _open(self, arg: Any, length: int, result: Optional[int] = None) -> Tuple[int, RecordType, bytes]:
        """One ``privline_channel_open`` call (``arg`` is ``bytes``, a ctypes
        object or ``None``), under the opening lock; or, given the
        ``result`` of a call just made on at most _SMALL_CALL bytes, what
        follows it: a retry with a bigger buffer when the library asks for
        one, the error, or the record."""
        out_len = self._open_len
        consumed_p, out_len_p, type_p = self._open_args
        large = length > _SMALL_CALL
        c_open = self._c_open if large else self._c_open_small
        if result is None:
            if not self._h:
                raise self._closed_error()
            out = self._open_out
            if out is None:
                out = self._open_out = _Buffer(self._open_size)
            self._open_in_len.value = length
            out_len.value = out.size
            result = c_open(self._hv, arg, self._open_in_len, consumed_p, out.ref, out_len_p, type_p)
        out = self._open_out
        if result:
            # BUFFER_TOO_SMALL changes nothing: retry with the size asked for.
            while result == _BUFFER_TOO_SMALL and out_len.value > out.size:
                out = self._open_out = _Buffer(out_len.value)
                out_len.value = out.size
                result = c_open(self._hv, arg, self._open_in_len, consumed_p, out.ref, out_len_p, type_p)
            if result:
                raise error_from_result(result)
        kind = _RECORD_TYPE[self._type_c.value]
        if kind is not _DATA:
            return self._consumed_c.value, kind, b""
        # Slicing the ctypes array makes the bytes in one copy.
        return self._consumed_c.value, kind, out.arg[: out_len.value]

    def open(self, data: BytesLike) -> Opened:
        """Open the first record in ``data`` (bytes received from the peer).

        One record per call: returns ``(consumed, record_type, payload)``;
        call again with ``data[consumed:]`` (with a ``bytearray``, ``del
        data[:consumed]`` and pass it again: it is read in place). With
        :attr:`RecordType.NONE` and ``consumed == 0``, ``data`` does not
        hold a whole record yet: read more. Every damaged, replayed,
        reordered or malformed record raises a fatal
        :class:`~privline.ChannelError`.
        """
        if data.__class__ is bytes:
            arg = data
            length = len(data)
        else:
            arg, length, keep = _input(data)
        lock = self._open_lock
        lock.acquire()
        try:
            return _tuple_new(Opened, self._open_first(arg, length))
        finally:
            lock.release()

    def _open_first(self, arg: Any, length: int) -> Tuple[int, "RecordType", bytes]:
        """The first record of ``length`` bytes at ``arg`` (an :func:`_input`
        argument), as ``(consumed, kind, payload)``; the caller holds the
        open lock. Small inputs make the call here, with the GIL kept;
        larger ones, and a buffer to grow, go through :meth:`_open`."""
        if length > _SMALL_CALL:
            return self._open(arg, length)
        if not self._h:
            raise self._closed_error()
        out = self._open_out
        if out is None:
            out = self._open_out = _Buffer(self._open_size)
        self._open_in_len.value = length
        out_len = self._open_len
        out_len.value = out.size
        consumed_p, out_len_p, type_p = self._open_args
        result = self._c_open_small(self._hv, arg, self._open_in_len, consumed_p, out.ref, out_len_p, type_p)
        if result:
            return self._open(arg, length, result)  # grow the buffer, or raise
        kind = _RECORD_TYPE[self._type_c.value]
        return self._consumed_c.value, kind, out.arg[: out_len.value] if kind is _DATA else b""

    def open_all(self, data: BytesLike) -> Tuple[int, List[Record]]:
        """Open every whole record in ``data``: returns the bytes consumed
        and the records found (data, key update and close), in order. Stops
        after the peer's close (any bytes after it stay unconsumed) and
        before an incomplete record (keep ``data[consumed:]`` and add what
        arrives next)."""
        if data.__class__ is bytes:
            arg = data
            length = len(data)
            keep = None
        else:
            arg, length, keep = _input(data)
        lock = self._open_lock
        lock.acquire()
        try:
            total, kind, payload = self._open_first(arg, length)
            if kind is _NONE:
                return 0, []
            records = [_tuple_new(Record, (kind, payload))]
            if kind is _CLOSE or total == length:
                return total, records
            # More records: the address of the input, and of each next one.
            base = _address(arg, keep)
            while True:
                consumed, kind, payload = self._open(ctypes.c_void_p(base + total), length - total)
                if kind is _NONE:
                    break
                total += consumed
                records.append(_tuple_new(Record, (kind, payload)))
                if kind is _CLOSE or total == length:
                    break
            return total, records
        finally:
            lock.release()

    @property
    def session_id(self) -> bytes:
        """The 32-byte session id: equal on both ends and secret to them;
        use it to bind application-level authentication to this channel.
        SHS1 has none: :class:`~privline.NotSupported`."""
        out = ctypes.create_string_buffer(_size("privline_session_id_len"))
        with self._lock, self._open_lock:
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
            with self._lock, self._open_lock:
                check(self._lib.privline_channel_export_shs1_keys(self._live(), out))
            return out.raw
        finally:
            ctypes.memset(out, 0, len(out))

    @property
    def peer_key(self) -> bytes:
        """The peer's public key, as proven in the handshake."""
        self._live()
        key = self._peer_key
        if key is None:
            out = ctypes.create_string_buffer(_size("privline_public_key_len"))
            with self._lock, self._open_lock:
                check(self._lib.privline_channel_peer_key(self._live(), out))
            key = self._peer_key = out.raw
        return key

    @property
    def peer_closed(self) -> bool:
        """Whether the peer's close record has arrived. When the connection
        ends and this is False, the stream was truncated."""
        closed = ctypes.c_bool(False)
        with self._lock, self._open_lock:
            check(self._lib.privline_channel_peer_closed(self._live(), ctypes.byref(closed)))
        return bool(closed.value)

    @property
    def close_sent(self) -> bool:
        """Whether this side has sealed its close record
        (:meth:`seal_close`)."""
        return self._close_sent

    def __repr__(self) -> str:
        return f"<Channel {self._protocol.value} {'closed' if self.closed else 'open'}>"
