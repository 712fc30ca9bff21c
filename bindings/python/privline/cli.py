"""``python -m privline keygen|server|client``: the example peers.

keygen [--out FILE]
    prints ``secret <64 hex>`` and ``public <64 hex>``; with ``--out FILE``
    writes the secret (64 hex digits) to FILE instead, created with mode 0600
    and never over an existing file, and prints only ``public <64 hex>``.
server --listen HOST:PORT --network-key-file FILE --secret-file FILE
       [--allow PUBHEX]... [--allow-file FILE]
       [--once] [--handshake-timeout SECONDS] [--protocol privline1|shs1]
    an echo server for many clients at once. Prints ``listening HOST:PORT``
    (the real port when 0 was given), ``accepted <client key>`` per
    accepted client and one line per failed one, all on stderr. A failed or
    refused handshake's connection stays open and silent until the
    handshake deadline (SECONDS from accept, default 10), then is closed.
    ``--once``: exit after the first connection, 0 if it completed the
    handshake and a clean close, else 1.
    ``--allow-file``: accept only the client keys listed in FILE, one per
    line (``#`` comments); SIGHUP reloads it, and a reload that does not
    parse keeps the old list and says so on stderr.
client --connect HOST:PORT --network-key-file FILE --secret-file FILE
       --server-key HEX [--protocol privline1|shs1]
    sends stdin as data records, then close; writes the echoed payloads to
    stdout until the server's close. Exit 0 on a clean close, 1 with a
    one-line reason on stderr on any failure.

--protocol: privline1 (privline/1, the default) or shs1 (Scuttlebutt
secret-handshake v1 and box-stream, whose close is the box-stream goodbye;
for the main Scuttlebutt network the network key is
d4a1cb88a66f02f8db635ce26441cc5dac1b08420ceaac230839b755845a9ffb).
--secret-file: the secret as 64 hex digits (a seed) or 128 (seed then
public key, the libsodium / Scuttlebutt form; the public half must belong
to the seed), or as those 32 or 64 bytes raw; a file that group or others
may read is refused. --network-key-file: 32 bytes, raw or 64 hex digits.
--secret HEX and --network-key HEX still work but put the key on the
command line, where other local users can read it: each prints a warning
line on stderr.

Bad arguments: usage on stderr, exit status 2. Hex is lowercase on output;
upper case is accepted on input.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import signal
import socket
import sys
import threading
import warnings
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

__all__ = ["main"]

SILENCE_LIMIT = 10.0  # seconds the client waits for a server that says nothing
DEFAULT_HANDSHAKE_TIMEOUT = 10.0  # the server's handshake deadline, from accept
_CHUNK = 65518  # stdin bytes per data record

_HEX32 = re.compile(r"[0-9a-fA-F]{64}\Z")
_SECRET = re.compile(r"(?:[0-9a-fA-F]{64}){1,2}\Z")
PROTOCOLS = ("privline1", "shs1")

USAGE = """\
usage: python -m privline keygen [--out FILE]
       python -m privline server --listen HOST:PORT --network-key-file FILE --secret-file FILE
                                 [--allow PUBHEX]... [--allow-file FILE] [--once]
                                 [--handshake-timeout SECONDS] [--protocol privline1|shs1]
       python -m privline client --connect HOST:PORT --network-key-file FILE --secret-file FILE
                                 --server-key HEX [--protocol privline1|shs1]
  (--network-key HEX and --secret HEX instead of the files still work, but warn)
"""


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class _Parser(argparse.ArgumentParser):
    """Prints the whole usage on any error and exits with status 2."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        sys.stderr.write(f"privline: {message}\n")
        sys.stderr.write(USAGE)
        sys.exit(2)

    def format_usage(self) -> str:
        return USAGE

    def format_help(self) -> str:
        return USAGE + (__doc__ or "").split("\n", 1)[1]


def _hex32(text: str) -> bytes:
    if not _HEX32.match(text):
        raise argparse.ArgumentTypeError(f"expected 64 hex digits, got {text!r}")
    return bytes.fromhex(text)


def _secret(text: str) -> bytes:
    if not _SECRET.match(text):
        raise argparse.ArgumentTypeError("expected 64 or 128 hex digits")
    return bytes.fromhex(text)


def _protocol(text: str) -> str:
    if text not in PROTOCOLS:
        raise argparse.ArgumentTypeError(f"expected privline1 or shs1, got {text!r}")
    return text


def _host_port(text: str, listen: bool) -> Tuple[str, int]:
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or ":" in host:
            raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    if not host or not port_text.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    port = int(port_text)
    if not (0 if listen else 1) <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port out of range in {text!r}")
    return host, port


def _listen_address(text: str) -> Tuple[str, int]:
    return _host_port(text, True)


def _connect_address(text: str) -> Tuple[str, int]:
    return _host_port(text, False)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _read_key_file(path: str, secret: bool, lengths: Tuple[int, ...]) -> bytes:
    """A key from a file: hex (either case, surrounding whitespace ignored)
    or raw, of one of ``lengths`` bytes. A secret file that group or others
    may read is refused, as ssh refuses such a private key."""
    kind = "secret file" if secret else "key file"
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as error:
        raise argparse.ArgumentTypeError(f"cannot open the {kind} {path}: {_reason(error)}") from None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if secret and mode & 0o077:
            raise argparse.ArgumentTypeError(
                f"permissions {mode & 0o7777:04o} for the secret file {path} are too open: it must not be "
                f"readable by group or others (chmod 600 {path})")
        content = f.read(2 * max(lengths) + 64)
    text = content.strip(b" \t\r\n")
    for length in lengths:
        if len(text) == 2 * length and re.fullmatch(rb"[0-9a-fA-F]+", text):
            return bytes.fromhex(text.decode())
    for length in lengths:
        if len(content) == length:
            return content
    raise argparse.ArgumentTypeError(
        f"the {kind} {path} holds neither {' or '.join(map(str, lengths))} raw bytes nor "
        f"{' or '.join(str(2 * n) for n in lengths)} hex digits")


def _secret_file(path: str) -> bytes:
    return _read_key_file(path, True, (32, 64))


def _network_key_file(path: str) -> bytes:
    return _read_key_file(path, False, (32,))


def read_allow_file(path: str) -> List[bytes]:
    """The public keys listed in an allow file: one per line (64 hex
    digits), blank lines and ``#`` comments ignored. Raises ValueError with
    ``path:line: ...`` for a line that is not a key, OSError when unreadable."""
    keys = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            text = line.split("#", 1)[0].strip()
            if not text:
                continue
            if not _HEX32.match(text):
                raise ValueError(f"{path}:{number}: not a public key (64 hex digits): {text[:80]}")
            keys.append(bytes.fromhex(text))
    return keys


def _warn_key_on_command_line(option: str, file_option: str) -> None:
    """As the C peers do: one line on stderr, always (a terminal or not)."""
    _say(f"privline: warning: {option} puts the key on the command line, where other local users can "
         f"read it (ps); use {file_option}")


class _Once(argparse.Action):
    """An option that may be given only once."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: Optional[str] = None) -> None:
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} given twice")
        setattr(namespace, self.dest, values)


def _key_options(command: argparse.ArgumentParser) -> None:
    network = command.add_mutually_exclusive_group(required=True)
    network.add_argument("--network-key-file", dest="network_key", type=_network_key_file, metavar="FILE",
                         action=_Once)
    network.add_argument("--network-key", dest="network_key_hex", type=_hex32, metavar="HEX", action=_Once)
    secret = command.add_mutually_exclusive_group(required=True)
    secret.add_argument("--secret-file", dest="secret", type=_secret_file, metavar="FILE", action=_Once)
    secret.add_argument("--secret", dest="secret_hex", type=_secret, metavar="HEX", action=_Once)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m privline", add_help=True)
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    commands.required = True
    keygen = commands.add_parser("keygen", help="print a new identity")
    keygen.add_argument("--out", metavar="FILE", action=_Once)

    server = commands.add_parser("server", help="run the echo server")
    server.add_argument("--listen", required=True, type=_listen_address, metavar="HOST:PORT", action=_Once)
    _key_options(server)
    server.add_argument("--allow", action="append", type=_hex32, default=[], metavar="PUBHEX")
    server.add_argument("--allow-file", metavar="FILE", action=_Once)
    server.add_argument("--once", action="store_true")
    server.add_argument("--handshake-timeout", type=_seconds, metavar="SECONDS", action=_Once)
    server.add_argument("--protocol", type=_protocol, metavar="privline1|shs1", action=_Once)

    client = commands.add_parser("client", help="run the echo client")
    client.add_argument("--connect", required=True, type=_connect_address, metavar="HOST:PORT", action=_Once)
    _key_options(client)
    client.add_argument("--server-key", required=True, type=_hex32, metavar="HEX", action=_Once)
    client.add_argument("--protocol", type=_protocol, metavar="privline1|shs1", action=_Once)
    return parser


def _close_name(protocol: str) -> str:
    """What the protocol's clean end is called in messages."""
    return "goodbye" if protocol == "shs1" else "close"


def _show(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reason(error: BaseException) -> str:
    from .errors import Error

    if isinstance(error, Error):
        return error.message
    if isinstance(error, OSError):
        if error.errno:
            return os.strerror(error.errno)
        if error.strerror:
            return error.strerror
    return str(error) or type(error).__name__


# --------------------------------------------------------------------------
# keygen


def _keygen(out: Optional[str] = None) -> int:
    from .core import Identity

    identity = Identity.generate()
    if out is not None:
        try:
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError as error:
            extra = " (refusing to overwrite it)" if isinstance(error, FileExistsError) else ""
            _say(f"privline keygen: cannot create {out}: {_reason(error)}{extra}")
            return 1
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (identity.seed.hex() + "\n").encode())
            os.fsync(fd)
        except OSError as error:
            os.close(fd)
            os.unlink(out)
            _say(f"privline keygen: cannot write {out}: {_reason(error)}")
            return 1
        os.close(fd)
        sys.stdout.write(f"public {identity.public_key.hex()}\n")
        sys.stdout.flush()
        return 0
    sys.stdout.write(f"secret {identity.seed.hex()}\npublic {identity.public_key.hex()}\n")
    sys.stdout.flush()
    return 0


# --------------------------------------------------------------------------
# server


def _bind(host: str, port: int) -> socket.socket:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _server_exception(loop: asyncio.AbstractEventLoop, context: Dict[str, Any]) -> None:
    """One line for what asyncio would log as a traceback."""
    error = context.get("exception")
    if error is not None and not isinstance(error, (ConnectionError, asyncio.CancelledError)):
        _say(f"privline server: {context.get('message', 'error')}: {_reason(error)}")


async def _server(args: argparse.Namespace) -> int:
    from . import aio
    from .core import Identity
    from .errors import Error, Timeout, Truncated

    identity: Identity = args.identity  # one identity for every connection
    asyncio.get_running_loop().set_exception_handler(_server_exception)
    allowed: Optional[Set[bytes]] = set(args.allow) if args.allow or args.allow_file else None
    if args.allow_file:
        allowed = set(args.allow) | set(args.allow_keys)

        def reload_allow_file() -> None:
            nonlocal allowed
            try:
                keys = read_allow_file(args.allow_file)
            except (OSError, ValueError) as error:
                old = len(allowed or ()) - len(set(args.allow))
                _say(f"privline server: reloading the allow file failed, keeping the old list ({old} keys): "
                     f"{_reason(error) if isinstance(error, OSError) else error}")
                return
            allowed = set(args.allow) | set(keys)
            _say(f"reloaded {len(keys)} allowed keys from {args.allow_file}")

        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload_allow_file)
        except (NotImplementedError, AttributeError, RuntimeError):
            pass  # no SIGHUP here (not POSIX, or not the main thread)
    host, port = args.listen
    handshake_timeout = args.handshake_timeout or DEFAULT_HANDSHAKE_TIMEOUT
    try:
        listener = _bind(host, port)
    except OSError as error:
        _say(f"privline server: cannot listen on {_show(host, port)}: {_reason(error)}")
        return 1
    loop = asyncio.get_running_loop()
    first_done: "asyncio.Future[int]" = loop.create_future()
    started = False
    server: Optional[asyncio.AbstractServer] = None

    async def connection(raw_reader: asyncio.StreamReader, raw_writer: asyncio.StreamWriter) -> None:
        nonlocal started
        if args.once and started:
            raw_writer.close()
            return
        first = not started
        started = True
        if args.once and server is not None:
            server.close()  # stop listening; this connection goes on
        peer = raw_writer.get_extra_info("peername")
        where = _show(peer[0], peer[1]) if isinstance(peer, tuple) else str(peer)
        refused: List[bytes] = []

        def authorize(key: bytes) -> bool:
            if allowed is None or key in allowed:
                return True
            refused.append(key)
            return False

        def failed(error: BaseException) -> None:
            if refused:
                _say(f"refused {refused[0].hex()} ({where}): not in the --allow list")
            elif isinstance(error, Timeout):
                _say(f"failed {where}: handshake: timed out")
            elif isinstance(error, Truncated):
                _say(f"failed {where}: handshake: the client hung up")
            elif isinstance(error, Error):
                _say(f"failed {where}: handshake: {error.message}")
            else:
                _say(f"failed {where}: connection error: {_reason(error)}")

        ok = False
        try:
            try:
                reader, writer = await aio.accept(
                    raw_reader, raw_writer, args.network_key, identity,
                    authorize=authorize, timeout=handshake_timeout, on_failure=failed,
                    protocol=args.protocol,
                )
            except (Error, OSError):
                return
            _say(f"accepted {writer.peer_key.hex()}")
            try:
                while True:
                    payload = await reader.read_record()
                    if payload is None:
                        break
                    writer.write(payload)
                    await writer.drain()
                writer.close()
                try:
                    await writer.wait_closed()
                except OSError:
                    pass
                ok = True
            except Truncated:
                _say(f"failed {where}: truncated: the client hung up without {_close_name(args.protocol)}")
                writer.close(send_close=False)
            except Error as error:
                _say(f"failed {where}: bad record: {error.message}")
                writer.close(send_close=False)
            except OSError as error:
                _say(f"failed {where}: connection error: {_reason(error)}")
                writer.close(send_close=False)
        finally:
            if first and not first_done.done():
                first_done.set_result(0 if ok else 1)

    server = await asyncio.start_server(connection, sock=listener)
    _say(f"listening {_show(host, listener.getsockname()[1])}")
    if args.once:
        status = await first_done
        server.close()
        return status
    async with server:
        await server.serve_forever()
    return 0


# --------------------------------------------------------------------------
# client


class _Failure(Exception):
    """A one-line reason for the client to exit with status 1."""


def _stdin_reader(
    loop: asyncio.AbstractEventLoop, queue: "asyncio.Queue[Optional[bytes]]", room: threading.Semaphore
) -> None:
    """Reads stdin in a daemon thread (the raw descriptor, so that no lock
    of sys.stdin is held at exit) and hands the chunks to the loop, at most
    a few ahead of the sender (``room``); None marks the end."""
    try:
        while True:
            room.acquire()
            try:
                chunk = os.read(0, _CHUNK)
            except OSError:
                chunk = b""
            loop.call_soon_threadsafe(queue.put_nowait, chunk or None)
            if not chunk:
                return
    except Exception:  # noqa: BLE001 - the loop has gone away
        return


async def _client(args: argparse.Namespace) -> int:
    from . import aio
    from .core import Identity
    from .errors import Error, HandshakeError, Timeout, Truncated

    identity: Identity = args.identity
    host, port = args.connect
    # Failures are reported once, by the caller; nothing else on stderr.
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: None)
    try:
        reader, writer = await aio.open_connection(
            host, port, args.network_key, identity, args.server_key, timeout=SILENCE_LIMIT,
            protocol=args.protocol,
        )
    except Timeout:
        raise _Failure(f"the server was silent for {SILENCE_LIMIT:.0f} seconds during the handshake") from None
    except Truncated as error:
        if not error.received:
            raise _Failure("handshake failed: the server hung up without answering (wrong network key?)") from None
        raise _Failure(
            "handshake failed: the server hung up after M2 (wrong --server-key, or this client is not allowed)"
        ) from None
    except HandshakeError as error:
        raise _Failure(f"handshake failed: {error.message}") from None
    except OSError as error:
        raise _Failure(f"cannot connect to {_show(host, port)}: {_reason(error)}") from None

    loop = asyncio.get_running_loop()
    queue: "asyncio.Queue[Optional[bytes]]" = asyncio.Queue()
    room = threading.Semaphore(4)
    threading.Thread(target=_stdin_reader, args=(loop, queue, room), daemon=True).start()
    sent = 0
    received = 0
    waiting_since = loop.time()  # when the client last heard from the server or began to expect it
    close_sent = False

    def expecting() -> bool:
        return close_sent or received < sent

    async def send() -> None:
        nonlocal sent, close_sent, waiting_since
        while True:
            chunk = await queue.get()
            room.release()
            if not expecting():
                waiting_since = loop.time()
            if chunk is None:
                writer.write_eof()  # the close record, then FIN
                close_sent = True
                await writer.drain()
                return
            writer.write(chunk)
            sent += len(chunk)
            await writer.drain()

    sender = asyncio.ensure_future(send())
    out = sys.stdout.buffer
    try:
        while True:
            read = asyncio.ensure_future(reader.read_record())
            while True:
                watched = {read} if sender.done() else {read, sender}
                done, _ = await asyncio.wait(watched, timeout=0.25, return_when=asyncio.FIRST_COMPLETED)
                if read in done:
                    break
                if sender in done and sender.exception() is not None:
                    read.cancel()
                    raise sender.exception()  # type: ignore[misc]
                if expecting() and loop.time() - waiting_since >= SILENCE_LIMIT:
                    read.cancel()
                    raise _Failure(f"the server was silent for {SILENCE_LIMIT:.0f} seconds")
            payload = read.result()
            waiting_since = loop.time()
            if payload is None:
                writer.close()
                return 0
            received += len(payload)
            try:
                out.write(payload)
                out.flush()
            except OSError as error:
                raise _Failure(f"cannot write to stdout: {_reason(error)}") from None
    except Truncated:
        raise _Failure(f"truncated: the server hung up without {_close_name(args.protocol)}") from None
    except Error as error:
        raise _Failure(f"bad record from the server: {error.message}") from None
    except OSError as error:
        raise _Failure(f"connection lost: {_reason(error)}") from None
    finally:
        sender.cancel()
        if not writer.is_closing():
            writer.close(send_close=False)


def _load_identity(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``args.identity`` from --secret, made once; a 128-digit secret whose
    public half does not belong to its seed is a bad argument."""
    from .core import Identity
    from .errors import InvalidArgument

    if args.secret_hex is not None:
        _warn_key_on_command_line("--secret", "--secret-file")
        args.secret = args.secret_hex
    if args.network_key_hex is not None:
        _warn_key_on_command_line("--network-key", "--network-key-file")
        args.network_key = args.network_key_hex
    if getattr(args, "allow_file", None):
        try:
            args.allow_keys = read_allow_file(args.allow_file)
        except OSError as error:
            parser.error(f"cannot read the allow file {args.allow_file}: {_reason(error)}")
        except ValueError as error:
            parser.error(str(error))
    try:
        args.identity = Identity(args.secret)
    except InvalidArgument:
        parser.error("--secret: the public key half does not belong to the seed")
    if args.protocol is None:
        args.protocol = "privline1"


def _check_server_key(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """An invalid --server-key is a bad argument, found before dialling."""
    from .core import ClientHandshake
    from .errors import InvalidServerKey

    try:
        ClientHandshake(args.network_key, args.identity, args.server_key, args.protocol).free()
    except InvalidServerKey:
        parser.error("--server-key is not a valid identity public key")


# --------------------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Runs the command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    from ._lib import LibraryNotFound

    warnings.simplefilter("ignore")  # stderr carries the contract's lines only
    try:
        if args.command in ("server", "client"):
            _load_identity(parser, args)
        if args.command == "client":
            _check_server_key(parser, args)
        if args.command == "keygen":
            return _keygen(args.out)
        if args.command == "server":
            return asyncio.run(_server(args))
        return asyncio.run(_client(args))
    except _Failure as failure:
        _say(f"privline client: {failure}")
        return 1
    except LibraryNotFound as error:
        _say(str(error))
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _say("output closed")
        return 1


if __name__ == "__main__":
    sys.exit(main())
