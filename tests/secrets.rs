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
//! Each property is one test body run over both protocols, privline/1
//! and SHS1; what differs between them is a row of the [`Protocol`] table
//! (which ephemerals the test chooses, which secrets follow from them, how
//! the C side's secrets are recomputed from the wire, what a channel
//! reveals), not a second copy of the test.
//!
//! The needles come from case1 of `tests/vectors/privline1.json` (its
//! identities and network key for both protocols; for privline/1 its
//! ephemerals too, which the hidden `*_with_ephemerals_for_tests`
//! constructors accept), so every secret is known up front: the ephemeral
//! secrets (raw and clamped), the identities' seeds and expanded scalars,
//! the network key, privline/1's `ee`, `eb`, `ae`, `ff`, `k3`, `k4`, traffic
//! keys, session id and keys after one and two key updates, SHS1's DH
//! results, box keys and box-stream keys. For runs with a C ABI handle on
//! one side and a known-ephemeral Rust peer on the other, the C side's
//! derived secrets are recomputed from the messages on the wire (privline/1
//! with a small transcription of the key schedule here, checked against the
//! vectors first; the key update and the primitives come from
//! `tests/support/reference`).
//!
//! Every test takes `SERIAL`, so only one scenario runs while the scanner
//! is armed.

#[path = "support/capi.rs"]
mod capi;
#[path = "support/hex.rs"]
mod hex;
#[path = "support/pair.rs"]
mod pair;
#[path = "support/reference/mod.rs"]
mod reference;
use hex::{hex32, hex_into, hex_string};
use reference::primitives::sha256;
use reference::privline1_records::ref_update_key;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::hint::black_box;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, Tag};
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

/// Which side of a handshake has the ephemeral secrets the test chose; the
/// other side's are random (a C ABI handle's), known only from the wire.
#[derive(Clone, Copy, Debug)]
enum Known {
    Client,
    Server,
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

/// The key schedule of PROTOCOL.md, from case1's ephemerals of the
/// `known` side and the messages M1, M2 and, of a handshake that got that
/// far, M3 and M4 (what depends on a missing one is left zero).
fn derive(case: &Case, known: Known, messages: &[Vec<u8>]) -> Derived {
    use x25519_dalek::{x25519, X25519_BASEPOINT_BYTES};
    let (m1, m2) = (&messages[0], &messages[1]);
    let mut ec_public = [0u8; 32];
    let mut es_public = [0u8; 32];
    ec_public.copy_from_slice(&m1[..32]);
    es_public.copy_from_slice(&m2[..32]);
    let mont_client = x25519(case.xsk_client, X25519_BASEPOINT_BYTES);
    let mont_server = x25519(case.xsk_server, X25519_BASEPOINT_BYTES);
    let mut d = Derived::default();
    match known {
        Known::Client => {
            d.ee = x25519(case.ec, es_public);
            d.eb = x25519(case.ec, mont_server);
            d.ae = x25519(case.xsk_client, es_public);
        }
        Known::Server => {
            d.ee = x25519(case.es, ec_public);
            d.eb = x25519(case.xsk_server, ec_public);
            d.ae = x25519(case.es, mont_client);
        }
    }
    let h0 = sha256(&[b"privline/1", &case.network_key]);
    let h1 = sha256(&[&h0, m1]);
    let h2 = sha256(&[&h1, m2]);
    hkdf(&h2, &[&d.ee, &d.eb], b"privline/1 k3", &mut d.k3);
    let Some(m3) = messages.get(2) else {
        return d;
    };
    let mut greeting = [0u8; 128];
    greeting.copy_from_slice(&m3[..128]);
    ChaCha20Poly1305::new((&d.k3).into())
        .decrypt_inout_detached(
            &Nonce::default(),
            &h2,
            greeting.as_mut_slice().into(),
            &Tag::try_from(&m3[128..144]).expect("16 bytes"),
        )
        .expect("M3 opens under the recomputed k3");
    let mut fc_public = [0u8; 32];
    fc_public.copy_from_slice(&greeting[32..64]);
    let h3 = sha256(&[&h2, m3]);
    hkdf(&h3, &[&d.ee, &d.eb, &d.ae], b"privline/1 k4", &mut d.k4);
    let Some(m4) = messages.get(3) else {
        return d;
    };
    let mut answer = [0u8; 96];
    answer.copy_from_slice(&m4[..96]);
    ChaCha20Poly1305::new((&d.k4).into())
        .decrypt_inout_detached(
            &Nonce::default(),
            &h3,
            answer.as_mut_slice().into(),
            &Tag::try_from(&m4[96..112]).expect("16 bytes"),
        )
        .expect("M4 opens under the recomputed k4");
    let mut fs_public = [0u8; 32];
    fs_public.copy_from_slice(&answer[..32]);
    d.ff = match known {
        Known::Client => x25519(case.fc, fs_public),
        Known::Server => x25519(case.fs, fc_public),
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
    let messages = [
        case.m1.to_vec(),
        case.m2.to_vec(),
        case.m3.to_vec(),
        case.m4.to_vec(),
    ];
    for known in [Known::Client, Known::Server] {
        let d = derive(case, known, &messages);
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
        ref_update_key(&case.key_c2s) == case.c2s_updated,
        "c2s key update"
    );
    assert!(
        ref_update_key(&case.key_s2c) == case.s2c_updated,
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

/// Secrets recomputed for one side of a handshake, in a fixed array on
/// the stack: the C ABI tests register them while the scanner watches, and
/// a heap copy of them would be found. `None` for what that side had not
/// derived yet.
type Recomputed = [Option<Secret>; 13];

/// The names of a privline/1 handshake's derived secrets, in the order of
/// [`Derived::secrets`].
static PRIVLINE1_NAMES: [&str; 13] = [
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
    /// and two key updates.
    fn secrets(&self) -> Recomputed {
        let c2s_1 = ref_update_key(&self.key_c2s);
        let s2c_1 = ref_update_key(&self.key_s2c);
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
            ref_update_key(&c2s_1),
            ref_update_key(&s2c_1),
        ];
        let reached = if self.ff != [0; 32] {
            values.len()
        } else if self.k4 != [0; 32] {
            5
        } else {
            4
        };
        std::array::from_fn(|i| (i < reached).then_some((PRIVLINE1_NAMES[i], values[i])))
    }
}

// ---------------------------------------------------------------------------
// The two protocols, as data
// ---------------------------------------------------------------------------

/// What the tests need to know of a protocol. Each test is one body run
/// over [`PROTOCOLS`]; what differs between privline/1 and SHS1 is here.
struct Protocol {
    api: privline::Protocol,
    /// The `privline_protocol` value.
    c_id: u32,
    /// The ephemeral secrets the test hands its client and server, with
    /// their names: privline/1's `ec`, `fc`, `es`, `fs`; SHS1 has one a
    /// side, given twice (the second is ignored, and registers once).
    ephemerals: fn(&Case) -> [Secret; 4],
    /// The four handshake messages those ephemerals must give, where the
    /// vectors have them: proof that the chosen ephemerals are in use.
    messages: fn(&Case) -> Option<[&[u8]; 4]>,
    /// Every secret the library derives in a session of [`handshakes`].
    derived: fn(&Case) -> Vec<Secret>,
    /// What the side facing the `Known` one derives, recomputed from the
    /// messages so far (at least M1 and M2).
    recompute: fn(&Case, Known, &[Vec<u8>]) -> Recomputed,
    /// A secret of a channel that the API hands out (privline/1: the
    /// session id; SHS1: the exported sending key): it must be among the
    /// needles, or they are not the session's real secrets.
    revealed: fn(&Channel) -> [u8; 32],
    /// The same through the C ABI.
    c_revealed: fn(*const privline_channel) -> [u8; 32],
    /// A C ABI client and server on case1's identities (random ephemerals).
    c_client: fn(&capi::Keys) -> *mut privline_handshake,
    c_server: fn(&capi::Keys) -> *mut privline_handshake,
}

impl Protocol {
    fn name(&self) -> &'static str {
        capi::Protocol::of(self.c_id).name
    }

    /// Key updates and the session id, which SHS1 does not have.
    fn has_extensions(&self) -> bool {
        pair::Shape::of(self.api).extras
    }
}

static PRIVLINE1: Protocol = Protocol {
    api: privline::Protocol::Privline1,
    c_id: capi::PRIVLINE1,
    ephemerals: |case| {
        [
            ("ec", case.ec),
            ("fc", case.fc),
            ("es", case.es),
            ("fs", case.fs),
        ]
    },
    messages: |case| Some([&case.m1[..], &case.m2[..], &case.m3[..], &case.m4[..]]),
    derived: |case| {
        let clamped = [
            ("ec (clamped)", clamp(case.ec)),
            ("fc (clamped)", clamp(case.fc)),
            ("es (clamped)", clamp(case.es)),
            ("fs (clamped)", clamp(case.fs)),
        ];
        let derived = case1_derived(case).secrets();
        derived.into_iter().flatten().chain(clamped).collect()
    },
    recompute: |case, known, messages| derive(case, known, messages).secrets(),
    revealed: |channel| *channel.session_id().expect("session id").as_bytes(),
    c_revealed: |channel| {
        let (result, id) = capi::session_id(channel);
        assert_eq!(result, PRIVLINE_RESULT_OK);
        id
    },
    c_client: capi::new_client,
    c_server: capi::new_server,
};

/// The SHS1 session's ephemeral secrets: the client's `a`, the server's `b`.
const SHS1_A: [u8; 32] = [0x51; 32];
const SHS1_B: [u8; 32] = [0x5b; 32];

static SHS1: Protocol = Protocol {
    api: privline::Protocol::Shs1,
    c_id: capi::SHS1,
    ephemerals: |_| {
        let a = ("SHS1 client ephemeral a (raw)", SHS1_A);
        let b = ("SHS1 server ephemeral b (raw)", SHS1_B);
        [a, a, b, b]
    },
    messages: |_| None,
    derived: |case| {
        let b_public = reference::primitives::x25519_public(&SHS1_B);
        let mut secrets = vec![
            ("SHS1 client ephemeral a (clamped)", clamp(SHS1_A)),
            ("SHS1 server ephemeral b (clamped)", clamp(SHS1_B)),
        ];
        secrets.extend(
            shs1_secrets(case, Known::Client, b_public)
                .into_iter()
                .flatten(),
        );
        secrets
    },
    recompute: |case, known, messages| {
        // A hello is a MAC, then the sender's ephemeral public key.
        let peer_hello = match known {
            Known::Client => &messages[1],
            Known::Server => &messages[0],
        };
        let mut peer_ephemeral = [0u8; 32];
        peer_ephemeral.copy_from_slice(&peer_hello[32..64]);
        shs1_secrets(case, known, peer_ephemeral)
    },
    revealed: |channel| {
        let keys = channel.export_shs1_keys().expect("SHS1 keys");
        let mut sending = [0u8; 32];
        sending.copy_from_slice(&keys[..32]);
        sending
    },
    c_revealed: |channel| {
        let (result, keys) = capi::export_keys(channel);
        assert_eq!(result, PRIVLINE_RESULT_OK);
        let mut sending = [0u8; 32];
        sending.copy_from_slice(&keys[..32]);
        sending
    },
    c_client: |keys| shs1_c_handshake(keys, &keys.client_seed, capi::new_client_with_identity),
    c_server: |keys| shs1_c_handshake(keys, &keys.server_seed, capi::new_server_with_identity),
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

static SHS1_NAMES: [&str; 9] = [
    "SHS1 ab",
    "SHS1 aB",
    "SHS1 Ab",
    "SHS1 sha256(ab)",
    "SHS1 client auth key",
    "SHS1 k3 (server accept key)",
    "SHS1 box-stream secret",
    "SHS1 key client to server",
    "SHS1 key server to client",
];

/// Every secret of an SHS1 handshake between case1's identities, from the
/// SHS1 definition, as the `known` side (client `a` = [`SHS1_A`], server
/// `b` = [`SHS1_B`]) computes it with the peer's ephemeral public key: the
/// three DH results, `sha256(ab)`, the box keys of the client auth and the
/// server accept, and the box-stream secret and keys.
fn shs1_secrets(case: &Case, known: Known, peer_ephemeral: [u8; 32]) -> Recomputed {
    use x25519_dalek::x25519;
    let (ab, a_long_b, long_a_b) = match known {
        Known::Client => (
            x25519(SHS1_A, peer_ephemeral),
            x25519(SHS1_A, case.mont_server),
            x25519(case.xsk_client, peer_ephemeral),
        ),
        Known::Server => (
            x25519(SHS1_B, peer_ephemeral),
            x25519(case.xsk_server, peer_ephemeral),
            x25519(SHS1_B, case.mont_client),
        ),
    };
    let k = &case.network_key;
    let k3 = sha256(&[k, &ab, &a_long_b, &long_a_b]);
    let secret = sha256(&[&k3]);
    let values = [
        ab,
        a_long_b,
        long_a_b,
        sha256(&[&ab]),
        sha256(&[k, &ab, &a_long_b]),
        k3,
        secret,
        sha256(&[&secret, &case.server_public]),
        sha256(&[&secret, &case.client_public]),
    ];
    std::array::from_fn(|i| SHS1_NAMES.get(i).map(|name| (*name, values[i])))
}

/// An SHS1 handshake through the C ABI on an identity handle made from
/// `seed` (SHS1 has no constructor taking a seed) and freed at once.
fn shs1_c_handshake(
    keys: &capi::Keys,
    seed: &[u8; 32],
    new: fn(u32, &capi::Keys, *const privline_identity) -> *mut privline_handshake,
) -> *mut privline_handshake {
    let identity = capi::identity(seed);
    let handshake = new(capi::SHS1, keys, identity);
    unsafe { privline_identity_free(identity) };
    handshake
}

/// Every secret of a protocol's test session: the identities', the
/// ephemerals as handed over, and the derived ones.
fn session_secrets(protocol: &Protocol, case: &Case) -> Vec<Secret> {
    let mut secrets = identity_secrets_of(case);
    secrets.extend((protocol.ephemerals)(case));
    secrets.extend((protocol.derived)(case));
    secrets
}

/// The keys the C ABI constructors take.
fn c_keys(case: &Case) -> capi::Keys {
    capi::Keys {
        network_key: case.network_key,
        client_seed: case.client_seed,
        server_seed: case.server_seed,
    }
}

// ---------------------------------------------------------------------------
// Driving handshakes and channels, through either API
// ---------------------------------------------------------------------------

/// A client and a server handshake of a protocol between case1's
/// identities, with the ephemeral secrets the test chose.
fn handshakes(protocol: &Protocol, case: &Case) -> (Handshake, Handshake) {
    let [ec, fc, es, fs] = (protocol.ephemerals)(case).map(|(_, secret)| secret);
    let client = pair::client(
        protocol.api,
        &case.network_key,
        &case.client_seed,
        &case.server_public,
        &ec,
        &fc,
    )
    .expect("client");
    let server = pair::server(protocol.api, &case.network_key, &case.server_seed, &es, &fs);
    (client, server)
}

/// One side of a handshake: a Rust [`Handshake`] or a C ABI handle, so that
/// one driver runs Rust pairs and pairs with a C side.
trait Party {
    /// One step that must succeed, take all of `input` and end in
    /// `status`; returns what it wrote.
    fn step_ok(&mut self, input: &[u8], status: Status) -> Vec<u8>;
    /// The server application authorizes the client (`accept`) or not;
    /// the handshake must take the decision as given.
    fn decide(&mut self, accept: bool);
}

impl Party for Handshake {
    fn step_ok(&mut self, input: &[u8], status: Status) -> Vec<u8> {
        let mut out = [0u8; privline::HANDSHAKE_MAX_MESSAGE_LEN];
        let step = self.step(input, &mut out).expect("step");
        assert_eq!((step.status, step.consumed), (status, input.len()));
        out[..step.written].to_vec()
    }

    fn decide(&mut self, accept: bool) {
        let expected = if accept {
            Ok(())
        } else {
            Err(Error::ClientRefused)
        };
        assert_eq!(self.authorize(accept), expected);
    }
}

impl<P: Party + ?Sized> Party for Box<P> {
    fn step_ok(&mut self, input: &[u8], status: Status) -> Vec<u8> {
        (**self).step_ok(input, status)
    }

    fn decide(&mut self, accept: bool) {
        (**self).decide(accept)
    }
}

/// A C ABI handshake handle.
struct CHandshake(*mut privline_handshake);

impl Party for CHandshake {
    fn step_ok(&mut self, input: &[u8], status: Status) -> Vec<u8> {
        let status = match status {
            Status::NeedInput => capi::NEED_INPUT,
            Status::AuthorizePeer => capi::AUTHORIZE_PEER,
            Status::Done => capi::DONE,
        };
        capi::ok_step(self.0, input, status)
    }

    fn decide(&mut self, accept: bool) {
        let expected = if accept {
            PRIVLINE_RESULT_OK
        } else {
            PRIVLINE_RESULT_CLIENT_REFUSED
        };
        assert_eq!(
            unsafe { privline_handshake_authorize(self.0, accept) },
            expected
        );
    }
}

/// The stage a handshake pair has reached, of [`HANDSHAKE_DONE`]: 1 M1
/// written, 2 M2 written, 3 M3 written, 4 the server asks to authorize, 5
/// the server accepted, 6 M4 written, 7 both done. (SHS1's hello, server
/// hello, client auth and server accept are its M1 to M4.)
const HANDSHAKE_DONE: usize = 7;

/// Drives a client and a server stage by stage, keeping the messages and
/// checking them against the vectors where they are known.
struct Drive {
    expected: Option<[Vec<u8>; 4]>,
    messages: Vec<Vec<u8>>,
    stage: usize,
}

impl Drive {
    /// For a protocol's test handshakes (see [`handshakes`]).
    fn new(protocol: &Protocol, case: &Case) -> Drive {
        let expected = (protocol.messages)(case).map(|messages| messages.map(<[u8]>::to_vec));
        Drive {
            expected,
            messages: Vec::new(),
            stage: 0,
        }
    }

    /// For a pair with a side of random ephemerals, whose messages no
    /// vector gives.
    fn unchecked() -> Drive {
        Drive {
            expected: None,
            messages: Vec::new(),
            stage: 0,
        }
    }

    /// Runs the stages after the one reached, up to `stage`.
    fn to(&mut self, stage: usize, client: &mut impl Party, server: &mut impl Party) {
        while self.stage < stage {
            self.stage += 1;
            let written = match self.stage {
                1 => client.step_ok(&[], Status::NeedInput),
                2 => server.step_ok(&self.messages[0], Status::NeedInput),
                3 => client.step_ok(&self.messages[1], Status::NeedInput),
                4 => server.step_ok(&self.messages[2], Status::AuthorizePeer),
                5 => {
                    server.decide(true);
                    Vec::new()
                }
                6 => server.step_ok(&[], Status::Done),
                _ => client.step_ok(&self.messages[3], Status::Done),
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
    assert!(client.is_done() && server.is_done());
}

/// A protocol's test handshakes in Boxes, driven to `stage`, and their
/// messages.
fn boxed_handshakes_at(
    protocol: &Protocol,
    case: &Case,
    stage: usize,
) -> (Box<Handshake>, Box<Handshake>, Drive) {
    let (client, server) = handshakes(protocol, case);
    let (mut client, mut server) = (Box::new(client), Box::new(server));
    let mut drive = Drive::new(protocol, case);
    drive.to(stage, &mut client, &mut server);
    assert_eq!(client.is_done(), stage == HANDSHAKE_DONE);
    (client, server, drive)
}

/// The client's and the server's channel of a protocol's test session.
fn channels(protocol: &Protocol, case: &Case) -> (Channel, Channel) {
    let (mut client, mut server) = handshakes(protocol, case);
    run_handshake(protocol, case, &mut client, &mut server);
    (
        client.into_channel().expect("client channel"),
        server.into_channel().expect("server channel"),
    )
}

/// A C ABI handle on one side of case1's handshake and a Rust handshake
/// with the test's ephemerals on the other: every secret the C side
/// derives can be recomputed from the messages.
struct Mixed {
    protocol: &'static Protocol,
    /// The side the Rust handshake plays.
    known: Known,
    c: CHandshake,
    rust: Handshake,
    drive: Drive,
}

impl Mixed {
    fn new(protocol: &'static Protocol, known: Known, case: &Case) -> Mixed {
        let (client, server) = handshakes(protocol, case);
        let keys = c_keys(case);
        let (c, rust) = match known {
            Known::Client => ((protocol.c_server)(&keys), client),
            Known::Server => ((protocol.c_client)(&keys), server),
        };
        Mixed {
            protocol,
            known,
            c: CHandshake(c),
            rust,
            drive: Drive::unchecked(),
        }
    }

    fn to(&mut self, stage: usize) {
        match self.known {
            Known::Client => self.drive.to(stage, &mut self.rust, &mut self.c),
            Known::Server => self.drive.to(stage, &mut self.c, &mut self.rust),
        }
    }

    /// Registers every secret the C side can have derived so far.
    fn register_c_secrets(&self, case: &Case) {
        if self.drive.messages.len() >= 2 {
            let recomputed = (self.protocol.recompute)(case, self.known, &self.drive.messages);
            register_all(recomputed.into_iter().flatten());
        }
    }

    /// The server, whichever API it is on.
    fn server(&mut self) -> &mut dyn Party {
        match self.known {
            Known::Client => &mut self.c,
            Known::Server => &mut self.rust,
        }
    }

    /// Finishes the handshake: (the C channel, the Rust channel).
    fn into_channels(mut self, case: &Case) -> (CChannel, Channel) {
        self.to(HANDSHAKE_DONE);
        self.register_c_secrets(case);
        let c = CChannel(capi::into_channel(self.c.0));
        (c, self.rust.into_channel().expect("channel"))
    }

    fn free(self) {
        unsafe { privline_handshake_free(self.c.0) };
        drop(self.rust);
    }
}

/// One end of a channel, through either API.
trait End {
    /// Seals `payload`; returns the records (SHS1: boxes).
    fn seal_payload(&mut self, payload: &[u8]) -> Vec<u8>;
    /// Seals this end's close (`close`) or a key update.
    fn seal_control(&mut self, close: bool) -> Vec<u8>;
    /// Opens the first record (SHS1: box) of `wire`, which must open.
    fn open_record(&mut self, wire: &[u8]) -> Opened;
}

impl End for Channel {
    fn seal_payload(&mut self, payload: &[u8]) -> Vec<u8> {
        pair::seal(self, payload, 0)
    }

    fn seal_control(&mut self, close: bool) -> Vec<u8> {
        if close {
            pair::close(self)
        } else {
            pair::update(self)
        }
    }

    fn open_record(&mut self, wire: &[u8]) -> Opened {
        let mut plain = vec![0u8; privline::RECORD_MAX_INNER_LEN];
        Channel::open(self, wire, &mut plain).expect("open")
    }
}

impl<E: End + ?Sized> End for Box<E> {
    fn seal_payload(&mut self, payload: &[u8]) -> Vec<u8> {
        (**self).seal_payload(payload)
    }

    fn seal_control(&mut self, close: bool) -> Vec<u8> {
        (**self).seal_control(close)
    }

    fn open_record(&mut self, wire: &[u8]) -> Opened {
        (**self).open_record(wire)
    }
}

/// A C ABI channel handle.
struct CChannel(*mut privline_channel);

impl End for CChannel {
    fn seal_payload(&mut self, payload: &[u8]) -> Vec<u8> {
        capi::seal_ok(self.0, payload)
    }

    fn seal_control(&mut self, close: bool) -> Vec<u8> {
        let room = 64;
        if close {
            capi::close(self.0, 0, room).written()
        } else {
            capi::update_key(self.0, 0, room).written()
        }
    }

    fn open_record(&mut self, wire: &[u8]) -> Opened {
        let opened = capi::open(self.0, wire, PRIVLINE_OPEN_MAX_OUTPUT_LEN);
        assert_eq!(opened.result, PRIVLINE_RESULT_OK, "{opened:?}");
        let consumed = opened.consumed;
        match opened.kind {
            capi::RECORD_DATA => Opened::Data {
                consumed,
                len: opened.output_len,
            },
            capi::RECORD_KEY_UPDATE => Opened::KeyUpdate { consumed },
            capi::RECORD_CLOSE => Opened::Close { consumed },
            _ => panic!("{opened:?}: not a whole record"),
        }
    }
}

/// `from` seals `payload`; `to` opens every record (SHS1: box) of it as
/// data, `payload.len()` bytes in all.
fn send(from: &mut impl End, to: &mut impl End, payload: &[u8]) {
    let wire = from.seal_payload(payload);
    let mut rest = &wire[..];
    let mut received = 0;
    while !rest.is_empty() {
        let opened = to.open_record(rest);
        let Opened::Data { consumed, len } = opened else {
            panic!("{opened:?} where data was sealed");
        };
        received += len;
        rest = &rest[consumed..];
    }
    assert_eq!(received, payload.len());
}

/// `from` seals its close (`close`) or a key update; `to` opens it as such.
fn send_control(from: &mut impl End, to: &mut impl End, close: bool) {
    let opened = to.open_record(&from.seal_control(close));
    if close {
        assert!(matches!(opened, Opened::Close { .. }), "{opened:?}");
    } else {
        assert!(matches!(opened, Opened::KeyUpdate { .. }), "{opened:?}");
    }
}

/// Data both ways three times, two key updates each way where the
/// protocol has them, a payload of several SHS1 boxes, both closes.
fn converse(protocol: &Protocol, client: &mut impl End, server: &mut impl End) {
    for round in 0..3 {
        send(client, server, b"hello, bob");
        send(server, client, b"hello, alice");
        if protocol.has_extensions() && round < 2 {
            send_control(client, server, false);
            send_control(server, client, false);
        }
    }
    send(client, server, &[7u8; 5000]);
    send_control(client, server, true);
    send_control(server, client, true);
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
        let name = protocol.name();
        forget_needles();
        register_all(session_secrets(protocol, &case));

        let session = watch(format!("{name} session in Boxes"), false, || {
            let (client, server, _) = boxed_handshakes_at(protocol, &case, HANDSHAKE_DONE);
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
                    let (client, server, _) = boxed_handshakes_at(protocol, &case, stage);
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
                let (client, mut server, _) = boxed_handshakes_at(protocol, &case, 4);
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
                let (mut client, server, drive) = boxed_handshakes_at(protocol, &case, 6);
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
                let (client, mut server, drive) = boxed_handshakes_at(protocol, &case, 3);
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
                if protocol.has_extensions() {
                    // One key update each way first, so the updated keys are in play.
                    send_control(&mut client_channel, &mut server_channel, false);
                    send_control(&mut server_channel, &mut client_channel, false);
                }
                // The client seals a record that will arrive damaged; the server
                // closes; the client then gets bytes after that close
                // (RECORD_AFTER_CLOSE) and the server the damaged record
                // (RECORD_DOES_NOT_OPEN): both ends die, with their keys in play.
                let mut damaged = client_channel.seal_payload(b"damaged");
                damaged[3] ^= 1;
                let close = server_channel.seal_control(true);
                assert!(matches!(
                    client_channel.open_record(&close),
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
fn a_c_abi_handshake_or_channel_leaves_no_secret_in_freed_memory() {
    // A C ABI handle (random ephemerals) faces a Rust handshake with the
    // test's ephemerals, so every secret the handle derives is recomputed
    // from the messages. Freed blocks are captured and searched again at
    // the end of each scenario, once those secrets are registered.
    let _serial = serial();
    let case = case1();
    check_the_key_schedule(&case);
    let mut watches = Vec::new();
    for protocol in PROTOCOLS {
        for known in [Known::Client, Known::Server] {
            forget_needles();
            register_all(session_secrets(protocol, &case));
            let c_side = match known {
                Known::Client => "server",
                Known::Server => "client",
            };
            let label = |what: &str| format!("{} C ABI {c_side} {what}", protocol.name());

            let session = watch(label("in a whole session"), true, || {
                let (mut c_channel, mut rust_channel) =
                    Mixed::new(protocol, known, &case).into_channels(&case);
                assert!(
                    is_needle(&(protocol.c_revealed)(c_channel.0)),
                    "the recomputed secrets are the real ones"
                );
                assert!(is_needle(&(protocol.revealed)(&rust_channel)));
                match known {
                    Known::Client => converse(protocol, &mut rust_channel, &mut c_channel),
                    Known::Server => converse(protocol, &mut c_channel, &mut rust_channel),
                }
                capi::free_channels(&[c_channel.0]);
                drop(rust_channel);
            });
            assert!(
                session.handshake_blocks() >= 1 && session.channel_blocks() >= 1,
                "{}",
                session.summary()
            );
            watches.push(session);

            for stage in 0..=HANDSHAKE_DONE {
                watches.push(watch(
                    label(&format!("freed at stage {stage}")),
                    true,
                    || {
                        let mut mixed = Mixed::new(protocol, known, &case);
                        mixed.to(stage);
                        mixed.register_c_secrets(&case);
                        mixed.free();
                    },
                ));
            }

            watches.push(watch(label("when the server refuses"), true, || {
                let mut mixed = Mixed::new(protocol, known, &case);
                mixed.to(4);
                mixed.server().decide(false);
                mixed.register_c_secrets(&case);
                mixed.free();
            }));

            // The C server gets a damaged M3, the C client a damaged M4.
            watches.push(watch(label("gets a damaged message"), true, || {
                let mut mixed = Mixed::new(protocol, known, &case);
                let (stage, expected) = match known {
                    Known::Client => (3, PRIVLINE_RESULT_M3_DOES_NOT_OPEN),
                    Known::Server => (6, PRIVLINE_RESULT_M4_DOES_NOT_OPEN),
                };
                mixed.to(stage);
                let mut damaged = mixed.drive.messages.last().unwrap().clone();
                damaged[7] ^= 1;
                let stepped = capi::step(mixed.c.0, &damaged, PRIVLINE_HANDSHAKE_MAX_MESSAGE_LEN);
                assert_eq!(stepped.result, expected);
                mixed.register_c_secrets(&case);
                mixed.free();
            }));

            watches.push(watch(
                label("channel dies on a damaged record"),
                true,
                || {
                    let (mut c_channel, mut rust_channel) =
                        Mixed::new(protocol, known, &case).into_channels(&case);
                    if protocol.has_extensions() {
                        send_control(&mut c_channel, &mut rust_channel, false);
                    }
                    let mut record = rust_channel.seal_payload(b"damaged");
                    record[2] ^= 1;
                    let opened = capi::open(c_channel.0, &record, PRIVLINE_OPEN_MAX_OUTPUT_LEN);
                    assert_eq!(opened.result, PRIVLINE_RESULT_RECORD_DOES_NOT_OPEN);
                    capi::free_channels(&[c_channel.0]);
                    drop(rust_channel);
                },
            ));
        }
    }
    assert_clean(&watches);
    forget_needles();
}

#[test]
fn c_abi_handles_on_both_sides_leave_no_revealed_secret_in_freed_memory() {
    // Both sides through the C ABI, both with random ephemerals: only the
    // identities, the network key and (once the channels reveal them) the
    // session id or the box-stream keys are known. Freed blocks are
    // captured and searched again at the end, so the handshake freed inside
    // into_channel is searched for what the channels reveal afterwards.
    let _serial = serial();
    let case = case1();
    let keys = c_keys(&case);
    let mut watches = Vec::new();
    for protocol in PROTOCOLS {
        forget_needles();
        register_all(identity_secrets_of(&case));
        let both = watch(
            format!("{} C ABI client and server", protocol.name()),
            true,
            || {
                let client = (protocol.c_client)(&keys);
                let server = (protocol.c_server)(&keys);
                let (client, server) =
                    capi::Flight::of(protocol.c_id, client, server).into_channels();
                let client_secret = (protocol.c_revealed)(client);
                let server_secret = (protocol.c_revealed)(server);
                // privline/1's ends share one session id; SHS1's each
                // reveal their own sending key.
                assert_eq!(client_secret == server_secret, protocol.has_extensions());
                register("revealed by the C ABI client", &client_secret);
                register("revealed by the C ABI server", &server_secret);
                converse(protocol, &mut CChannel(client), &mut CChannel(server));
                capi::free_channels(&[client, server]);
            },
        );
        assert!(
            both.handshake_blocks() >= 2 && both.channel_blocks() >= 2,
            "{}",
            both.summary()
        );
        watches.push(both);
    }
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
        let name = protocol.name();
        forget_needles();
        register_all(session_secrets(protocol, &case));

        watches.push(watch(
            format!("{name}: into_channel on a Box<Handshake>"),
            false,
            || {
                let (client, server, _) = boxed_handshakes_at(protocol, &case, HANDSHAKE_DONE);
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
                let (mut client, mut server) = handshakes(protocol, &case);
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
            texts.push((format!("{} {what}", protocol.name()), text));
        };
        let client_identity = Identity::from_seed(&case.client_seed);
        record(
            "Identity",
            format!("{client_identity:?} {client_identity:#?}"),
        );
        let network_key = NetworkKey::new(case.network_key);
        record("NetworkKey", format!("{network_key:?} {network_key:#?}"));

        let (mut client, mut server) = handshakes(protocol, &case);
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
        if protocol.has_extensions() {
            let session_id = client_channel.session_id().unwrap();
            record("SessionId", format!("{session_id:?} {session_id:#?}"));
            send_control(&mut client_channel, &mut server_channel, false);
            record(
                "Channel after a key update",
                format!("{server_channel:?} {server_channel:#?}"),
            );
        }
        let mut damaged = client_channel.seal_payload(b"damaged");
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
        let (mut other_client, mut refused) = handshakes(protocol, &case);
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
        protocol.name()
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
        assert_none_left(&format!("{} handshake", protocol.name()), &found);
    }
}

#[test]
fn a_conversation_leaves_no_secret_on_the_stack() {
    let _serial = serial();
    let case = case1();
    for protocol in PROTOCOLS {
        let found = session_stack_leftovers(protocol, &case, true);
        assert_none_left(&format!("{} conversation", protocol.name()), &found);
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
