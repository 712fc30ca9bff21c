"""Build of the privline Python package with libprivline inside it.

The package itself is pure Python (ctypes); pyproject.toml has its
metadata. This file adds the shared library: setuptools-rust builds the
crate two directories up (the repository root) with cargo, in its "no
binding" mode (a plain C cdylib, no Python extension module), and copies it
into the package as ``privline/libprivline.so`` (``.dylib`` on macOS),
where ``privline._lib`` looks first. Cargo builds into
``target/python-build`` of the checkout unless CARGO_TARGET_DIR says
otherwise.

The wheel is tagged ``py3-none-<platform>``: the library does not use
Python's C API, so any Python 3 on that platform can load it.

Build from a checkout of the repository (``pip install ./bindings/python``,
``pip wheel ./bindings/python``): the Rust crate lives outside this
directory, so a source distribution of this directory alone could not
build, and ``sdist`` refuses.
"""

import os
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


class build_library(build_rust):
    """Puts the library into the package under its plain name
    (libprivline.so), not under a Python extension-module name."""

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

setup(
    rust_extensions=[
        RustExtension(
            "privline.libprivline",
            path=crate_manifest(),
            binding=Binding.NoBinding,
            strip=Strip.Debug,
        )
    ],
    cmdclass={"build_rust": build_library, "bdist_wheel": platform_wheel, "sdist": no_sdist},
    zip_safe=False,
)
