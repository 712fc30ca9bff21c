//! Deterministic fragmentation: how the bytes of a stream arrive, as a
//! socket would deliver them, chosen by one byte of the fuzz input.

/// Cuts a byte stream into fragments, deterministically from one seed byte:
/// seed % 4 == 0 delivers everything at once, 1 one byte at a time, 2 and 3
/// random sizes up to 16 and 300 bytes.
pub struct Fragmenter {
    state: u64,
    max: usize,
}

impl Fragmenter {
    pub fn new(seed: u8) -> Fragmenter {
        let max = match seed % 4 {
            0 => usize::MAX,
            1 => 1,
            2 => 16,
            _ => 300,
        };
        Fragmenter {
            state: (u64::from(seed) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            max,
        }
    }

    fn next_u64(&mut self) -> u64 {
        // xorshift64*
        self.state ^= self.state >> 12;
        self.state ^= self.state << 25;
        self.state ^= self.state >> 27;
        self.state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// The size of the next fragment when `remaining` bytes are left (> 0).
    pub fn next_len(&mut self, remaining: usize) -> usize {
        if self.max == usize::MAX {
            remaining
        } else {
            remaining.min(1 + self.below(self.max))
        }
    }
}

impl Fragmenter {
    /// Delivers `stream` in fragments, as an application reading a socket
    /// sees it: `read` gets the bytes that arrived and were not consumed
    /// yet (it drains what it consumes), the bytes still to come, and this
    /// fragmenter; first before anything arrived, then after every
    /// fragment, until it returns `false` or the stream has all arrived.
    pub fn deliver(
        &mut self,
        stream: &[u8],
        mut read: impl FnMut(&mut Vec<u8>, &[u8], &mut Fragmenter) -> bool,
    ) {
        let mut pending = Vec::new();
        let mut offset = 0;
        while read(&mut pending, &stream[offset..], self) && offset < stream.len() {
            let n = self.next_len(stream.len() - offset);
            pending.extend_from_slice(&stream[offset..offset + n]);
            offset += n;
        }
    }
}
