"""The handshake loop, and the report of a failed server handshake, that
:mod:`privline.sockets` (blocking) and :mod:`privline.aio` (asyncio) share.

The loop decides what to do next (send, receive, ask for authorization)
without doing any I/O itself, so that the two modules differ only in how
they send, receive and ask: each iterates over a :class:`HandshakeLoop` and
answers its requests with its own I/O.
"""

from __future__ import annotations

import enum
from typing import Any, Callable, Generator, Optional, Tuple

from .core import Channel, Handshake, Status
from .errors import Truncated


class Need(enum.Enum):
    """What a :class:`HandshakeLoop` asks of the connection."""

    #: send the given bytes; no answer
    SEND = "send"
    #: receive some bytes; answer them (``b""`` when the peer hung up)
    RECV = "recv"
    #: decide on the given peer key; answer the decision
    AUTHORIZE = "authorize"


class HandshakeLoop:
    """Iterating runs the handshake to the end, one ``(Need, argument)`` per
    action it needs; set :attr:`answer` before the next iteration where the
    :class:`Need` says so. Afterwards :attr:`result` holds the channel and
    the bytes that arrived after the last handshake message (the peer's
    first records). The iteration raises :class:`~privline.Truncated` when
    the peer hangs up first, and the handshake's own errors."""

    def __init__(self, handshake: Handshake) -> None:
        self._steps = _steps(handshake)
        self.answer: Any = None
        self._result: Optional[Tuple[Channel, bytes]] = None

    @property
    def result(self) -> Tuple[Channel, bytes]:
        if self._result is None:
            raise RuntimeError("the handshake loop has not finished")
        return self._result

    def __iter__(self) -> "HandshakeLoop":
        return self

    def __next__(self) -> Tuple[Need, Any]:
        answer, self.answer = self.answer, None
        try:
            return self._steps.send(answer)
        except StopIteration as done:
            self._result = done.value
            raise StopIteration from None


def _steps(handshake: Handshake) -> Generator[Tuple[Need, Any], Any, Tuple[Channel, bytes]]:
    buffer = bytearray()
    received = 0
    while True:
        step = handshake.step(buffer)
        if step.consumed:
            del buffer[: step.consumed]
        if step.output:
            yield Need.SEND, step.output
        if step.status is Status.DONE:
            break
        if step.status is Status.AUTHORIZE_PEER:
            accepted = yield Need.AUTHORIZE, handshake.peer_key
            handshake.authorize(bool(accepted))  # type: ignore[attr-defined]
            continue
        if step.consumed == 0 and not step.output:
            chunk = yield Need.RECV, None
            if not chunk:
                raise Truncated("the peer hung up during the handshake", received)
            received += len(chunk)
            buffer += chunk
    return handshake.into_channel(), bytes(buffer)


def report_failure(
    error: BaseException,
    on_failure: Optional[Callable[[BaseException], Any]],
    silent_until_deadline: bool,
) -> bool:
    """A server's handshake failed with ``error``: tells ``on_failure`` and
    says whether to keep the connection open and silent until the deadline
    (not for ``KeyboardInterrupt`` and the like, which should end things
    now)."""
    if on_failure is not None:
        on_failure(error)
    return silent_until_deadline and isinstance(error, Exception)
