//! `include/privline.h` must be exactly what cbindgen generates from
//! `src/ffi` with `cbindgen.toml`. Run with `PRIVLINE_BLESS=1` to rewrite it.

use std::path::Path;

#[test]
fn the_committed_header_is_what_cbindgen_generates() {
    let root = env!("CARGO_MANIFEST_DIR");
    let config =
        cbindgen::Config::from_file(Path::new(root).join("cbindgen.toml")).expect("cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(root)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let header_path = Path::new(root).join("include/privline.h");
    if std::env::var_os("PRIVLINE_BLESS").is_some() {
        std::fs::write(&header_path, &generated).expect("write header");
    }
    let committed = std::fs::read(&header_path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/privline.h is stale: regenerate it with `PRIVLINE_BLESS=1 cargo test --test header` and commit it"
    );
}
