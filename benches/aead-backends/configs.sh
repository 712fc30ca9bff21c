# The build configurations the bare-AEAD benchmark compares, sourced by
# benches/aead-backends/run.sh and benches/before-after.sh: "label|rustflags"
# (the whole RUSTFLAGS of that build, replacing .cargo/config.toml's).
AEAD_CONFIGS=(
    "default|"
    "poly1305 soft|--cfg poly1305_force_soft --cfg poly1305_backend=\"soft\""
    "x86-64-v3|-C target-cpu=x86-64-v3"
    "chacha20_avx512|--cfg chacha20_avx512"
    "chacha20_avx512 + poly1305 soft|--cfg chacha20_avx512 --cfg poly1305_force_soft --cfg poly1305_backend=\"soft\""
    "x86-64-v3 + chacha20_avx512|-C target-cpu=x86-64-v3 --cfg chacha20_avx512"
    "native + chacha20_avx512|-C target-cpu=native --cfg chacha20_avx512"
)
