"""SHS1 (Scuttlebutt secret-handshake v1 and box-stream) through the
sans-IO binding: identities as library handles, the handshake, box-stream
channels, the operations SHS1 does not have, and the exported keys (checked
against a stdlib secretbox, see secretbox.py)."""

from __future__ import annotations

import ctypes
import gc
import os
import threading
import weakref

import pytest

import privline
import secretbox as sb
from privline import Protocol, RecordType, Status
from privline import _lib as libmod

from conftest import (
    NETWORK_KEY, OTHER_NETWORK_KEY, SSB_NETWORK_KEY, check_half_close, count_seal_calls, handshake_messages, make_pair,
    open_byte_by_byte, open_pair,
)

MAX_BODY = 4096
HEADER = 34


def shs1_pair(client_identity, server_identity, network_key=SSB_NETWORK_KEY):
    return make_pair(client_identity, server_identity, network_key, "shs1")


@pytest.fixture
def shs1(client_identity, server_identity):
    with open_pair(client_identity, server_identity, SSB_NETWORK_KEY, "shs1") as channels:
        yield channels


def boxed_len(size: int) -> int:
    return size + HEADER * -(-size // MAX_BODY)


# --------------------------------------------------------------------------
# identities


def test_identity_from_seed_and_from_the_64_byte_secret():
    seed = bytes(range(32))
    from_seed = privline.Identity(seed)
    public = from_seed.public_key
    assert len(public) == 32
    assert public == privline.Identity.from_seed(seed).public_key
    lib = libmod.lib()
    expected = ctypes.create_string_buffer(32)
    assert lib.privline_identity_public_from_seed(seed, expected) == 0
    assert public == expected.raw
    for secret in (seed + public, bytearray(seed + public), memoryview(b"!" + seed + public)[1:]):
        identity = privline.Identity(secret)
        assert identity.public_key == public and identity.seed == seed
        assert privline.Identity.from_secret(secret).public_key == public
    assert from_seed.secret_key == seed + public
    assert privline.IDENTITY_KEYPAIR_LEN == 64


def test_a_64_byte_secret_with_another_public_key_is_an_invalid_argument():
    seed = bytes(range(32))
    other = privline.Identity.generate().public_key
    with pytest.raises(privline.InvalidArgument) as info:
        privline.Identity(seed + other)
    assert not info.value.fatal
    good = privline.Identity(seed).public_key
    damaged = bytearray(seed + good)
    damaged[40] ^= 1
    with pytest.raises(privline.InvalidArgument):
        privline.Identity(damaged)


@pytest.mark.parametrize("length", [0, 1, 31, 33, 63, 65, 96, 128])
def test_identity_secret_of_a_wrong_length(length):
    with pytest.raises(ValueError):
        privline.Identity(os.urandom(length))


def test_identity_secret_of_a_wrong_type():
    with pytest.raises(TypeError):
        privline.Identity("00" * 32)
    with pytest.raises(TypeError):
        privline.Identity(12345)
    with pytest.raises(ValueError):
        privline.Identity.from_seed(bytes(64))  # a seed is 32 bytes


def test_identity_handle_life_cycle(client_identity, server_identity, monkeypatch):
    lib = libmod.lib()
    gc.collect()  # no identity of an earlier test is freed while counting
    frees = []
    real_free = lib.privline_identity_free

    def counting_free(handle):
        assert handle
        frees.append(1)
        real_free(handle)

    monkeypatch.setattr(lib, "privline_identity_free", counting_free)
    with privline.Identity.generate() as identity:
        assert not identity.freed
        client = privline.ClientHandshake(NETWORK_KEY, identity, server_identity.public_key, "shs1")
    assert identity.freed and len(frees) == 1
    public = identity.public_key  # still known
    assert "closed" in repr(identity) and public.hex() in repr(identity)
    with pytest.raises(ValueError):
        privline.ClientHandshake(NETWORK_KEY, identity, server_identity.public_key)
    with pytest.raises(ValueError):
        privline.ServerHandshake(NETWORK_KEY, identity)
    identity.close()  # idempotent
    identity.free()
    assert len(frees) == 1
    # a handshake outlives its identity
    server = privline.ServerHandshake(SSB_NETWORK_KEY, server_identity, "shs1")
    client.free()
    client = privline.ClientHandshake(SSB_NETWORK_KEY, privline.Identity(bytes(range(40, 72))), server_identity.public_key, "shs1")
    gc.collect()
    handshake_messages(client, server)
    with client.into_channel() as a, server.into_channel() as b:
        assert b.peer_key == privline.Identity(bytes(range(40, 72))).public_key
        assert b.open(a.seal(b"still works")).payload == b"still works"
    # garbage collection frees identities, also in reference cycles
    before = len(frees)
    refs = []
    for _ in range(50):
        identity = privline.Identity.generate()
        cycle = [identity]
        cycle.append(cycle)
        refs.append(weakref.ref(identity))
        del identity, cycle
    gc.collect()
    assert all(ref() is None for ref in refs)
    assert len(frees) - before == 50


def test_one_identity_makes_many_handshakes_without_deriving_again(client_identity, server_identity, monkeypatch):
    lib = libmod.lib()
    calls = []
    for name in (
        "privline_identity_new",
        "privline_identity_public_from_seed",
        "privline_handshake_new_client",
        "privline_handshake_new_server",
    ):
        monkeypatch.setattr(lib, name, lambda *args, _name=name: calls.append(_name) or 6)
    for protocol in ("privline1", "shs1"):
        for _ in range(20):
            client, server = make_pair(client_identity, server_identity, SSB_NETWORK_KEY, protocol)
            assert server.peer_key == client_identity.public_key
            client.free()
            server.free()
    assert calls == []


def test_one_identity_from_many_threads(client_identity, server_identity):
    errors = []
    channels = []
    lock = threading.Lock()

    def work(protocol):
        try:
            for _ in range(25):
                client, server = make_pair(client_identity, server_identity, SSB_NETWORK_KEY, protocol)
                assert server.open(client.seal(b"t")).payload == b"t"
                with lock:
                    channels.extend((client, server))
        except Exception as error:  # pragma: no cover
            errors.append(error)

    threads = [threading.Thread(target=work, args=("shs1" if i % 2 else "privline1",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(channels) == 300
    for channel in channels:
        channel.free()


# --------------------------------------------------------------------------
# protocols


def test_protocol_values():
    assert Protocol.of("shs1") is Protocol.SHS1 and Protocol.of("SHS1") is Protocol.SHS1
    assert Protocol.of("privline1") is Protocol.PRIVLINE1
    assert Protocol.of(Protocol.SHS1) is Protocol.SHS1
    assert Protocol.of(1) is Protocol.PRIVLINE1 and Protocol.of(2) is Protocol.SHS1
    assert Protocol.SHS1 == "shs1" and str(Protocol.SHS1) == "shs1"
    assert Protocol.SHS1.c_value == 2 and Protocol.PRIVLINE1.c_value == 1
    for bad in ("shs2", "privline/2", "", 0, 3, None, True):
        with pytest.raises(ValueError):
            Protocol.of(bad)


def test_unknown_protocol_is_refused_before_the_library(client_identity, server_identity):
    with pytest.raises(ValueError):
        privline.ClientHandshake(NETWORK_KEY, client_identity, server_identity.public_key, "tls")
    with pytest.raises(ValueError):
        privline.ServerHandshake(NETWORK_KEY, server_identity, protocol=7)
    # the raw call refuses unknown values too
    lib = libmod.lib()
    handle = libmod.HandshakeHandle()
    result = lib.privline_handshake_new_server_with_identity(
        3, NETWORK_KEY, server_identity._h, ctypes.byref(handle)
    )
    assert result == privline.InvalidArgument.result and not handle


def test_default_protocol_is_privline1(pair, client_identity, server_identity):
    client, server = pair
    assert client.protocol is Protocol.PRIVLINE1 and server.protocol is Protocol.PRIVLINE1
    handshake = privline.ServerHandshake(NETWORK_KEY, server_identity)
    assert handshake.protocol is Protocol.PRIVLINE1
    handshake.free()
    with pytest.raises(privline.NotSupported):
        client.export_shs1_keys()
    # a privline/1 channel sizes its seals like privline_sealed_len
    for size in (0, 1, 65518, 65519, 200000):
        assert client.sealed_len(size) == privline.sealed_len(size) == len(client.seal(bytes(size)))
    assert client.sealed_len(5, pad_block=64) == 2 + 64 + 16
    with pytest.raises(privline.InvalidArgument):
        client.sealed_len(5, pad_block=privline.OPEN_MAX_OUTPUT_LEN + 1)
    with pytest.raises(privline.InvalidArgument):
        client.sealed_len(5, pad_block=2**70)  # not wrapped around by ctypes
    with pytest.raises(OverflowError):
        client.sealed_len(2**64 + 5)  # not wrapped around by ctypes
    with pytest.raises(ValueError):
        client.sealed_len(-1)


# --------------------------------------------------------------------------
# the handshake


def test_shs1_handshake_messages(client_identity, server_identity):
    client = privline.ClientHandshake(SSB_NETWORK_KEY, client_identity, server_identity.public_key, "shs1")
    server = privline.ServerHandshake(SSB_NETWORK_KEY, server_identity, protocol=Protocol.SHS1)
    assert client.protocol is Protocol.SHS1 and server.protocol is Protocol.SHS1
    assert "shs1" in repr(client)
    m1 = client.step().output
    m2 = server.step(m1).output
    m3 = client.step(m2).output
    assert (len(m1), len(m2), len(m3)) == (64, 64, 112)
    assert server.step(m3) == (112, b"", Status.AUTHORIZE_PEER)
    assert server.peer_key == client_identity.public_key
    server.authorize(True)
    step = server.step()
    assert step.status is Status.DONE and len(step.output) == 80
    assert client.step(step.output) == (80, b"", Status.DONE)
    with client.into_channel() as a, server.into_channel() as b:
        assert a.protocol is Protocol.SHS1 and b.protocol is Protocol.SHS1
        assert a.peer_key == server_identity.public_key and b.peer_key == client_identity.public_key
        assert "shs1" in repr(a)


def test_shs1_handshake_one_byte_at_a_time(client_identity, server_identity):
    client = privline.ClientHandshake(SSB_NETWORK_KEY, client_identity, server_identity.public_key, "shs1")
    server = privline.ServerHandshake(SSB_NETWORK_KEY, server_identity, "shs1")
    messages = handshake_messages(client, server, chunk=1)
    assert [(who, len(m)) for who, m in messages] == [("client", 64), ("server", 64), ("client", 112), ("server", 80)]
    with client.into_channel() as a, server.into_channel() as b:
        assert b.open(a.seal(b"ok")).payload == b"ok"


def test_shs1_first_boxes_ride_with_the_last_message(client_identity, server_identity):
    client = privline.ClientHandshake(SSB_NETWORK_KEY, client_identity, server_identity.public_key, "shs1")
    server = privline.ServerHandshake(SSB_NETWORK_KEY, server_identity, "shs1")
    m3 = client.step(server.step(client.step().output).output).output
    server.step(m3)
    server.authorize(True)
    m4 = server.step().output
    with server.into_channel() as server_channel:
        early = server_channel.seal(b"first boxes ride with M4")
        step = client.step(m4 + early)
        assert step.consumed == len(m4) == 80 and step.status is Status.DONE
        with client.into_channel() as client_channel:
            assert client_channel.open(early).payload == b"first boxes ride with M4"


def test_shs1_handshake_failures(client_identity, server_identity):
    # another network key: the server refuses M1
    client = privline.ClientHandshake(OTHER_NETWORK_KEY, client_identity, server_identity.public_key, "shs1")
    server = privline.ServerHandshake(SSB_NETWORK_KEY, server_identity, "shs1")
    with pytest.raises(privline.M1BadMac):
        server.step(client.step().output)
    # another server key: M3 does not open at the server
    impostor = privline.Identity.generate()
    client = privline.ClientHandshake(SSB_NETWORK_KEY, client_identity, impostor.public_key, "shs1")
    server = privline.ServerHandshake(SSB_NETWORK_KEY, server_identity, "shs1")
    m3 = client.step(server.step(client.step().output).output).output
    with pytest.raises(privline.M3DoesNotOpen):
        server.step(m3)
    # a refused client
    client = privline.ClientHandshake(SSB_NETWORK_KEY, client_identity, server_identity.public_key, "shs1")
    server = privline.ServerHandshake(SSB_NETWORK_KEY, server_identity, "shs1")
    handshake_messages(client, server, accept=False)
    with pytest.raises(privline.ClientRefused):
        server.step()
    # a damaged M4
    client = privline.ClientHandshake(SSB_NETWORK_KEY, client_identity, server_identity.public_key, "shs1")
    server = privline.ServerHandshake(SSB_NETWORK_KEY, server_identity, "shs1")
    server.step(client.step(server.step(client.step().output).output).output)
    server.authorize(True)
    m4 = bytearray(server.step().output)
    m4[7] ^= 2
    with pytest.raises(privline.M4DoesNotOpen):
        client.step(m4)
    with pytest.raises(privline.InvalidServerKey):
        privline.ClientHandshake(SSB_NETWORK_KEY, client_identity, bytes(32), "shs1")


@pytest.mark.parametrize("client_protocol,server_protocol", [("shs1", "privline1"), ("privline1", "shs1")])
def test_protocol_mismatch_fails_at_m1(client_identity, server_identity, client_protocol, server_protocol):
    client = privline.ClientHandshake(NETWORK_KEY, client_identity, server_identity.public_key, client_protocol)
    server = privline.ServerHandshake(NETWORK_KEY, server_identity, server_protocol)
    m1 = client.step().output
    assert len(m1) == 64  # both protocols open with 64 bytes
    with pytest.raises(privline.M1BadMac) as info:
        server.step(m1)
    assert info.value.fatal
    with pytest.raises(privline.M1BadMac):
        server.into_channel()


# --------------------------------------------------------------------------
# box-stream


@pytest.mark.parametrize("size", [1, 4096, 4097, 1024 * 1024])
@pytest.mark.parametrize("direction", ["c2s", "s2c"])
def test_shs1_round_trip(shs1, size, direction):
    client, server = shs1
    sender, receiver = (client, server) if direction == "c2s" else (server, client)
    data = os.urandom(size)
    assert sender.sealed_len(size) == boxed_len(size)
    wire = sender.seal(data)
    assert len(wire) == boxed_len(size)
    boxes = -(-size // MAX_BODY)
    got = []
    rest = memoryview(wire)
    for index in range(boxes):
        consumed, kind, payload = receiver.open(rest)
        assert kind is RecordType.DATA
        assert len(payload) == min(MAX_BODY, size - index * MAX_BODY)
        assert consumed == len(payload) + HEADER
        got.append(payload)
        rest = rest[consumed:]
    assert len(rest) == 0
    assert receiver.open(b"") == (0, RecordType.NONE, b"")
    assert b"".join(got) == data
    # again, from a bytearray with open_all
    wire = sender.seal(bytearray(data))
    consumed, opened = receiver.open_all(bytearray(wire))
    assert consumed == len(wire) and len(opened) == boxes
    assert b"".join(r.payload for r in opened) == data


def test_shs1_empty_seal_writes_nothing(shs1):
    client, server = shs1
    assert client.sealed_len(0) == 0
    assert client.seal(b"") == b""
    assert client.seal() == b""
    # the nonce did not move: the next box opens
    assert server.open(client.seal(b"next")).payload == b"next"


def test_shs1_boxes_one_byte_at_a_time(shs1):
    client, server = shs1
    payloads = [b"x", os.urandom(1000), os.urandom(9000)]
    wire = b"".join(client.seal(p) for p in payloads) + client.seal_close()
    got, closed = open_byte_by_byte(server, wire)
    assert closed and server.peer_closed
    assert b"".join(got) == b"".join(payloads)
    assert [len(p) for p in got] == [1, 1000, 4096, 4096, 808]


@pytest.mark.parametrize("first", ["client", "server"])
def test_shs1_goodbye_both_ways(shs1, first):
    client, server = shs1
    one, other = (client, server) if first == "client" else (server, client)
    goodbye = check_half_close(one, other)
    assert len(goodbye) == HEADER
    assert not other.peer_closed
    assert other.open(goodbye) == (HEADER, RecordType.CLOSE, b"")
    assert other.peer_closed
    assert one.open(other.seal_close()).record_type is RecordType.CLOSE
    assert one.peer_closed
    # anything after the goodbye is fatal
    with pytest.raises(privline.RecordAfterClose) as info:
        other.open(goodbye)
    assert info.value.fatal


def test_open_all_stops_after_the_goodbye(shs1):
    client, server = shs1
    wire = client.seal(b"a") + client.seal(b"") + client.seal(b"b" * 5000) + client.seal_close()
    consumed, records = server.open_all(wire + b"trailing bytes")
    assert consumed == len(wire)
    assert [r.record_type for r in records] == [RecordType.DATA] * 3 + [RecordType.CLOSE]
    assert [len(r.payload) for r in records] == [1, 4096, 904, 0]


def test_shs1_has_no_key_update_padding_or_session_id(shs1):
    client, server = shs1
    keys = client.export_shs1_keys()
    for call in (
        lambda: client.update_key(),
        lambda: client.session_id,
        lambda: client.seal(b"padded", pad_block=16),
        lambda: client.seal_close(pad_block=64),
        lambda: client.sealed_len(10, pad_block=2),
    ):
        with pytest.raises(privline.NotSupported) as info:
            call()
        assert not info.value.fatal
        assert info.value.name == "PRIVLINE_RESULT_NOT_SUPPORTED"
    # nothing changed: same keys and nonces, the stream goes on
    assert client.export_shs1_keys() == keys
    assert not client.close_sent
    assert client.sealed_len(10, pad_block=1) == client.sealed_len(10) == 10 + HEADER
    assert server.open(client.seal(b"unpadded", pad_block=1)).payload == b"unpadded"
    assert server.open(client.seal(b"after")).payload == b"after"
    with pytest.raises(privline.NotSupported):
        server.session_id
    assert client.open(server.seal(b"back")).payload == b"back"


@pytest.mark.parametrize("where", ["header", "body mac", "body end"])
def test_a_tampered_box_is_fatal(client_identity, server_identity, where):
    client, server = shs1_pair(client_identity, server_identity)
    wire = bytearray(client.seal(b"tamper with me"))
    index = {"header": 5, "body mac": HEADER - 1, "body end": len(wire) - 1}[where]
    wire[index] ^= 0x40
    with pytest.raises(privline.RecordDoesNotOpen) as info:
        server.open(wire)
    assert info.value.fatal and isinstance(info.value, privline.ChannelError)
    # sticky, and no plaintext ever came out
    with pytest.raises(privline.RecordDoesNotOpen):
        server.open(client.seal(b"fresh"))
    with pytest.raises(privline.RecordDoesNotOpen):
        server.seal(b"x")


def test_a_replayed_or_reordered_box_is_fatal(client_identity, server_identity):
    client, server = shs1_pair(client_identity, server_identity)
    first = client.seal(b"1")
    second = client.seal(b"2")
    with pytest.raises(privline.RecordDoesNotOpen):
        server.open(second)
    client, server = shs1_pair(client_identity, server_identity)
    box = client.seal(b"once")
    assert server.open(box).payload == b"once"
    with pytest.raises(privline.RecordDoesNotOpen):
        server.open(box)
    del first


def test_shs1_buffer_sizing(shs1, monkeypatch):
    client, server = shs1
    lib = libmod.lib()
    results = count_seal_calls(client, monkeypatch)
    sizes = [1, 100, 4095, 4096, 4097, 8192, 65518, 65519, 300000]
    for size in sizes:
        wire = client.seal(bytes(size))
        assert len(wire) == client.sealed_len(size) == boxed_len(size)
        assert server.open_all(wire)[0] == len(wire)
    # the channel's sealed_len was exact: one call each, never too small
    assert results == [0] * len(sizes)
    # a box needs room for its whole body: a raw open with less asks for it
    # and changes nothing
    wire = client.seal(b"z" * 100)
    consumed = ctypes.c_size_t(99)
    out_len = ctypes.c_size_t(10)
    kind = ctypes.c_uint32(9)
    out = ctypes.create_string_buffer(10)
    result = lib.privline_channel_open(
        server._h, wire, len(wire), ctypes.byref(consumed), out, ctypes.byref(out_len), ctypes.byref(kind)
    )
    assert result == privline.BufferTooSmall.result
    assert out_len.value == 100 and consumed.value == 0
    assert server.open(wire) == (100 + HEADER, RecordType.DATA, b"z" * 100)
    # and the binding's open buffer, sized for the largest box, is enough
    assert server._open_out.size == MAX_BODY


# --------------------------------------------------------------------------
# exported keys


def test_exported_keys_match_between_the_two_ends(shs1):
    client, server = shs1
    c_enc_key, c_enc_nonce, c_dec_key, c_dec_nonce = sb.split_keys(client.export_shs1_keys())
    s_enc_key, s_enc_nonce, s_dec_key, s_dec_nonce = sb.split_keys(server.export_shs1_keys())
    assert (c_enc_key, c_enc_nonce) == (s_dec_key, s_dec_nonce)
    assert (c_dec_key, c_dec_nonce) == (s_enc_key, s_enc_nonce)
    assert c_enc_key != c_dec_key
    assert len(client.export_shs1_keys()) == privline.SHS1_KEYS_LEN
    # three boxes later, the nonces moved on together (two per box)
    wire = client.seal(os.urandom(3 * MAX_BODY))
    after = sb.split_keys(client.export_shs1_keys())
    assert after[0] == c_enc_key and after[1] == sb.next_nonce(c_enc_nonce, 6)
    assert sb.split_keys(server.export_shs1_keys())[3] == c_enc_nonce  # not opened yet
    server.open_all(wire)
    assert sb.split_keys(server.export_shs1_keys())[2:] == after[:2]
    assert sb.split_keys(server.export_shs1_keys())[:2] == (s_enc_key, s_enc_nonce)  # untouched


def test_exported_keys_are_the_keys_in_use(shs1):
    """What the channel seals opens with a plain secretbox and the exported
    keys, and boxes made from them open in the channel."""
    client, server = shs1
    enc_key, enc_nonce, _, _ = sb.split_keys(client.export_shs1_keys())
    message = os.urandom(5000)
    bodies, goodbye, nonce = sb.unbox_all(client.seal(message), enc_key, enc_nonce)
    assert bodies == [message[:4096], message[4096:]] and not goodbye
    server_view = server.open_all(sb.box(message[:4096], enc_key, enc_nonce) + sb.box(message[4096:], enc_key, sb.next_nonce(enc_nonce, 2)))
    assert [r.payload for r in server_view[1]] == bodies
    # the server's goodbye, read from outside
    _, _, dec_key, dec_nonce = sb.split_keys(client.export_shs1_keys())
    assert sb.unbox_all(server.seal_close(), dec_key, dec_nonce) == ([], True, sb.next_nonce(dec_nonce))


def test_forged_boxes(client_identity, server_identity):
    # a box forged with the right keys opens: the export is complete
    client, server = shs1_pair(client_identity, server_identity)
    key, nonce, _, _ = sb.split_keys(client.export_shs1_keys())
    assert server.open(sb.box(b"forged", key, nonce)) == (6 + HEADER, RecordType.DATA, b"forged")
    assert server.open(sb.box(b"", key, sb.next_nonce(nonce, 2))) == (HEADER, RecordType.DATA, b"")
    assert server.open(sb.goodbye(key, sb.next_nonce(nonce, 4))).record_type is RecordType.CLOSE
    # a header announcing more than 4096 bytes is fatal as soon as it is there
    client, server = shs1_pair(client_identity, server_identity)
    key, nonce, _, _ = sb.split_keys(client.export_shs1_keys())
    long_header = sb.box(b"x" * 10, key, nonce, announced=MAX_BODY + 1)[:HEADER]
    with pytest.raises(privline.RecordTooLong) as info:
        server.open(long_header)
    assert info.value.fatal and isinstance(info.value, privline.ChannelError)
    assert info.value.name == "PRIVLINE_RESULT_RECORD_TOO_LONG"
    with pytest.raises(privline.RecordTooLong):
        server.open(b"")
    # exactly 4096 is allowed
    client, server = shs1_pair(client_identity, server_identity)
    key, nonce, _, _ = sb.split_keys(client.export_shs1_keys())
    full = os.urandom(MAX_BODY)
    assert server.open(sb.box(full, key, nonce)).payload == full


def test_freed_channel_and_export(shs1):
    client, _ = shs1
    client.free()
    with pytest.raises(ValueError):
        client.export_shs1_keys()
    with pytest.raises(ValueError):
        client.sealed_len(1)
    assert client.protocol is Protocol.SHS1
