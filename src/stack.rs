//! Wiping the stack below a call into the library.
//!
//! Secrets pass through stack frames that no type of ours owns: the
//! states and output blocks of HKDF and HMAC (which the `hkdf` and `hmac`
//! crates do not wipe), the temporaries of the curve arithmetic, and the
//! source of every move of a value that wipes itself (a move copies the
//! bytes and leaves the old ones). When such a call returns, those frames
//! are dead but their bytes stay until the stack grows over them again.
//!
//! So each public operation that handles secrets runs its work through
//! [`scrubbed`]: the work runs in a frame of its own below the operation's
//! (never inlined into it, so no secret lands in the operation's own
//! frame), and when it returns the stack below is zeroed, every frame it
//! used included. `tests/secrets.rs` paints the stack, runs
//! a whole handshake and conversation, and searches 256 KiB of dead stack
//! for every secret of the session: it finds none.

/// Bytes zeroed below the caller's frame: the deepest stack a handshake
/// step uses, measured by `tests/secrets.rs` (about 5 KiB on x86-64), with
/// room to spare.
pub(crate) const SCRUB_LEN: usize = 16 << 10;

/// Bytes zeroed below a record operation: the ChaCha20 backends keep the
/// cipher state, which holds the traffic key, in vector registers that
/// spill to the stack and are not wiped. Measured by the same test.
pub(crate) const RECORD_SCRUB_LEN: usize = 2 << 10;

/// Runs `work` below the caller's frame, then zeroes [`SCRUB_LEN`] bytes
/// of the stack it used. The value returned must hold no secret inline
/// (handles and results hold theirs in heap blocks of their own). It costs
/// a `memset` of 16 KiB (well under a microsecond), so handshake
/// operations, identities and key updates use it, not every record.
#[inline(always)]
pub(crate) fn scrubbed<T>(work: impl FnOnce() -> T) -> T {
    let value = below(work);
    scrub();
    value
}

/// [`scrubbed`] with [`RECORD_SCRUB_LEN`]: for every seal and open.
#[inline(always)]
pub(crate) fn record_scrubbed<T>(work: impl FnOnce() -> T) -> T {
    let value = below(work);
    scrub_record();
    value
}

/// Runs `work` in a frame of its own.
#[inline(never)]
fn below<T>(work: impl FnOnce() -> T) -> T {
    work()
}

/// Zeroes [`SCRUB_LEN`] bytes of stack below the caller's frame.
#[inline(never)]
fn scrub() {
    let mut area = [0u8; SCRUB_LEN];
    // The zeroes must really be written: `black_box` makes the compiler
    // assume the area is read.
    core::hint::black_box(&mut area);
}

/// Zeroes [`RECORD_SCRUB_LEN`] bytes of stack below the caller's frame (a
/// `memset` of 2 KiB, tens of nanoseconds).
#[inline(never)]
fn scrub_record() {
    let mut area = [0u8; RECORD_SCRUB_LEN];
    core::hint::black_box(&mut area);
}
