//! A fixed run of traffic over an established channel of either protocol,
//! for proving that sealing and opening allocate nothing: every size the
//! protocol splits or pads differently, then the control records it has.
//! The buffers are made by [`Traffic::new`], so a caller counting the
//! allocations of [`Traffic::run`] counts only the channel's. It uses
//! nothing but the crate, so a test can include it with `#[path]` as
//! benches/allocations.rs does.

use privline::{Channel, Opened, Protocol};

/// What a run sends, per protocol.
struct Script {
    sizes: &'static [usize],
    pad_blocks: &'static [usize],
    key_update: bool,
}

/// privline/1: an empty record, small ones, the largest record (65518) and
/// one byte more (two records), several records; each unpadded and padded;
/// then a key update.
const PRIVLINE1: Script = Script {
    sizes: &[0, 1, 64, 1024, 16 * 1024, 65518, 65519, 200_000],
    pad_blocks: &[0, 256],
    key_update: true,
};

/// SHS1 box-stream: one box up to the largest body (4096), one byte more
/// (two boxes), several boxes; no padding and no key update (box-stream has
/// neither) and no empty payload (it seals nothing).
const SHS1: Script = Script {
    sizes: &[1, 64, 1024, 4096, 4097, 65518, 200_000],
    pad_blocks: &[0],
    key_update: false,
};

pub struct Traffic {
    script: &'static Script,
    payload: Vec<u8>,
    wire: Vec<u8>,
    plain: Vec<u8>,
}

impl Traffic {
    /// The script and buffers for `client`'s protocol.
    pub fn new(client: &Channel) -> Traffic {
        let (script, plain) = match client.protocol() {
            Protocol::Privline1 => (&PRIVLINE1, privline::RECORD_MAX_INNER_LEN),
            Protocol::Shs1 => (&SHS1, privline::SHS1_MAX_BODY_LEN),
        };
        let largest = script.sizes.iter().copied().max().unwrap();
        let wire = script
            .pad_blocks
            .iter()
            .map(|&pad_block| client.sealed_len(largest, pad_block).unwrap())
            .max()
            .unwrap();
        Traffic {
            script,
            payload: vec![0x5a; largest],
            wire: vec![0; wire],
            plain: vec![0; plain],
        }
    }

    /// Seals every size with every padding on `client` and opens it on
    /// `server`, checking that every byte arrives; then the key update (if
    /// the protocol has one) and the close. Returns the records (boxes)
    /// opened.
    pub fn run(&mut self, client: &mut Channel, server: &mut Channel) -> usize {
        let Traffic {
            script,
            payload,
            wire,
            plain,
        } = self;
        let mut records = 0;
        for &size in script.sizes {
            for &pad_block in script.pad_blocks {
                let sealed = client.seal(&payload[..size], pad_block, wire).unwrap();
                let mut at = 0;
                let mut received = 0;
                while at < sealed {
                    match server.open(&wire[at..sealed], plain).unwrap() {
                        Opened::Data { consumed, len } => {
                            at += consumed;
                            received += len;
                        }
                        other => panic!("{other:?}"),
                    }
                    records += 1;
                }
                assert_eq!(received, size);
            }
        }
        if script.key_update {
            let n = client.update_key(0, wire).unwrap();
            assert!(matches!(
                server.open(&wire[..n], plain).unwrap(),
                Opened::KeyUpdate { .. }
            ));
            records += 1;
        }
        let n = client.close(0, wire).unwrap();
        assert!(matches!(
            server.open(&wire[..n], plain).unwrap(),
            Opened::Close { .. }
        ));
        records + 1
    }
}
