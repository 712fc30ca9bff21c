"""Loading ``libprivline`` and declaring its C functions for ctypes.

The library is found, in this order:

1. the path in the environment variable ``PRIVLINE_LIBRARY``;
2. the copy inside this package (``libprivline.so`` beside this file), which
   ``pip install ./bindings/python`` and the wheels put there;
3. the repository's own ``target/release/libprivline.so`` when this package
   is used from a checkout without that copy (the directories above this
   file are searched for one holding privline's ``Cargo.toml`` and that
   library);
4. the system loader (``ctypes.util.find_library("privline")``, then
   ``libprivline.so``).

It is loaded on first use, so that importing :mod:`privline` never fails and
a command line with bad arguments is reported as such.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading
from pathlib import Path
from typing import Optional

__all__ = ["lib", "library_path", "IdentityHandle", "HandshakeHandle", "ChannelHandle", "LibraryNotFound"]


class LibraryNotFound(ImportError):
    """``libprivline`` could not be found or loaded."""


class _Identity(ctypes.Structure):
    """The opaque ``privline_identity``."""


class _Handshake(ctypes.Structure):
    """The opaque ``privline_handshake``."""


class _Channel(ctypes.Structure):
    """The opaque ``privline_channel``."""


IdentityHandle = ctypes.POINTER(_Identity)
HandshakeHandle = ctypes.POINTER(_Handshake)
ChannelHandle = ctypes.POINTER(_Channel)

_u8p = ctypes.c_void_p  # uint8_t * and const uint8_t *: bytes, ctypes arrays, addresses or None
_size = ctypes.c_size_t
_sizep = ctypes.POINTER(ctypes.c_size_t)
_u32 = ctypes.c_uint32
_u32p = ctypes.POINTER(ctypes.c_uint32)
_boolp = ctypes.POINTER(ctypes.c_bool)

# name: (restype, argtypes) for every function of include/privline.h.
SIGNATURES = {
    "privline_version": (ctypes.c_char_p, []),
    "privline_result_str": (ctypes.c_char_p, [_u32]),
    "privline_result_is_fatal": (ctypes.c_bool, [_u32]),
    "privline_network_key_len": (_size, []),
    "privline_seed_len": (_size, []),
    "privline_public_key_len": (_size, []),
    "privline_session_id_len": (_size, []),
    "privline_handshake_max_message_len": (_size, []),
    "privline_handshake_total_len": (_size, []),
    "privline_record_overhead_len": (_size, []),
    "privline_record_max_payload_len": (_size, []),
    "privline_record_max_len": (_size, []),
    "privline_open_max_output_len": (_size, []),
    "privline_sealed_len": (_size, [_size]),
    "privline_identity_generate": (_u32, [_u8p, _u8p]),
    "privline_identity_public_from_seed": (_u32, [_u8p, _u8p]),
    "privline_identity_new": (_u32, [_u8p, _size, ctypes.POINTER(IdentityHandle)]),
    "privline_identity_public_key": (_u32, [IdentityHandle, _u8p]),
    "privline_identity_free": (None, [IdentityHandle]),
    "privline_handshake_new_client_with_identity": (
        _u32,
        [_u32, _u8p, IdentityHandle, _u8p, ctypes.POINTER(HandshakeHandle)],
    ),
    "privline_handshake_new_server_with_identity": (
        _u32,
        [_u32, _u8p, IdentityHandle, ctypes.POINTER(HandshakeHandle)],
    ),
    "privline_handshake_new_client": (
        _u32,
        [_u8p, _u8p, _u8p, ctypes.POINTER(HandshakeHandle)],
    ),
    "privline_handshake_new_server": (_u32, [_u8p, _u8p, ctypes.POINTER(HandshakeHandle)]),
    "privline_handshake_step": (
        _u32,
        [HandshakeHandle, _u8p, _size, _sizep, _u8p, _sizep, _u32p],
    ),
    "privline_handshake_peer_key": (_u32, [HandshakeHandle, _u8p]),
    "privline_handshake_authorize": (_u32, [HandshakeHandle, ctypes.c_bool]),
    "privline_handshake_into_channel": (
        _u32,
        [ctypes.POINTER(HandshakeHandle), ctypes.POINTER(ChannelHandle)],
    ),
    "privline_handshake_free": (None, [HandshakeHandle]),
    "privline_channel_seal": (_u32, [ChannelHandle, _u8p, _size, _size, _u8p, _sizep]),
    "privline_channel_close": (_u32, [ChannelHandle, _size, _u8p, _sizep]),
    "privline_channel_update_key": (_u32, [ChannelHandle, _size, _u8p, _sizep]),
    "privline_channel_open": (
        _u32,
        [ChannelHandle, _u8p, _size, _sizep, _u8p, _sizep, _u32p],
    ),
    "privline_channel_session_id": (_u32, [ChannelHandle, _u8p]),
    "privline_channel_peer_key": (_u32, [ChannelHandle, _u8p]),
    "privline_channel_peer_closed": (_u32, [ChannelHandle, _boolp]),
    "privline_channel_sealed_len": (_size, [ChannelHandle, _size, _size]),
    "privline_channel_protocol": (_u32, [ChannelHandle, _u32p]),
    "privline_channel_export_shs1_keys": (_u32, [ChannelHandle, _u8p]),
    "privline_channel_free": (None, [ChannelHandle]),
}

_LIB_NAMES = {
    "darwin": "libprivline.dylib",
    "win32": "privline.dll",
}
_lock = threading.Lock()
_lib: Optional[ctypes.CDLL] = None
_path: Optional[str] = None


def _library_file_name() -> str:
    return _LIB_NAMES.get(sys.platform, "libprivline.so")


def _packaged_library() -> Optional[str]:
    """The library installed inside this package, if any."""
    candidate = Path(__file__).resolve().parent / _library_file_name()
    return str(candidate) if candidate.is_file() else None


def _checkout_library() -> Optional[str]:
    """The ``target/release`` library of the privline checkout holding this
    package, if any."""
    name = _library_file_name()
    here = Path(__file__).resolve().parent
    for directory in (here, *here.parents):
        cargo = directory / "Cargo.toml"
        candidate = directory / "target" / "release" / name
        if cargo.is_file() and candidate.is_file():
            try:
                text = cargo.read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            if 'name = "privline"' in text:
                return str(candidate)
    return None


def _find() -> str:
    env = os.environ.get("PRIVLINE_LIBRARY")
    if env:
        return env
    packaged = _packaged_library()
    if packaged:
        return packaged
    checkout = _checkout_library()
    if checkout:
        return checkout
    found = ctypes.util.find_library("privline")
    return found or _library_file_name()


def _declare(handle: ctypes.CDLL) -> None:
    for name, (restype, argtypes) in SIGNATURES.items():
        function = getattr(handle, name)
        function.restype = restype
        function.argtypes = argtypes


def lib() -> ctypes.CDLL:
    """The loaded library with every function declared (loaded on first
    call). Raises :class:`LibraryNotFound` when it cannot be loaded."""
    global _lib, _path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            path = _find()
            try:
                handle = ctypes.CDLL(path)
            except OSError as error:
                raise LibraryNotFound(
                    f"cannot load libprivline from {path!r} ({error}); install the package "
                    "with `pip install ./bindings/python` (it carries the library), build "
                    "it with `cargo build --release`, or set PRIVLINE_LIBRARY to its path"
                ) from error
            try:
                _declare(handle)
            except AttributeError as error:
                raise LibraryNotFound(
                    f"{path!r} is not a compatible libprivline: {error}"
                ) from error
            _path = path
            _lib = handle
    return _lib


def library_path() -> str:
    """The path (or name) the library was loaded from; loads it if needed."""
    lib()
    assert _path is not None
    return _path
