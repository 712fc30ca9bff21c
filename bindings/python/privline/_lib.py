"""Loading ``libprivline`` and declaring its C functions for ctypes.

The library is found, in this order:

1. the path in the environment variable ``PRIVLINE_LIBRARY``;
2. the copy inside this package (``libprivline.so`` beside this file), which
   ``pip install ./bindings/python`` and the wheels put there; on x86-64
   Linux, the package's build for the highest x86-64 micro-architecture
   level the CPU supports (``glibc-hwcaps/x86-64-v4/libprivline.so`` or
   ``glibc-hwcaps/x86-64-v3/libprivline.so``, see :func:`x86_64_level`) comes
   before it, when the package has one (it does not when it was built with
   ``PRIVLINE_PYTHON_CPU_COPIES=0``), and the baseline copy is the fallback
   if that one does not load;
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
import platform
import sys
import threading
from pathlib import Path
from typing import AbstractSet, List, Optional

__all__ = [
    "lib", "library_path", "x86_64_level", "IdentityHandle", "HandshakeHandle", "ChannelHandle",
    "LibraryNotFound",
]


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


#: The features each x86-64 micro-architecture level adds to the one below
#: (the x86-64 psABI's definition, as glibc checks it for its glibc-hwcaps
#: directories), under the names of the ``flags`` lines of /proc/cpuinfo:
#: ``pni`` is SSE3, ``lahf_lm`` LAHF/SAHF in 64-bit mode, ``abm`` LZCNT;
#: ``xsave`` is only listed when the kernel enables XSAVE (OSXSAVE), and
#: ``avx``... only when it saves their registers.
X86_64_LEVELS = (
    (2, frozenset({"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"})),
    (3, frozenset({"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"})),
    (4, frozenset({"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"})),
)

#: The levels the package may carry a build for, highest first, with their
#: directories (glibc-hwcaps names).
_CPU_COPIES = ((4, "x86-64-v4"), (3, "x86-64-v3"))


def x86_64_level(flags: AbstractSet[str]) -> int:
    """The x86-64 micro-architecture level (1 to 4) of a CPU with the
    feature ``flags`` (/proc/cpuinfo names): the highest level whose
    features and those of every level below are all present; 1 (baseline
    x86-64) when the v2 set is incomplete."""
    level = 1
    for candidate, required in X86_64_LEVELS:
        if not required <= flags:
            break
        level = candidate
    return level


def _cpu_flags() -> Optional[AbstractSet[str]]:
    """The CPU features every processor in /proc/cpuinfo lists; ``None``
    when they cannot be read."""
    flags: Optional[AbstractSet[str]] = None
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as cpuinfo:
            for line in cpuinfo:
                name, colon, value = line.partition(":")
                if colon and name.strip() == "flags":
                    these = frozenset(value.split())
                    flags = these if flags is None else flags & these
    except OSError:
        return None
    return flags


def _cpu_level() -> int:
    """This machine's x86-64 level when this process runs x86-64 Linux
    code; 1 (the baseline library) otherwise or when in any doubt."""
    if not sys.platform.startswith("linux") or ctypes.sizeof(ctypes.c_void_p) != 8:
        return 1
    if platform.machine() not in ("x86_64", "amd64"):
        return 1
    flags = _cpu_flags()
    return x86_64_level(flags) if flags else 1


def _packaged_libraries(directory: Optional[Path] = None, level: Optional[int] = None) -> List[str]:
    """The libraries inside this package (or ``directory``) to try, best
    first: the build for the highest level up to ``level`` (this CPU's by
    default) that is there, then the baseline library; empty when the
    package holds no baseline library."""
    if directory is None:
        directory = Path(__file__).resolve().parent
    name = _library_file_name()
    baseline = directory / name
    if not baseline.is_file():
        return []
    if level is None:
        level = _cpu_level()
    for copy_level, subdirectory in _CPU_COPIES:
        if copy_level <= level:
            candidate = directory / "glibc-hwcaps" / subdirectory / name
            if candidate.is_file():
                return [str(candidate), str(baseline)]
    return [str(baseline)]


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


def _find() -> List[str]:
    """The paths (or names) to try, in order."""
    env = os.environ.get("PRIVLINE_LIBRARY")
    if env:
        return [env]
    packaged = _packaged_libraries()
    if packaged:
        return packaged
    checkout = _checkout_library()
    if checkout:
        return [checkout]
    found = ctypes.util.find_library("privline")
    return [found or _library_file_name()]


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
            candidates = _find()
            for path in candidates:
                try:
                    handle = ctypes.CDLL(path)
                    break
                except OSError as error:
                    if path == candidates[-1]:
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
