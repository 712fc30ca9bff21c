"""The x86-64-v3 and v4 copies of libprivline the package carries, and the
binding's choice among them by CPU (privline._lib)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import privline
from privline import _lib as libmod

from conftest import ROOT, subprocess_env

V2 = {"cx16", "lahf_lm", "popcnt", "pni", "sse4_1", "sse4_2", "ssse3"}
V3 = {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "abm", "movbe", "xsave"}
V4 = {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}
#: What every x86-64 CPU has, and some flags no level asks for.
BASELINE = {"fpu", "cx8", "cmov", "mmx", "fxsr", "sse", "sse2", "syscall", "lm", "nx", "ht", "aes", "sha_ni"}
#: The flags line of an AMD EPYC (Zen 3, AVX2, no AVX-512) under a hypervisor.
EPYC_FLAGS = set(
    "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht "
    "syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid "
    "extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt "
    "tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a "
    "misalignsse 3dnowprefetch osvw topoext cpuid_fault vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms "
    "invpcid rdseed adx smap clflushopt clwb sha_ni xsaveopt xsavec xgetbv1 xsaves clzero xsaveerptr arat "
    "umip vaes vpclmulqdq rdpid fsrm".split()
)

IS_X86_64_LINUX = sys.platform.startswith("linux") and platform.machine() == "x86_64" and sys.maxsize > 2**32


# --------------------------------------------------------------------------
# the level of a flag set


def test_level_sets_are_the_psabi_definition():
    assert dict(libmod.X86_64_LEVELS) == {2: V2, 3: V3, 4: V4}


@pytest.mark.parametrize(
    "flags, level",
    [
        (set(), 1),
        (BASELINE, 1),
        (BASELINE | V2, 2),
        (BASELINE | V2 | V3, 3),
        (BASELINE | V2 | V3 | V4, 4),
        (EPYC_FLAGS, 3),
        (EPYC_FLAGS | V4, 4),
        # A higher level's features do not count without the lower ones.
        (BASELINE | V3, 1),
        (BASELINE | V3 | V4, 1),
        (BASELINE | V2 | V4, 2),
        ((BASELINE | V2 | V3 | V4) - {"pni"}, 1),
    ],
)
def test_level_of_flag_sets(flags, level):
    assert libmod.x86_64_level(frozenset(flags)) == level


@pytest.mark.parametrize("missing", sorted(V3))
def test_one_missing_v3_feature_means_v2(missing):
    assert libmod.x86_64_level(frozenset((BASELINE | V2 | V3) - {missing})) == 2
    assert libmod.x86_64_level(frozenset((BASELINE | V2 | V3 | V4) - {missing})) == 2
    assert libmod.x86_64_level(frozenset(EPYC_FLAGS - {missing})) == 2


@pytest.mark.parametrize("missing", sorted(V4))
def test_one_missing_v4_feature_means_v3(missing):
    assert libmod.x86_64_level(frozenset((BASELINE | V2 | V3 | V4) - {missing})) == 3


# --------------------------------------------------------------------------
# which file of a package is chosen


def _package(tmp_path: Path, *levels: str, baseline: bool = True) -> Path:
    name = libmod._library_file_name()
    tmp_path.mkdir(parents=True, exist_ok=True)
    if baseline:
        (tmp_path / name).write_bytes(b"baseline")
    for level in levels:
        directory = tmp_path / "glibc-hwcaps" / level
        directory.mkdir(parents=True)
        (directory / name).write_bytes(level.encode())
    return tmp_path


def _chosen(directory: Path, level: int):
    return [Path(p).relative_to(directory).as_posix() for p in libmod._packaged_libraries(directory, level)]


def test_highest_copy_the_cpu_supports_then_the_baseline(tmp_path):
    package = _package(tmp_path, "x86-64-v3", "x86-64-v4")
    name = libmod._library_file_name()
    v3, v4 = f"glibc-hwcaps/x86-64-v3/{name}", f"glibc-hwcaps/x86-64-v4/{name}"
    assert _chosen(package, 4) == [v4, name]
    assert _chosen(package, 3) == [v3, name]
    assert _chosen(package, 2) == [name]
    assert _chosen(package, 1) == [name]


def test_a_missing_copy_is_skipped(tmp_path):
    name = libmod._library_file_name()
    assert _chosen(_package(tmp_path / "a", "x86-64-v3"), 4) == [f"glibc-hwcaps/x86-64-v3/{name}", name]
    assert _chosen(_package(tmp_path / "b", "x86-64-v4"), 3) == [name]
    assert _chosen(_package(tmp_path / "c"), 4) == [name]
    # The copies without the baseline library are not a package's library.
    assert _chosen(_package(tmp_path / "d", "x86-64-v3", baseline=False), 3) == []


def test_cpu_level_is_read_from_proc_cpuinfo():
    if not IS_X86_64_LINUX:
        assert libmod._cpu_level() == 1
        return
    flags = libmod._cpu_flags()
    assert flags and {"sse2", "cx8"} <= flags
    assert libmod._cpu_level() == libmod.x86_64_level(flags) >= 1


def test_unreadable_cpuinfo_means_baseline(monkeypatch):
    monkeypatch.setattr(libmod, "_cpu_flags", lambda: None)
    assert libmod._cpu_level() == 1
    monkeypatch.setattr(libmod, "_cpu_flags", lambda: frozenset())
    assert libmod._cpu_level() == 1


def test_other_machines_mean_baseline(monkeypatch):
    monkeypatch.setattr(libmod, "_cpu_flags", lambda: frozenset(BASELINE | V2 | V3 | V4))
    monkeypatch.setattr(libmod.platform, "machine", lambda: "aarch64")
    assert libmod._cpu_level() == 1
    monkeypatch.setattr(libmod.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(libmod.sys, "platform", "darwin")
    assert libmod._cpu_level() == 1
    monkeypatch.setattr(libmod.sys, "platform", "linux")
    assert libmod._cpu_level() == 4


# --------------------------------------------------------------------------
# loading


def _load_in_child(package_parent: Path, script: str, cwd: Path) -> str:
    env = subprocess_env()
    env.pop("PRIVLINE_LIBRARY", None)
    env["PYTHONPATH"] = str(package_parent)
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_an_unloadable_copy_falls_back_to_the_baseline(tmp_path):
    """A copy the loader refuses (here not a library at all) is skipped for
    the package's baseline library."""
    baseline = ROOT / "target" / "release" / libmod._library_file_name()
    if not baseline.is_file():
        pytest.skip("needs target/release's library (cargo build --release)")
    package = tmp_path / "privline"
    shutil.copytree(Path(privline.__file__).resolve().parent, package,
                    ignore=shutil.ignore_patterns("*.so", "*.dylib", "*.dll", "glibc-hwcaps", "__pycache__"))
    shutil.copy(baseline, package / baseline.name)
    broken = package / "glibc-hwcaps" / "x86-64-v3" / baseline.name
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a shared library")
    script = (
        "import privline\nfrom privline import _lib\n_lib._cpu_level = lambda: {level}\n"
        "privline.Identity.generate()\nprint(privline.library_path())\n"
    )
    loaded = _load_in_child(tmp_path, script.format(level=3), tmp_path)
    assert Path(loaded) == package / baseline.name
    # At level 2 the copy is not tried at all; at level 3 with a real
    # library there it is the one loaded.
    assert Path(_load_in_child(tmp_path, script.format(level=2), tmp_path)) == package / baseline.name
    shutil.copy(baseline, broken)
    assert Path(_load_in_child(tmp_path, script.format(level=3), tmp_path)) == broken


def test_installed_package_carries_the_copies_and_loads_the_best():
    """The package pip installed (tests/python/run.sh) has both copies, and
    on this machine loads the one for its level: the v3 copy on an AVX2 CPU
    without AVX-512."""
    if os.environ.get("PRIVLINE_TEST_INSTALLED") != "1":
        pytest.skip("only checked by tests/python/run.sh")
    if not IS_X86_64_LINUX:
        pytest.skip("the copies are built on x86-64 Linux only")
    package = Path(privline.__file__).resolve().parent
    name = libmod._library_file_name()
    for level in ("x86-64-v3", "x86-64-v4"):
        assert (package / "glibc-hwcaps" / level / name).is_file(), level
    script = (
        "import privline\n"
        "a, b = privline.Identity.generate(), privline.Identity.generate()\n"
        "c = privline.ClientHandshake(bytes(32), a, b.public_key)\n"
        "s = privline.ServerHandshake(bytes(32), b)\n"
        "m2 = s.step(c.step().output).output\n"
        "m3 = c.step(m2).output\n"
        "s.step(m3); s.authorize(True)\n"
        "c.step(s.step().output)\n"
        "cc, sc = c.into_channel(), s.into_channel()\n"
        "assert sc.open(cc.seal(b'x' * 1000)).payload == b'x' * 1000\n"
        "print(privline.library_path())\n"
    )
    loaded = Path(_load_in_child(package.parent, script, ROOT / "target"))
    level = libmod._cpu_level()
    expected = {4: package / "glibc-hwcaps" / "x86-64-v4" / name,
                3: package / "glibc-hwcaps" / "x86-64-v3" / name}.get(level, package / name)
    assert loaded == expected
    flags = libmod._cpu_flags()
    if flags and {"avx2", "bmi2", "fma"} <= flags and "avx512f" not in flags:
        assert loaded.parent.name == "x86-64-v3"
