"""Item 5 of BENCHMARKS.md: the Python binding (ctypes over the C ABI)
against the ``cryptography`` package (OpenSSL) and against the Rust API.

    python bench.py [--reference FILE] [--quick]

Measures, in this process, with every candidate of a comparison timed in
alternating rounds (fastest batch kept, as in the Rust benches):

* seal + open of one write through ``privline.Channel`` against
  ``cryptography``'s ``ChaCha20Poly1305`` encrypt + decrypt of the same
  size (0, 64, 1024, 16384, 65518 and 65536 bytes; 65536 is two records);
* full handshakes, both roles in memory, through ``privline`` with its
  ``privline.Identity`` objects made once (identity handles of the C ABI:
  the keys are not derived again per handshake), interleaved with the same
  handshake making both identities anew each time (what every handshake
  cost before the C ABI had identity handles), and ``cryptography``'s X25519
  and Ed25519 operations: the asymmetric work of one privline handshake done
  with OpenSSL from Python (4 key generations, 8 DH, 2 signatures, 2
  verifications).

``--reference FILE``: ``RESULT key value`` lines from
``cargo bench --bench ffi`` (run with PRIVLINE_BENCH_TABLES_ONLY=1), for the
comparison with the Rust API. benches/run-c-python.sh passes it.

Prints tables (markdown) and ``RESULT`` lines; exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Callable, Dict, List, Sequence, Tuple

import privline
from timing import compare
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

SIZES = [0, 64, 1024, 16384, 65518, 65536]
NETWORK_KEY = bytes([0x4E]) * 32
CLIENT_SEED = bytes([0xA1]) * 32
SERVER_SEED = bytes([0xB2]) * 32

QUICK = False


def fmt_time(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    if seconds >= 1e-6:
        return f"{seconds * 1e6:.2f} µs"
    return f"{seconds * 1e9:.1f} ns"


def fmt_rate(size: int, seconds: float) -> str:
    if size == 0:
        return "-"
    rate = size / seconds
    return f"{rate / 1e9:.2f} GB/s" if rate >= 1e9 else f"{rate / 1e6:.1f} MB/s"


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    width = [len(h) for h in header]
    for row in rows:
        for i, cell in enumerate(row):
            width[i] = max(width[i], len(cell))
    print()
    print(title)

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(
            c.ljust(width[i]) if i == 0 else c.rjust(width[i]) for i, c in enumerate(cells)
        ) + " |"

    print(line(header))
    print("|" + "|".join(":" + "-" * (w + 1) if i == 0 else "-" * (w + 1) + ":" for i, w in enumerate(width)) + "|")
    for row in rows:
        print(line(row))


def handshake_pair(
    alice: privline.Identity,
    bob: privline.Identity,
    protocol: privline.Protocol = privline.Protocol.PRIVLINE1,
) -> Tuple[privline.Channel, privline.Channel]:
    """One handshake of ``protocol``, both roles, in memory, from the two
    identity objects."""
    client = privline.ClientHandshake(NETWORK_KEY, alice, bob.public_key, protocol)
    server = privline.ServerHandshake(NETWORK_KEY, bob, protocol)
    m1 = client.step().output
    m2 = server.step(m1).output
    m3 = client.step(m2).output
    assert server.step(m3).status is privline.Status.AUTHORIZE_PEER
    server.authorize(True)
    m4 = server.step().output
    assert client.step(m4).status is privline.Status.DONE
    return client.into_channel(), server.into_channel()


def read_reference(path: str) -> Dict[str, float]:
    values: Dict[str, float] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "RESULT":
                try:
                    values[parts[1]] = float(parts[2])
                except ValueError:
                    pass
    return values


def main() -> int:
    global QUICK
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", help="RESULT lines of the Rust ffi bench")
    parser.add_argument("--quick", action="store_true", help="shorter runs")
    args = parser.parse_args()
    QUICK = args.quick
    reference = read_reference(args.reference) if args.reference else {}

    import cryptography

    chosen = "PRIVLINE_LIBRARY" if os.environ.get("PRIVLINE_LIBRARY") else "found by the binding"
    print(f"privline binding {privline.version()} (library {privline.library_path()}, {chosen}),"
          f" cryptography {cryptography.__version__}, Python {sys.version.split()[0]}")

    alice = privline.Identity(CLIENT_SEED)
    bob = privline.Identity(SERVER_SEED)

    # Seal + open.
    rows = []
    results: Dict[str, float] = {}
    aead = ChaCha20Poly1305(bytes(32))
    for size in SIZES:
        client, server = handshake_pair(alice, bob)
        data = bytes([0x5A]) * size
        counter = [0]

        def ours() -> None:
            wire = client.seal(data)
            used, records = server.open_all(wire)
            assert used == len(wire)

        def theirs() -> None:
            counter[0] += 1
            nonce = counter[0].to_bytes(12, "little")
            ct = aead.encrypt(nonce, data, None)
            aead.decrypt(nonce, ct, None)

        t_ours, t_theirs = compare([("privline", ours), ("cryptography", theirs)], quick=QUICK)
        results[f"py_seal_open_s_{size}"] = t_ours
        results[f"py_crypto_aead_s_{size}"] = t_theirs
        rust = reference.get(f"rust_seal_open_ns_{size}")
        rows.append([
            str(size),
            fmt_time(t_ours),
            fmt_time(t_theirs),
            fmt_rate(size, t_ours),
            fmt_rate(size, t_theirs),
            f"{t_theirs / t_ours:.3f}",
            fmt_time(rust * 1e-9) if rust else "n/a",
            fmt_time(t_ours - rust * 1e-9) if rust else "n/a",
        ])
        client.free()
        server.free()
    print_table(
        "Item 5a. One write sealed + opened: privline through Python (ctypes) vs cryptography's ChaCha20Poly1305",
        ["payload B", "privline (Python)", "cryptography", "privline rate", "cryptography rate",
         "privline/cryptography (throughput)", "Rust API (same write)", "Python overhead vs Rust"],
        rows,
    )

    # Handshakes and asymmetric primitives.
    x_priv = X25519PrivateKey.generate()
    x_peer = X25519PrivateKey.generate().public_key()
    ed_priv = Ed25519PrivateKey.generate()
    ed_pub = ed_priv.public_key()
    message = bytes(123)
    signature = ed_priv.sign(message)

    def handshake() -> None:
        c, s = handshake_pair(alice, bob)
        c.free()
        s.free()

    def handshake_new_identities() -> None:
        a = privline.Identity(CLIENT_SEED)
        b = privline.Identity(SERVER_SEED)
        c, s = handshake_pair(a, b)
        c.free()
        s.free()
        a.free()
        b.free()

    def shs1_handshake() -> None:
        c, s = handshake_pair(alice, bob, privline.Protocol.SHS1)
        c.free()
        s.free()

    t_hs, t_hs_new, t_shs1, t_keygen, t_dh, t_sign, t_verify = compare([
        ("privline handshake", handshake),
        ("privline handshake, identities made each time", handshake_new_identities),
        ("SHS1 handshake", shs1_handshake),
        ("X25519 keygen", lambda: X25519PrivateKey.generate().public_key()),
        ("X25519 DH", lambda: x_priv.exchange(x_peer)),
        ("Ed25519 sign", lambda: ed_priv.sign(message)),
        ("Ed25519 verify", lambda: ed_pub.verify(signature, message)),
    ], quick=QUICK)
    openssl_sum = 4 * t_keygen + 8 * t_dh + 2 * t_sign + 2 * t_verify
    results["py_handshake_s"] = t_hs
    results["py_handshake_new_identities_s"] = t_hs_new
    results["py_shs1_handshake_s"] = t_shs1
    rust_hs = reference.get("rust_handshake_ns")
    rust_seed_hs = reference.get("rust_handshake_from_seeds_ns")
    c_hs = reference.get("c_handshake_ns")
    c_seed_hs = reference.get("c_handshake_seeds_ns")
    hs_rows = [
        ["privline handshake through Python (both roles, identities made once)", fmt_time(t_hs),
         f"{1 / t_hs:.0f}", "1.000"],
        ["privline through Python, both identities made anew per handshake (as before identity handles)",
         fmt_time(t_hs_new), f"{1 / t_hs_new:.0f}", f"{(1 / t_hs) / (1 / t_hs_new):.3f}"],
    ]
    for label, ns in [
        ("privline, Rust API (identities reused)", rust_hs),
        ("privline, Rust API (identities from seeds, as the C seed constructors)", rust_seed_hs),
        ("privline, from C (static library, identity handles)", c_hs),
        ("privline, from C (static library, seed constructors)", c_seed_hs),
    ]:
        if ns:
            hs_rows.append([label, fmt_time(ns * 1e-9), f"{1e9 / ns:.0f}", f"{(1 / t_hs) / (1e9 / ns):.3f}"])
    hs_rows.append(["SHS1 handshake through Python (both roles, identities made once)", fmt_time(t_shs1),
                    f"{1 / t_shs1:.0f}", "n/a"])
    print_table(
        "Item 5b. Handshakes, both roles in one thread, in memory",
        ["handshake", "time", "handshakes/s", "Python handshakes/s ÷ this"],
        hs_rows,
    )
    print()
    print(f"identity objects made once instead of per handshake save {fmt_time(t_hs_new - t_hs)} per handshake "
          f"pair through Python ({100 * (t_hs_new - t_hs) / t_hs_new:.1f} %), measured interleaved")
    print_table(
        "cryptography (OpenSSL) asymmetric operations from Python",
        ["operation", "time", "per privline handshake", "subtotal"],
        [
            ["X25519 key generation", fmt_time(t_keygen), "4", fmt_time(4 * t_keygen)],
            ["X25519 DH", fmt_time(t_dh), "8", fmt_time(8 * t_dh)],
            ["Ed25519 sign", fmt_time(t_sign), "2", fmt_time(2 * t_sign)],
            ["Ed25519 verify", fmt_time(t_verify), "2", fmt_time(2 * t_verify)],
            ["**sum: a privline handshake's asymmetric work done by OpenSSL**", "", "", fmt_time(openssl_sum)],
            ["privline handshake through Python, for comparison", "", "", fmt_time(t_hs)],
        ],
    )

    print()
    big = results["py_crypto_aead_s_65536"] / results["py_seal_open_s_65536"]
    print(f"target: Python seal+open at 64 KiB writes >= 0.8 of cryptography's throughput: {big:.3f} -> "
          f"{'met' if big >= 0.8 else 'MISSED'}")
    # Issue 14's targets for the binding's own per-call cost.
    small = results["py_seal_open_s_64"] / results["py_crypto_aead_s_64"]
    print(f"target: Python seal+open of 64 B <= 2.5 times cryptography's time: {small:.2f} -> "
          f"{'met' if small <= 2.5 else 'MISSED'}")
    for size in (65518, 65536):
        ratio = results[f"py_crypto_aead_s_{size}"] / results[f"py_seal_open_s_{size}"]
        print(f"target: Python seal+open of {size} B >= 0.5 of cryptography's throughput: {ratio:.3f} -> "
              f"{'met' if ratio >= 0.5 else 'MISSED'}")
    if rust_hs:
        ratio = (1 / t_hs) / (1e9 / rust_hs)
        print(f"target: Python handshakes/s >= 0.8 of Rust's (identities reused on both): {ratio:.3f} -> "
              f"{'met' if ratio >= 0.8 else 'MISSED'}")
    else:
        print("target: Python handshakes/s vs Rust: no --reference given")
    for key, value in results.items():
        print(f"RESULT {key} {value:.9f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
