//! A global allocator that counts the allocations (and reallocations) each
//! thread makes, so a test or benchmark can prove a piece of work allocates
//! nothing without counting the harness's own allocations on other threads.
//! Shared by tests/allocations.rs and benches/allocations.rs through
//! `#[path]`; it installs itself as the binary's global allocator.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    static BYTES_ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

fn record(bytes: usize) {
    // `try_with`: the thread-local may already be gone while a thread exits.
    let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
    let _ = BYTES_ALLOCATED.try_with(|total| total.set(total.get() + bytes));
}

// SAFETY: defers to the system allocator, only counting.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// `(result, allocations, bytes)`: what `work` returned and the allocations
/// this thread made while it ran.
pub fn count<T>(work: impl FnOnce() -> T) -> (T, usize, usize) {
    let (calls, bytes) = (ALLOCATIONS.with(Cell::get), BYTES_ALLOCATED.with(Cell::get));
    let result = work();
    let calls = ALLOCATIONS.with(Cell::get) - calls;
    let bytes = BYTES_ALLOCATED.with(Cell::get) - bytes;
    (result, calls, bytes)
}
