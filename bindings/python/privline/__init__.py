"""privline: the privline/1 secure channel, from Python.

A ctypes binding of ``libprivline`` (the Rust library's C ABI). A client
dials a server whose public key it knows; after a four-message handshake
both hold forward-secret keys, each has proven its identity, and they
exchange encrypted records.

Two protocols (:class:`Protocol`, the ``protocol`` argument of every
handshake): privline/1 (``"privline1"``, the default) and Scuttlebutt
secret-handshake v1 with box-stream (``"shs1"``), to talk with Scuttlebutt
peers.

Layers:

- sans-IO core: :class:`Identity`, :class:`ClientHandshake`,
  :class:`ServerHandshake`, :class:`Channel`;
- blocking sockets: :func:`connect`, :func:`accept`, :class:`SecureSocket`,
  :class:`Server`, :func:`serve`;
- asyncio streams: :mod:`privline.aio`;
- the example peers: ``python -m privline keygen|server|client``.

Errors are :class:`Error` subclasses, one per C result value (see
:mod:`privline.errors`). The library is found through ``PRIVLINE_LIBRARY``,
then the package's own copy (on x86-64 Linux its build for the CPU's
x86-64-v3 or v4 level when it can run it), then the checkout's
``target/release``, then the system loader; the
constants below (``RECORD_MAX_PAYLOAD_LEN``...) are read from it on first
use.
"""

from __future__ import annotations

from typing import Any

from ._lib import LibraryNotFound, library_path
from .core import (
    SHS1_HEADER_LEN,
    SHS1_KEYS_LEN,
    SHS1_MAX_BODY_LEN,
    BytesLike,
    Channel,
    ClientHandshake,
    Handshake,
    Identity,
    Opened,
    Protocol,
    Record,
    RecordType,
    ServerHandshake,
    Status,
    StepResult,
    sealed_len,
    version,
)
from .errors import (
    ERRORS_BY_RESULT,
    AlreadyClosed,
    BufferTooSmall,
    Busy,
    ChannelError,
    ClientRefused,
    ControlRecordWithPayload,
    CounterExhausted,
    Error,
    HandshakeError,
    InternalError,
    InvalidArgument,
    InvalidServerKey,
    LowOrderPoint,
    M1BadMac,
    M2BadMac,
    M3BadClientSignature,
    M3DoesNotOpen,
    M3InvalidClientKey,
    M4BadServerSignature,
    M4DoesNotOpen,
    NotSupported,
    NullArgument,
    RecordAfterClose,
    RecordAllZeros,
    RecordDoesNotOpen,
    RecordTooLong,
    RecordTooShort,
    RngFailure,
    Timeout,
    Truncated,
    UnknownRecordType,
    WrongState,
    error_class,
    error_from_result,
)
from .sockets import SecureSocket, Server, accept, connect, serve, wrap_client
from . import aio  # noqa: E402  (privline.aio)
from . import errors as _errors

__version__ = "0.1.0"

# Sizes from the library (ctypes cannot read the header's #defines): the
# attribute name and the function that returns it.
_CONSTANTS = {
    "NETWORK_KEY_LEN": "privline_network_key_len",
    "SEED_LEN": "privline_seed_len",
    "PUBLIC_KEY_LEN": "privline_public_key_len",
    "SESSION_ID_LEN": "privline_session_id_len",
    "HANDSHAKE_MAX_MESSAGE_LEN": "privline_handshake_max_message_len",
    "HANDSHAKE_TOTAL_LEN": "privline_handshake_total_len",
    "RECORD_OVERHEAD_LEN": "privline_record_overhead_len",
    "RECORD_MAX_PAYLOAD_LEN": "privline_record_max_payload_len",
    "RECORD_MAX_LEN": "privline_record_max_len",
    "OPEN_MAX_OUTPUT_LEN": "privline_open_max_output_len",
    # The libsodium / Scuttlebutt form of a secret: the seed, then the
    # public key (no function of its own).
    "IDENTITY_KEYPAIR_LEN": ("privline_seed_len", "privline_public_key_len"),
}


def __getattr__(name: str) -> Any:
    """The size constants, read from the library on first use."""
    functions = _CONSTANTS.get(name)
    if functions is None:
        raise AttributeError(f"module 'privline' has no attribute {name!r}")
    from ._lib import lib

    if isinstance(functions, str):
        functions = (functions,)
    value = sum(int(getattr(lib(), function)()) for function in functions)
    globals()[name] = value
    return value


def __dir__() -> list:
    return sorted(list(globals()) + list(_CONSTANTS))


__all__ = [
    "__version__",
    "aio",
    "library_path",
    "version",
    "sealed_len",
    "LibraryNotFound",
    "BytesLike",
    "Identity",
    "Handshake",
    "ClientHandshake",
    "ServerHandshake",
    "Channel",
    "Protocol",
    "Status",
    "RecordType",
    "StepResult",
    "Opened",
    "Record",
    "SecureSocket",
    "Server",
    "connect",
    "wrap_client",
    "accept",
    "serve",
    # Every error class and helper, as privline.errors lists them.
    *(name for name in _errors.__all__ if name != "result_message"),
    *_CONSTANTS,
    "SHS1_MAX_BODY_LEN",
    "SHS1_HEADER_LEN",
    "SHS1_KEYS_LEN",
]
