"""The blocking socket helpers over socketpairs and TCP on 127.0.0.1."""

from __future__ import annotations

import ctypes
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import privline
from privline import Status

from conftest import NETWORK_KEY, OTHER_NETWORK_KEY, SSB_NETWORK_KEY


def run_in_thread(function, *args, **kwargs):
    """Starts ``function`` in a thread; returns a callable that joins it and
    returns its result or raises its exception."""
    box = {}

    def target():
        try:
            box["result"] = function(*args, **kwargs)
        except BaseException as error:  # noqa: BLE001
            box["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()

    def join(timeout=20):
        thread.join(timeout)
        assert not thread.is_alive(), "thread did not finish"
        if "error" in box:
            raise box["error"]
        return box.get("result")

    return join


def _socketpair(client_identity, server_identity, network_key=NETWORK_KEY, **options):
    """A connected (client, server) pair of SecureSockets over a socketpair;
    `options` (timeout, protocol) go to both ends."""
    a, b = socket.socketpair()
    accepted = run_in_thread(privline.accept, b, network_key, server_identity, **options)
    client = privline.wrap_client(a, network_key, client_identity, server_identity.public_key, **options)
    return client, accepted()


def test_socketpair_round_trip_and_clean_close(client_identity, server_identity):
    client, server = _socketpair(client_identity, server_identity, timeout=5)
    with client, server:
        assert client.session_id == server.session_id
        assert client.peer_key == server_identity.public_key
        assert server.peer_key == client_identity.public_key
        assert client.gettimeout() is None and server.gettimeout() is None
        for size in (0, 1, 65518, 65519, 200000):
            data = os.urandom(size)
            assert client.send(data) == size
            got = b""
            while len(got) < size:
                got += server.recv(size - len(got))
            assert got == data
        server.sendall(b"bye")
        assert client.recv(1) == b"b"
        assert client.recv(10) == b"ye"
        client.close_write()
        assert server.recv(10) == b""  # the peer's clean close
        assert server.recv(10) == b""
        assert server.peer_closed
        server.close()
        assert client.recv(10) == b""
    assert client.closed and server.closed


def test_records_keep_their_boundaries(client_identity, server_identity):
    a, b = socket.socketpair()
    accepted = run_in_thread(privline.accept, b, NETWORK_KEY, server_identity, timeout=5)
    with privline.wrap_client(a, NETWORK_KEY, client_identity, server_identity.public_key) as client:
        with accepted() as server:
            for message in (b"one", b"", b"three"):
                client.sendall(message)
            client.update_key()
            client.sendall(b"after update")
            assert server.recv_record() == b"one"
            assert server.recv_record() == b""
            assert server.recv(2) == b"th"
            assert server.recv_record() == b"ree"
            assert server.recv_record() == b"after update"
            client.close()
            assert server.recv_record() is None


def _manual_server(sock, server_identity, first_records=b"", byte_by_byte=False):
    """A server that runs the sans-IO handshake itself and sends M4 and its
    first records in one write (or every byte in its own write)."""
    handshake = privline.ServerHandshake(NETWORK_KEY, server_identity)
    pending = bytearray()
    while True:
        step = handshake.step(pending)
        del pending[: step.consumed]
        if step.status is Status.AUTHORIZE_PEER:
            handshake.authorize(True)
            continue
        if step.status is Status.DONE:
            channel = handshake.into_channel()
            wire = step.output + channel.seal(first_records)
            break
        if step.output:
            if byte_by_byte:
                for i in range(len(step.output)):
                    sock.sendall(step.output[i : i + 1])
                    time.sleep(0.0005)
            else:
                sock.sendall(step.output)
        elif not step.consumed:
            pending += sock.recv(4096)
    if byte_by_byte:
        for i in range(len(wire)):
            sock.sendall(wire[i : i + 1])
    else:
        sock.sendall(wire)
    return channel


@pytest.mark.parametrize("byte_by_byte", [False, True])
def test_bytes_after_m4_are_kept_for_the_channel(client_identity, server_identity, byte_by_byte):
    a, b = socket.socketpair()
    done = run_in_thread(_manual_server, b, server_identity, b"early words", byte_by_byte)
    with privline.wrap_client(a, NETWORK_KEY, client_identity, server_identity.public_key) as client:
        assert client.recv_record() == b"early words"
        channel = done()
        b.sendall(channel.seal_close())
        assert client.recv(1) == b""
    b.close()


def test_truncation_is_reported(client_identity, server_identity):
    client, server = _socketpair(client_identity, server_identity)
    server.sendall(b"partial")
    server.socket.close()  # no close record
    assert client.recv(100) == b"partial"
    with pytest.raises(privline.Truncated) as info:
        client.recv(100)
    assert isinstance(info.value, EOFError)
    with pytest.raises(privline.Truncated):  # it sticks
        client.recv(100)
    assert not client.peer_closed
    client.close()
    server.close()


def test_with_block_ending_in_an_exception_sends_no_close_record(client_identity, server_identity):
    client, server = _socketpair(client_identity, server_identity)
    with pytest.raises(RuntimeError):
        with server:
            server.sendall(b"half of it")
            raise RuntimeError("cut short")
    assert server.closed and server.channel.closed
    assert client.recv(100) == b"half of it"
    with pytest.raises(privline.Truncated):  # not a clean end
        client.recv(100)
    client.close()
    with pytest.raises(OSError):
        client.sendall(b"x")
    with pytest.raises(OSError):
        client.recv(1)
    assert client.channel.closed


def test_close_write_then_close(client_identity, server_identity):
    a, b = socket.socketpair()
    accepted = run_in_thread(privline.accept, b, NETWORK_KEY, server_identity)
    with privline.wrap_client(a, NETWORK_KEY, client_identity, server_identity.public_key) as client:
        server = accepted()
        client.sendall(bytearray(b"all of it"))
        client.close_write()
        assert client.channel.close_sent and not client.channel.closed
        assert server.recv_all() == b"all of it" and server.peer_closed
        server.close()  # sends its close record, then releases
        assert client.recv(1) == b""
    assert client.closed and client.channel.closed


def test_a_damaged_record_is_fatal(client_identity, server_identity):
    client, server = _socketpair(client_identity, server_identity)
    record = bytearray(server._channel.seal(b"genuine"))
    record[-1] ^= 1
    server.socket.sendall(bytes(record))
    with pytest.raises(privline.RecordDoesNotOpen):
        client.recv(100)
    with pytest.raises(privline.RecordDoesNotOpen):
        client.sendall(b"x")
    client.close()  # no close record can be sealed; closing still works
    server.close()


@pytest.fixture
def echo_server(server_identity):
    """A threaded echo server on 127.0.0.1 that records failed handshakes."""
    failures = []

    def echo(conn):
        while True:
            data = conn.recv(65536)
            if not data:
                return
            conn.sendall(data)

    def start(**kwargs):
        server = privline.Server(
            ("127.0.0.1", 0), NETWORK_KEY, server_identity, echo,
            on_failure=lambda error, peer: failures.append(error), **kwargs,
        )
        stop = run_in_thread(server.serve_forever, 0.05)
        started.append((server, stop))
        return server

    started = []
    start.failures = failures
    yield start
    for server, stop in started:
        server.close()
        stop()


def _echo_once(address, client_identity, server_identity, data):
    with privline.connect(address, NETWORK_KEY, client_identity, server_identity.public_key, timeout=5) as conn:
        conn.sendall(data)
        conn.close_write()
        return conn.recv_all()


def test_tcp_server_with_concurrent_clients(echo_server, client_identity, server_identity):
    server = echo_server()
    payloads = [os.urandom(n) for n in (0, 1, 1000, 65519, 300000, 2 * 1024 * 1024)]
    with ThreadPoolExecutor(len(payloads)) as pool:
        results = list(pool.map(lambda p: _echo_once(server.address, client_identity, server_identity, p), payloads))
    assert results == payloads
    assert echo_server.failures == []


def test_send_and_recv_from_two_threads(echo_server, client_identity, server_identity):
    server = echo_server()
    data = os.urandom(4 * 1024 * 1024)
    with privline.connect(server.address, NETWORK_KEY, client_identity, server_identity.public_key) as conn:

        def writer():
            view = memoryview(data)
            for i in range(0, len(data), 50000):
                conn.sendall(view[i : i + 50000])
            conn.close_write()

        done = run_in_thread(writer)
        assert conn.recv_all() == data
        done()


def test_refused_client_meets_silence_until_the_deadline(echo_server, client_identity, server_identity):
    server = echo_server(authorize=lambda key: False, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(privline.Truncated):
        privline.connect(server.address, NETWORK_KEY, client_identity, server_identity.public_key, timeout=5)
    assert time.monotonic() - started >= 0.45
    time.sleep(0.05)
    assert [type(e) for e in echo_server.failures] == [privline.ClientRefused]


def test_authorize_sees_the_client_key(echo_server, client_identity, server_identity):
    seen = []
    server = echo_server(authorize=lambda key: seen.append(key) or key == client_identity.public_key)
    assert _echo_once(server.address, client_identity, server_identity, b"hi") == b"hi"
    assert seen == [client_identity.public_key]


def test_wrong_network_key_and_wrong_server_key(echo_server, client_identity, server_identity):
    server = echo_server(timeout=0.3)
    with pytest.raises(privline.Truncated):
        privline.connect(server.address, OTHER_NETWORK_KEY, client_identity, server_identity.public_key)
    impostor = privline.Identity.generate()
    with pytest.raises(privline.Truncated):
        privline.connect(server.address, NETWORK_KEY, client_identity, impostor.public_key)
    time.sleep(0.05)
    assert [type(e) for e in echo_server.failures] == [privline.M1BadMac, privline.M3DoesNotOpen]


def test_client_times_out_on_a_silent_server(client_identity, server_identity):
    listener = socket.create_server(("127.0.0.1", 0))
    try:
        started = time.monotonic()
        with pytest.raises(privline.Timeout) as info:
            privline.connect(listener.getsockname(), NETWORK_KEY, client_identity, server_identity.public_key, timeout=0.3)
        assert isinstance(info.value, TimeoutError)
        assert 0.25 <= time.monotonic() - started < 3
    finally:
        listener.close()


def test_server_handshake_timeout(server_identity):
    a, b = socket.socketpair()
    started = time.monotonic()
    with pytest.raises(privline.Timeout):
        privline.accept(b, NETWORK_KEY, server_identity, timeout=0.3)
    assert time.monotonic() - started >= 0.25
    assert a.recv(10) == b""  # closed, having said nothing
    a.close()


def test_invalid_server_key_fails_before_sending(client_identity):
    a, b = socket.socketpair()
    with pytest.raises(privline.InvalidServerKey):
        privline.wrap_client(a, NETWORK_KEY, client_identity, bytes(32))
    assert b.recv(10) == b""
    b.close()


# --------------------------------------------------------------------------
# SHS1 (secret-handshake and box-stream)


def _shs1_socketpair(client_identity, server_identity, network_key=SSB_NETWORK_KEY):
    return _socketpair(client_identity, server_identity, network_key, timeout=5, protocol="shs1")


def test_shs1_socketpair_round_trip_and_goodbye(client_identity, server_identity):
    client, server = _shs1_socketpair(client_identity, server_identity)
    with client, server:
        assert client.protocol is privline.Protocol.SHS1 and server.protocol == "shs1"
        assert client.peer_key == server_identity.public_key
        assert server.peer_key == client_identity.public_key
        for who in (client, server):
            with pytest.raises(privline.NotSupported):
                who.session_id
        enc = client.channel.export_shs1_keys()
        dec = server.channel.export_shs1_keys()
        assert enc[:56] == dec[56:] and enc[56:] == dec[:56]
        for size in (1, 4096, 4097, 1024 * 1024):
            data = os.urandom(size)
            sent = run_in_thread(client.send, data)  # more than a socket buffer holds
            got = b""
            while len(got) < size:
                got += server.recv(size - len(got))
            assert got == data
            assert sent() == size
        # boxes keep their boundaries, at most 4096 bytes each
        server.sendall(b"a" * 5000)
        server.sendall(b"")  # nothing on the wire
        server.sendall(b"b")
        assert client.recv_record() == b"a" * 4096
        assert client.recv_record() == b"a" * 904
        assert client.recv_record() == b"b"
        # no key update: nothing sent, the stream goes on
        with pytest.raises(privline.NotSupported):
            client.update_key()
        client.sendall(b"after")
        assert server.recv(100) == b"after"
        client.close_write()  # the goodbye
        assert server.recv(10) == b""
        assert server.peer_closed
        server.sendall(b"still open this way")
        server.close()
        assert client.recv_all() == b"still open this way"
        assert client.peer_closed
    assert client.closed and server.closed


def test_shs1_truncation_is_reported(client_identity, server_identity):
    client, server = _shs1_socketpair(client_identity, server_identity)
    server.sendall(b"partial")
    server.socket.close()  # no goodbye
    server.channel.close()
    assert client.recv(100) == b"partial"
    with pytest.raises(privline.Truncated) as info:
        client.recv(100)
    assert isinstance(info.value, EOFError)
    assert not client.peer_closed
    client.close()


def test_shs1_tampered_box_is_fatal(client_identity, server_identity):
    client, server = _shs1_socketpair(client_identity, server_identity)
    box = bytearray(server.channel.seal(b"genuine"))
    box[HEADER_BYTES + 2] ^= 1
    server.socket.sendall(bytes(box))
    with pytest.raises(privline.RecordDoesNotOpen):
        client.recv(100)
    with pytest.raises(privline.RecordDoesNotOpen):
        client.sendall(b"x")
    client.close()
    server.close()


HEADER_BYTES = 34


def test_shs1_server_reuses_one_identity(echo_server, client_identity, server_identity, monkeypatch):
    lib = privline._lib.lib()
    made = []
    for name in ("privline_identity_new", "privline_handshake_new_server", "privline_handshake_new_client"):
        monkeypatch.setattr(lib, name, lambda *args, _name=name: made.append(_name) or 6)
    real = lib.privline_handshake_new_server_with_identity
    identities = []

    def counting(protocol, network_key, identity, out):
        identities.append((protocol, ctypes.addressof(identity.contents)))
        return real(protocol, network_key, identity, out)

    monkeypatch.setattr(lib, "privline_handshake_new_server_with_identity", counting)
    server = echo_server(protocol="shs1")
    assert server.protocol is privline.Protocol.SHS1

    def once(data):
        with privline.connect(
            server.address, NETWORK_KEY, client_identity, server_identity.public_key, timeout=5, protocol="shs1"
        ) as conn:
            conn.sendall(data)
            conn.close_write()
            return conn.recv_all()

    payloads = [os.urandom(n) for n in (0, 1, 4096, 4097, 300000, 1024 * 1024)]
    with ThreadPoolExecutor(len(payloads)) as pool:
        assert list(pool.map(once, payloads)) == payloads
    assert echo_server.failures == []
    assert made == []  # no identity derived again, no seed-based handshake
    assert len(identities) == len(payloads)
    assert set(identities) == {(2, ctypes.addressof(server_identity._h.contents))}


@pytest.mark.parametrize("client_protocol,server_protocol", [("shs1", "privline1"), ("privline1", "shs1")])
def test_protocol_mismatch_fails_cleanly(echo_server, client_identity, server_identity, client_protocol, server_protocol):
    server = echo_server(timeout=0.3, protocol=server_protocol)
    with pytest.raises(privline.Truncated) as info:
        privline.connect(
            server.address, NETWORK_KEY, client_identity, server_identity.public_key, timeout=5,
            protocol=client_protocol,
        )
    assert info.value.received == 0  # the server never answered
    for _ in range(200):
        if echo_server.failures:
            break
        time.sleep(0.01)
    assert [type(e) for e in echo_server.failures] == [privline.M1BadMac]


def test_shs1_padding_is_refused_before_connecting(client_identity, server_identity):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        address = probe.getsockname()  # nobody listens there afterwards
    with pytest.raises(privline.NotSupported):
        privline.connect(address, NETWORK_KEY, client_identity, server_identity.public_key, pad_block=16, protocol="shs1")
    with pytest.raises(ValueError):
        privline.connect(address, NETWORK_KEY, client_identity, server_identity.public_key, protocol="shs2")
    with pytest.raises(privline.NotSupported):
        privline.Server(("127.0.0.1", 0), NETWORK_KEY, server_identity, lambda conn: None, pad_block=16, protocol="shs1")
    with pytest.raises(TypeError):
        privline.Server(("127.0.0.1", 0), NETWORK_KEY, server_identity.seed, lambda conn: None)
