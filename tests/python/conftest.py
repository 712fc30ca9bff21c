"""Shared fixtures of the Python binding's tests.

The tests import the installed ``privline`` package when there is one (as
``tests/python/run.sh`` arranges), else the one in ``bindings/python`` of
this checkout. The library comes from ``PRIVLINE_LIBRARY`` or the
checkout's ``target/release``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINDING = ROOT / "bindings" / "python"

try:
    import privline  # noqa: F401
except ImportError:  # not installed: use the checkout's copy
    sys.path.insert(0, str(BINDING))
    import privline  # noqa: F401

USING_CHECKOUT_COPY = Path(privline.__file__).resolve().is_relative_to(BINDING.resolve())

NETWORK_KEY = bytes.fromhex("5f" * 32)
OTHER_NETWORK_KEY = bytes.fromhex("a0" * 32)
#: The main Scuttlebutt network's key (its secret-handshake app key).
SSB_NETWORK_KEY = bytes.fromhex("d4a1cb88a66f02f8db635ce26441cc5dac1b08420ceaac230839b755845a9ffb")


def subprocess_env() -> Dict[str, str]:
    """The environment for ``python -m privline`` child processes: they
    must import the same package as the tests."""
    env = dict(os.environ)
    if USING_CHECKOUT_COPY:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(BINDING), env.get("PYTHONPATH")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@pytest.fixture(scope="session")
def server_identity() -> "privline.Identity":
    return privline.Identity.from_seed(bytes(range(32)))


@pytest.fixture(scope="session")
def client_identity() -> "privline.Identity":
    return privline.Identity.from_seed(bytes(range(100, 132)))


@pytest.fixture(scope="session")
def header_text() -> str:
    return (ROOT / "include" / "privline.h").read_text()


def handshake_messages(
    client: "privline.ClientHandshake",
    server: "privline.ServerHandshake",
    accept: bool = True,
    chunk: Optional[int] = None,
) -> List[Tuple[str, bytes]]:
    """Drives both sides in memory until they are done; returns the
    messages in order as ``(sender, bytes)``. With ``chunk``, every
    delivery is cut into pieces of that many bytes, fed one at a time."""
    to_server = bytearray()
    to_client = bytearray()
    wire_to_server = bytearray()
    wire_to_client = bytearray()
    sent: List[Tuple[str, bytes]] = []

    def deliver(wire: bytearray, pending: bytearray) -> None:
        size = len(wire) if chunk is None else min(chunk, len(wire))
        pending += wire[:size]
        del wire[:size]

    def advance(name: str, handshake: "privline.Handshake", wire_in: bytearray, pending: bytearray,
                wire_out: bytearray) -> "privline.StepResult":
        deliver(wire_in, pending)
        step = handshake.step(pending)
        del pending[: step.consumed]
        if step.output:
            wire_out += step.output
            sent.append((name, step.output))
        return step

    for _ in range(10000):
        if not client.done:
            advance("client", client, wire_to_client, to_client, wire_to_server)
        if not server.done:
            step = advance("server", server, wire_to_server, to_server, wire_to_client)
            if step.status is privline.Status.AUTHORIZE_PEER:
                server.authorize(accept)
                if not accept:
                    return sent
        if client.done and server.done and not wire_to_client and not to_client:
            return sent
    raise AssertionError("handshake did not finish")


def open_byte_by_byte(receiver: "privline.Channel", wire: bytes) -> Tuple[List[bytes], bool]:
    """Feeds `wire` to `receiver` one byte at a time, opening whatever is
    complete after each byte; returns the data payloads in order and
    whether a close arrived. Fails if a partial record is consumed or
    bytes are left over."""
    pending = bytearray()
    got: List[bytes] = []
    closed = False
    for byte in wire:
        pending.append(byte)
        while True:
            consumed, kind, payload = receiver.open(pending)
            del pending[:consumed]
            if kind is privline.RecordType.NONE:
                assert consumed == 0
                break
            if kind is privline.RecordType.DATA:
                got.append(payload)
            elif kind is privline.RecordType.CLOSE:
                closed = True
    assert not pending
    return got, closed


def check_half_close(closer: "privline.Channel", peer: "privline.Channel") -> bytes:
    """`closer` seals its close (privline/1) or goodbye (SHS1): from then on
    it refuses to seal or close again (AlreadyClosed, not fatal) but still
    opens `peer`'s records. Returns the close record."""
    close = closer.seal_close()
    assert closer.close_sent
    with pytest.raises(privline.AlreadyClosed) as info:
        closer.seal(b"more")
    assert not info.value.fatal
    with pytest.raises(privline.AlreadyClosed):
        closer.seal_close()
    assert closer.open(peer.seal(b"still talking")).payload == b"still talking"
    return close


def count_seal_calls(channel: "privline.Channel", monkeypatch: pytest.MonkeyPatch) -> List[int]:
    """The results of every library seal call `channel` makes from now on
    (the channel binds its seal functions once, one that releases the GIL
    and one for small calls that keeps it: both bindings are wrapped)."""
    results: List[int] = []

    def counting(real_seal):
        def counting_seal(*args: object) -> int:
            result = real_seal(*args)
            results.append(result)
            return result
        return counting_seal

    for name in ("_c_seal", "_c_seal_small"):
        monkeypatch.setattr(channel, name, counting(getattr(channel, name)))
    return results


def make_pair(
    client_identity: "privline.Identity",
    server_identity: "privline.Identity",
    network_key: bytes = NETWORK_KEY,
    protocol: str = "privline1",
) -> Tuple["privline.Channel", "privline.Channel"]:
    """A connected (client channel, server channel) pair speaking
    ``protocol``."""
    client = privline.ClientHandshake(network_key, client_identity, server_identity.public_key, protocol)
    server = privline.ServerHandshake(network_key, server_identity, protocol)
    handshake_messages(client, server)
    return client.into_channel(), server.into_channel()


@contextlib.contextmanager
def open_pair(
    client_identity: "privline.Identity",
    server_identity: "privline.Identity",
    network_key: bytes = NETWORK_KEY,
    protocol: str = "privline1",
) -> Iterator[Tuple["privline.Channel", "privline.Channel"]]:
    """make_pair's channels, freed at the end of the block."""
    client, server = make_pair(client_identity, server_identity, network_key, protocol)
    try:
        yield client, server
    finally:
        client.free()
        server.free()


@pytest.fixture
def pair(client_identity, server_identity):
    with open_pair(client_identity, server_identity) as channels:
        yield channels
