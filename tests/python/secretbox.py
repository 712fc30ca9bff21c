"""A slow, stdlib-only NaCl ``crypto_secretbox`` (XSalsa20 and Poly1305)
and box-stream framing, for checking SHS1 channels from the outside: the
tests decrypt what the library seals with the keys
``Channel.export_shs1_keys`` reports, and forge boxes it must open (or
refuse). Written for small messages only; not for any real use."""

from __future__ import annotations

import struct
from typing import List, Tuple

_MASK = 0xFFFFFFFF
_SIGMA = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)  # "expand 32-byte k"
_P1305 = (1 << 130) - 5


def _rotl(value: int, shift: int) -> int:
    value &= _MASK
    return ((value << shift) & _MASK) | (value >> (32 - shift))


def _quarter(x: List[int], a: int, b: int, c: int, d: int) -> None:
    x[b] ^= _rotl(x[a] + x[d], 7)
    x[c] ^= _rotl(x[b] + x[a], 9)
    x[d] ^= _rotl(x[c] + x[b], 13)
    x[a] ^= _rotl(x[d] + x[c], 18)


def _rounds(state: List[int]) -> List[int]:
    x = list(state)
    for _ in range(10):
        # columns
        _quarter(x, 0, 4, 8, 12)
        _quarter(x, 5, 9, 13, 1)
        _quarter(x, 10, 14, 2, 6)
        _quarter(x, 15, 3, 7, 11)
        # rows
        _quarter(x, 0, 1, 2, 3)
        _quarter(x, 5, 6, 7, 4)
        _quarter(x, 10, 11, 8, 9)
        _quarter(x, 15, 12, 13, 14)
    return x


def _state(key: bytes, middle: bytes) -> List[int]:
    k = struct.unpack("<8I", key)
    m = struct.unpack("<4I", middle)
    return [
        _SIGMA[0], k[0], k[1], k[2],
        k[3], _SIGMA[1], m[0], m[1],
        m[2], m[3], _SIGMA[2], k[4],
        k[5], k[6], k[7], _SIGMA[3],
    ]


def _hsalsa20(key: bytes, nonce16: bytes) -> bytes:
    x = _rounds(_state(key, nonce16))
    return struct.pack("<8I", *(x[i] for i in (0, 5, 10, 15, 6, 7, 8, 9)))


def _xsalsa20_stream(key: bytes, nonce: bytes, length: int) -> bytes:
    subkey = _hsalsa20(key, nonce[:16])
    out = bytearray()
    counter = 0
    while len(out) < length:
        state = _state(subkey, nonce[16:24] + struct.pack("<Q", counter))
        mixed = _rounds(state)
        out += struct.pack("<16I", *((a + b) & _MASK for a, b in zip(mixed, state)))
        counter += 1
    return bytes(out[:length])


def _poly1305(message: bytes, key: bytes) -> bytes:
    r = int.from_bytes(key[:16], "little") & 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF
    s = int.from_bytes(key[16:32], "little")
    acc = 0
    for i in range(0, len(message), 16):
        block = message[i : i + 16] + b"\x01"
        acc = (acc + int.from_bytes(block, "little")) * r % _P1305
    return ((acc + s) & ((1 << 128) - 1)).to_bytes(16, "little")


def seal(message: bytes, nonce: bytes, key: bytes) -> bytes:
    """``crypto_secretbox_easy``: the 16-byte tag, then the ciphertext."""
    stream = _xsalsa20_stream(key, nonce, 32 + len(message))
    cipher = bytes(a ^ b for a, b in zip(message, stream[32:]))
    return _poly1305(cipher, stream[:32]) + cipher


def open_(boxed: bytes, nonce: bytes, key: bytes) -> bytes:
    """``crypto_secretbox_open_easy``; ``ValueError`` when it does not
    verify."""
    tag, cipher = boxed[:16], boxed[16:]
    stream = _xsalsa20_stream(key, nonce, 32 + len(cipher))
    if _poly1305(cipher, stream[:32]) != tag:
        raise ValueError("secretbox does not open")
    return bytes(a ^ b for a, b in zip(cipher, stream[32:]))


def next_nonce(nonce: bytes, step: int = 1) -> bytes:
    """``nonce`` as a 24-byte big-endian counter, plus ``step``."""
    return ((int.from_bytes(nonce, "big") + step) % (1 << 192)).to_bytes(24, "big")


def split_keys(keys: bytes) -> Tuple[bytes, bytes, bytes, bytes]:
    """``export_shs1_keys`` output as (encryption key, encryption nonce,
    decryption key, decryption nonce)."""
    assert len(keys) == 112
    return keys[:32], keys[32:56], keys[56:88], keys[88:112]


def box(body: bytes, key: bytes, nonce: bytes, announced: int = -1) -> bytes:
    """One box-stream box of ``body`` under ``key`` at ``nonce`` (the header
    uses ``nonce``, the body ``nonce + 1``); ``announced`` overrides the
    length the header claims."""
    sealed_body = seal(body, next_nonce(nonce), key)
    length = len(body) if announced < 0 else announced
    header = struct.pack(">H", length) + sealed_body[:16]
    return seal(header, nonce, key) + sealed_body[16:]


def goodbye(key: bytes, nonce: bytes) -> bytes:
    """The box-stream goodbye: a header of 18 zero bytes."""
    return seal(bytes(18), nonce, key)


def unbox_all(wire: bytes, key: bytes, nonce: bytes) -> Tuple[List[bytes], bool, bytes]:
    """Opens every box in ``wire``: (bodies, whether the goodbye came, the
    next nonce)."""
    bodies: List[bytes] = []
    pos = 0
    while pos < len(wire):
        header = open_(wire[pos : pos + 34], nonce, key)
        pos += 34
        if header == bytes(18):
            return bodies, True, next_nonce(nonce)
        (length,) = struct.unpack(">H", header[:2])
        body = open_(header[2:] + wire[pos : pos + length], next_nonce(nonce), key)
        pos += length
        bodies.append(body)
        nonce = next_nonce(nonce, 2)
    return bodies, False, nonce
