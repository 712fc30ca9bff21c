"""The asyncio streams variant (privline.aio), run with asyncio.run."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

import privline
from privline import aio

from conftest import NETWORK_KEY, OTHER_NETWORK_KEY


async def _echo(reader: aio.SecureReader, writer: aio.SecureWriter) -> None:
    while True:
        record = await reader.read_record()
        if record is None:
            break
        writer.write(record)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def _close_after_tail(reader: aio.SecureReader, writer: aio.SecureWriter) -> None:
    """Against _echo: a last piece, then this side's close (privline/1) or
    goodbye (SHS1); the echo server sends the piece back and closes too, and
    after its close every read is empty."""
    writer.write(b"tail")
    writer.write_eof()
    assert await reader.read() == b"tail"
    assert reader.at_eof()
    assert await reader.read(10) == b""
    assert await reader.read_record() is None
    writer.close()
    await writer.wait_closed()


async def _serve(server_identity, callback=_echo, **kwargs):
    failures = []
    server = await aio.start_server(
        callback, "127.0.0.1", 0, NETWORK_KEY, server_identity,
        on_failure=lambda error, peer: failures.append(error), **kwargs,
    )
    port = server.sockets[0].getsockname()[1]
    return server, port, failures


def test_echo_with_streams_api(client_identity, server_identity):
    async def main():
        server, port, failures = await _serve(server_identity)
        async with server:
            reader, writer = await aio.open_connection(
                "127.0.0.1", port, NETWORK_KEY, client_identity, server_identity.public_key, timeout=5
            )
            assert reader.peer_key == server_identity.public_key == writer.peer_key
            assert len(writer.session_id) == 32
            writer.write(b"line one\nline two\n")
            writer.writelines([b"exactly", b"12345"])
            await writer.drain()
            assert await reader.readline() == b"line one\n"
            assert await reader.readuntil(b"two\n") == b"line two\n"
            assert await reader.readexactly(12) == b"exactly12345"
            for size in (0, 1, 65518, 65519, 200000):
                data = os.urandom(size)
                writer.write(data)
                await writer.drain()
                assert await reader.readexactly(size) == data
            await _close_after_tail(reader, writer)
            assert failures == []

    asyncio.run(main())


def test_concurrent_clients_and_record_boundaries(client_identity, server_identity):
    async def one(port, payload):
        reader, writer = await aio.open_connection(
            "127.0.0.1", port, NETWORK_KEY, client_identity, server_identity.public_key
        )
        writer.write(payload)
        writer.write(b"")
        writer.write(b"last")
        await writer.drain()
        records = []
        expected = max(1, -(-len(payload) // 65518)) + 2
        while len(records) < expected:
            records.append(await reader.read_record())
        writer.close_write()  # the close record (write_eof is the same)
        assert writer.close_sent
        assert await reader.read_record() is None
        writer.close()  # releases the channel
        with pytest.raises(ValueError):
            writer.write(b"after close")
        return records

    async def main():
        server, port, _ = await _serve(server_identity)
        async with server:
            payloads = [os.urandom(n) for n in (0, 10, 70000, 1024 * 1024)]
            results = await asyncio.gather(*(one(port, p) for p in payloads))
        for payload, records in zip(payloads, results):
            assert records[-2:] == [b"", b"last"]
            assert b"".join(records[:-2]) == payload

    asyncio.run(main())


def test_four_mib_both_ways_at_once(client_identity, server_identity):
    data = os.urandom(4 * 1024 * 1024)

    async def main():
        server, port, _ = await _serve(server_identity)
        async with server:
            reader, writer = await aio.open_connection(
                "127.0.0.1", port, NETWORK_KEY, client_identity, server_identity.public_key
            )

            async def send():
                for i in range(0, len(data), 100000):
                    writer.write(data[i : i + 100000])
                    await writer.drain()
                writer.write_eof()

            sender = asyncio.ensure_future(send())
            echoed = await reader.read()
            await sender
            writer.close()
            return echoed

    assert asyncio.run(main()) == data


def test_refusal_wrong_keys_and_silence_until_the_deadline(client_identity, server_identity):
    async def main():
        server, port, failures = await _serve(
            server_identity, authorize=lambda key: key != client_identity.public_key, handshake_timeout=0.5
        )
        async with server:
            started = time.monotonic()
            with pytest.raises(privline.Truncated):
                await aio.open_connection("127.0.0.1", port, NETWORK_KEY, client_identity, server_identity.public_key)
            assert time.monotonic() - started >= 0.45
            other = privline.Identity.generate()
            with pytest.raises(privline.Truncated):
                await aio.open_connection("127.0.0.1", port, OTHER_NETWORK_KEY, other, server_identity.public_key)
            with pytest.raises(privline.Truncated):
                await aio.open_connection("127.0.0.1", port, NETWORK_KEY, other, other.public_key)
            # an async authorizer that accepts
            reader, writer = await aio.open_connection(
                "127.0.0.1", port, NETWORK_KEY, other, server_identity.public_key
            )
            writer.write(b"ok")
            assert await reader.read(2) == b"ok"
            writer.close()
            await asyncio.sleep(0.05)
        return [type(e) for e in failures]

    assert asyncio.run(main()) == [privline.ClientRefused, privline.M1BadMac, privline.M3DoesNotOpen]


def test_async_authorizer(client_identity, server_identity):
    async def authorize(key):
        await asyncio.sleep(0.01)
        return key == client_identity.public_key

    async def main():
        server, port, failures = await _serve(server_identity, authorize=authorize)
        async with server:
            reader, writer = await aio.open_connection(
                "127.0.0.1", port, NETWORK_KEY, client_identity, server_identity.public_key
            )
            writer.write(b"ping")
            assert await reader.readexactly(4) == b"ping"
            writer.close()
            await writer.wait_closed()
        assert failures == []

    asyncio.run(main())


def test_client_timeout_on_a_silent_server(client_identity, server_identity):
    async def main():
        async def silent(reader, writer):
            try:
                await reader.read()  # until the client gives up
            finally:
                writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            started = time.monotonic()
            with pytest.raises(privline.Timeout):
                await aio.open_connection(
                    "127.0.0.1", port, NETWORK_KEY, client_identity, server_identity.public_key, timeout=0.3
                )
            assert time.monotonic() - started < 3
            server.close()

    asyncio.run(main())


def test_truncation_and_bad_records(client_identity, server_identity):
    async def truncating(reader, writer):
        writer.write(b"half")
        await writer.drain()
        writer.close(send_close=False)

    async def main():
        server, port, _ = await _serve(server_identity, callback=truncating)
        async with server:
            reader, writer = await aio.open_connection(
                "127.0.0.1", port, NETWORK_KEY, client_identity, server_identity.public_key
            )
            assert await reader.read(100) == b"half"
            with pytest.raises(privline.Truncated):
                await reader.read(100)
            with pytest.raises(privline.Truncated):
                await reader.readexactly(1)
            assert isinstance(reader.exception(), privline.Truncated)
            writer.close()

    asyncio.run(main())


def test_incomplete_read_at_clean_close(client_identity, server_identity):
    async def short(reader, writer):
        writer.write(b"abc")
        writer.close()

    async def main():
        server, port, _ = await _serve(server_identity, callback=short)
        async with server:
            reader, writer = await aio.open_connection(
                "127.0.0.1", port, NETWORK_KEY, client_identity, server_identity.public_key
            )
            with pytest.raises(asyncio.IncompleteReadError) as info:
                await reader.readexactly(10)
            assert info.value.partial == b"abc"
            assert reader.at_eof()
            writer.close()

    asyncio.run(main())


def test_server_accept_on_raw_streams_keeps_early_records(client_identity, server_identity):
    """aio.accept on raw streams; the server's first record goes out in the
    same write as M4 (via the transport buffer)."""

    async def main():
        done = asyncio.get_running_loop().create_future()

        async def raw(reader, writer):
            secure_reader, secure_writer = await aio.accept(reader, writer, NETWORK_KEY, server_identity, timeout=5)
            secure_writer.write(b"welcome")
            await secure_writer.drain()
            done.set_result(await secure_reader.read())
            secure_writer.close()

        server = await asyncio.start_server(raw, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            reader, writer = await aio.open_connection(
                "127.0.0.1", port, NETWORK_KEY, client_identity, server_identity.public_key
            )
            assert await reader.readexactly(7) == b"welcome"
            writer.write(b"thanks")
            writer.write_eof()
            assert await done == b"thanks"
            assert await reader.read() == b""
            writer.close()

    asyncio.run(main())


# --------------------------------------------------------------------------
# SHS1 (secret-handshake and box-stream)


def test_shs1_echo_with_streams_api(client_identity, server_identity):
    async def main():
        server, port, failures = await _serve(server_identity, protocol="shs1")
        async with server:
            reader, writer = await aio.open_connection(
                "127.0.0.1", port, NETWORK_KEY, client_identity, server_identity.public_key, timeout=5,
                protocol="shs1",
            )
            assert reader.protocol is privline.Protocol.SHS1 and writer.protocol == "shs1"
            assert reader.peer_key == server_identity.public_key == writer.peer_key
            with pytest.raises(privline.NotSupported):
                writer.session_id
            with pytest.raises(privline.NotSupported):
                reader.session_id
            with pytest.raises(privline.NotSupported):
                writer.update_key()
            writer.write(b"line one\nline two\n")
            writer.write(b"")  # nothing on the wire
            await writer.drain()
            assert await reader.readline() == b"line one\n"
            assert await reader.readline() == b"line two\n"
            for size in (1, 4096, 4097, 1024 * 1024):
                data = os.urandom(size)
                writer.write(data)
                await writer.drain()
                assert await reader.readexactly(size) == data
            # the echo server answers box by box: at most 4096 bytes each
            writer.write(b"r" * 5000)
            await writer.drain()
            assert await reader.read_record() == b"r" * 4096
            assert await reader.read_record() == b"r" * 904
            await _close_after_tail(reader, writer)
            assert failures == []

    asyncio.run(main())


def test_shs1_concurrent_clients_share_the_server_identity(client_identity, server_identity):
    async def one(port, payload):
        reader, writer = await aio.open_connection(
            "127.0.0.1", port, NETWORK_KEY, privline.Identity.generate(), server_identity.public_key,
            protocol=privline.Protocol.SHS1,
        )
        writer.write(payload)
        writer.write_eof()
        echoed = await reader.read()
        writer.close()
        return echoed

    async def main():
        server, port, failures = await _serve(server_identity, protocol="shs1")
        async with server:
            payloads = [os.urandom(n) for n in (0, 10, 4097, 70000, 1024 * 1024)]
            results = await asyncio.gather(*(one(port, p) for p in payloads))
        assert results == payloads
        assert failures == []

    asyncio.run(main())


def test_shs1_truncation(client_identity, server_identity):
    async def truncating(reader, writer):
        writer.write(b"half")
        await writer.drain()
        writer.close(send_close=False)  # no goodbye

    async def main():
        server, port, _ = await _serve(server_identity, callback=truncating, protocol="shs1")
        async with server:
            reader, writer = await aio.open_connection(
                "127.0.0.1", port, NETWORK_KEY, client_identity, server_identity.public_key, protocol="shs1"
            )
            assert await reader.read(100) == b"half"
            with pytest.raises(privline.Truncated):
                await reader.read(100)
            assert isinstance(reader.exception(), privline.Truncated)
            writer.close()

    asyncio.run(main())


@pytest.mark.parametrize("client_protocol,server_protocol", [("shs1", "privline1"), ("privline1", "shs1")])
def test_protocol_mismatch(client_identity, server_identity, client_protocol, server_protocol):
    async def main():
        server, port, failures = await _serve(server_identity, handshake_timeout=0.3, protocol=server_protocol)
        async with server:
            with pytest.raises(privline.Truncated) as info:
                await aio.open_connection(
                    "127.0.0.1", port, NETWORK_KEY, client_identity, server_identity.public_key, timeout=5,
                    protocol=client_protocol,
                )
            assert info.value.received == 0
            for _ in range(200):
                if failures:
                    break
                await asyncio.sleep(0.01)
        return [type(e) for e in failures]

    assert asyncio.run(main()) == [privline.M1BadMac]


def test_shs1_refuses_padding_and_unknown_protocols(client_identity, server_identity):
    async def main():
        with pytest.raises(privline.NotSupported):
            await aio.open_connection(
                "127.0.0.1", 1, NETWORK_KEY, client_identity, server_identity.public_key, pad_block=32,
                protocol="shs1",
            )
        with pytest.raises(privline.NotSupported):
            await aio.start_server(lambda r, w: None, "127.0.0.1", 0, NETWORK_KEY, server_identity,
                                   pad_block=32, protocol="shs1")
        with pytest.raises(ValueError):
            await aio.open_connection(
                "127.0.0.1", 1, NETWORK_KEY, client_identity, server_identity.public_key, protocol="tls"
            )

    asyncio.run(main())
