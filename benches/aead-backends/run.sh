#!/usr/bin/env bash
# Bare ChaCha20-Poly1305 (chacha20poly1305 0.10 and 0.11) under each build
# configuration BENCHMARKS.md compares; prints a markdown table of
# nanoseconds per encrypt + decrypt. About 5 minutes on 2 cores (one build
# per configuration, in target/aead-backends/ of the repository).
#
#   bash benches/aead-backends/run.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
TARGET="$(cd ../.. && pwd)/target/aead-backends"
source ./configs.sh
echo "| build | crate | 0 B | 64 B | 1024 B | 16384 B | 65518 B |"
echo "|:--|:--|--:|--:|--:|--:|--:|"
i=0
for config in "${AEAD_CONFIGS[@]}"; do
    label=${config%%|*}
    flags=${config#*|}
    dir="$TARGET/$i"
    RUSTFLAGS="$flags" CARGO_TARGET_DIR="$dir" cargo build --release -q
    "$dir/release/privline-aead-backends" "$label"
    i=$((i + 1))
done
