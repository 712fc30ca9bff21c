//! The two things every `extern "C"` function goes through: the panic
//! boundary and the pointer checks. Nothing else in the C ABI converts raw
//! pointers.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::privline_result;
use crate::error::Error;

/// Why a call failed at the C boundary: the library's own error, or a
/// NULL where a pointer is required, which only a C caller can pass (so it
/// is no `Error` of the Rust API).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallError {
    /// A required pointer argument is NULL: `PRIVLINE_RESULT_NULL_ARGUMENT`.
    NullArgument,
    /// The library refused the call.
    Library(Error),
}

impl From<Error> for CallError {
    fn from(error: Error) -> Self {
        CallError::Library(error)
    }
}

impl From<CallError> for privline_result {
    fn from(error: CallError) -> Self {
        match error {
            CallError::NullArgument => privline_result::PRIVLINE_RESULT_NULL_ARGUMENT,
            CallError::Library(error) => privline_result::from(error),
        }
    }
}

/// Runs `body`, turning an error into its result code and a panic into
/// `PRIVLINE_RESULT_INTERNAL_ERROR`, so no panic ever unwinds into C.
pub(crate) fn guard(body: impl FnOnce() -> Result<(), CallError>) -> privline_result {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => privline_result::PRIVLINE_RESULT_OK,
        Ok(Err(error)) => privline_result::from(error),
        Err(_) => privline_result::PRIVLINE_RESULT_INTERNAL_ERROR,
    }
}

/// An object that a caught panic leaves dead: after one, its state may be
/// half-updated, so every later call must fail. Objects behind handles
/// are shared between threads, so poisoning takes `&self`.
pub(crate) trait Poison {
    /// Marks the object failed with `Error::Internal`; its secrets are
    /// wiped at once or, if another thread holds them, when it lets go.
    fn poison(&self);
}

/// [`guard`] for calls that may change the object behind `handle`: a caught
/// panic also poisons that object, so it refuses every later call.
///
/// # Safety
/// A non-NULL `handle` must come from this library's constructor for `T`
/// and not have been freed.
pub(crate) unsafe fn guard_mut<H: Handle>(
    handle: *const H,
    body: impl FnOnce() -> Result<(), CallError>,
) -> privline_result
where
    H::Target: Poison,
{
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(())) => privline_result::PRIVLINE_RESULT_OK,
        Ok(Err(error)) => privline_result::from(error),
        Err(_) => {
            // SAFETY: promised by the caller.
            if let Some(object) = unsafe { (handle as *const H::Target).as_ref() } {
                object.poison();
            }
            privline_result::PRIVLINE_RESULT_INTERNAL_ERROR
        }
    }
}

/// A span of memory that one call reads or writes: a buffer, an
/// out-pointer's target, or the object behind a handle.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    start: usize,
    len: usize,
}

impl Span {
    /// `len` bytes at `ptr`; NULL is an empty span (it is refused, or
    /// allowed with length 0, by the pointer checks).
    pub(crate) fn bytes<T>(ptr: *const T, len: usize) -> Span {
        Span {
            start: ptr as usize,
            len: if ptr.is_null() { 0 } else { len },
        }
    }

    /// The `T` at `ptr` (a `size_t`, an out-pointer's value, the object
    /// behind a handle).
    pub(crate) fn of<T>(ptr: *const T) -> Span {
        Span::bytes(ptr, std::mem::size_of::<T>())
    }

    fn overlaps(&self, other: &Span) -> bool {
        self.len > 0
            && other.len > 0
            && self.start < other.start.saturating_add(other.len)
            && other.start < self.start.saturating_add(self.len)
    }
}

/// Refuses overlapping arguments with `Error::InvalidArgument`, before
/// anything is read or written: two of a call's buffers, out-pointers or
/// handles that share memory would become aliased Rust references
/// (undefined behaviour), or an output written over an input while it is
/// read. Calls check this first, so such a call changes nothing.
pub(crate) fn disjoint(spans: &[Span]) -> Result<(), CallError> {
    for (i, span) in spans.iter().enumerate() {
        if spans[i + 1..].iter().any(|other| span.overlaps(other)) {
            return Err(Error::InvalidArgument.into());
        }
    }
    Ok(())
}

/// Reads a required `size_t` (an in/out length's capacity) without
/// keeping a reference to it.
///
/// # Safety
/// A non-NULL `ptr` must be valid for reads of a `usize`.
pub(crate) unsafe fn read_len(ptr: *const usize) -> Result<usize, CallError> {
    if ptr.is_null() {
        return Err(CallError::NullArgument);
    }
    // SAFETY: non-NULL and readable, promised by the caller.
    Ok(unsafe { ptr.read() })
}

/// Runs `body` for functions that return a value rather than a result;
/// `on_panic` is returned if it panics.
pub(crate) fn guard_value<T>(on_panic: T, body: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(body)).unwrap_or(on_panic)
}

/// The caller's input buffer. NULL is allowed only with length 0; a length
/// above `isize::MAX` cannot describe real memory and is rejected.
///
/// # Safety
/// A non-NULL `ptr` must point to `len` readable bytes that stay valid and
/// unmodified for `'a`.
pub(crate) unsafe fn input<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], CallError> {
    if len > isize::MAX as usize {
        return Err(Error::InvalidArgument.into());
    }
    if ptr.is_null() {
        return if len == 0 {
            Ok(&[])
        } else {
            Err(CallError::NullArgument)
        };
    }
    // SAFETY: non-NULL, length bounded, validity promised by the caller.
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) })
}

/// The caller's output buffer of `len` bytes. NULL is allowed only with
/// length 0.
///
/// # Safety
/// A non-NULL `ptr` must point to `len` writable bytes, valid for `'a` and
/// not overlapping any other buffer of the same call.
pub(crate) unsafe fn output<'a>(ptr: *mut u8, len: usize) -> Result<&'a mut [u8], CallError> {
    if len > isize::MAX as usize {
        return Err(Error::InvalidArgument.into());
    }
    if ptr.is_null() {
        return if len == 0 {
            Ok(&mut [])
        } else {
            Err(CallError::NullArgument)
        };
    }
    // SAFETY: non-NULL, length bounded, validity promised by the caller.
    Ok(unsafe { std::slice::from_raw_parts_mut(ptr, len) })
}

/// A fixed-size input array (a key or seed), which must not be NULL.
///
/// # Safety
/// A non-NULL `ptr` must point to `N` readable bytes.
pub(crate) unsafe fn array<const N: usize>(ptr: *const u8) -> Result<[u8; N], CallError> {
    if ptr.is_null() {
        return Err(CallError::NullArgument);
    }
    let mut bytes = [0u8; N];
    // SAFETY: non-NULL, N readable bytes promised by the caller.
    bytes.copy_from_slice(unsafe { std::slice::from_raw_parts(ptr, N) });
    Ok(bytes)
}

/// A fixed-size output array, which must not be NULL.
///
/// # Safety
/// A non-NULL `ptr` must point to `N` writable bytes.
pub(crate) unsafe fn array_out<'a, const N: usize>(
    ptr: *mut u8,
) -> Result<&'a mut [u8; N], CallError> {
    if ptr.is_null() {
        return Err(CallError::NullArgument);
    }
    // SAFETY: non-NULL, N writable bytes promised by the caller; [u8; N]
    // has alignment 1.
    Ok(unsafe { &mut *(ptr as *mut [u8; N]) })
}

/// A required in/out pointer to a value every bit pattern of which is
/// valid (`size_t *`, a handle slot), so reading it is sound.
///
/// # Safety
/// A non-NULL `ptr` must be valid for reads and writes of a `T`.
pub(crate) unsafe fn place<'a, T: Copy>(ptr: *mut T) -> Result<&'a mut T, CallError> {
    // SAFETY: `as_mut` checks for NULL; validity promised by the caller.
    unsafe { ptr.as_mut() }.ok_or(CallError::NullArgument)
}

/// A required write-only out-pointer (`bool *`, an enum). The caller's
/// memory may hold any bits, which are not valid values of `T`, so it is
/// only ever written, never read or referenced.
pub(crate) struct Out<T>(*mut T);

impl<T> Out<T> {
    pub(crate) fn write(&mut self, value: T) {
        // SAFETY: non-NULL (checked in `out`) and valid for writes
        // (promised by the caller of `out`).
        unsafe { self.0.write(value) }
    }
}

/// Checks a write-only out-pointer.
///
/// # Safety
/// A non-NULL `ptr` must be valid for writes of a `T` for as long as the
/// returned `Out` is used.
pub(crate) unsafe fn out<T>(ptr: *mut T) -> Result<Out<T>, CallError> {
    if ptr.is_null() {
        return Err(CallError::NullArgument);
    }
    Ok(Out(ptr))
}

/// An opaque C handle type, bound to the one Rust type its pointers point
/// to, so that a handle can only ever be turned into that type: using a
/// handshake pointer as a channel does not compile.
pub(crate) trait Handle {
    /// The Rust object behind a pointer of this handle type.
    type Target;
}

/// The Rust object behind an opaque handle. Handles are shared between
/// threads, so this is a shared reference: the object's own locks decide
/// what may change through it.
///
/// # Safety
/// A non-NULL `handle` must come from [`into_handle`] and not have been
/// freed.
pub(crate) unsafe fn object_ref<'a, H: Handle>(
    handle: *const H,
) -> Result<&'a H::Target, CallError> {
    // SAFETY: handles are `Box<H::Target>` pointers cast to the opaque type.
    unsafe { (handle as *const H::Target).as_ref() }.ok_or(CallError::NullArgument)
}

/// Boxes `value` and returns it as an opaque handle.
pub(crate) fn into_handle<H: Handle>(value: H::Target) -> *mut H {
    Box::into_raw(Box::new(value)) as *mut H
}

/// Frees the object behind `handle`; NULL is a no-op.
///
/// # Safety
/// A non-NULL `handle` must come from [`into_handle`] and not have been
/// freed.
pub(crate) unsafe fn free_handle<H: Handle>(handle: *mut H) {
    if !handle.is_null() {
        // SAFETY: promised by the caller.
        drop(unsafe { Box::from_raw(handle as *mut H::Target) });
    }
}

/// The span of the object behind a handle (for [`disjoint`]).
pub(crate) fn handle_span<H: Handle>(handle: *const H) -> Span {
    Span::of(handle as *const H::Target)
}
