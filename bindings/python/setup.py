"""Build of the privline Python package with libprivline inside it.

The package itself is pure Python (ctypes); pyproject.toml has its
metadata. This file adds the shared library: setuptools-rust builds the
crate two directories up (the repository root) with cargo, in its "no
binding" mode (a plain C cdylib, no Python extension module), and copies it
into the package as ``privline/libprivline.so`` (``.dylib`` on macOS),
where ``privline._lib`` looks first. Cargo builds into
``target/python-build`` of the checkout unless CARGO_TARGET_DIR says
otherwise.

On x86-64 Linux (a native glibc build) the package also carries two copies
of the library compiled for the x86-64 micro-architecture levels v3 (AVX2,
BMI2, FMA...) and v4 (AVX-512), in the glibc-hwcaps layout:
``privline/glibc-hwcaps/x86-64-v3/libprivline.so`` and ``.../x86-64-v4/``.
``privline._lib`` loads the highest one the CPU supports (glibc's own hwcaps
search does not apply to a library loaded by path). The baseline library
already picks its vector code at run time, but poly1305's AVX2 code is only
fast when AVX2 is enabled at compile time (its intrinsics are not inlined
otherwise): the library's share of a 64-byte seal + open is about half as
much in the v3 copy. Each copy is built with
``CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-cpu=x86-64-vN"``
(which cargo adds to the flags of the repository's ``.cargo/config.toml``,
where ``RUSTFLAGS`` would replace them) and ``--target`` (so that build
scripts and proc macros, which run on the build machine, are not compiled
for a CPU it may lack), in its own target directory inside the
baseline's, ``target/python-build/x86-64-v3`` and ``.../x86-64-v4``, so
that the builds do not invalidate each other and an unchanged tree
rebuilds nothing. ``PRIVLINE_PYTHON_CPU_COPIES=0`` leaves the
copies out (a quicker build; the package then loads the baseline library
everywhere).

The wheel is tagged ``py3-none-<platform>``: the library does not use
Python's C API, so any Python 3 on that platform can load it.

Build from a checkout of the repository (``pip install ./bindings/python``,
``pip wheel ./bindings/python``): the Rust crate lives outside this
directory, so a source distribution of this directory alone could not
build, and ``sdist`` refuses.
"""

import os
import platform
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.bdist_wheel import bdist_wheel
from setuptools.command.sdist import sdist
from setuptools_rust import Binding, RustExtension, Strip, build_rust

HERE = Path(__file__).resolve().parent
CRATE = HERE.parent.parent
# The same names privline._lib looks for.
LIBRARY_FILE = {"darwin": "libprivline.dylib", "win32": "privline.dll"}.get(sys.platform, "libprivline.so")


def crate_manifest() -> str:
    manifest = CRATE / "Cargo.toml"
    try:
        text = manifest.read_text(encoding="utf-8")
    except OSError:
        text = ""
    if 'name = "privline"' not in text:
        raise SystemExit(
            f"privline's Python package builds libprivline from the repository's Rust crate, "
            f"expected at {manifest}. Build it from a checkout: pip install ./bindings/python"
        )
    return os.path.relpath(manifest, Path.cwd())


#: The copies built beside the baseline library on x86-64 Linux: the
#: glibc-hwcaps directory names, which are also rustc's target-cpu names.
CPU_LEVELS = ("x86-64-v3", "x86-64-v4")
HOST_TRIPLE = "x86_64-unknown-linux-gnu"


def cpu_level_extensions(target_dir: Path):
    """The extensions of the x86-64-v3 and v4 copies, when this is a native
    x86-64 glibc Linux build that wants them; none otherwise."""
    if os.environ.get("PRIVLINE_PYTHON_CPU_COPIES", "1") == "0":
        return []
    if not sys.platform.startswith("linux") or platform.machine() not in ("x86_64", "AMD64"):
        return []
    if sys.maxsize < 2**32 or platform.libc_ver()[0] != "glibc":
        return []
    if os.environ.get("CARGO_BUILD_TARGET", HOST_TRIPLE) != HOST_TRIPLE:
        return []  # cross-compiling: the baseline library only
    variable = "CARGO_TARGET_" + HOST_TRIPLE.upper().replace("-", "_") + "_RUSTFLAGS"
    extensions = []
    for level in CPU_LEVELS:
        env = dict(os.environ)
        env["CARGO_TARGET_DIR"] = str(target_dir / level)
        env[variable] = " ".join(filter(None, [env.get(variable), f"-C target-cpu={level}"]))
        extensions.append(
            RustExtension(
                f"privline.glibc-hwcaps.{level}.libprivline",
                path=crate_manifest(),
                binding=Binding.NoBinding,
                strip=Strip.Debug,
                # Explicit, so that the flags reach the library only, not the
                # build scripts and proc macros that run during the build.
                args=["--target", HOST_TRIPLE],
                env=env,
            )
        )
    return extensions


class build_library(build_rust):
    """Puts the library into the package under its plain name
    (libprivline.so), not under a Python extension-module name; the CPU
    copies go to ``privline/glibc-hwcaps/<level>/``."""

    def get_dylib_ext_path(self, ext, target_fname):
        default = super().get_dylib_ext_path(ext, target_fname)
        return os.path.join(os.path.dirname(default), LIBRARY_FILE)


class platform_wheel(bdist_wheel):
    """Any Python 3 (ctypes), this platform only."""

    def finalize_options(self):
        super().finalize_options()
        self.root_is_pure = False

    def get_tag(self):
        _, _, platform = super().get_tag()
        return "py3", "none", platform


class no_sdist(sdist):
    def run(self):
        raise SystemExit(
            "privline's Python package has no source distribution: it needs the Rust crate "
            "of the repository. Build a wheel from a checkout: pip wheel ./bindings/python"
        )


os.environ.setdefault("CARGO_TARGET_DIR", str(CRATE / "target" / "python-build"))
TARGET_DIR = Path(os.environ["CARGO_TARGET_DIR"])
if not TARGET_DIR.is_absolute():
    TARGET_DIR = Path.cwd() / TARGET_DIR

setup(
    rust_extensions=[
        RustExtension(
            "privline.libprivline",
            path=crate_manifest(),
            binding=Binding.NoBinding,
            strip=Strip.Debug,
        ),
        *cpu_level_extensions(TARGET_DIR),
    ],
    cmdclass={"build_rust": build_library, "bdist_wheel": platform_wheel, "sdist": no_sdist},
    zip_safe=False,
)
