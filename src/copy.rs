//! Copying a record's worth of bytes from the caller's input into the
//! caller's output.
//!
//! A seal copies the payload into its output and encrypts it there (the
//! record's plaintext is longer than the payload, so the AEAD cannot read
//! the payload where it is); SHS1's open copies a box body into the output
//! and decrypts it there (`crypto_secretbox` decrypts only in place).
//!
//! For one long copy glibc's `memcpy` uses `rep movsb`, and on some AMD
//! CPUs (measured on a Zen 3) that runs about 15 times slower when the
//! destination starts 1 to 31 bytes after the source modulo 4 KiB: 21 µs
//! instead of 1.4 µs for 65518 bytes. Buffers of equal size from `malloc`
//! often lie so, and the record's payload starts 2 bytes into the output.
//! Copying in pieces below glibc's `rep movsb` threshold (2 KiB at its
//! smallest, for SSE2) takes its vector loop instead, which has no such
//! cliff and costs the same when the buffers do not alias.

/// The largest piece copied at once: half of glibc's smallest `rep movsb`
/// threshold, so that every piece takes the vector loop.
const PIECE_LEN: usize = 1024;

/// Copies `src` into `dst`, which must have the same length, in pieces of
/// at most [`PIECE_LEN`] bytes.
pub(crate) fn copy_in_pieces(dst: &mut [u8], src: &[u8]) {
    debug_assert_eq!(dst.len(), src.len());
    for (to, from) in dst.chunks_mut(PIECE_LEN).zip(src.chunks(PIECE_LEN)) {
        to.copy_from_slice(from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_is_copied_whatever_the_length_and_nothing_beyond_it() {
        let src: Vec<u8> = (0..5000u32).map(|i| (i * 7 + 1) as u8).collect();
        for len in [0, 1, 1023, 1024, 1025, 2048, 3071, 4999] {
            let mut dst = vec![0u8; len + 1];
            copy_in_pieces(&mut dst[..len], &src[..len]);
            assert_eq!(&dst[..len], &src[..len], "length {len}");
            assert_eq!(dst[len], 0, "length {len}: a byte beyond the copy");
        }
    }
}
