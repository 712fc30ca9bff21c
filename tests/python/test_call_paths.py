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


def test_offset_for_keeps_the_output_away_from_the_input():
    buffer = core._Buffer(1000, shift=True)
    assert buffer.size == 1000 and len(buffer.data) == 1000 + core._SHIFT
    a = buffer.address
    for distance, offset in [(0, core._SHIFT), (8, core._SHIFT), (core._ALIAS - 1, core._SHIFT),
                             (core._ALIAS, 0), (2048, 0), (4096 - core._ALIAS, 0),
                             (4096 - core._ALIAS + 1, core._SHIFT), (4095, core._SHIFT), (4096 * 7 + 16, core._SHIFT),
                             (4096 * 7 + 1000, 0)]:
        # the output at ``distance`` bytes after the input (modulo 4096)
        assert buffer.offset_for(a - distance) == offset, distance
    assert buffer.offset_for(None) == 0
    assert core._Buffer(1000).offset_for(a) == 0  # no room for a shift


def _placed(size: int, target: int, distance: int) -> memoryview:
    """``size`` bytes in a fresh bytearray whose address is ``distance``
    bytes before ``target`` modulo 4096."""
    backing = bytearray(size + 8192)
    base = ctypes.addressof(ctypes.c_char.from_buffer(backing))
    start = (target - distance - base) % 4096
    return memoryview(backing)[start : start + size]


@pytest.mark.parametrize("distance, shifted", [(0, True), (16, True), (1000, False)])
def test_large_seals_and_opens_write_away_from_their_input(pair, monkeypatch, distance, shifted):
    """A seal or open of more than 4 KiB whose output buffer would start a
    few bytes after its input (modulo 4 KiB: the CPU stalls on such "4K
    aliasing") writes at _SHIFT bytes further; the bytes are the same."""
    client, server = pair
    size = 20000
    server.open_all(client.seal(b"warm" * 5000))  # makes the channels' buffers
    out = client._seal_out
    data = _placed(size, out.address, distance)
    data[:] = bytes(range(256)) * (size // 256) + bytes(size % 256)
    sealed = _count_args(client, monkeypatch, "_c_seal")
    wire = client.seal(data)
    assert client._seal_out is out and (sealed[-1] is out.shifted) == shifted
    assert sealed[-1] is (out.shifted if shifted else out.ref)
    # open: the wire placed relative to the channel's open buffer
    opened = _count_args(server, monkeypatch, "_c_open")
    server_out = server._open_out
    placed_wire = _placed(len(wire), server_out.address, distance)
    placed_wire[:] = wire
    first = server.open_all(placed_wire)
    assert first == (len(wire), [privline.Record(RecordType.DATA, bytes(data))])
    assert (opened[-1] is server_out.shifted) == shifted


def _count_args(channel: privline.Channel, monkeypatch: pytest.MonkeyPatch, name: str) -> List[object]:
    """The output-buffer argument (the fifth) of every call through the
    channel's bound library function ``name``."""
    real = getattr(channel, name)
    outputs: List[object] = []

    def recording(*args: object) -> int:
        outputs.append(args[4])
        return real(*args)

    monkeypatch.setattr(channel, name, recording)
    return outputs
