//! An established channel pair of either protocol with its buffers, for
//! timing one message sealed on the client and opened on the server.
//! Shared by benches/channel.rs (privline/1 records and SHS1 boxes) and
//! benches/ffi.rs (the Rust API column) through `#[path]`.

use std::hint::black_box;

use privline::{Channel, Opened, Protocol};

pub struct ChannelPair {
    client: Channel,
    server: Channel,
    payload: Vec<u8>,
    wire: Vec<u8>,
    plain: Vec<u8>,
}

impl ChannelPair {
    /// `channels` from a handshake (client, server); `size` the payload of
    /// every seal. For SHS1 a size of at most one body (4096 bytes) is one
    /// box.
    pub fn new((client, server): (Channel, Channel), size: usize) -> ChannelPair {
        let wire = vec![0; client.sealed_len(size, 0).unwrap()];
        // Room for the largest plaintext one open can write.
        let plain = match client.protocol() {
            Protocol::Privline1 => privline::RECORD_MAX_INNER_LEN,
            Protocol::Shs1 => privline::SHS1_MAX_BODY_LEN,
        };
        ChannelPair {
            client,
            server,
            payload: vec![0x5a; size],
            wire,
            plain: vec![0; plain],
        }
    }

    /// Seals the payload on the client; returns the bytes written.
    pub fn seal(&mut self) -> usize {
        self.client
            .seal(black_box(&self.payload), 0, &mut self.wire)
            .unwrap()
    }

    /// Seals the payload and opens it on the server, checking its length.
    pub fn seal_open(&mut self) {
        let n = self.seal();
        match self.server.open(&self.wire[..n], &mut self.plain).unwrap() {
            Opened::Data { len, .. } => assert_eq!(len, self.payload.len()),
            other => panic!("{other:?}"),
        }
    }
}
