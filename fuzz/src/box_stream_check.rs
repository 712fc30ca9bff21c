//! A box-stream channel compared with the reference box-stream reader,
//! call by call.

use privline::{Channel, Error, Opened, SHS1_HEADER_LEN, SHS1_MAX_BODY_LEN};

use super::channel_check::{check_stream, ChannelRun, Reader};
use super::fragmenter::Fragmenter;
use super::reference::box_stream::{BoxKeys, RefBoxReader};
use super::reference::RefOpen;
use super::{Summary, SENTINEL};

/// The reference box-stream reader, and the sending direction the
/// channel must keep reporting.
struct BoxReader {
    reader: RefBoxReader,
    send: BoxKeys,
}

impl Reader for BoxReader {
    const HEADER_LEN: usize = SHS1_HEADER_LEN;
    const FULL_LEN: usize = SHS1_MAX_BODY_LEN;

    fn open(&mut self, input: &[u8], out_len: usize) -> RefOpen {
        self.reader.open(input, out_len)
    }

    fn tight_len(frag: &mut Fragmenter) -> usize {
        match frag.below(2) {
            0 => frag.below(64),
            _ => frag.below(SHS1_MAX_BODY_LEN + 64),
        }
    }

    /// `export_shs1_keys` reports the untouched sending direction and the
    /// receive nonce where the reference has it.
    fn check_live(&self, channel: &Channel) {
        let keys = channel.export_shs1_keys().expect("a live channel");
        let receive = self.reader.keys();
        assert_eq!(keys[..32], self.send.key, "encryption key");
        assert_eq!(keys[32..56], self.send.nonce, "encryption nonce");
        assert_eq!(keys[56..88], receive.key, "decryption key");
        assert_eq!(keys[88..], receive.nonce, "decryption nonce");
    }
}

/// A box-stream channel reading `stream` (see [`check_stream`]; the
/// reference reads with `receive`), then, if the stream did not kill it,
/// sealing with `send`.
pub fn check_boxes(
    channel: &mut Channel,
    receive: BoxKeys,
    send: BoxKeys,
    stream: &[u8],
    frag: &mut Fragmenter,
    tight: bool,
) -> Summary {
    let mut reference = BoxReader {
        reader: RefBoxReader::new(receive),
        send,
    };
    let run = check_stream(channel, &mut reference, stream, frag, tight);
    check_box_seal_after(channel, &run, &send);
    run.summary()
}

/// After a stream that did not kill it, the channel still seals, from its
/// untouched sending nonce, boxes the reference opens, then the goodbye.
fn check_box_seal_after(channel: &mut Channel, run: &ChannelRun, send: &BoxKeys) {
    if run.error.is_some() {
        return;
    }
    let mut out = [SENTINEL; 128];
    assert_eq!(channel.sealed_len(10, 0), Some(SHS1_HEADER_LEN + 10));
    let n = channel.seal(b"still here", 0, &mut out).expect("seal");
    assert_eq!(n, SHS1_HEADER_LEN + 10);
    let mut reader = RefBoxReader::new(*send);
    let opened = reader.open(&out[..n], SHS1_MAX_BODY_LEN);
    assert_eq!(
        opened.result,
        Ok(Opened::Data {
            consumed: n,
            len: 10
        })
    );
    assert_eq!(opened.plain.as_deref(), Some(&b"still here"[..]));
    assert_eq!(channel.close(0, &mut out), Ok(SHS1_HEADER_LEN));
    let opened = reader.open(&out[..SHS1_HEADER_LEN], SHS1_MAX_BODY_LEN);
    assert_eq!(
        opened.result,
        Ok(Opened::Close {
            consumed: SHS1_HEADER_LEN
        })
    );
    assert!(channel.sent_close());
    assert_eq!(channel.seal(b"x", 0, &mut out), Err(Error::AlreadyClosed));
    assert_eq!(channel.peer_closed(), Ok(run.peer_closed));
}
