//! Storage for a secret that may be absent, inside objects that live on the
//! heap.
//!
//! An `Option<T>` that is `None` leaves the bytes of its `T`
//! uninitialized. Objects are built on the stack and moved into their heap
//! block, so those bytes are whatever the stack held there, often a secret
//! an earlier call left behind, and they stay in the heap block, unwiped,
//! when it is freed (`tests/secrets.rs` found exactly that). A [`Slot`]
//! always holds a fully initialized value (a filler while empty) and wipes
//! it when it is cleared, replaced or dropped.

use x25519_dalek::StaticSecret;
use zeroize::{Zeroize, Zeroizing};

use crate::error::Error;
use crate::privline1::records::SessionKeys;
use crate::shs1::BoxStreamKeys;

/// A value that can be wiped in place. It is `Zeroize` for the crate's own
/// types and byte arrays; x25519-dalek 3's `StaticSecret` is not `Zeroize`
/// (it wipes itself on drop), so it is wiped by dropping it in place.
pub(crate) trait Wipe {
    fn wipe(&mut self);
}

macro_rules! wipe_by_zeroize {
    ($($t:ty),*) => {$(
        impl Wipe for $t {
            fn wipe(&mut self) {
                self.zeroize();
            }
        }
    )*};
}
wipe_by_zeroize!(SessionKeys, BoxStreamKeys);

impl<Z: Zeroize> Wipe for Zeroizing<Z> {
    fn wipe(&mut self) {
        self.zeroize();
    }
}

impl<const N: usize> Wipe for [u8; N] {
    fn wipe(&mut self) {
        self.zeroize();
    }
}

impl Wipe for StaticSecret {
    /// The assignment drops the old secret in place, and its `Drop` (the
    /// `zeroize` feature) wipes its bytes; an all-zero secret is left.
    fn wipe(&mut self) {
        *self = StaticSecret::from([0u8; 32]);
    }
}

/// A value of `T` that may be absent; never uninitialized.
pub(crate) struct Slot<T: Wipe> {
    value: T,
    present: bool,
}

impl<T: Wipe> Slot<T> {
    /// An empty slot holding `filler` (an all-zero value) until set.
    pub(crate) fn empty(filler: T) -> Self {
        Slot {
            value: filler,
            present: false,
        }
    }

    /// A slot holding `value`.
    pub(crate) fn holding(value: T) -> Self {
        Slot {
            value,
            present: true,
        }
    }

    /// Stores `value`, wiping the one it replaces.
    pub(crate) fn set(&mut self, value: T) {
        self.value.wipe();
        self.value = value;
        self.present = true;
    }

    /// The value, or `Error::Internal` when the state machine asks for one
    /// it has not stored (a bug).
    pub(crate) fn get(&self) -> Result<&T, Error> {
        if self.present {
            Ok(&self.value)
        } else {
            Err(Error::Internal)
        }
    }

    /// Wipes the value and marks the slot empty.
    pub(crate) fn clear(&mut self) {
        self.value.wipe();
        self.present = false;
    }
}

/// A public value that may not be known yet (the peer's key), held the same
/// way: a filler while unknown, so the bytes are always initialized.
#[derive(Clone, Copy)]
pub(crate) struct Known<T: Copy> {
    value: T,
    known: bool,
}

impl<T: Copy> Known<T> {
    /// Not known yet; `filler` stands in.
    pub(crate) fn unknown(filler: T) -> Self {
        Known {
            value: filler,
            known: false,
        }
    }

    pub(crate) fn set(&mut self, value: T) {
        self.value = value;
        self.known = true;
    }

    pub(crate) fn get(&self) -> Option<T> {
        self.known.then_some(self.value)
    }
}

/// Wiping a slot empties it.
impl<T: Wipe> Zeroize for Slot<T> {
    fn zeroize(&mut self) {
        self.clear();
    }
}

impl<T: Wipe> Drop for Slot<T> {
    fn drop(&mut self) {
        self.value.wipe();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slot_gives_its_value_only_while_set_and_wipes_it_when_cleared() {
        let mut slot = Slot::empty([0u8; 32]);
        assert_eq!(slot.get(), Err(Error::Internal));
        slot.set([7u8; 32]);
        assert_eq!(slot.get(), Ok(&[7u8; 32]));
        slot.clear();
        assert_eq!(slot.get(), Err(Error::Internal));
        assert_eq!(slot.value, [0u8; 32], "cleared means wiped");
    }
}
