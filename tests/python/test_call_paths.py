"""The channel's cheap call paths (issue 14): small seals and opens through
function objects that keep the GIL, large ones through those that release
it; the small-seal buffer and its retry; open_all's inline first record;
errors raised once, as before."""

from __future__ import annotations

import ctypes
from typing import Dict, List

import pytest

import privline
from privline import RecordType
from privline import core

from conftest import count_seal_calls, make_pair


def _count_calls(channel: privline.Channel, monkeypatch: pytest.MonkeyPatch, *names: str) -> Dict[str, List[int]]:
    """The results of every call through each of the channel's bound
    library functions ``names``, kept apart."""
    calls: Dict[str, List[int]] = {}
    for name in names:
        real = getattr(channel, name)
        results: List[int] = []
        calls[name] = results

        def counting(*args: object, real=real, results=results) -> int:
            result = real(*args)
            results.append(result)
            return result

        monkeypatch.setattr(channel, name, counting)
    return calls


def test_small_calls_keep_the_gil_and_large_ones_release_it(pair):
    client, _ = pair
    keeps_gil = ctypes._FUNCFLAG_PYTHONAPI
    assert client._c_seal_small._flags_ & keeps_gil and client._c_open_small._flags_ & keeps_gil
    assert not client._c_seal._flags_ & keeps_gil and not client._c_open._flags_ & keeps_gil


def test_each_call_goes_through_the_function_for_its_size(pair, monkeypatch):
    client, server = pair
    sealed = _count_calls(client, monkeypatch, "_c_seal", "_c_seal_small")
    opened = _count_calls(server, monkeypatch, "_c_open", "_c_open_small")
    small, large = b"s" * core._SMALL_CALL, b"L" * (core._SMALL_CALL + 1)
    wires = [client.seal(small), client.seal(large), client.seal(b"p", pad_block=2 * core._SMALL_CALL),
             client.seal(b"q", pad_block=64), client.seal(bytearray(small)), client.seal(memoryview(large))]
    assert sealed == {"_c_seal_small": [0, 0, 0], "_c_seal": [0, 0, 0]}
    assert [len(w) > core._SMALL_CALL for w in wires] == [True, True, True, False, True, True]
    assert server.open(wires[0]).payload == small  # one record of 4114 bytes: above the limit
    assert server.open(wires[1]).payload == large
    assert server.open_all(wires[2])[1][0].payload == b"p"
    assert server.open(wires[3]).payload == b"q"
    assert server.open(wires[4]).payload == small
    assert server.open_all(wires[5])[1][0].payload == large
    assert opened == {"_c_open": [0] * 5, "_c_open_small": [0]}
    opened["_c_open"].clear()
    # open_all: every record of a small input through the small function
    consumed, records = server.open_all(b"".join(client.seal(b"%d" % i) for i in range(3)))
    assert [r.payload for r in records] == [b"0", b"1", b"2"]
    assert opened == {"_c_open": [], "_c_open_small": [0, 0, 0, 0]}


def test_small_seal_retries_when_its_buffer_is_too_small(pair, monkeypatch):
    """A seal the small buffer cannot hold (the library adds a key-update
    record every 2**32 records) is BUFFER_TOO_SMALL, which changes nothing,
    and one retry with the size asked for; the bigger buffer is kept."""
    client, server = pair
    results = count_seal_calls(client, monkeypatch)
    client._seal_small_out = core._Buffer(10)
    wire = client.seal(b"x" * 64)
    assert results == [privline.BufferTooSmall.result, 0]
    assert len(wire) == privline.sealed_len(64) and client._seal_small_out.size == len(wire)
    assert server.open(wire).payload == b"x" * 64
    results.clear()
    assert server.open(client.seal(b"y" * 64)).payload == b"y" * 64
    assert results == [0]


def test_a_failed_open_is_one_call_and_raises_as_before(pair, monkeypatch):
    client, server = pair
    opened = _count_calls(server, monkeypatch, "_c_open", "_c_open_small")
    damaged = bytearray(client.seal(b"flip me"))
    damaged[-1] ^= 1
    with pytest.raises(privline.RecordDoesNotOpen) as info:
        server.open_all(bytes(damaged))
    assert info.value.fatal
    assert opened["_c_open_small"] == [privline.RecordDoesNotOpen.result] and opened["_c_open"] == []
    opened["_c_open_small"].clear()
    with pytest.raises(privline.ChannelError):
        server.open(client.seal(b"next"))
    assert len(opened["_c_open_small"]) == 1


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview of bytes", "memoryview of bytearray"])
def test_open_all_of_small_and_large_records(client_identity, server_identity, kind):
    client, server = make_pair(client_identity, server_identity)
    payloads = [b"a" * 10, b"b" * 70000, b"", b"c" * 5000, b"d"]
    wire = b"".join(client.seal(p) for p in payloads) + client.update_key() + client.seal(b"e") + b"\x00"
    data = {
        "bytes": lambda: wire,
        "bytearray": lambda: bytearray(wire),
        "memoryview of bytes": lambda: memoryview(b"??" + wire)[2:],
        "memoryview of bytearray": lambda: memoryview(bytearray(b"??" + wire))[2:],
    }[kind]()
    consumed, records = server.open_all(data)
    assert consumed == len(wire) - 1  # the last byte is the start of a record
    expected = [b"a" * 10, b"b" * 65518, b"b" * (70000 - 65518), b"", b"c" * 5000, b"d", b"", b"e"]
    assert [r.payload for r in records] == expected
    assert [r.record_type for r in records].count(RecordType.KEY_UPDATE) == 1
    assert all(type(r) is privline.Record for r in records)
    opened = server.open(client.seal(b"f"))
    assert type(opened) is privline.Opened and opened == (privline.sealed_len(1), RecordType.DATA, b"f")


def test_closed_channels_refuse_on_every_path(pair):
    client, server = pair
    wire = client.seal(b"x")
    big = client.seal(b"y" * 10000)
    client.close()
    server.close()
    for call in (lambda: client.seal(b"x"), lambda: client.seal(b"x" * 10000), lambda: client.seal(b"x", 64),
                 lambda: client.seal(bytearray(b"x")), lambda: server.open(wire), lambda: server.open_all(wire),
                 lambda: server.open(big), lambda: server.open_all(memoryview(bytearray(big)))):
        with pytest.raises(ValueError, match="closed channel"):
            call()


def test_bytearrays_are_read_in_place_and_released(pair):
    """A bytearray (or a memoryview of one) is passed without a copy, and
    its buffer export ends with the call: it can be resized afterwards, and
    inside the handler of seal_into's BufferTooSmall."""
    client, server = pair
    data = bytearray(b"in place")
    wire = bytearray(client.seal(data))
    data.extend(b" and resized")
    wire.extend(client.seal(memoryview(data)[3:]))
    consumed, records = server.open_all(wire)
    assert [r.payload for r in records] == [b"in place", b"place and resized"]
    del wire[:consumed]
    out = bytearray(10)
    try:
        client.seal_into(data, out)
    except privline.BufferTooSmall as error:
        out.extend(bytes(error.needed + 1 - len(out)))
        data.extend(b"!")
    else:
        raise AssertionError("BufferTooSmall expected")
    n = client.seal_into(data, out)
    assert server.open(out[:n]).payload == b"in place and resized!"
    assert server.open(bytearray(client.seal(b""))).payload == b""

