"""The exceptions of the binding: one class per ``privline_result`` value.

Every class that stands for a C result has the class attributes ``result``
(the numeric value from ``include/privline.h``) and ``name`` (the C name,
for example ``"PRIVLINE_RESULT_M3_DOES_NOT_OPEN"``); every instance has
``message``, the text of ``privline_result_str``.

Hierarchy::

    Error
     +-- BufferTooSmall, NullArgument, InvalidArgument (also a ValueError),
     |   WrongState, RngFailure, InternalError, NotSupported, Busy
     +-- HandshakeError           results 20..29
     |    +-- InvalidServerKey, M1BadMac, M2BadMac, LowOrderPoint,
     |        M3DoesNotOpen, M3InvalidClientKey, M3BadClientSignature,
     |        ClientRefused, M4DoesNotOpen, M4BadServerSignature
     +-- ChannelError             results 40..48
     |    +-- RecordTooShort, RecordDoesNotOpen, RecordAllZeros,
     |        UnknownRecordType, ControlRecordWithPayload,
     |        RecordAfterClose, CounterExhausted, AlreadyClosed,
     |        RecordTooLong
     +-- Truncated (also an EOFError)     Python side: the stream ended early
     +-- Timeout (also a TimeoutError)    Python side: a deadline passed
"""

from __future__ import annotations

from typing import Dict, Optional, Type

__all__ = [
    "Error",
    "HandshakeError",
    "ChannelError",
    "Truncated",
    "Timeout",
    "BufferTooSmall",
    "NullArgument",
    "InvalidArgument",
    "WrongState",
    "RngFailure",
    "InternalError",
    "NotSupported",
    "Busy",
    "InvalidServerKey",
    "M1BadMac",
    "M2BadMac",
    "LowOrderPoint",
    "M3DoesNotOpen",
    "M3InvalidClientKey",
    "M3BadClientSignature",
    "ClientRefused",
    "M4DoesNotOpen",
    "M4BadServerSignature",
    "RecordTooShort",
    "RecordDoesNotOpen",
    "RecordAllZeros",
    "UnknownRecordType",
    "ControlRecordWithPayload",
    "RecordAfterClose",
    "CounterExhausted",
    "AlreadyClosed",
    "RecordTooLong",
    "ERRORS_BY_RESULT",
    "error_class",
    "error_from_result",
    "result_message",
]


def result_message(result: int) -> str:
    """The library's description of ``result`` (``privline_result_str``)."""
    from ._lib import lib

    text = lib().privline_result_str(result)
    return text.decode("utf-8", "replace") if text else "unknown result"


class Error(Exception):
    """A privline failure.

    Attributes:
        result: the ``privline_result`` value (``None`` for the Python-side
            errors :class:`Truncated` and :class:`Timeout`).
        name: the C name of the result, e.g.
            ``"PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN"``.
        message: the description (``privline_result_str`` for C results).
        fatal: whether the handshake or channel that raised it is dead.
    """

    result: Optional[int] = None
    name: str = "PRIVLINE_ERROR"
    fatal: bool = True

    def __init__(self, message: Optional[str] = None, *, result: Optional[int] = None) -> None:
        if result is not None:
            self.result = result
            if type(self) is Error:
                self.name = f"PRIVLINE_RESULT_{result}"
        if message is None:
            message = result_message(self.result) if self.result is not None else self.name
        self.message: str = message
        super().__init__(message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class HandshakeError(Error):
    """A fatal handshake failure (results 20 to 29): send nothing more and
    close the connection."""


class ChannelError(Error):
    """A failure of the record layer (results 40 to 48)."""


class Truncated(Error, EOFError):
    """The connection ended before the peer's close record (or in the middle
    of the handshake): what arrived is incomplete. Not a C result."""

    name = "TRUNCATED"

    def __init__(
        self, message: str = "connection ended without the peer's close record", received: Optional[int] = None
    ) -> None:
        super().__init__(message)
        #: When the peer hung up during the handshake: how many handshake
        #: bytes had arrived from it (0: it never answered; after M2, for a
        #: client: wrong server key or refused). ``None`` after the handshake.
        self.received: Optional[int] = received


class Timeout(Error, TimeoutError):
    """A handshake (or the wait for the peer) did not finish in time. Not a
    C result."""

    name = "TIMEOUT"

    def __init__(self, message: str = "timed out") -> None:
        super().__init__(message)


class BufferTooSmall(Error):
    """BUFFER_TOO_SMALL (1): an output buffer was too small. The binding
    retries by itself with its own buffers; with a buffer of the caller's
    (:meth:`~privline.Channel.seal_into`) it raises this, ``needed``
    holding the size needed."""

    #: The bytes needed, when the binding knows them.
    needed: Optional[int] = None

    result = 1
    name = "PRIVLINE_RESULT_BUFFER_TOO_SMALL"
    fatal = False


class NullArgument(Error):
    """NULL_ARGUMENT (2): a required pointer was NULL (only from raw calls)."""

    result = 2
    name = "PRIVLINE_RESULT_NULL_ARGUMENT"
    fatal = False


class InvalidArgument(Error, ValueError):
    """INVALID_ARGUMENT (3): an argument is out of range (for example a
    ``pad_block`` above 65519, or buffers of one call that overlap). Nothing
    changed. Also a ``ValueError``."""

    result = 3
    name = "PRIVLINE_RESULT_INVALID_ARGUMENT"
    fatal = False


class WrongState(Error):
    """WRONG_STATE (4): the call is not allowed now (``into_channel`` before
    the handshake is done, ``authorize`` with no peer waiting, ...). Nothing
    changed."""

    result = 4
    name = "PRIVLINE_RESULT_WRONG_STATE"
    fatal = False


class RngFailure(Error):
    """RNG_FAILURE (5): the operating system's random generator failed."""

    result = 5
    name = "PRIVLINE_RESULT_RNG_FAILURE"


class InternalError(Error):
    """INTERNAL_ERROR (6): a bug in privline (a caught panic)."""

    result = 6
    name = "PRIVLINE_RESULT_INTERNAL_ERROR"


class NotSupported(Error):
    """NOT_SUPPORTED (7): the channel's protocol has no such operation
    (SHS1: key update, padding, session id; privline/1: exporting SHS1
    keys). Not fatal: nothing changed."""

    result = 7
    name = "PRIVLINE_RESULT_NOT_SUPPORTED"
    fatal = False


class Busy(Error):
    """BUSY (8): another thread is in a call on the same handle (two
    seals, or two opens, on one channel at once; any two calls on one
    handshake at once). Not fatal: nothing changed. One thread sealing and
    one opening the same channel never get it."""

    result = 8
    name = "PRIVLINE_RESULT_BUSY"
    fatal = False


class InvalidServerKey(HandshakeError):
    """INVALID_SERVER_KEY (20): the server public key is not a valid
    identity key."""

    result = 20
    name = "PRIVLINE_RESULT_INVALID_SERVER_KEY"


class M1BadMac(HandshakeError):
    """M1_BAD_MAC (21): M1's MAC does not verify (the client has another
    network key)."""

    result = 21
    name = "PRIVLINE_RESULT_M1_BAD_MAC"


class M2BadMac(HandshakeError):
    """M2_BAD_MAC (22): M2's MAC does not verify (the server has another
    network key, or M2 was damaged)."""

    result = 22
    name = "PRIVLINE_RESULT_M2_BAD_MAC"


class LowOrderPoint(HandshakeError):
    """LOW_ORDER_POINT (23): an X25519 result was all zero."""

    result = 23
    name = "PRIVLINE_RESULT_LOW_ORDER_POINT"


class M3DoesNotOpen(HandshakeError):
    """M3_DOES_NOT_OPEN (24): the client dialled another server key, or M3
    was replayed or damaged."""

    result = 24
    name = "PRIVLINE_RESULT_M3_DOES_NOT_OPEN"


class M3InvalidClientKey(HandshakeError):
    """M3_INVALID_CLIENT_KEY (25): the client key in M3 is not a valid
    identity key."""

    result = 25
    name = "PRIVLINE_RESULT_M3_INVALID_CLIENT_KEY"


class M3BadClientSignature(HandshakeError):
    """M3_BAD_CLIENT_SIGNATURE (26): the client signature in M3 does not
    verify."""

    result = 26
    name = "PRIVLINE_RESULT_M3_BAD_CLIENT_SIGNATURE"


class ClientRefused(HandshakeError):
    """CLIENT_REFUSED (27): the server application refused the client."""

    result = 27
    name = "PRIVLINE_RESULT_CLIENT_REFUSED"


class M4DoesNotOpen(HandshakeError):
    """M4_DOES_NOT_OPEN (28): this is not the server the client dialled."""

    result = 28
    name = "PRIVLINE_RESULT_M4_DOES_NOT_OPEN"


class M4BadServerSignature(HandshakeError):
    """M4_BAD_SERVER_SIGNATURE (29): the server signature in M4 does not
    verify: this is not the server the client dialled."""

    result = 29
    name = "PRIVLINE_RESULT_M4_BAD_SERVER_SIGNATURE"


class RecordTooShort(ChannelError):
    """RECORD_TOO_SHORT (40): a record length field below 17."""

    result = 40
    name = "PRIVLINE_RESULT_RECORD_TOO_SHORT"


class RecordDoesNotOpen(ChannelError):
    """RECORD_DOES_NOT_OPEN (41): a record was damaged, replayed, reordered,
    dropped, or sealed under another key."""

    result = 41
    name = "PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN"


class RecordAllZeros(ChannelError):
    """RECORD_ALL_ZEROS (42): a record's inner plaintext is all zeros."""

    result = 42
    name = "PRIVLINE_RESULT_RECORD_ALL_ZEROS"


class UnknownRecordType(ChannelError):
    """UNKNOWN_RECORD_TYPE (43): a record of unknown type."""

    result = 43
    name = "PRIVLINE_RESULT_UNKNOWN_RECORD_TYPE"


class ControlRecordWithPayload(ChannelError):
    """CONTROL_RECORD_WITH_PAYLOAD (44): a close or key-update record with a
    payload."""

    result = 44
    name = "PRIVLINE_RESULT_CONTROL_RECORD_WITH_PAYLOAD"


class RecordAfterClose(ChannelError):
    """RECORD_AFTER_CLOSE (45): a record after the peer's close."""

    result = 45
    name = "PRIVLINE_RESULT_RECORD_AFTER_CLOSE"


class CounterExhausted(ChannelError):
    """COUNTER_EXHAUSTED (46): a record counter would pass 2**64 - 1."""

    result = 46
    name = "PRIVLINE_RESULT_COUNTER_EXHAUSTED"


class AlreadyClosed(ChannelError):
    """ALREADY_CLOSED (47): this side already sent close and seals nothing
    more. Not fatal: the channel still opens the peer's records."""

    result = 47
    name = "PRIVLINE_RESULT_ALREADY_CLOSED"
    fatal = False


class RecordTooLong(ChannelError):
    """RECORD_TOO_LONG (48): SHS1 only, a box-stream header announces a body
    over 4096 bytes."""

    result = 48
    name = "PRIVLINE_RESULT_RECORD_TOO_LONG"


#: Every C result value (except OK) and its exception class.
ERRORS_BY_RESULT: Dict[int, Type[Error]] = {
    cls.result: cls  # type: ignore[misc]
    for cls in (
        BufferTooSmall,
        NullArgument,
        InvalidArgument,
        WrongState,
        RngFailure,
        InternalError,
        NotSupported,
        Busy,
        InvalidServerKey,
        M1BadMac,
        M2BadMac,
        LowOrderPoint,
        M3DoesNotOpen,
        M3InvalidClientKey,
        M3BadClientSignature,
        ClientRefused,
        M4DoesNotOpen,
        M4BadServerSignature,
        RecordTooShort,
        RecordDoesNotOpen,
        RecordAllZeros,
        UnknownRecordType,
        ControlRecordWithPayload,
        RecordAfterClose,
        CounterExhausted,
        AlreadyClosed,
        RecordTooLong,
    )
}


def error_class(result: int) -> Optional[Type[Error]]:
    """The exception class of a result value; ``None`` for OK (0) and for
    values the binding does not know."""
    return ERRORS_BY_RESULT.get(result)


def error_from_result(result: int) -> Error:
    """An exception instance for a non-zero result value (a plain
    :class:`Error` carrying the value when it is unknown)."""
    cls = ERRORS_BY_RESULT.get(result)
    if cls is None:
        return Error(result=result)
    return cls()


def check(result: int) -> None:
    """Raise the exception of ``result`` unless it is OK (0)."""
    if result:
        raise error_from_result(result)
