//! No key material outlives its handle.
//!
//! The issue: "with a counting global allocator (or equivalent) in a Rust
//! test, run a handshake and a channel, free them, and check that no freed
//! heap block still contains any of the traffic keys, the ephemeral
//! secrets, the identity seed's expanded scalar or the session id. Types
//! holding secrets do not implement Clone or Debug that prints them."
//!
//! How: this test binary's `#[global_allocator]` wraps `System`. While it is
//! armed, every block handed back (`dealloc`, and the old block of every
//! `realloc`, which it always moves) is searched for each registered 32-byte
//! "needle" before it goes back to the system, and every hit is recorded
//! (needle, block size, offset). Optionally it also copies every freed block
//! into a fixed arena, searched at the end with needles learnt only later
//! (for handshakes through the C ABI, whose ephemerals are random). The
//! allocator never allocates; its state sits in statics behind a spin lock.
//!
//! The needles come from case1 of `tests/vectors/privline1.json`, whose
//! ephemerals the hidden `*_with_ephemerals_for_tests` constructors accept,
//! so every secret is known up front: the ephemeral secrets (raw and
//! clamped), the identities' seeds and expanded scalars, the network key,
//! `ee`, `eb`, `ae`, `ff`, `k3`, `k4`, the traffic keys and session id (the
//! thirds of `okm`), and the traffic keys after one and two key updates
//! (computed here with the hkdf crate). For runs with a C ABI handle on one
//! side and a known-ephemeral Rust peer on the other, the C side's derived
//! secrets are recomputed here from the messages on the wire (this file has
//! its own small transcription of the key schedule, checked against the
//! vectors first).
//!
//! Every test takes `SERIAL`, so only one scenario runs while the scanner
//! is armed.

#[path = "support/hex.rs"]
mod hex;
use hex::{hex32, hex_into, hex_string};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::hint::black_box;
use std::marker::PhantomData;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};
use hkdf::Hkdf;
use privline::ffi::privline_result::*;
use privline::ffi::*;
use privline::{
    Channel, Error, Handshake, Identity, NetworkKey, Opened, PublicKey, SessionId, Status,
};
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroize;

// ---------------------------------------------------------------------------
// The scanning allocator
// ---------------------------------------------------------------------------

const MAX_NEEDLES: usize = 128;
const MAX_FINDINGS: usize = 256;
const ARENA_LEN: usize = 32 << 20;
const NEEDLE_LEN: usize = 32;

/// How a block with a needle was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum How {
    /// Freed by `dealloc`.
    Dealloc,
    /// The old block of a `realloc` (the allocator always moves).
    ReallocOldBlock,
    /// Freed while capturing; found when the arena was searched at the end.
    Captured,
}

#[derive(Clone, Copy, Debug)]
struct Finding {
    needle: usize,
    block_size: usize,
    offset: usize,
    how: How,
}

const NO_FINDING: Finding = Finding {
    needle: 0,
    block_size: 0,
    offset: 0,
    how: How::Dealloc,
};

/// The allocator's state. Touched only under `LOCK`, never allocates.
struct State {
    needles: [[u8; NEEDLE_LEN]; MAX_NEEDLES],
    prefixes: [u64; MAX_NEEDLES],
    names: [&'static str; MAX_NEEDLES],
    needle_count: usize,
    findings: [Finding; MAX_FINDINGS],
    finding_total: usize,
    blocks_freed: usize,
    bytes_freed: usize,
    /// Block sizes to count the frees of (a `Handshake`, a `Channel`), to
    /// prove that the handles were freed while the scanner watched.
    watched_sizes: [usize; 4],
    watched_counts: [usize; 4],
    capture: bool,
    arena_used: usize,
    arena_overflow: bool,
}

struct Shared<T>(UnsafeCell<T>);

// SAFETY: every access goes through `locked` (the spin lock).
unsafe impl<T> Sync for Shared<T> {}

static STATE: Shared<State> = Shared(UnsafeCell::new(State {
    needles: [[0; NEEDLE_LEN]; MAX_NEEDLES],
    prefixes: [0; MAX_NEEDLES],
    names: [""; MAX_NEEDLES],
    needle_count: 0,
    findings: [NO_FINDING; MAX_FINDINGS],
    finding_total: 0,
    blocks_freed: 0,
    bytes_freed: 0,
    watched_sizes: [0; 4],
    watched_counts: [0; 4],
    capture: false,
    arena_used: 0,
    arena_overflow: false,
}));

/// Copies of freed blocks while capturing: `[len: u64 LE][bytes]...`.
static ARENA: Shared<[u8; ARENA_LEN]> = Shared(UnsafeCell::new([0; ARENA_LEN]));

static LOCK: AtomicBool = AtomicBool::new(false);
static ARMED: AtomicBool = AtomicBool::new(false);

/// Runs `f` on the state under the spin lock. `f` must not free memory
/// (that would re-enter the lock); allocating is fine.
fn locked<R>(f: impl FnOnce(&mut State, &mut [u8; ARENA_LEN]) -> R) -> R {
    while LOCK
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        std::hint::spin_loop();
    }
    // SAFETY: the lock is held, so this is the only reference.
    let result = unsafe { f(&mut *STATE.0.get(), &mut *ARENA.0.get()) };
    LOCK.store(false, Ordering::Release);
    result
}

fn prefix_of(bytes: &[u8]) -> u64 {
    let mut prefix = [0u8; 8];
    prefix.copy_from_slice(&bytes[..8]);
    u64::from_ne_bytes(prefix)
}

/// Records every occurrence of every needle in `block`.
fn scan(state: &mut State, block: &[u8], block_size: usize, how: How) {
    if block.len() < NEEDLE_LEN || state.needle_count == 0 {
        return;
    }
    for offset in 0..=block.len() - NEEDLE_LEN {
        let prefix = prefix_of(&block[offset..]);
        for needle in 0..state.needle_count {
            if state.prefixes[needle] == prefix
                && block[offset..offset + NEEDLE_LEN] == state.needles[needle]
            {
                if state.finding_total < MAX_FINDINGS {
                    state.findings[state.finding_total] = Finding {
                        needle,
                        block_size,
                        offset,
                        how,
                    };
                }
                state.finding_total += 1;
            }
        }
    }
}

/// Looks at a block that is about to go back to the system.
///
/// # Safety
/// `ptr` points to `size` bytes the caller is freeing.
unsafe fn inspect(ptr: *const u8, size: usize, how: How) {
    // SAFETY: the block is still allocated; its bytes are read, not kept.
    // (Some may never have been written; they are only compared.)
    let block = unsafe { std::slice::from_raw_parts(ptr, size) };
    locked(|state, arena| {
        state.blocks_freed += 1;
        state.bytes_freed += size;
        for (watched, count) in state
            .watched_sizes
            .iter()
            .zip(state.watched_counts.iter_mut())
        {
            if *watched == size {
                *count += 1;
            }
        }
        scan(state, block, size, how);
        if state.capture {
            let start = state.arena_used;
            if start + 8 + size <= ARENA_LEN {
                arena[start..start + 8].copy_from_slice(&(size as u64).to_le_bytes());
                arena[start + 8..start + 8 + size].copy_from_slice(block);
                state.arena_used = start + 8 + size;
            } else {
                state.arena_overflow = true;
            }
        }
    });
}

struct ScanningAllocator;

unsafe impl GlobalAlloc for ScanningAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if ARMED.load(Ordering::Acquire) {
            // SAFETY: the block is being freed by its owner.
            unsafe { inspect(ptr, layout.size(), How::Dealloc) };
        }
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !ARMED.load(Ordering::Acquire) {
            // SAFETY: forwarded contract.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // Always move, so that the old block is freed (and searched) as a
        // system realloc may do at any time.
        // SAFETY: `new_size` and the old alignment form a valid layout
        // (the `realloc` contract).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a non-zero size (the `realloc` contract).
        let new = unsafe { System.alloc(new_layout) };
        if new.is_null() {
            return new;
        }
        // SAFETY: both blocks are live and distinct.
        unsafe {
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
            inspect(ptr, layout.size(), How::ReallocOldBlock);
            System.dealloc(ptr, layout);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: ScanningAllocator = ScanningAllocator;

// ---------------------------------------------------------------------------
// Driving the scanner
// ---------------------------------------------------------------------------

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn forget_needles() {
    locked(|state, _| {
        state.needles.zeroize();
        state.prefixes = [0; MAX_NEEDLES];
        state.names = [""; MAX_NEEDLES];
        state.needle_count = 0;
    });
}

/// Adds a needle (once: a value already registered keeps its first name).
fn register(name: &'static str, bytes: &[u8; 32]) {
    assert!(
        bytes.iter().any(|&b| b != 0),
        "{name}: an all-zero needle would match wiped memory"
    );
    let added = locked(|state, _| {
        if state.needles[..state.needle_count].contains(bytes) {
            return Ok(false);
        }
        if state.needle_count == MAX_NEEDLES {
            return Err(());
        }
        let slot = state.needle_count;
        state.needles[slot] = *bytes;
        state.prefixes[slot] = prefix_of(bytes);
        state.names[slot] = name;
        state.needle_count += 1;
        Ok(true)
    });
    assert!(added.is_ok(), "too many needles; raise MAX_NEEDLES");
}

/// Registers every secret of a list.
fn register_all(secrets: impl IntoIterator<Item = Secret>) {
    for (name, bytes) in secrets {
        register(name, &bytes);
    }
}

fn needle_count() -> usize {
    locked(|state, _| state.needle_count)
}

/// Whether `bytes` is a registered needle.
fn is_needle(bytes: &[u8; 32]) -> bool {
    locked(|state, _| state.needles[..state.needle_count].contains(bytes))
}

/// What one watched scenario left behind.
struct Watch {
    label: String,
    /// One line per needle found in a freed block.
    findings: Vec<String>,
    blocks_freed: usize,
    bytes_freed: usize,
    /// Frees of blocks of the watched sizes (`Handshake`, `Channel`).
    watched_counts: [usize; 4],
    arena_overflow: bool,
}

impl Watch {
    /// Handshakes freed: Rust ones, and C handles.
    fn handshake_blocks(&self) -> usize {
        self.watched_counts[0] + self.watched_counts[2]
    }

    fn channel_blocks(&self) -> usize {
        self.watched_counts[1]
    }

    fn summary(&self) -> String {
        format!(
            "{}: {} blocks ({} bytes) freed and searched, {} of Handshake size, {} of Channel size",
            self.label,
            self.blocks_freed,
            self.bytes_freed,
            self.handshake_blocks(),
            self.channel_blocks()
        )
    }
}

/// Disarms the scanner even when the body panics.
struct Disarm;

impl Drop for Disarm {
    fn drop(&mut self) {
        ARMED.store(false, Ordering::SeqCst);
    }
}

/// Runs `body` with the scanner armed and reports what it found. With
/// `capture`, freed blocks are also kept and searched again at the end, with
/// the needles registered by then.
fn watch(label: impl Into<String>, capture: bool, body: impl FnOnce()) -> Watch {
    let label = label.into();
    // A Rust `Handshake` in a `Box`, a `Channel`, and the C ABI's
    // handshake handle (the handshake behind its lock).
    let sizes = [
        std::mem::size_of::<Handshake>(),
        std::mem::size_of::<Channel>(),
        std::mem::size_of::<std::sync::Mutex<Handshake>>(),
        0,
    ];
    locked(|state, _| {
        state.findings = [NO_FINDING; MAX_FINDINGS];
        state.finding_total = 0;
        state.blocks_freed = 0;
        state.bytes_freed = 0;
        state.watched_sizes = sizes;
        state.watched_counts = [0; 4];
        state.capture = capture;
        state.arena_used = 0;
        state.arena_overflow = false;
    });
    ARMED.store(true, Ordering::SeqCst);
    let disarm = Disarm;
    body();
    drop(disarm);
    // Blocks kept while capturing, searched with every needle known now.
    locked(|state, arena| {
        state.capture = false;
        let mut at = 0;
        while at < state.arena_used {
            let mut len = [0u8; 8];
            len.copy_from_slice(&arena[at..at + 8]);
            let len = u64::from_le_bytes(len) as usize;
            let block = &arena[at + 8..at + 8 + len];
            // `scan` needs the state mutably and the block from the arena:
            // both are borrowed from different statics.
            scan(state, block, len, How::Captured);
            at += 8 + len;
        }
        state.arena_used = 0;
    });
    let (findings, total, names, blocks_freed, bytes_freed, watched_counts, arena_overflow) =
        locked(|state, _| {
            (
                state.findings,
                state.finding_total,
                state.names,
                state.blocks_freed,
                state.bytes_freed,
                state.watched_counts,
                state.arena_overflow,
            )
        });
    let mut lines: Vec<String> = findings[..total.min(MAX_FINDINGS)]
        .iter()
        .map(|finding| {
            format!(
                "{label}: `{}` in a freed block of {} bytes at offset {} ({:?}){}",
                names[finding.needle],
                finding.block_size,
                finding.offset,
                finding.how,
                block_hint(finding.block_size)
            )
        })
        .collect();
    if total > MAX_FINDINGS {
        lines.push(format!("{label}: ... {} findings in all", total));
    }
    Watch {
        label,
        findings: lines,
        blocks_freed,
        bytes_freed,
        watched_counts,
        arena_overflow,
    }
}

fn block_hint(size: usize) -> String {
    if size == std::mem::size_of::<Handshake>() {
        " = size_of::<Handshake>()".to_string()
    } else if size == std::mem::size_of::<Channel>() {
        " = size_of::<Channel>()".to_string()
    } else if size == 4 * std::mem::size_of::<Channel>()
        || size == 8 * std::mem::size_of::<Channel>()
    {
        " = a Vec<Channel> buffer".to_string()
    } else {
        String::new()
    }
}

/// Fails with every finding of every watch.
fn assert_clean(watches: &[Watch]) {
    let findings: Vec<&String> = watches.iter().flat_map(|watch| &watch.findings).collect();
    let summaries: Vec<String> = watches.iter().map(Watch::summary).collect();
    for summary in &summaries {
        eprintln!("{summary}");
    }
    assert!(
        findings.is_empty(),
        "secrets survived in freed heap blocks ({} needles registered; Handshake is {} bytes, Channel {}):\n{}\n\nscenarios:\n{}",
        needle_count(),
        std::mem::size_of::<Handshake>(),
        std::mem::size_of::<Channel>(),
        findings.iter().map(|line| line.as_str()).collect::<Vec<_>>().join("\n"),
        summaries.join("\n")
    );
    for watch in watches {
        assert!(
            !watch.arena_overflow,
            "{}: the capture arena overflowed",
            watch.label
        );
    }
}

// ---------------------------------------------------------------------------
// The vectors and the key schedule
// ---------------------------------------------------------------------------

/// Case1 of the vectors, every value in fixed arrays (no heap).
#[derive(Clone, Copy)]
struct Case {
    network_key: [u8; 32],
    client_seed: [u8; 32],
    server_seed: [u8; 32],
    client_public: [u8; 32],
    server_public: [u8; 32],
    ec: [u8; 32],
    fc: [u8; 32],
    es: [u8; 32],
    fs: [u8; 32],
    m1: [u8; 64],
    m2: [u8; 64],
    m3: [u8; 144],
    m4: [u8; 112],
    ee: [u8; 32],
    eb: [u8; 32],
    ae: [u8; 32],
    ff: [u8; 32],
    k3: [u8; 32],
    k4: [u8; 32],
    h4: [u8; 32],
    okm: [u8; 96],
    key_c2s: [u8; 32],
    key_s2c: [u8; 32],
    session_id: [u8; 32],
    xsk_client: [u8; 32],
    xsk_server: [u8; 32],
    mont_client: [u8; 32],
    mont_server: [u8; 32],
    /// The keys after one update, as the vectors' records give them.
    c2s_updated: [u8; 32],
    s2c_updated: [u8; 32],
}

fn case1() -> Case {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/privline1.json");
    let text = std::fs::read_to_string(path).expect("read the vectors");
    let vectors: serde_json::Value = serde_json::from_str(&text).expect("parse the vectors");
    let case = &vectors["cases"][0];
    assert_eq!(case["name"], "case1");
    let i = &case["intermediate"];
    let mut m1 = [0u8; 64];
    let mut m2 = [0u8; 64];
    let mut m3 = [0u8; 144];
    let mut m4 = [0u8; 112];
    let mut okm = [0u8; 96];
    hex_into(case["M1"].as_str().unwrap(), &mut m1);
    hex_into(case["M2"].as_str().unwrap(), &mut m2);
    hex_into(case["M3"].as_str().unwrap(), &mut m3);
    hex_into(case["M4"].as_str().unwrap(), &mut m4);
    hex_into(i["okm"].as_str().unwrap(), &mut okm);
    let key_c2s = hex32(&case["key_c2s"]);
    let key_s2c = hex32(&case["key_s2c"]);
    let updated = |direction: &str, first: &[u8; 32]| -> [u8; 32] {
        case["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|record| record["direction"] == direction)
            .map(|record| hex32(&record["key"]))
            .find(|key| key != first)
            .expect("a record under an updated key")
    };
    Case {
        network_key: hex32(&case["network_key"]),
        client_seed: hex32(&case["client_seed"]),
        server_seed: hex32(&case["server_seed"]),
        client_public: hex32(&case["client_public"]),
        server_public: hex32(&case["server_public"]),
        ec: hex32(&case["ec"]),
        fc: hex32(&case["fc"]),
        es: hex32(&case["es"]),
        fs: hex32(&case["fs"]),
        m1,
        m2,
        m3,
        m4,
        ee: hex32(&i["ee"]),
        eb: hex32(&i["eb"]),
        ae: hex32(&i["ae"]),
        ff: hex32(&i["ff"]),
        k3: hex32(&i["k3"]),
        k4: hex32(&i["k4"]),
        h4: hex32(&i["h4"]),
        okm,
        key_c2s,
        key_s2c,
        session_id: hex32(&case["session_id"]),
        xsk_client: hex32(&i["xsk_client"]),
        xsk_server: hex32(&i["xsk_server"]),
        mont_client: hex32(&i["mont_client"]),
        mont_server: hex32(&i["mont_server"]),
        c2s_updated: updated("c2s", &key_c2s),
        s2c_updated: updated("s2c", &key_s2c),
    }
}

fn clamp(mut scalar: [u8; 32]) -> [u8; 32] {
    scalar[0] &= 248;
    scalar[31] &= 127;
    scalar[31] |= 64;
    scalar
}

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn hkdf(salt: &[u8], ikm_parts: &[&[u8]], info: &[u8], out: &mut [u8]) {
    let mut ikm = [0u8; 128];
    let mut used = 0;
    for part in ikm_parts {
        ikm[used..used + part.len()].copy_from_slice(part);
        used += part.len();
    }
    Hkdf::<Sha256>::new(Some(salt), &ikm[..used])
        .expand(info, out)
        .expect("HKDF length");
    ikm.zeroize();
}

/// `k' = HKDF(empty salt, k, "privline/1 key update", 32)`.
fn updated_key(key: &[u8; 32]) -> [u8; 32] {
    let mut next = [0u8; 32];
    hkdf(&[], &[key], b"privline/1 key update", &mut next);
    next
}

/// The identity secrets of a seed: (expanded scalar as stored, i.e. the
/// first half of SHA-512(seed); its clamped form; the Ed25519 signing
/// scalar (clamped, reduced); the hash prefix).
fn identity_secrets(seed: &[u8; 32]) -> [[u8; 32]; 4] {
    let digest = Sha512::digest(seed);
    let mut raw = [0u8; 32];
    let mut prefix = [0u8; 32];
    raw.copy_from_slice(&digest[..32]);
    prefix.copy_from_slice(&digest[32..]);
    let signing = curve25519_dalek::Scalar::from_bytes_mod_order(clamp(raw)).to_bytes();
    [raw, clamp(raw), signing, prefix]
}

/// Whose ephemeral secrets the test knows.
#[derive(Clone, Copy)]
enum Known {
    Client { ec: [u8; 32], fc: [u8; 32] },
    Server { es: [u8; 32], fs: [u8; 32] },
}

/// Every secret of a handshake, recomputed from the wire and one side's
/// ephemerals (and both identities, whose seeds the test chose).
#[derive(Clone, Copy, Default)]
struct Derived {
    ee: [u8; 32],
    eb: [u8; 32],
    ae: [u8; 32],
    k3: [u8; 32],
    k4: [u8; 32],
    ff: [u8; 32],
    h4: [u8; 32],
    key_c2s: [u8; 32],
    key_s2c: [u8; 32],
    session_id: [u8; 32],
}

/// The key schedule of PROTOCOL.md: `m3` and `m4` may be missing (a
/// handshake that stopped early); what depends on them is left zero.
fn derive(
    case: &Case,
    known: Known,
    m1: &[u8],
    m2: &[u8],
    m3: Option<&[u8]>,
    m4: Option<&[u8]>,
) -> Derived {
    use x25519_dalek::{x25519, X25519_BASEPOINT_BYTES};
    let mut ec_public = [0u8; 32];
    let mut es_public = [0u8; 32];
    ec_public.copy_from_slice(&m1[..32]);
    es_public.copy_from_slice(&m2[..32]);
    let mont_client = x25519(case.xsk_client, X25519_BASEPOINT_BYTES);
    let mont_server = x25519(case.xsk_server, X25519_BASEPOINT_BYTES);
    let mut d = Derived::default();
    match known {
        Known::Client { ec, .. } => {
            d.ee = x25519(ec, es_public);
            d.eb = x25519(ec, mont_server);
            d.ae = x25519(case.xsk_client, es_public);
        }
        Known::Server { es, .. } => {
            d.ee = x25519(es, ec_public);
            d.eb = x25519(case.xsk_server, ec_public);
            d.ae = x25519(es, mont_client);
        }
    }
    let h0 = sha256(&[b"privline/1", &case.network_key]);
    let h1 = sha256(&[&h0, m1]);
    let h2 = sha256(&[&h1, m2]);
    hkdf(&h2, &[&d.ee, &d.eb], b"privline/1 k3", &mut d.k3);
    let Some(m3) = m3 else { return d };
    let mut greeting = [0u8; 128];
    greeting.copy_from_slice(&m3[..128]);
    ChaCha20Poly1305::new(Key::from_slice(&d.k3))
        .decrypt_in_place_detached(
            &Nonce::default(),
            &h2,
            &mut greeting,
            Tag::from_slice(&m3[128..144]),
        )
        .expect("M3 opens under the recomputed k3");
    let mut fc_public = [0u8; 32];
    fc_public.copy_from_slice(&greeting[32..64]);
    let h3 = sha256(&[&h2, m3]);
    hkdf(&h3, &[&d.ee, &d.eb, &d.ae], b"privline/1 k4", &mut d.k4);
    let Some(m4) = m4 else { return d };
    let mut answer = [0u8; 96];
    answer.copy_from_slice(&m4[..96]);
    ChaCha20Poly1305::new(Key::from_slice(&d.k4))
        .decrypt_in_place_detached(
            &Nonce::default(),
            &h3,
            &mut answer,
            Tag::from_slice(&m4[96..112]),
        )
        .expect("M4 opens under the recomputed k4");
    let mut fs_public = [0u8; 32];
    fs_public.copy_from_slice(&answer[..32]);
    d.ff = match known {
        Known::Client { fc, .. } => x25519(fc, fs_public),
        Known::Server { fs, .. } => x25519(fs, fc_public),
    };
    d.h4 = sha256(&[&h3, m4]);
    let mut okm = [0u8; 96];
    hkdf(
        &d.h4,
        &[&d.ff, &d.ee, &d.eb, &d.ae],
        b"privline/1 session keys",
        &mut okm,
    );
    d.key_c2s.copy_from_slice(&okm[..32]);
    d.key_s2c.copy_from_slice(&okm[32..64]);
    d.session_id.copy_from_slice(&okm[64..]);
    okm.zeroize();
    d
}

/// The derivation above reproduces case1 from either side's ephemerals,
/// and the key update reproduces the vectors' updated keys: the needles
/// recomputed for the C ABI runs are the right ones.
fn check_the_key_schedule(case: &Case) {
    for known in [
        Known::Client {
            ec: case.ec,
            fc: case.fc,
        },
        Known::Server {
            es: case.es,
            fs: case.fs,
        },
    ] {
        let d = derive(
            case,
            known,
            &case.m1,
            &case.m2,
            Some(&case.m3),
            Some(&case.m4),
        );
        assert!(
            d.ee == case.ee && d.eb == case.eb && d.ae == case.ae && d.ff == case.ff,
            "DH values"
        );
        assert!(
            d.k3 == case.k3 && d.k4 == case.k4 && d.h4 == case.h4,
            "k3, k4, h4"
        );
        assert!(
            d.key_c2s == case.key_c2s && d.key_s2c == case.key_s2c,
            "traffic keys"
        );
        assert!(d.session_id == case.session_id, "session id");
    }
    assert!(
        case.okm[..32] == case.key_c2s
            && case.okm[32..64] == case.key_s2c
            && case.okm[64..] == case.session_id
    );
    assert!(
        updated_key(&case.key_c2s) == case.c2s_updated,
        "c2s key update"
    );
    assert!(
        updated_key(&case.key_s2c) == case.s2c_updated,
        "s2c key update"
    );
    let [client_raw, client_clamped, _, _] = identity_secrets(&case.client_seed);
    let [server_raw, server_clamped, _, _] = identity_secrets(&case.server_seed);
    assert!(
        case.xsk_client == client_clamped || case.xsk_client == client_raw,
        "xsk_client is SHA-512(seed)[..32], clamped or not"
    );
    assert!(case.xsk_server == server_clamped || case.xsk_server == server_raw);
    assert!(
        x25519_dalek::x25519(case.xsk_client, x25519_dalek::X25519_BASEPOINT_BYTES)
            == case.mont_client
    );
    assert!(
        x25519_dalek::x25519(case.xsk_server, x25519_dalek::X25519_BASEPOINT_BYTES)
            == case.mont_server
    );
}

/// A secret and the name a finding reports it by.
type Secret = (&'static str, [u8; 32]);

/// The secrets of both identities and the network: seeds, expanded
/// scalars (as stored and clamped), signing scalars and hash prefixes.
fn identity_secrets_of(case: &Case) -> Vec<Secret> {
    let [client_raw, client_clamped, client_signing, client_prefix] =
        identity_secrets(&case.client_seed);
    let [server_raw, server_clamped, server_signing, server_prefix] =
        identity_secrets(&case.server_seed);
    vec![
        ("network key N", case.network_key),
        ("client identity seed", case.client_seed),
        ("server identity seed", case.server_seed),
        ("xsk_client (SHA-512(seed)[..32], as stored)", client_raw),
        ("xsk_client (clamped)", client_clamped),
        ("client Ed25519 signing scalar", client_signing),
        ("client Ed25519 hash prefix", client_prefix),
        ("xsk_client (vectors)", case.xsk_client),
        ("xsk_server (SHA-512(seed)[..32], as stored)", server_raw),
        ("xsk_server (clamped)", server_clamped),
        ("server Ed25519 signing scalar", server_signing),
        ("server Ed25519 hash prefix", server_prefix),
        ("xsk_server (vectors)", case.xsk_server),
    ]
}

/// The names of a privline/1 handshake's derived secrets, in the order of
/// [`Derived::secrets`], for one side of one scenario.
type DerivedNames = [&'static str; 13];

static CASE1_NAMES: DerivedNames = [
    "ee",
    "eb",
    "ae",
    "k3",
    "k4",
    "ff",
    "key_c2s",
    "key_s2c",
    "session_id",
    "key_c2s after 1 update",
    "key_s2c after 1 update",
    "key_c2s after 2 updates",
    "key_s2c after 2 updates",
];

impl Derived {
    /// The secrets derived so far (what a handshake that stopped early
    /// never reached is zero and left out), and the traffic keys after one
    /// and two key updates. Built on the stack: the C ABI tests register
    /// them while the scanner watches, and a heap copy would be found.
    fn secrets(&self, names: &'static DerivedNames) -> impl Iterator<Item = Secret> {
        let c2s_1 = updated_key(&self.key_c2s);
        let s2c_1 = updated_key(&self.key_s2c);
        let values = [
            self.ee,
            self.eb,
            self.ae,
            self.k3,
            self.k4,
            self.ff,
            self.key_c2s,
            self.key_s2c,
            self.session_id,
            c2s_1,
            s2c_1,
            updated_key(&c2s_1),
            updated_key(&s2c_1),
        ];
        let reached = if self.ff != [0; 32] {
            values.len()
        } else if self.k4 != [0; 32] {
            5
        } else {
            4
        };
        names.iter().copied().zip(values).take(reached)
    }
}

// ---------------------------------------------------------------------------
// The two protocols, as data
// ---------------------------------------------------------------------------

/// What the tests need to know of a protocol. Each test is one body run
/// over [`PROTOCOLS`]; what differs between privline/1 and SHS1 is here.
struct Protocol {
    name: &'static str,
    /// A client and a server handshake between case1's identities, with
    /// ephemeral secrets the test chose, so that every secret is known.
    handshakes: fn(&Case) -> (Handshake, Handshake),
    /// The four handshake messages those handshakes must write, where the
    /// vectors give them: proof that the chosen ephemerals are in use.
    messages: fn(&Case) -> Option<[&[u8]; 4]>,
    /// The ephemeral secrets as the test hands them over. The test's own
    /// copies sit on its stack, so only the heap is searched for them.
    ephemerals: fn(&Case) -> Vec<Secret>,
    /// Every secret the library derives in a session of `handshakes`.
    derived: fn(&Case) -> Vec<Secret>,
    /// Whether channels have key updates (SHS1's box-stream has none).
    key_update: bool,
    /// A secret of a channel that the API hands out (privline/1: the
    /// session id; SHS1: the exported sending key): it must be among
    /// `derived`, or the needles are not the session's real secrets.
    revealed: fn(&Channel) -> [u8; 32],
}

static PRIVLINE1: Protocol = Protocol {
    name: "privline/1",
    handshakes: |case| {
        let network_key = NetworkKey::new(case.network_key);
        let client = Handshake::client_with_ephemerals_for_tests(
            &network_key,
            &Identity::from_seed(&case.client_seed),
            &PublicKey(case.server_public),
            case.ec,
            case.fc,
        )
        .expect("client");
        let server = Handshake::server_with_ephemerals_for_tests(
            &network_key,
            &Identity::from_seed(&case.server_seed),
            case.es,
            case.fs,
        );
        (client, server)
    },
    messages: |case| Some([&case.m1[..], &case.m2[..], &case.m3[..], &case.m4[..]]),
    ephemerals: |case| {
        vec![
            ("ec", case.ec),
            ("fc", case.fc),
            ("es", case.es),
            ("fs", case.fs),
        ]
    },
    derived: |case| {
        let clamped = [
            ("ec (clamped)", clamp(case.ec)),
            ("fc (clamped)", clamp(case.fc)),
            ("es (clamped)", clamp(case.es)),
            ("fs (clamped)", clamp(case.fs)),
        ];
        case1_derived(case)
            .secrets(&CASE1_NAMES)
            .chain(clamped)
            .collect()
    },
    key_update: true,
    revealed: |channel| *channel.session_id().expect("session id").as_bytes(),
};

/// The SHS1 session's ephemeral secrets: the client's `a`, the server's `b`.
const SHS1_A: [u8; 32] = [0x51; 32];
const SHS1_B: [u8; 32] = [0x5b; 32];

static SHS1: Protocol = Protocol {
    name: "SHS1",
    handshakes: |case| {
        let network_key = NetworkKey::new(case.network_key);
        let server_identity = Identity::from_seed(&case.server_seed);
        let client = Handshake::shs1_client_with_ephemeral_for_tests(
            &network_key,
            &Identity::from_seed(&case.client_seed),
            &server_identity.public_key(),
            SHS1_A,
        )
        .expect("client");
        let server =
            Handshake::shs1_server_with_ephemeral_for_tests(&network_key, &server_identity, SHS1_B);
        (client, server)
    },
    messages: |_| None,
    ephemerals: |_| {
        vec![
            ("SHS1 client ephemeral a (raw)", SHS1_A),
            ("SHS1 server ephemeral b (raw)", SHS1_B),
        ]
    },
    derived: shs1_derived,
    key_update: false,
    revealed: |channel| {
        let keys = channel.export_shs1_keys().expect("SHS1 keys");
        let mut sending = [0u8; 32];
        sending.copy_from_slice(&keys[..32]);
        sending
    },
};

static PROTOCOLS: [&Protocol; 2] = [&PRIVLINE1, &SHS1];

/// case1's derived values, as the vectors give them.
fn case1_derived(case: &Case) -> Derived {
    Derived {
        ee: case.ee,
        eb: case.eb,
        ae: case.ae,
        k3: case.k3,
        k4: case.k4,
        ff: case.ff,
        h4: case.h4,
        key_c2s: case.key_c2s,
        key_s2c: case.key_s2c,
        session_id: case.session_id,
    }
}

/// Every secret of an SHS1 session between case1's identities with the
/// ephemeral secrets [`SHS1_A`] and [`SHS1_B`], computed here from the SHS1
/// definition: the clamped ephemerals, the DH results, the box keys of the
/// client auth and the server accept, `sha256(ab)`, and the box-stream
/// secret and keys.
fn shs1_derived(case: &Case) -> Vec<Secret> {
    use x25519_dalek::{x25519, X25519_BASEPOINT_BYTES};
    let b_pub = x25519(SHS1_B, X25519_BASEPOINT_BYTES);
    let client_public = Identity::from_seed(&case.client_seed).public_key();
    let server_public = Identity::from_seed(&case.server_seed).public_key();
    let server_mont = privline::identity_key_to_x25519(server_public.as_bytes()).unwrap();
    let [client_xsk, _, _, _] = identity_secrets(&case.client_seed);
    let ab = x25519(SHS1_A, b_pub);
    let a_long_b = x25519(SHS1_A, server_mont);
    let long_a_b = x25519(client_xsk, b_pub);
    let k = &case.network_key;
    let k3 = sha256(&[k, &ab, &a_long_b, &long_a_b]);
    let secret = sha256(&[&k3]);
    vec![
        ("SHS1 client ephemeral a (clamped)", clamp(SHS1_A)),
        ("SHS1 server ephemeral b (clamped)", clamp(SHS1_B)),
        ("SHS1 ab", ab),
        ("SHS1 aB", a_long_b),
        ("SHS1 Ab", long_a_b),
        ("SHS1 sha256(ab)", sha256(&[&ab])),
        ("SHS1 client auth key", sha256(&[k, &ab, &a_long_b])),
        ("SHS1 k3 (server accept key)", k3),
        ("SHS1 box-stream secret", secret),
        (
            "SHS1 key client to server",
            sha256(&[&secret, server_public.as_bytes()]),
        ),
        (
            "SHS1 key server to client",
            sha256(&[&secret, client_public.as_bytes()]),
        ),
    ]
}

/// Every secret of a protocol's test session: the identities', the
/// ephemerals as handed over, and the derived ones.
fn session_secrets(protocol: &Protocol, case: &Case) -> Vec<Secret> {
    let mut secrets = identity_secrets_of(case);
    secrets.extend((protocol.ephemerals)(case));
    secrets.extend((protocol.derived)(case));
    secrets
}

// ---------------------------------------------------------------------------
// Driving handshakes and channels
// ---------------------------------------------------------------------------

/// One Rust step; returns what it wrote.
fn rust_step(handshake: &mut Handshake, input: &[u8], status: Status) -> Vec<u8> {
    let mut out = [0u8; privline::HANDSHAKE_MAX_MESSAGE_LEN];
    let step = handshake.step(input, &mut out).expect("step");
    assert_eq!((step.status, step.consumed), (status, input.len()));
    out[..step.written].to_vec()
}

/// The stage a handshake pair has reached, of [`HANDSHAKE_DONE`]: 1 M1
/// written, 2 M2 written, 3 M3 written, 4 the server asks to authorize, 5
/// the server accepted, 6 M4 written, 7 both done. (SHS1's hello, server
/// hello, client auth and server accept are its M1 to M4.)
const HANDSHAKE_DONE: usize = 7;

/// Drives a protocol's test handshakes stage by stage, keeping the
/// messages and checking them against the vectors where they are known.
struct Drive {
    expected: Option<[Vec<u8>; 4]>,
    messages: Vec<Vec<u8>>,
    stage: usize,
}

impl Drive {
    fn new(protocol: &Protocol, case: &Case) -> Drive {
        Drive {
            expected: (protocol.messages)(case).map(|messages| messages.map(<[u8]>::to_vec)),
            messages: Vec::new(),
            stage: 0,
        }
    }

    /// Runs the stages after the one reached, up to `stage`.
    fn to(&mut self, stage: usize, client: &mut Handshake, server: &mut Handshake) {
        while self.stage < stage {
            self.stage += 1;
            let written = match self.stage {
                1 => rust_step(client, &[], Status::NeedInput),
                2 => rust_step(server, &self.messages[0], Status::NeedInput),
                3 => rust_step(client, &self.messages[1], Status::NeedInput),
                4 => rust_step(server, &self.messages[2], Status::AuthorizePeer),
                5 => {
                    server.authorize(true).expect("accept");
                    Vec::new()
                }
                6 => rust_step(server, &[], Status::Done),
                _ => {
                    let written = rust_step(client, &self.messages[3], Status::Done);
                    assert!(client.is_done() && server.is_done());
                    written
                }
            };
            if matches!(self.stage, 4 | 5 | 7) {
                assert!(written.is_empty(), "stage {} wrote a message", self.stage);
                continue;
            }
            if let Some(expected) = &self.expected {
                assert_eq!(
                    written,
                    expected[self.messages.len()],
                    "stage {}",
                    self.stage
                );
            }
            self.messages.push(written);
        }
    }
}

/// Runs a protocol's test handshakes to the end.
fn run_handshake(protocol: &Protocol, case: &Case, client: &mut Handshake, server: &mut Handshake) {
    Drive::new(protocol, case).to(HANDSHAKE_DONE, client, server);
}

/// The client's and the server's channel of a protocol's test session.
fn channels(protocol: &Protocol, case: &Case) -> (Channel, Channel) {
    let (mut client, mut server) = (protocol.handshakes)(case);
    run_handshake(protocol, case, &mut client, &mut server);
    (
        client.into_channel().expect("client channel"),
        server.into_channel().expect("server channel"),
    )
}

fn rust_seal(channel: &mut Channel, payload: &[u8]) -> Vec<u8> {
    let mut wire = vec![0u8; channel.sealed_len(payload.len(), 0).unwrap()];
    let n = channel.seal(payload, 0, &mut wire).expect("seal");
    wire.truncate(n);
    wire
}

/// Opens the first record (SHS1: box) of `wire`.
fn rust_open(channel: &mut Channel, wire: &[u8]) -> Opened {
    let mut plain = vec![0u8; privline::RECORD_MAX_INNER_LEN];
    channel.open(wire, &mut plain).expect("open")
}

/// Seals a close (`close`) or a key update.
fn rust_control(channel: &mut Channel, close: bool) -> Vec<u8> {
    let mut wire = [0u8; 64];
    let n = if close {
        channel.close(0, &mut wire).expect("close")
    } else {
        channel.update_key(0, &mut wire).expect("update key")
    };
    wire[..n].to_vec()
}

/// `from` seals `payload`; `to` opens every record (SHS1: box) of it as
/// data, `payload.len()` bytes in all.
fn send(from: &mut Channel, to: &mut Channel, payload: &[u8]) {
    let wire = rust_seal(from, payload);
    let mut rest = &wire[..];
    let mut received = 0;
    while !rest.is_empty() {
        let opened = rust_open(to, rest);
        let Opened::Data { consumed, len } = opened else {
            panic!("{opened:?} where data was sealed");
        };
        received += len;
        rest = &rest[consumed..];
    }
    assert_eq!(received, payload.len());
}

/// `from` seals its close (`close`) or a key update; `to` opens it as such.
fn send_control(from: &mut Channel, to: &mut Channel, close: bool) {
    let opened = rust_open(to, &rust_control(from, close));
    if close {
        assert!(matches!(opened, Opened::Close { .. }), "{opened:?}");
    } else {
        assert!(matches!(opened, Opened::KeyUpdate { .. }), "{opened:?}");
    }
}

/// Data both ways three times, two key updates each way where the
/// protocol has them, a payload of several SHS1 boxes, both closes.
fn converse(protocol: &Protocol, client: &mut Channel, server: &mut Channel) {
    for round in 0..3 {
        send(client, server, b"hello, bob");
        send(server, client, b"hello, alice");
        if protocol.key_update && round < 2 {
            send_control(client, server, false);
            send_control(server, client, false);
        }
    }
    send(client, server, &[7u8; 5000]);
    send_control(client, server, true);
    send_control(server, client, true);
}

/// C ABI: one step; returns (result, written bytes, status).
fn c_step(handshake: *mut privline_handshake, input: &[u8]) -> (privline_result, Vec<u8>, u32) {
    let mut out = [0u8; PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN];
    let mut output_len = out.len();
    let mut consumed = 0;
    let mut status = privline_handshake_status::PRIVLINE_HANDSHAKE_NEED_INPUT;
    let result = unsafe {
        privline_handshake_step(
            handshake,
            input.as_ptr(),
            input.len(),
            &mut consumed,
            out.as_mut_ptr(),
            &mut output_len,
            &mut status,
        )
    };
    if result != PRIVLINE_RESULT_OK {
        return (result, Vec::new(), 0);
    }
    assert_eq!(consumed, input.len());
    (result, out[..output_len].to_vec(), status as u32)
}

fn c_ok_step(
    handshake: *mut privline_handshake,
    input: &[u8],
    status: privline_handshake_status,
) -> Vec<u8> {
    let (result, out, got) = c_step(handshake, input);
    assert_eq!((result, got), (PRIVLINE_RESULT_OK, status as u32));
    out
}

fn c_new_client(case: &Case) -> *mut privline_handshake {
    let mut handshake = null_mut();
    let result = unsafe {
        privline_handshake_new_client(
            case.network_key.as_ptr(),
            case.client_seed.as_ptr(),
            case.server_public.as_ptr(),
            &mut handshake,
        )
    };
    assert_eq!(result, PRIVLINE_RESULT_OK);
    handshake
}

fn c_new_server(case: &Case) -> *mut privline_handshake {
    let mut handshake = null_mut();
    let result = unsafe {
        privline_handshake_new_server(
            case.network_key.as_ptr(),
            case.server_seed.as_ptr(),
            &mut handshake,
        )
    };
    assert_eq!(result, PRIVLINE_RESULT_OK);
    handshake
}

fn c_into_channel(mut handshake: *mut privline_handshake) -> *mut privline_channel {
    let mut channel = null_mut();
    let result = unsafe { privline_handshake_into_channel(&mut handshake, &mut channel) };
    assert_eq!(result, PRIVLINE_RESULT_OK);
    assert!(handshake.is_null());
    channel
}

fn c_seal(channel: *mut privline_channel, payload: &[u8]) -> Vec<u8> {
    let mut wire = vec![0u8; unsafe { privline_channel_sealed_len(channel, payload.len(), 0) }];
    let mut len = wire.len();
    let result = unsafe {
        privline_channel_seal(
            channel,
            payload.as_ptr(),
            payload.len(),
            0,
            wire.as_mut_ptr(),
            &mut len,
        )
    };
    assert_eq!(result, PRIVLINE_RESULT_OK);
    wire.truncate(len);
    wire
}

fn c_control(channel: *mut privline_channel, close: bool) -> Vec<u8> {
    let mut wire = [0u8; 64];
    let mut len = wire.len();
    let result = unsafe {
        if close {
            privline_channel_close(channel, 0, wire.as_mut_ptr(), &mut len)
        } else {
            privline_channel_update_key(channel, 0, wire.as_mut_ptr(), &mut len)
        }
    };
    assert_eq!(result, PRIVLINE_RESULT_OK);
    wire[..len].to_vec()
}

fn c_open(channel: *mut privline_channel, record: &[u8]) -> (privline_result, u32) {
    let mut plain = vec![0u8; PRIVLINE_OPEN_MAX_OUTPUT_LEN];
    let mut len = plain.len();
    let mut consumed = 0;
    let mut kind = privline_record_type::PRIVLINE_RECORD_NONE;
    let result = unsafe {
        privline_channel_open(
            channel,
            record.as_ptr(),
            record.len(),
            &mut consumed,
            plain.as_mut_ptr(),
            &mut len,
            &mut kind,
        )
    };
    (result, kind as u32)
}

fn c_session_id(channel: *const privline_channel) -> [u8; 32] {
    let mut id = [0u8; 32];
    assert_eq!(
        unsafe { privline_channel_session_id(channel, id.as_mut_ptr()) },
        PRIVLINE_RESULT_OK
    );
    id
}

const DATA: u32 = privline_record_type::PRIVLINE_RECORD_DATA as u32;
const KEY_UPDATE: u32 = privline_record_type::PRIVLINE_RECORD_KEY_UPDATE as u32;
const CLOSE: u32 = privline_record_type::PRIVLINE_RECORD_CLOSE as u32;

/// A C ABI channel and a Rust channel talk: data, key updates, closes.
fn converse_c_rust(c: *mut privline_channel, rust: &mut Channel) {
    for _ in 0..2 {
        let record = c_seal(c, b"from C");
        assert!(matches!(
            rust_open(rust, &record),
            Opened::Data { len: 6, .. }
        ));
        let record = rust_seal(rust, b"from Rust");
        assert_eq!(c_open(c, &record), (PRIVLINE_RESULT_OK, DATA));
        let update = c_control(c, false);
        assert!(matches!(rust_open(rust, &update), Opened::KeyUpdate { .. }));
        let update = rust_control(rust, false);
        assert_eq!(c_open(c, &update), (PRIVLINE_RESULT_OK, KEY_UPDATE));
    }
    let close = c_control(c, true);
    assert!(matches!(rust_open(rust, &close), Opened::Close { .. }));
    let close = rust_control(rust, true);
    assert_eq!(c_open(c, &close), (PRIVLINE_RESULT_OK, CLOSE));
}

// ---------------------------------------------------------------------------
// The scanner itself
// ---------------------------------------------------------------------------

#[test]
fn the_scanner_finds_a_needle_in_every_kind_of_freed_block() {
    let _serial = serial();
    forget_needles();
    let mut needle = [0u8; 32];
    for (i, byte) in needle.iter_mut().enumerate() {
        *byte = (i as u8).wrapping_mul(37).wrapping_add(11);
    }
    let mut late = needle;
    late[0] ^= 0xff;
    register("control needle", &needle);

    let freed = watch("a Box freed with the needle", false, || {
        drop(black_box(Box::new(needle)));
    });
    assert_eq!(freed.findings.len(), 1, "{:?}", freed.findings);
    assert!(
        freed.findings[0].contains("32 bytes at offset 0 (Dealloc)"),
        "{:?}",
        freed.findings
    );

    let deep = watch("a large block, odd offset", false, || {
        let mut big = vec![0u8; 100_000];
        big[77_777..77_777 + 32].copy_from_slice(&needle);
        drop(black_box(big));
    });
    assert_eq!(deep.findings.len(), 1);
    assert!(
        deep.findings[0].contains("100000 bytes at offset 77777"),
        "{:?}",
        deep.findings
    );

    let grown = watch("a Vec grown past its block, then wiped", false, || {
        let mut bytes: Vec<u8> = Vec::with_capacity(40);
        bytes.extend_from_slice(&needle);
        bytes.reserve(4000);
        bytes.zeroize();
        drop(black_box(bytes));
    });
    assert_eq!(grown.findings.len(), 1, "{:?}", grown.findings);
    assert!(
        grown.findings[0].contains("40 bytes at offset 0 (ReallocOldBlock)"),
        "{:?}",
        grown.findings
    );

    let wiped = watch("a Box wiped before it is freed", false, || {
        let mut boxed = Box::new(needle);
        boxed.zeroize();
        drop(black_box(boxed));
    });
    assert!(wiped.findings.is_empty(), "{:?}", wiped.findings);

    let captured = watch("a block freed before its needle was known", true, || {
        drop(black_box(Box::new(late)));
        register("late needle", &late);
    });
    assert_eq!(captured.findings.len(), 1, "{:?}", captured.findings);
    assert!(captured.findings[0].contains("`late needle`"));
    assert!(captured.findings[0].contains("(Captured)"));

    let handles = watch("handle-sized blocks are counted", false, || {
        drop(black_box(vec![0u8; std::mem::size_of::<Handshake>()]));
        drop(black_box(vec![0u8; std::mem::size_of::<Channel>()]));
    });
    assert!(
        handles.handshake_blocks() >= 1 && handles.channel_blocks() >= 1,
        "{}",
        handles.summary()
    );
    forget_needles();
}

// ---------------------------------------------------------------------------
// Handshakes and channels leave nothing behind
// ---------------------------------------------------------------------------

#[test]
fn handshakes_and_channels_in_boxes_leave_no_secret_in_freed_memory() {
    let _serial = serial();
    let case = case1();
    check_the_key_schedule(&case);
    let mut watches = Vec::new();
    for protocol in PROTOCOLS {
        let name = protocol.name;
        forget_needles();
        register_all(session_secrets(protocol, &case));

        let session = watch(format!("{name} session in Boxes"), false, || {
            let (client, server) = (protocol.handshakes)(&case);
            let (mut client, mut server) = (Box::new(client), Box::new(server));
            run_handshake(protocol, &case, &mut client, &mut server);
            let mut client_channel = Box::new(client.into_channel().expect("client channel"));
            let mut server_channel = Box::new(server.into_channel().expect("server channel"));
            assert!(is_needle(&(protocol.revealed)(&client_channel)));
            assert!(is_needle(&(protocol.revealed)(&server_channel)));
            converse(protocol, &mut client_channel, &mut server_channel);
            drop(client_channel);
            drop(server_channel);
        });
        assert!(session.channel_blocks() >= 2, "{}", session.summary());
        watches.push(session);

        let stages = watch(
            format!("{name}: Boxed handshakes dropped at every stage"),
            false,
            || {
                for stage in 0..=HANDSHAKE_DONE {
                    let (client, server) = (protocol.handshakes)(&case);
                    let (mut client, mut server) = (Box::new(client), Box::new(server));
                    Drive::new(protocol, &case).to(stage, &mut client, &mut server);
                    drop(client);
                    drop(server);
                }
            },
        );
        assert!(stages.handshake_blocks() >= 16, "{}", stages.summary());
        watches.push(stages);

        watches.push(watch(
            format!("{name}: Boxed server refuses the client"),
            false,
            || {
                let (client, server) = (protocol.handshakes)(&case);
                let (mut client, mut server) = (Box::new(client), Box::new(server));
                Drive::new(protocol, &case).to(4, &mut client, &mut server);
                assert_eq!(server.authorize(false), Err(Error::ClientRefused));
                assert_eq!(server.failure(), Some(Error::ClientRefused));
                drop(server);
                drop(client);
            },
        ));

        watches.push(watch(
            format!("{name}: Boxed client gets a damaged M4"),
            false,
            || {
                let (client, server) = (protocol.handshakes)(&case);
                let (mut client, mut server) = (Box::new(client), Box::new(server));
                let mut drive = Drive::new(protocol, &case);
                drive.to(6, &mut client, &mut server);
                let mut m4 = drive.messages[3].clone();
                m4[50] ^= 1;
                let mut out = [0u8; 144];
                assert_eq!(client.step(&m4, &mut out), Err(Error::M4DoesNotOpen));
                // The server finished but is dropped without becoming a channel.
                drop(server);
                drop(client);
            },
        ));

        watches.push(watch(
            format!("{name}: Boxed server gets a damaged M3, then M1 replays"),
            false,
            || {
                let (client, server) = (protocol.handshakes)(&case);
                let (mut client, mut server) = (Box::new(client), Box::new(server));
                let mut drive = Drive::new(protocol, &case);
                drive.to(3, &mut client, &mut server);
                let mut m3 = drive.messages[2].clone();
                m3[10] ^= 1;
                let mut out = [0u8; 144];
                assert_eq!(server.step(&m3, &mut out), Err(Error::M3DoesNotOpen));
                let m1 = &drive.messages[0];
                assert_eq!(server.step(m1, &mut out), Err(Error::M3DoesNotOpen));
                drop(server);
                drop(client);
            },
        ));

        watches.push(watch(
            format!("{name}: failed channels in Boxes"),
            false,
            || {
                let (client_channel, server_channel) = channels(protocol, &case);
                let mut client_channel = Box::new(client_channel);
                let mut server_channel = Box::new(server_channel);
                if protocol.key_update {
                    // One key update each way first, so the updated keys are in play.
                    send_control(&mut client_channel, &mut server_channel, false);
                    send_control(&mut server_channel, &mut client_channel, false);
                }
                // The client seals a record that will arrive damaged; the server
                // closes; the client then gets bytes after that close
                // (RECORD_AFTER_CLOSE) and the server the damaged record
                // (RECORD_DOES_NOT_OPEN): both ends die, with their keys in play.
                let mut damaged = rust_seal(&mut client_channel, b"damaged");
                damaged[3] ^= 1;
                let close = rust_control(&mut server_channel, true);
                assert!(matches!(
                    rust_open(&mut client_channel, &close),
                    Opened::Close { .. }
                ));
                let mut plain = [0u8; 64];
                assert_eq!(
                    client_channel.open(&close, &mut plain),
                    Err(Error::RecordAfterClose)
                );
                assert_eq!(client_channel.peer_key(), Err(Error::RecordAfterClose));
                assert_eq!(
                    server_channel.open(&damaged, &mut plain),
                    Err(Error::RecordDoesNotOpen)
                );
                assert_eq!(server_channel.peer_key(), Err(Error::RecordDoesNotOpen));
                drop(server_channel);
                drop(client_channel);
            },
        ));
    }
    assert_clean(&watches);
    forget_needles();
}

#[test]
fn a_c_abi_server_leaves_no_secret_in_freed_memory() {
    // The server is a C ABI handle (random es, fs); the client is a Rust
    // handshake with case1's ephemerals, so every secret the server derives
    // can be recomputed from the messages.
    let _serial = serial();
    let case = case1();
    check_the_key_schedule(&case);
    forget_needles();
    register_all(session_secrets(&PRIVLINE1, &case));
    static NAMES: DerivedNames = [
        "ee (C server)",
        "eb (C server)",
        "ae (C server)",
        "k3 (C server)",
        "k4 (C server)",
        "ff (C server)",
        "key_c2s (C server)",
        "key_s2c (C server)",
        "session id (C server)",
        "key_c2s after 1 update (C server)",
        "key_s2c after 1 update (C server)",
        "key_c2s after 2 updates (C server)",
        "key_s2c after 2 updates (C server)",
    ];
    let known = Known::Client {
        ec: case.ec,
        fc: case.fc,
    };

    let mut watches = Vec::new();
    watches.push(watch("C ABI server, full session", false, || {
        let mut client = (PRIVLINE1.handshakes)(&case).0;
        let server = c_new_server(&case);
        let m1 = rust_step(&mut client, &[], Status::NeedInput);
        let m2 = c_ok_step(
            server,
            &m1,
            privline_handshake_status::PRIVLINE_HANDSHAKE_NEED_INPUT,
        );
        register_all(derive(&case, known, &m1, &m2, None, None).secrets(&NAMES));
        let m3 = rust_step(&mut client, &m2, Status::NeedInput);
        c_ok_step(
            server,
            &m3,
            privline_handshake_status::PRIVLINE_HANDSHAKE_AUTHORIZE_PEER,
        );
        assert_eq!(
            unsafe { privline_handshake_authorize(server, true) },
            PRIVLINE_RESULT_OK
        );
        let m4 = c_ok_step(
            server,
            &[],
            privline_handshake_status::PRIVLINE_HANDSHAKE_DONE,
        );
        let derived = derive(&case, known, &m1, &m2, Some(&m3), Some(&m4));
        register_all(derived.secrets(&NAMES));
        assert!(rust_step(&mut client, &m4, Status::Done).is_empty());
        let c_channel = c_into_channel(server);
        let mut rust_channel = client.into_channel().unwrap();
        assert!(
            c_session_id(c_channel) == derived.session_id,
            "the recomputed session id is the real one"
        );
        assert!(rust_channel.session_id().unwrap().as_bytes() == &derived.session_id);
        converse_c_rust(c_channel, &mut rust_channel);
        unsafe { privline_channel_free(c_channel) };
        drop(rust_channel);
    }));
    assert!(
        watches[0].handshake_blocks() >= 1 && watches[0].channel_blocks() >= 1,
        "{}",
        watches[0].summary()
    );

    for (label, stop) in [
        ("C ABI server freed after writing M2", 1),
        ("C ABI server freed at AUTHORIZE_PEER", 2),
        ("C ABI server refuses the client", 3),
        ("C ABI server accepted, freed before writing M4", 4),
        ("C ABI server done, freed without into_channel", 5),
        ("C ABI server gets a damaged M3", 6),
    ] {
        watches.push(watch(label, false, || {
            let mut client = (PRIVLINE1.handshakes)(&case).0;
            let server = c_new_server(&case);
            let m1 = rust_step(&mut client, &[], Status::NeedInput);
            let m2 = c_ok_step(
                server,
                &m1,
                privline_handshake_status::PRIVLINE_HANDSHAKE_NEED_INPUT,
            );
            register_all(derive(&case, known, &m1, &m2, None, None).secrets(&NAMES));
            let mut m3 = rust_step(&mut client, &m2, Status::NeedInput);
            if stop == 6 {
                m3[7] ^= 1;
                assert_eq!(c_step(server, &m3).0, PRIVLINE_RESULT_M3_DOES_NOT_OPEN);
            }
            if (2..6).contains(&stop) {
                c_ok_step(
                    server,
                    &m3,
                    privline_handshake_status::PRIVLINE_HANDSHAKE_AUTHORIZE_PEER,
                );
            }
            if stop == 3 {
                assert_eq!(
                    unsafe { privline_handshake_authorize(server, false) },
                    PRIVLINE_RESULT_CLIENT_REFUSED
                );
            }
            if stop == 4 || stop == 5 {
                assert_eq!(
                    unsafe { privline_handshake_authorize(server, true) },
                    PRIVLINE_RESULT_OK
                );
            }
            if stop == 5 {
                let m4 = c_ok_step(
                    server,
                    &[],
                    privline_handshake_status::PRIVLINE_HANDSHAKE_DONE,
                );
                register_all(derive(&case, known, &m1, &m2, Some(&m3), Some(&m4)).secrets(&NAMES));
            }
            unsafe { privline_handshake_free(server) };
            drop(client);
        }));
    }

    watches.push(watch(
        "C ABI server channel dies on a damaged record",
        false,
        || {
            let mut client = (PRIVLINE1.handshakes)(&case).0;
            let server = c_new_server(&case);
            let m1 = rust_step(&mut client, &[], Status::NeedInput);
            let m2 = c_ok_step(
                server,
                &m1,
                privline_handshake_status::PRIVLINE_HANDSHAKE_NEED_INPUT,
            );
            let m3 = rust_step(&mut client, &m2, Status::NeedInput);
            c_ok_step(
                server,
                &m3,
                privline_handshake_status::PRIVLINE_HANDSHAKE_AUTHORIZE_PEER,
            );
            assert_eq!(
                unsafe { privline_handshake_authorize(server, true) },
                PRIVLINE_RESULT_OK
            );
            let m4 = c_ok_step(
                server,
                &[],
                privline_handshake_status::PRIVLINE_HANDSHAKE_DONE,
            );
            register_all(derive(&case, known, &m1, &m2, Some(&m3), Some(&m4)).secrets(&NAMES));
            rust_step(&mut client, &m4, Status::Done);
            let c_channel = c_into_channel(server);
            let mut rust_channel = client.into_channel().unwrap();
            let update = c_control(c_channel, false);
            rust_open(&mut rust_channel, &update);
            let mut record = rust_seal(&mut rust_channel, b"damaged");
            record[2] ^= 1;
            assert_eq!(
                c_open(c_channel, &record).0,
                PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN
            );
            unsafe { privline_channel_free(c_channel) };
            drop(rust_channel);
        },
    ));

    assert_clean(&watches);
    forget_needles();
}

#[test]
fn a_c_abi_client_leaves_no_secret_in_freed_memory() {
    // The mirror image: a C ABI client (random ec, fc) and a Rust server
    // with case1's ephemerals.
    let _serial = serial();
    let case = case1();
    forget_needles();
    register_all(session_secrets(&PRIVLINE1, &case));
    static NAMES: DerivedNames = [
        "ee (C client)",
        "eb (C client)",
        "ae (C client)",
        "k3 (C client)",
        "k4 (C client)",
        "ff (C client)",
        "key_c2s (C client)",
        "key_s2c (C client)",
        "session id (C client)",
        "key_c2s after 1 update (C client)",
        "key_s2c after 1 update (C client)",
        "key_c2s after 2 updates (C client)",
        "key_s2c after 2 updates (C client)",
    ];
    let known = Known::Server {
        es: case.es,
        fs: case.fs,
    };

    let mut watches = Vec::new();
    watches.push(watch("C ABI client, full session", false, || {
        let client = c_new_client(&case);
        let mut server = (PRIVLINE1.handshakes)(&case).1;
        let m1 = c_ok_step(
            client,
            &[],
            privline_handshake_status::PRIVLINE_HANDSHAKE_NEED_INPUT,
        );
        let m2 = rust_step(&mut server, &m1, Status::NeedInput);
        register_all(derive(&case, known, &m1, &m2, None, None).secrets(&NAMES));
        let m3 = c_ok_step(
            client,
            &m2,
            privline_handshake_status::PRIVLINE_HANDSHAKE_NEED_INPUT,
        );
        register_all(derive(&case, known, &m1, &m2, Some(&m3), None).secrets(&NAMES));
        rust_step(&mut server, &m3, Status::AuthorizePeer);
        server.authorize(true).unwrap();
        let m4 = rust_step(&mut server, &[], Status::Done);
        let derived = derive(&case, known, &m1, &m2, Some(&m3), Some(&m4));
        register_all(derived.secrets(&NAMES));
        c_ok_step(
            client,
            &m4,
            privline_handshake_status::PRIVLINE_HANDSHAKE_DONE,
        );
        let c_channel = c_into_channel(client);
        let mut rust_channel = server.into_channel().unwrap();
        assert!(
            c_session_id(c_channel) == derived.session_id,
            "the recomputed session id is the real one"
        );
        converse_c_rust(c_channel, &mut rust_channel);
        unsafe { privline_channel_free(c_channel) };
        drop(rust_channel);
    }));
    assert!(
        watches[0].handshake_blocks() >= 1 && watches[0].channel_blocks() >= 1,
        "{}",
        watches[0].summary()
    );

    for (label, damage_m4) in [
        ("C ABI client gets a damaged M4", true),
        ("C ABI client freed awaiting M4", false),
    ] {
        watches.push(watch(label, false, || {
            let client = c_new_client(&case);
            let mut server = (PRIVLINE1.handshakes)(&case).1;
            let m1 = c_ok_step(
                client,
                &[],
                privline_handshake_status::PRIVLINE_HANDSHAKE_NEED_INPUT,
            );
            let m2 = rust_step(&mut server, &m1, Status::NeedInput);
            let m3 = c_ok_step(
                client,
                &m2,
                privline_handshake_status::PRIVLINE_HANDSHAKE_NEED_INPUT,
            );
            register_all(derive(&case, known, &m1, &m2, Some(&m3), None).secrets(&NAMES));
            rust_step(&mut server, &m3, Status::AuthorizePeer);
            server.authorize(true).unwrap();
            let mut m4 = rust_step(&mut server, &[], Status::Done);
            if damage_m4 {
                m4[0] ^= 1;
                assert_eq!(c_step(client, &m4).0, PRIVLINE_RESULT_M4_DOES_NOT_OPEN);
            }
            unsafe { privline_handshake_free(client) };
            drop(server);
        }));
    }

    assert_clean(&watches);
    forget_needles();
}

#[test]
fn c_abi_handles_on_both_sides_leave_no_session_id_in_freed_memory() {
    // Both sides through the C ABI, both with random ephemerals: only the
    // identities, the network key and (once it can be read) the session id
    // are known. Freed blocks are captured and searched again at the end,
    // so the handshake freed inside into_channel is searched for the
    // session id read afterwards.
    let _serial = serial();
    let case = case1();
    forget_needles();
    register_all(identity_secrets_of(&case));
    let mut watches = Vec::new();
    watches.push(watch("C ABI client and server", true, || {
        let client = c_new_client(&case);
        let server = c_new_server(&case);
        let m1 = c_ok_step(
            client,
            &[],
            privline_handshake_status::PRIVLINE_HANDSHAKE_NEED_INPUT,
        );
        let m2 = c_ok_step(
            server,
            &m1,
            privline_handshake_status::PRIVLINE_HANDSHAKE_NEED_INPUT,
        );
        let m3 = c_ok_step(
            client,
            &m2,
            privline_handshake_status::PRIVLINE_HANDSHAKE_NEED_INPUT,
        );
        c_ok_step(
            server,
            &m3,
            privline_handshake_status::PRIVLINE_HANDSHAKE_AUTHORIZE_PEER,
        );
        assert_eq!(
            unsafe { privline_handshake_authorize(server, true) },
            PRIVLINE_RESULT_OK
        );
        let m4 = c_ok_step(
            server,
            &[],
            privline_handshake_status::PRIVLINE_HANDSHAKE_DONE,
        );
        c_ok_step(
            client,
            &m4,
            privline_handshake_status::PRIVLINE_HANDSHAKE_DONE,
        );
        let client_channel = c_into_channel(client);
        let server_channel = c_into_channel(server);
        let id = c_session_id(client_channel);
        assert!(c_session_id(server_channel) == id);
        register("session id (C ABI, both sides random)", &id);
        let record = c_seal(client_channel, b"hello");
        assert_eq!(c_open(server_channel, &record), (PRIVLINE_RESULT_OK, DATA));
        let update = c_control(server_channel, false);
        assert_eq!(
            c_open(client_channel, &update),
            (PRIVLINE_RESULT_OK, KEY_UPDATE)
        );
        let close = c_control(client_channel, true);
        assert_eq!(c_open(server_channel, &close), (PRIVLINE_RESULT_OK, CLOSE));
        unsafe {
            privline_channel_free(client_channel);
            privline_channel_free(server_channel);
        }
    }));
    assert!(
        watches[0].handshake_blocks() >= 2 && watches[0].channel_blocks() >= 2,
        "{}",
        watches[0].summary()
    );
    assert_clean(&watches);
    forget_needles();
}

#[test]
fn moving_a_handshake_or_channel_out_of_heap_memory_leaves_no_copy() {
    // The Rust API hands out handshakes and channels by value. A program
    // that keeps them on the heap moves them out again (into_channel on a
    // Box<Handshake>, unboxing a channel) or has them moved by a growing
    // Vec. Each such move frees a heap block without running Drop on it,
    // so whatever `Handshake` and `Channel` hold inline (the `Zeroizing`
    // arrays of the network key, the session keys, the session id) stays
    // in freed memory. The C ABI never moves a handle (into_channel copies
    // the keys out and drops the handshake in place), so only Rust callers
    // are exposed. Keeping the secrets in a heap block of their own inside
    // each object (moved as a pointer, wiped by Drop) makes this pass.
    let _serial = serial();
    let case = case1();
    let mut watches = Vec::new();
    for protocol in PROTOCOLS {
        let name = protocol.name;
        forget_needles();
        register_all(session_secrets(protocol, &case));

        watches.push(watch(
            format!("{name}: into_channel on a Box<Handshake>"),
            false,
            || {
                let (client, server) = (protocol.handshakes)(&case);
                let (mut client, mut server) = (Box::new(client), Box::new(server));
                run_handshake(protocol, &case, &mut client, &mut server);
                let client_channel = client.into_channel().unwrap();
                let server_channel = server.into_channel().unwrap();
                drop(client_channel);
                drop(server_channel);
            },
        ));

        watches.push(watch(
            format!("{name}: a Box<Channel> unboxed"),
            false,
            || {
                let (mut client, mut server) = (protocol.handshakes)(&case);
                run_handshake(protocol, &case, &mut client, &mut server);
                let boxed = Box::new(client.into_channel().unwrap());
                let channel: Channel = *boxed;
                drop(channel);
                drop(server);
            },
        ));

        watches.push(watch(
            format!("{name}: channels in a growing Vec<Channel>"),
            false,
            || {
                let mut channels_held: Vec<Channel> = Vec::with_capacity(1);
                for _ in 0..3 {
                    let (client_channel, server_channel) = channels(protocol, &case);
                    channels_held.push(client_channel);
                    channels_held.push(server_channel);
                }
                drop(channels_held);
            },
        ));
    }
    assert_clean(&watches);
    forget_needles();
}

// ---------------------------------------------------------------------------
// No Clone, no Debug that prints secrets
// ---------------------------------------------------------------------------

/// `<Probe<T>>::IS_CLONE` is true exactly when `T: Clone`: the inherent
/// constant exists only under the bound, otherwise the trait's applies.
struct Probe<T: ?Sized>(PhantomData<T>);

trait Fallback {
    const IS_CLONE: bool = false;
    const IS_COPY: bool = false;
}

impl<T: ?Sized> Fallback for Probe<T> {}

#[allow(dead_code)]
impl<T: Clone> Probe<T> {
    const IS_CLONE: bool = true;
}

struct CopyProbe<T: ?Sized>(PhantomData<T>);

impl<T: ?Sized> Fallback for CopyProbe<T> {}

#[allow(dead_code)]
impl<T: Copy> CopyProbe<T> {
    const IS_COPY: bool = true;
}

// The probe works: it sees Clone and Copy where they are...
const _: () = assert!(<Probe<PublicKey>>::IS_CLONE && <Probe<[u8; 32]>>::IS_CLONE);
const _: () = assert!(<CopyProbe<PublicKey>>::IS_COPY);
const _: () = assert!(!<Probe<Mutex<u8>>>::IS_CLONE && !<CopyProbe<Vec<u8>>>::IS_COPY);
// ... and the secret-holding types are neither (a compile error otherwise).
const _: () = assert!(!<Probe<Identity>>::IS_CLONE, "Identity implements Clone");
const _: () = assert!(
    !<Probe<NetworkKey>>::IS_CLONE,
    "NetworkKey implements Clone"
);
const _: () = assert!(!<Probe<SessionId>>::IS_CLONE, "SessionId implements Clone");
const _: () = assert!(!<Probe<Handshake>>::IS_CLONE, "Handshake implements Clone");
const _: () = assert!(!<Probe<Channel>>::IS_CLONE, "Channel implements Clone");
const _: () = assert!(!<CopyProbe<Identity>>::IS_COPY && !<CopyProbe<NetworkKey>>::IS_COPY);
const _: () = assert!(!<CopyProbe<SessionId>>::IS_COPY && !<CopyProbe<Handshake>>::IS_COPY);
const _: () = assert!(!<CopyProbe<Channel>>::IS_COPY);

#[test]
fn secret_holding_types_are_not_clone() {
    let _serial = serial();
    // Checked at compile time below too; listed here for the test report.
    let clone = [
        (
            "Identity",
            <Probe<Identity>>::IS_CLONE,
            <CopyProbe<Identity>>::IS_COPY,
        ),
        (
            "NetworkKey",
            <Probe<NetworkKey>>::IS_CLONE,
            <CopyProbe<NetworkKey>>::IS_COPY,
        ),
        (
            "SessionId",
            <Probe<SessionId>>::IS_CLONE,
            <CopyProbe<SessionId>>::IS_COPY,
        ),
        (
            "Handshake",
            <Probe<Handshake>>::IS_CLONE,
            <CopyProbe<Handshake>>::IS_COPY,
        ),
        (
            "Channel",
            <Probe<Channel>>::IS_CLONE,
            <CopyProbe<Channel>>::IS_COPY,
        ),
    ];
    for (name, is_clone, is_copy) in clone {
        assert!(!is_clone, "{name} implements Clone");
        assert!(!is_copy, "{name} implements Copy");
    }
}

/// The ways a 32-byte secret could appear in formatted text: as hex (either
/// case, whole or any 4-byte stretch), as a Debug list of decimal or hex
/// numbers (any 4 consecutive elements).
fn printed_forms(secret: &[u8; 32]) -> Vec<String> {
    let mut forms = Vec::new();
    for window in secret.windows(4) {
        let hex: String = window.iter().map(|b| format!("{b:02x}")).collect();
        forms.push(hex.to_uppercase());
        forms.push(hex);
        forms.push(format!(
            "{}, {}, {}, {}",
            window[0], window[1], window[2], window[3]
        ));
        forms.push(format!(
            "{:x}, {:x}, {:x}, {:x}",
            window[0], window[1], window[2], window[3]
        ));
        forms.push(format!(
            "{:02x}, {:02x}, {:02x}, {:02x}",
            window[0], window[1], window[2], window[3]
        ));
    }
    forms
}

fn assert_prints_no_secret(what: &str, text: &str, secrets: &[(&str, [u8; 32])]) {
    for (name, secret) in secrets {
        for form in printed_forms(secret) {
            assert!(
                !text.contains(&form),
                "{what}'s Debug output shows {name} ({form:?}): {text}"
            );
        }
    }
}

#[test]
fn debug_output_prints_no_secret() {
    let _serial = serial();
    let case = case1();
    // The check itself finds secrets printed the usual ways.
    let leaky = format!("{:?} {:x?} {}", case.key_c2s, case.ee, hex_string(&case.k3));
    for secret in [("key_c2s", case.key_c2s), ("ee", case.ee), ("k3", case.k3)] {
        let caught =
            std::panic::catch_unwind(|| assert_prints_no_secret("a control", &leaky, &[secret]));
        assert!(caught.is_err(), "the check misses {}", secret.0);
    }

    for protocol in PROTOCOLS {
        let secrets = session_secrets(protocol, &case);
        let mut texts: Vec<(String, String)> = Vec::new();
        let mut record = |what: &str, text: String| {
            texts.push((format!("{} {what}", protocol.name), text));
        };
        let client_identity = Identity::from_seed(&case.client_seed);
        record(
            "Identity",
            format!("{client_identity:?} {client_identity:#?}"),
        );
        let network_key = NetworkKey::new(case.network_key);
        record("NetworkKey", format!("{network_key:?} {network_key:#?}"));

        let (mut client, mut server) = (protocol.handshakes)(&case);
        let mut drive = Drive::new(protocol, &case);
        record("fresh client Handshake", format!("{client:?} {client:#?}"));
        drive.to(2, &mut client, &mut server);
        record(
            "server Handshake after M1",
            format!("{server:?} {server:#?}"),
        );
        drive.to(3, &mut client, &mut server);
        record(
            "client Handshake after M2",
            format!("{client:?} {client:#?}"),
        );
        drive.to(5, &mut client, &mut server);
        record(
            "server Handshake accepted",
            format!("{server:?} {server:#?}"),
        );
        drive.to(HANDSHAKE_DONE, &mut client, &mut server);
        record("done client Handshake", format!("{client:?} {client:#?}"));
        record("done server Handshake", format!("{server:?} {server:#?}"));
        let mut client_channel = client.into_channel().unwrap();
        let mut server_channel = server.into_channel().unwrap();
        record("Channel", format!("{client_channel:?} {client_channel:#?}"));
        if protocol.key_update {
            let session_id = client_channel.session_id().unwrap();
            record("SessionId", format!("{session_id:?} {session_id:#?}"));
            send_control(&mut client_channel, &mut server_channel, false);
            record(
                "Channel after a key update",
                format!("{server_channel:?} {server_channel:#?}"),
            );
        }
        let mut damaged = rust_seal(&mut client_channel, b"damaged");
        damaged[3] ^= 1;
        let mut plain = [0u8; 64];
        assert_eq!(
            server_channel.open(&damaged, &mut plain),
            Err(Error::RecordDoesNotOpen)
        );
        record(
            "failed Channel",
            format!("{server_channel:?} {server_channel:#?}"),
        );
        let (mut other_client, mut refused) = (protocol.handshakes)(&case);
        Drive::new(protocol, &case).to(4, &mut other_client, &mut refused);
        assert_eq!(refused.authorize(false), Err(Error::ClientRefused));
        record("failed Handshake", format!("{refused:?} {refused:#?}"));

        for (what, text) in &texts {
            assert_prints_no_secret(what, text, &secrets);
        }
        // And the public parts are what they print.
        assert!(
            texts[0].1.contains(&hex_string(&case.client_public)),
            "{}",
            texts[0].1
        );
    }
}

#[test]
fn shs1_through_c_abi_identity_handles_leaves_no_key_in_freed_memory() {
    // Both sides through the C ABI with random ephemerals: the identities
    // and network key are known up front, the box-stream keys once the
    // channels export them; freed blocks are captured and searched again at
    // the end.
    let _serial = serial();
    let case = case1();
    forget_needles();
    register_all(identity_secrets_of(&case));
    let mut watches = Vec::new();
    watches.push(watch("SHS1 through the C ABI", true, || unsafe {
        let mut client_identity = null_mut();
        let mut server_identity = null_mut();
        assert_eq!(
            privline_identity_new(case.client_seed.as_ptr(), 32, &mut client_identity),
            PRIVLINE_RESULT_OK
        );
        assert_eq!(
            privline_identity_new(case.server_seed.as_ptr(), 32, &mut server_identity),
            PRIVLINE_RESULT_OK
        );
        let mut server_public = [0u8; 32];
        assert_eq!(
            privline_identity_public_key(server_identity, server_public.as_mut_ptr()),
            PRIVLINE_RESULT_OK
        );
        let shs1 = privline_protocol::PRIVLINE_PROTOCOL_SHS1 as u32;
        let mut client = null_mut();
        let mut server = null_mut();
        assert_eq!(
            privline_handshake_new_client_with_identity(
                shs1,
                case.network_key.as_ptr(),
                client_identity,
                server_public.as_ptr(),
                &mut client
            ),
            PRIVLINE_RESULT_OK
        );
        assert_eq!(
            privline_handshake_new_server_with_identity(
                shs1,
                case.network_key.as_ptr(),
                server_identity,
                &mut server
            ),
            PRIVLINE_RESULT_OK
        );
        privline_identity_free(client_identity);
        privline_identity_free(server_identity);
        let need = privline_handshake_status::PRIVLINE_HANDSHAKE_NEED_INPUT;
        let hello = c_ok_step(client, &[], need);
        let server_hello = c_ok_step(server, &hello, need);
        let auth = c_ok_step(client, &server_hello, need);
        c_ok_step(
            server,
            &auth,
            privline_handshake_status::PRIVLINE_HANDSHAKE_AUTHORIZE_PEER,
        );
        assert_eq!(
            privline_handshake_authorize(server, true),
            PRIVLINE_RESULT_OK
        );
        let accept = c_ok_step(
            server,
            &[],
            privline_handshake_status::PRIVLINE_HANDSHAKE_DONE,
        );
        c_ok_step(
            client,
            &accept,
            privline_handshake_status::PRIVLINE_HANDSHAKE_DONE,
        );
        let client_channel = c_into_channel(client);
        let server_channel = c_into_channel(server);
        let mut keys = [0u8; PRIVLINE_SHS1_KEYS_LEN];
        assert_eq!(
            privline_channel_export_shs1_keys(client_channel, keys.as_mut_ptr()),
            PRIVLINE_RESULT_OK
        );
        let mut send_key = [0u8; 32];
        let mut receive_key = [0u8; 32];
        send_key.copy_from_slice(&keys[..32]);
        receive_key.copy_from_slice(&keys[56..88]);
        keys.zeroize();
        register("SHS1 key client to server (C ABI)", &send_key);
        register("SHS1 key server to client (C ABI)", &receive_key);
        send_key.zeroize();
        receive_key.zeroize();
        let sealed = c_seal(client_channel, b"hello");
        assert_eq!(c_open(server_channel, &sealed), (PRIVLINE_RESULT_OK, DATA));
        let goodbye = c_control(client_channel, true);
        assert_eq!(
            c_open(server_channel, &goodbye),
            (PRIVLINE_RESULT_OK, CLOSE)
        );
        privline_channel_free(client_channel);
        privline_channel_free(server_channel);
    }));
    assert!(
        watches[0].handshake_blocks() >= 2 && watches[0].channel_blocks() >= 2,
        "{}",
        watches[0].summary()
    );
    assert_clean(&watches);
    forget_needles();
}

// ---------------------------------------------------------------------------
// The stack: nothing left in the memory below the caller's frame
// ---------------------------------------------------------------------------

/// Bytes of dead stack searched below the caller's frame: far deeper than
/// any call into the library goes.
const STACK_SCAN_DEPTH: usize = 256 << 10;
/// Bytes right below the caller's frame left out of the search: the frames
/// of the search itself (reading `/proc/self/mem`) land there, and the body
/// runs below them.
const STACK_SCAN_GAP: usize = 16 << 10;

/// Fills `STACK_SCAN_DEPTH` bytes of stack below its caller with a pattern,
/// so that what the search finds was written after this.
#[inline(never)]
fn paint_stack() {
    let mut paint = [0xa5u8; STACK_SCAN_DEPTH + STACK_SCAN_GAP];
    black_box(&mut paint);
}

/// Runs `body` `STACK_SCAN_GAP` bytes below its caller's frame.
#[inline(never)]
fn below_the_gap(body: &mut dyn FnMut()) {
    let mut gap = [0u8; STACK_SCAN_GAP];
    black_box(&mut gap);
    body();
    black_box(&mut gap);
}

/// Runs `body` on a thread of its own, then reads the dead stack it used
/// (through `/proc/self/mem`, so no Rust reference to dead memory is
/// made) and returns every registered needle found there, with its offset
/// below the caller's frame.
fn secrets_left_on_the_stack(mut body: impl FnMut() + Send) -> Vec<(String, usize)> {
    use std::os::unix::fs::FileExt;
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .stack_size(4 << 20)
            .spawn_scoped(scope, move || {
                let frame = 0u8;
                let top = black_box(&frame) as *const u8 as usize;
                paint_stack();
                below_the_gap(&mut body);
                let start = top - STACK_SCAN_DEPTH;
                let end = top - STACK_SCAN_GAP;
                let mut dead = vec![0u8; end - start];
                let memory = std::fs::File::open("/proc/self/mem").expect("/proc/self/mem");
                memory
                    .read_exact_at(&mut dead, start as u64)
                    .expect("reading the thread's stack");
                let painted = dead.iter().filter(|&&byte| byte == 0xa5).count();
                assert!(
                    painted < dead.len(),
                    "the body left the painted stack untouched: the search would see nothing"
                );
                let (needles, names, count) =
                    locked(|state, _| (state.needles, state.names, state.needle_count));
                let mut found = Vec::new();
                for offset in 0..=dead.len() - NEEDLE_LEN {
                    for needle in 0..count {
                        if dead[offset..offset + NEEDLE_LEN] == needles[needle] {
                            found.push((names[needle].to_string(), end - (start + offset)));
                        }
                    }
                }
                found
            })
            .expect("thread")
            .join()
            .expect("scan")
    })
}

/// Runs a protocol's test session on the stack-scanned thread (the
/// handshake, then with `conversation` a conversation), and returns every
/// secret the library derived that it left there. The test's own copies
/// of seeds and ephemerals are not the library's: only derived secrets
/// are looked for.
fn session_stack_leftovers(
    protocol: &Protocol,
    case: &Case,
    conversation: bool,
) -> Vec<(String, usize)> {
    forget_needles();
    register_all((protocol.derived)(case));
    let found = secrets_left_on_the_stack(|| {
        let (mut client_channel, mut server_channel) = channels(protocol, case);
        if conversation {
            converse(protocol, &mut client_channel, &mut server_channel);
        }
    });
    // The needles are this session's real secrets: a session made the
    // same way reveals one of them.
    let (client_channel, _) = channels(protocol, case);
    let mut revealed = (protocol.revealed)(&client_channel);
    let registered = is_needle(&revealed);
    revealed.zeroize();
    forget_needles();
    assert!(
        registered,
        "{}: the secret a channel reveals is not among the needles",
        protocol.name
    );
    found
}

fn assert_none_left(what: &str, found: &[(String, usize)]) {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for (name, _) in found {
        *counts.entry(name.as_str()).or_default() += 1;
    }
    assert!(
        found.is_empty(),
        "{what}: secrets left in the dead stack (name: copies): {counts:?}\n(name, bytes below the caller): {found:?}"
    );
}

#[test]
fn a_handshake_leaves_no_secret_on_the_stack() {
    let _serial = serial();
    let case = case1();
    for protocol in PROTOCOLS {
        let found = session_stack_leftovers(protocol, &case, false);
        assert_none_left(&format!("{} handshake", protocol.name), &found);
    }
}

#[test]
fn a_conversation_leaves_no_secret_on_the_stack() {
    let _serial = serial();
    let case = case1();
    for protocol in PROTOCOLS {
        let found = session_stack_leftovers(protocol, &case, true);
        assert_none_left(&format!("{} conversation", protocol.name), &found);
    }
}

#[test]
fn making_an_identity_leaves_no_expanded_secret_on_the_stack() {
    let _serial = serial();
    let case = case1();
    forget_needles();
    let [raw, clamped, signing, prefix] = identity_secrets(&case.client_seed);
    register("SHA-512(seed)[..32]", &raw);
    register("clamped scalar", &clamped);
    register("Ed25519 signing scalar", &signing);
    register("Ed25519 hash prefix", &prefix);
    let found = secrets_left_on_the_stack(|| {
        let identity = Identity::from_seed(&case.client_seed);
        let _ = Identity::from_secret_bytes(&case.client_seed).unwrap();
        black_box(identity.public_key());
    });
    forget_needles();
    assert_none_left("Identity::from_seed", &found);
}
