"""The sans-IO binding: loading, declarations, errors, identities,
handshakes, channels, fragmentation and handle life-cycle."""

from __future__ import annotations

import ctypes
import gc
import hashlib
import hmac
import os
import re
import threading
import weakref
from pathlib import Path

import pytest

import privline
from privline import RecordType, Status
from privline import _lib as libmod

from conftest import (
    BINDING, NETWORK_KEY, OTHER_NETWORK_KEY, ROOT, check_half_close, count_seal_calls, handshake_messages, make_pair,
    open_byte_by_byte,
)

# --------------------------------------------------------------------------
# loading and declarations


def test_library_loads_and_reports_the_crate_version():
    cargo = (ROOT / "Cargo.toml").read_text()
    crate_version = re.search(r'^version = "([^"]+)"', cargo, re.M).group(1)
    assert privline.version() == crate_version
    assert os.path.exists(privline.library_path()) or "/" not in privline.library_path()


def test_installed_package_is_used_when_requested():
    if os.environ.get("PRIVLINE_TEST_INSTALLED") != "1":
        pytest.skip("only checked by tests/python/run.sh")
    package = Path(privline.__file__).resolve()
    assert not package.is_relative_to(BINDING.resolve()), package
    assert "site-packages" in package.parts
    assert Path(privline.library_path()).resolve() == (ROOT / "target" / "release" / "libprivline.so").resolve()


def _header_functions(header_text):
    body = re.sub(r"//[^\n]*", "", header_text)
    found = {}
    for match in re.finditer(r"([\w \*]+?)\b(privline_\w+)\(([^;{]*?)\);", body, re.S):
        params = match.group(3).strip()
        count = 0 if params in ("", "void") else len(params.split(","))
        found[match.group(2)] = (match.group(1).strip(), count)
    return found


def test_every_header_function_is_declared(header_text):
    functions = _header_functions(header_text)
    assert len(functions) >= 30
    assert set(functions) == set(libmod.SIGNATURES)
    lib = libmod.lib()
    for name, (returns, count) in functions.items():
        function = getattr(lib, name)
        assert function.argtypes is not None and len(function.argtypes) == count, name
        if returns == "void":
            assert function.restype is None, name
        elif returns.endswith("*"):
            assert function.restype is ctypes.c_char_p, name
        elif returns == "size_t":
            assert function.restype is ctypes.c_size_t, name
        elif returns == "bool":
            assert function.restype is ctypes.c_bool, name
        else:
            assert returns == "privline_result", name
            assert function.restype is ctypes.c_uint32, name


def test_size_constants_equal_the_header_defines(header_text):
    defines = dict(
        (name, int(value)) for name, value in re.findall(r"#define PRIVLINE_(\w+_LEN) (\d+)", header_text)
    )
    assert len(defines) == 14
    for name, value in defines.items():
        assert getattr(privline, name) == value, name
        assert name in privline.__all__, name
    assert privline.sealed_len(0) == 19
    assert privline.sealed_len(65518) == 65518 + 19
    assert privline.sealed_len(65519) == 65519 + 2 * 19
    with pytest.raises(ValueError):
        privline.sealed_len(-1)


# --------------------------------------------------------------------------
# errors


def _header_results(header_text):
    return [(name, int(value)) for name, value in re.findall(r"(PRIVLINE_RESULT_\w+) = (\d+),", header_text)]


def test_every_result_maps_to_a_distinct_class_with_its_name_and_message(header_text):
    results = _header_results(header_text)
    assert len(results) >= 28 and results[0] == ("PRIVLINE_RESULT_OK", 0)
    lib = libmod.lib()
    classes = set()
    for name, value in results[1:]:
        cls = privline.error_class(value)
        assert cls is not None, name
        assert cls not in classes
        classes.add(cls)
        assert issubclass(cls, privline.Error) and cls is not privline.Error
        assert cls.result == value and cls.name == name
        # The class name is the C name in CamelCase (M3_DOES_NOT_OPEN -> M3DoesNotOpen).
        camel = "".join(part.capitalize() for part in name[len("PRIVLINE_RESULT_") :].split("_"))
        assert cls.__name__ == camel
        assert getattr(privline, camel) is cls
        error = privline.error_from_result(value)
        assert type(error) is cls
        assert error.result == value and error.name == name
        assert error.message == lib.privline_result_str(value).decode()
        assert error.message and str(error) == error.message
        if 20 <= value <= 29:
            assert issubclass(cls, privline.HandshakeError)
        if 40 <= value <= 48:
            assert issubclass(cls, privline.ChannelError)
        assert cls.fatal == (value in (5, 6) or 20 <= value <= 46 or value == 48)
        assert camel in privline.__all__
    assert set(privline.ERRORS_BY_RESULT.values()) == classes
    assert privline.error_class(0) is None


def test_unknown_results_and_python_side_errors():
    unknown = privline.error_from_result(9999)
    assert type(unknown) is privline.Error
    assert unknown.result == 9999 and unknown.message == "unknown result"
    truncated = privline.Truncated()
    assert isinstance(truncated, privline.Error) and isinstance(truncated, EOFError)
    assert truncated.result is None and truncated.name == "TRUNCATED"
    timeout = privline.Timeout("handshake timed out")
    assert isinstance(timeout, privline.Error) and isinstance(timeout, TimeoutError)
    assert str(timeout) == "handshake timed out"


# --------------------------------------------------------------------------
# identities


def test_identity_generate_and_from_seed():
    one = privline.Identity.generate()
    two = privline.Identity.generate()
    assert one.seed != two.seed and one.public_key != two.public_key
    assert len(one.seed) == 32 and len(one.public_key) == 32
    again = privline.Identity.from_seed(bytearray(one.seed))
    assert again.public_key == one.public_key
    assert one.seed.hex() not in repr(one) and one.public_key.hex() in repr(one)
    with pytest.raises(ValueError):
        privline.Identity.from_seed(b"short")
    with pytest.raises(TypeError):
        privline.Identity.from_seed("00" * 32)


# --------------------------------------------------------------------------
# handshake


def test_handshake_messages_keys_and_session(client_identity, server_identity):
    client = privline.ClientHandshake(NETWORK_KEY, client_identity, server_identity.public_key)
    server = privline.ServerHandshake(NETWORK_KEY, server_identity)
    assert client.peer_key == server_identity.public_key
    with pytest.raises(privline.WrongState):
        server.peer_key  # no client yet
    with pytest.raises(privline.WrongState):
        server.authorize(True)  # nobody waiting
    with pytest.raises(privline.WrongState):
        client.into_channel()
    messages = handshake_messages(client, server)
    assert [(who, len(m)) for who, m in messages] == [("client", 64), ("server", 64), ("client", 144), ("server", 112)]
    assert sum(len(m) for _, m in messages) == privline.HANDSHAKE_TOTAL_LEN
    assert client.done and server.done and client.status is Status.DONE
    with pytest.raises(privline.WrongState):
        client.step(b"")
    client_channel = client.into_channel()
    server_channel = server.into_channel()
    # into_channel consumed the handshakes
    assert client.freed and server.freed
    with pytest.raises(ValueError):
        client.step(b"")
    with pytest.raises(ValueError):
        client.into_channel()
    with client_channel, server_channel:
        assert client_channel.session_id == server_channel.session_id
        assert len(client_channel.session_id) == 32
        assert client_channel.peer_key == server_identity.public_key
        assert server_channel.peer_key == client_identity.public_key
        assert not client_channel.peer_closed


def _until_authorization(client_identity, server_identity):
    """A client and a server handshake stepped in memory up to the server's
    pause for authorization; returns them and the server's step on M3."""
    client = privline.ClientHandshake(NETWORK_KEY, client_identity, server_identity.public_key)
    server = privline.ServerHandshake(NETWORK_KEY, server_identity)
    m1 = client.step().output
    m2 = server.step(m1).output
    m3 = client.step(m2).output
    return client, server, server.step(m3)


def test_server_pauses_for_authorization(client_identity, server_identity):
    client, server, step = _until_authorization(client_identity, server_identity)
    assert step == (144, b"", Status.AUTHORIZE_PEER)
    assert server.peer_key == client_identity.public_key
    server.authorize(True)
    step = server.step()
    assert step.status is Status.DONE and len(step.output) == 112
    assert client.step(step.output).status is Status.DONE


def test_handshake_leaves_channel_bytes_to_the_caller(client_identity, server_identity):
    client, server, _ = _until_authorization(client_identity, server_identity)
    server.authorize(True)
    m4 = server.step().output
    server_channel = server.into_channel()
    early = server_channel.seal(b"first records ride with M4")
    step = client.step(m4 + early)
    assert step.consumed == len(m4) and step.status is Status.DONE
    client_channel = client.into_channel()
    assert client_channel.open(early).payload == b"first records ride with M4"


# --------------------------------------------------------------------------
# records


SIZES = [0, 1, 65518, 65519, 200000]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("direction", ["c2s", "s2c"])
def test_round_trip(pair, size, direction):
    client, server = pair
    sender, receiver = (client, server) if direction == "c2s" else (server, client)
    data = os.urandom(size)
    wire = sender.seal(data)
    assert len(wire) == privline.sealed_len(size)
    records = max(1, -(-size // privline.RECORD_MAX_PAYLOAD_LEN))
    # one record per call
    got = []
    rest = wire
    for _ in range(records):
        consumed, kind, payload = receiver.open(rest)
        assert kind is RecordType.DATA
        assert len(payload) <= privline.RECORD_MAX_PAYLOAD_LEN
        got.append(payload)
        rest = rest[consumed:]
    assert rest == b""
    assert receiver.open(b"") == (0, RecordType.NONE, b"")
    assert b"".join(got) == data
    # and a second time with open_all, from a bytearray
    wire = sender.seal(data)
    consumed, opened = receiver.open_all(bytearray(wire))
    assert consumed == len(wire) and len(opened) == records
    assert b"".join(p for _, p in opened) == data


def test_seal_accepts_any_bytes_like(pair):
    client, server = pair
    for data in (b"abc", bytearray(b"abc"), memoryview(b"xabcx")[1:4]):
        assert server.open(client.seal(data)).payload == b"abc"


def test_padding_hides_lengths_and_buffer_too_small_is_handled(pair, monkeypatch):
    client, server = pair
    lib = libmod.lib()
    results = count_seal_calls(client, monkeypatch)
    sizes = (0, 5, 63, 64, 300)
    padded = 0
    for size in sizes:
        wire = client.seal(b"p" * size, pad_block=64)
        inner = -(-(size + 1) // 64) * 64
        assert len(wire) == 2 + inner + 16
        assert client.sealed_len(size, pad_block=64) == len(wire)
        assert server.open(wire) == (len(wire), RecordType.DATA, b"p" * size)
        padded += len(wire) > privline.sealed_len(size)
    # padding added bytes to all but size 63; the channel's own sealed_len
    # knew, so every seal was one call
    assert padded == 4
    assert results == [0] * len(sizes)
    # when the first buffer is too small anyway, the binding retries with the
    # size the library asks for
    real_sealed_len = lib.privline_channel_sealed_len
    monkeypatch.setattr(lib, "privline_channel_sealed_len", lambda *args: 1)
    results.clear()
    for size in sizes:
        client._seal_out = None  # no buffer left from an earlier seal
        wire = client.seal(b"q" * size, pad_block=64)
        assert server.open(wire).payload == b"q" * size
    assert results == [privline.BufferTooSmall.result, 0] * len(sizes)
    monkeypatch.setattr(lib, "privline_channel_sealed_len", real_sealed_len)
    padded_close = client.seal_close(pad_block=256)
    assert len(padded_close) == 2 + 256 + 16
    assert server.open(padded_close).record_type is RecordType.CLOSE


def test_key_update(pair):
    client, server = pair
    for _ in range(3):
        update = client.update_key()
        assert len(update) == privline.RECORD_OVERHEAD_LEN
        assert server.open(update) == (len(update), RecordType.KEY_UPDATE, b"")
        assert server.open(client.seal(b"after")).payload == b"after"
    # an update the receiver misses breaks the stream
    client.update_key()
    with pytest.raises(privline.RecordDoesNotOpen):
        server.open(client.seal(b"lost"))


def test_seal_close_is_a_half_close(pair):
    client, server = pair
    close = check_half_close(client, server)
    assert server.open(close).record_type is RecordType.CLOSE
    assert server.peer_closed
    assert client.open(server.seal_close()).record_type is RecordType.CLOSE
    assert client.peer_closed


def test_open_all_stops_after_close(pair):
    client, server = pair
    wire = client.seal(b"a") + client.seal(b"") + client.update_key() + client.seal_close()
    consumed, records = server.open_all(wire + b"\x00\x11garbage")
    assert consumed == len(wire)
    assert [r.record_type for r in records] == [RecordType.DATA, RecordType.DATA, RecordType.KEY_UPDATE, RecordType.CLOSE]
    assert [r.payload for r in records] == [b"a", b"", b"", b""]


# --------------------------------------------------------------------------
# every error reachable from Python


def test_invalid_server_key(client_identity):
    for bad in (bytes(32), b"\x01" + bytes(31)):
        with pytest.raises(privline.InvalidServerKey) as info:
            privline.ClientHandshake(NETWORK_KEY, client_identity, bad)
        assert isinstance(info.value, privline.HandshakeError) and info.value.fatal


def test_bad_argument_lengths_are_python_errors(client_identity, server_identity):
    with pytest.raises(ValueError):
        privline.ClientHandshake(b"short", client_identity, server_identity.public_key)
    with pytest.raises(ValueError):
        privline.ClientHandshake(NETWORK_KEY, client_identity, b"short")
    with pytest.raises(TypeError):
        privline.ServerHandshake(NETWORK_KEY, server_identity.seed)
    with pytest.raises(TypeError):
        privline.Channel(None)


def _first_messages(client_identity, server_identity, server_network=NETWORK_KEY, server_key=None):
    client = privline.ClientHandshake(NETWORK_KEY, client_identity, server_key or server_identity.public_key)
    server = privline.ServerHandshake(server_network, server_identity)
    return client, server


def test_m1_bad_mac_with_another_network_key(client_identity, server_identity):
    client, server = _first_messages(client_identity, server_identity, server_network=OTHER_NETWORK_KEY)
    with pytest.raises(privline.M1BadMac) as info:
        server.step(client.step().output)
    # fatal results stick
    with pytest.raises(privline.M1BadMac):
        server.step(b"")
    with pytest.raises(privline.M1BadMac):
        server.into_channel()
    assert info.value.name == "PRIVLINE_RESULT_M1_BAD_MAC"


def test_m2_bad_mac_when_m2_is_damaged(client_identity, server_identity):
    client, server = _first_messages(client_identity, server_identity)
    m2 = bytearray(server.step(client.step().output).output)
    m2[-1] ^= 1
    with pytest.raises(privline.M2BadMac):
        client.step(m2)


def test_low_order_point_in_m1(server_identity):
    # A client that knows the network key but sends the X25519 point u = 0.
    ec = bytes(32)
    m1 = ec + hmac.new(NETWORK_KEY, b"privline/1 m1" + ec, hashlib.sha256).digest()
    server = privline.ServerHandshake(NETWORK_KEY, server_identity)
    with pytest.raises(privline.LowOrderPoint):
        server.step(m1)


def test_m3_does_not_open_with_another_server_key(client_identity, server_identity):
    impostor = privline.Identity.generate()
    client, server = _first_messages(client_identity, server_identity, server_key=impostor.public_key)
    m3 = client.step(server.step(client.step().output).output).output
    with pytest.raises(privline.M3DoesNotOpen):
        server.step(m3)


def test_m3_does_not_open_when_damaged(client_identity, server_identity):
    client, server = _first_messages(client_identity, server_identity)
    m3 = bytearray(client.step(server.step(client.step().output).output).output)
    m3[10] ^= 0x80
    with pytest.raises(privline.M3DoesNotOpen):
        server.step(m3)


def test_client_refused(client_identity, server_identity):
    client, server = _first_messages(client_identity, server_identity)
    handshake_messages(client, server, accept=False)
    assert server.status is Status.AUTHORIZE_PEER
    with pytest.raises(privline.ClientRefused):
        server.step(b"")
    with pytest.raises(privline.ClientRefused):
        server.into_channel()
    with pytest.raises(privline.ClientRefused):
        server.authorize(True)  # no change of mind
    server.free()


def test_m4_does_not_open_when_damaged(client_identity, server_identity):
    client, server = _first_messages(client_identity, server_identity)
    m3 = client.step(server.step(client.step().output).output).output
    server.step(m3)
    server.authorize(True)
    m4 = bytearray(server.step().output)
    m4[5] ^= 4
    with pytest.raises(privline.M4DoesNotOpen):
        client.step(m4)


def test_record_does_not_open_on_any_flipped_byte(client_identity, server_identity):
    client, server = make_pair(client_identity, server_identity)
    wire = client.seal(b"flip me")
    for index in range(2, len(wire)):  # the body; header flips change the length
        c, s = make_pair(client_identity, server_identity)
        damaged = bytearray(c.seal(b"flip me"))
        damaged[index] ^= 0x01
        with pytest.raises(privline.RecordDoesNotOpen) as info:
            s.open(damaged)
        assert isinstance(info.value, privline.ChannelError) and info.value.fatal
        with pytest.raises(privline.RecordDoesNotOpen):  # sticky, sealing included
            s.seal(b"x")
    assert server.open(wire).payload == b"flip me"


def test_replayed_and_reordered_records_do_not_open(pair):
    client, server = pair
    first, second = client.seal(b"1"), client.seal(b"2")
    with pytest.raises(privline.RecordDoesNotOpen):
        server.open(second)
    client2, server2 = make_pair(privline.Identity.generate(), privline.Identity.from_seed(bytes(range(32))))
    record = client2.seal(b"once")
    server2.open(record)
    with pytest.raises(privline.RecordDoesNotOpen):
        server2.open(record)


def test_record_too_short(pair):
    _, server = pair
    assert server.open(b"\x00") == (0, RecordType.NONE, b"")
    with pytest.raises(privline.RecordTooShort):
        server.open(b"\x00\x10")  # fatal as soon as the header is there


def test_record_after_close(pair):
    client, server = pair
    close = client.seal_close()
    assert server.open(close).record_type is RecordType.CLOSE
    with pytest.raises(privline.RecordAfterClose):
        server.open(close)


def test_invalid_argument_for_a_huge_pad_block(pair):
    client, server = pair
    with pytest.raises(privline.InvalidArgument) as info:
        client.seal(b"x", pad_block=privline.OPEN_MAX_OUTPUT_LEN + 1)
    assert not info.value.fatal
    # nothing changed
    assert server.open(client.seal(b"x", pad_block=privline.OPEN_MAX_OUTPUT_LEN)).payload == b"x"
    with pytest.raises(ValueError):
        client.seal(b"x", pad_block=-1)


def test_raw_calls_report_null_argument_and_buffer_too_small(pair):
    client, _ = pair
    lib = libmod.lib()
    out_len = ctypes.c_size_t(0)
    assert lib.privline_channel_seal(None, b"x", 1, 0, None, ctypes.byref(out_len)) == privline.NullArgument.result
    assert lib.privline_identity_generate(None, None) == privline.NullArgument.result
    result = lib.privline_channel_seal(client._h, b"hello", 5, 0, None, ctypes.byref(out_len))
    assert result == privline.BufferTooSmall.result and out_len.value == privline.sealed_len(5)
    with pytest.raises(privline.NullArgument):
        privline.errors.check(lib.privline_channel_peer_closed(None, None))


# --------------------------------------------------------------------------
# fragmentation


def test_handshake_one_byte_at_a_time(client_identity, server_identity):
    client, server = _first_messages(client_identity, server_identity)
    messages = handshake_messages(client, server, chunk=1)
    assert [len(m) for _, m in messages] == [64, 64, 144, 112]
    client_channel, server_channel = client.into_channel(), server.into_channel()
    assert client_channel.session_id == server_channel.session_id


def test_records_one_byte_at_a_time(pair):
    client, server = pair
    payloads = [b"", b"x", os.urandom(1000), os.urandom(70000)]
    wire = b"".join(client.seal(p) for p in payloads) + client.seal_close()
    got, closed = open_byte_by_byte(server, wire)
    assert closed
    assert b"".join(got) == b"".join(payloads)
    assert got[0] == b"" and got[1] == b"x"


# --------------------------------------------------------------------------
# handle life-cycle


def test_handles_are_freed_by_garbage_collection(client_identity, server_identity, monkeypatch):
    lib = libmod.lib()
    gc.collect()  # no handle of an earlier test is freed while counting
    counts = {"privline_handshake_free": 0, "privline_channel_free": 0}
    for name in counts:
        real = getattr(lib, name)

        def counting(handle, _real=real, _name=name):
            assert handle  # never called with NULL
            counts[_name] += 1
            _real(handle)

        monkeypatch.setattr(lib, name, counting)
    python_frees = []
    real_free = privline.core._Handle._free

    def counting_free(self):
        if not self.freed:
            python_frees.append(type(self).__name__)
        real_free(self)

    monkeypatch.setattr(privline.core._Handle, "_free", counting_free)

    refs = []
    rounds = 200
    for i in range(rounds):
        client = privline.ClientHandshake(NETWORK_KEY, client_identity, server_identity.public_key)
        server = privline.ServerHandshake(NETWORK_KEY, server_identity)
        if i % 2:
            handshake_messages(client, server)
            channels = (client.into_channel(), server.into_channel())
            refs.extend(weakref.ref(c) for c in channels)
            # a reference cycle, so that only the collector can free it
            cycle = [channels]
            cycle.append(cycle)
        refs.extend((weakref.ref(client), weakref.ref(server)))
        del client, server
        if i % 2:
            del channels, cycle
    gc.collect()
    assert all(ref() is None for ref in refs)
    # half the rounds dropped two live handshakes, half turned them into channels
    assert counts == {"privline_handshake_free": rounds, "privline_channel_free": rounds}
    assert python_frees.count("ClientHandshake") + python_frees.count("ServerHandshake") == rounds
    assert python_frees.count("Channel") == rounds


def test_free_and_with_blocks(client_identity, server_identity):
    with privline.ServerHandshake(NETWORK_KEY, server_identity) as handshake:
        assert not handshake.freed
    assert handshake.freed
    with pytest.raises(ValueError):
        handshake.step(b"")
    handshake.free()  # idempotent
    handshake.close()
    client, server = make_pair(client_identity, server_identity)
    with client:
        client.seal(b"x")
    assert client.freed
    with pytest.raises(ValueError):
        client.seal(b"x")
    with pytest.raises(ValueError):
        client.session_id
    server.free()
    server.free()
    assert "closed" in repr(server)


def test_one_channel_from_two_threads(pair):
    client, server = pair
    back, _ = make_pair(privline.Identity.generate(), privline.Identity.from_seed(bytes(range(32))))
    errors = []
    wires = []

    def sealer():
        try:
            for i in range(2000):
                wires.append(client.seal(b"%d" % i))
        except Exception as error:  # pragma: no cover
            errors.append(error)

    def other():
        try:
            for _ in range(2000):
                client.peer_closed
                client.session_id
        except Exception as error:  # pragma: no cover
            errors.append(error)

    threads = [threading.Thread(target=sealer), threading.Thread(target=other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    consumed, records = server.open_all(b"".join(wires))
    assert [r.payload for r in records] == [b"%d" % i for i in range(2000)]
    back.free()


# --------------------------------------------------------------------------
# close() releases; seal_close() is the close record


def test_close_releases_every_handle_and_later_use_is_a_clear_error(client_identity, server_identity):
    identity = privline.Identity.generate()
    handshake = privline.ClientHandshake(NETWORK_KEY, identity, server_identity.public_key)
    client, server = make_pair(client_identity, server_identity)
    for obj in (identity, handshake, client):
        assert not obj.closed
        obj.close()
        assert obj.closed and obj.freed
        obj.close()  # idempotent
        obj.free()  # the C name, same thing
    with pytest.raises(ValueError, match="closed identity"):
        privline.ServerHandshake(NETWORK_KEY, identity)
    with pytest.raises(ValueError, match="closed handshake"):
        handshake.step()
    for call in (
        lambda: client.seal(b"x"),
        lambda: client.seal_into(b"x", bytearray(64)),
        client.seal_close,
        client.update_key,
        lambda: client.open(b""),
        lambda: client.open_all(b""),
        lambda: client.peer_key,
        lambda: client.peer_closed,
        lambda: client.sealed_len(1),
    ):
        with pytest.raises(ValueError, match="closed channel"):
            call()
    # the peer saw no close record: close() is not seal_close()
    assert not client.close_sent and not server.peer_closed
    server.close()


def test_a_consumed_handshake_says_so(client_identity, server_identity):
    client = privline.ClientHandshake(NETWORK_KEY, client_identity, server_identity.public_key)
    server = privline.ServerHandshake(NETWORK_KEY, server_identity)
    handshake_messages(client, server)
    channel = client.into_channel()
    assert client.closed and "consumed" in repr(client)
    with pytest.raises(ValueError, match="consumed"):
        client.step()
    channel.close()
    server.close()


# --------------------------------------------------------------------------
# buffers: bytes-like input read in place, seal_into, no overlap


def test_bytes_like_input_without_conversion(pair):
    import array

    client, server = pair
    payload = bytes(range(200))
    for data in (payload, bytearray(payload), memoryview(bytearray(payload)), memoryview(payload),
                 memoryview(bytearray(b"xx" + payload))[2:], array.array("B", payload)):
        wire = client.seal(data)
        assert server.open(bytearray(wire)).payload == payload
        assert server.open(memoryview(bytearray(client.seal(data)))).payload == payload
    with pytest.raises(TypeError):
        client.seal("text")
    with pytest.raises(TypeError):
        client.seal(12)


def test_seal_into_writes_in_place_and_refuses_overlap(pair):
    client, server = pair
    out = bytearray(100)
    n = client.seal_into(b"hello", out)
    assert n == privline.sealed_len(5)
    assert server.open(out[:n]).payload == b"hello"
    with pytest.raises(privline.BufferTooSmall) as info:
        client.seal_into(b"x" * 200, out)
    assert info.value.needed == privline.sealed_len(200) and not info.value.fatal
    # nothing changed: the next record still opens in order
    n = client.seal_into(memoryview(b"again"), memoryview(out)[10:])
    assert server.open(out[10 : 10 + n]).payload == b"again"
    # the input must not overlap the output (the C ABI's rule)
    shared = bytearray(300)
    with pytest.raises(privline.InvalidArgument):
        client.seal_into(memoryview(shared)[:50], memoryview(shared)[40:])
    with pytest.raises(ValueError):  # InvalidArgument is a ValueError too
        client.seal_into(memoryview(shared)[:50], shared)
    assert server.open(client.seal(b"still in order")).payload == b"still in order"
    with pytest.raises(TypeError):
        client.seal_into(b"x", b"read-only output")


def test_open_all_on_a_bytearray_in_place(pair):
    client, server = pair
    wire = bytearray(b"".join(client.seal(b"%d" % i) for i in range(5)) + client.seal_close() + b"rest")
    consumed, records = server.open_all(wire)
    assert [r.payload for r in records[:5]] == [b"%d" % i for i in range(5)]
    assert records[-1].record_type is RecordType.CLOSE and wire[consumed:] == b"rest"
    del wire[:consumed]  # the buffer export was released
