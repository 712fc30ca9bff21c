//! A box-stream channel compared with the reference box-stream reader,
//! call by call.

use privline::{Channel, Error, Opened, SHS1_HEADER_LEN, SHS1_MAX_BODY_LEN};

use super::channel_check::{assert_channel_dead, assert_no_plaintext, ChannelRun};
use super::fragmenter::Fragmenter;
use super::reference::box_stream::{BoxKeys, RefBoxReader};
use super::{untouched, SENTINEL};

/// Feeds `stream` to a box-stream `channel` in fragments, as an application
/// reading a socket would, and checks every `open` against `reference`: the
/// same result, the same body, nothing written beyond it, the receive nonce
/// where the reference has it, no plaintext in the buffer after an error, a
/// too-small buffer changes nothing (and a retry with the size it asked for
/// works), a fatal error is final. With `tight`, calls use random, often
/// too small, output buffers first. `send` is the untouched sending
/// direction, which `export_shs1_keys` must keep reporting.
pub fn check_box_stream(
    channel: &mut Channel,
    reference: &mut RefBoxReader,
    send: &BoxKeys,
    stream: &[u8],
    frag: &mut Fragmenter,
    tight: bool,
) -> ChannelRun {
    let mut run = ChannelRun::default();
    let mut out = vec![SENTINEL; SHS1_MAX_BODY_LEN + 64];
    frag.deliver(stream, |pending, rest, frag| {
        let mut retry_len = None;
        loop {
            let out_len = match retry_len.take() {
                Some(needed) => needed,
                None if !tight => SHS1_MAX_BODY_LEN,
                None if frag.below(2) == 0 => frag.below(64),
                None => frag.below(SHS1_MAX_BODY_LEN + 64),
            };
            out.fill(SENTINEL);
            let expected = reference.open(pending, out_len);
            let got = channel.open(pending, &mut out[..out_len]);
            assert_eq!(got, expected.result, "open of {} bytes", pending.len());
            match got {
                Ok(Opened::Incomplete { .. }) => {
                    assert!(untouched(&out), "an incomplete open wrote");
                    return true;
                }
                Ok(Opened::Data { consumed, len }) => {
                    let body = expected.body.expect("an opened box");
                    assert_eq!(out[..len], body[..], "body");
                    assert!(untouched(&out[len..]), "open wrote past the body");
                    run.delivered.push(body);
                    pending.drain(..consumed);
                }
                Ok(Opened::Close { consumed }) => {
                    assert!(untouched(&out), "the goodbye wrote");
                    run.peer_closed = true;
                    pending.drain(..consumed);
                }
                Ok(Opened::KeyUpdate { .. }) => unreachable!("the reference has none"),
                Err(Error::BufferTooSmall { needed }) => {
                    assert!(needed > out_len);
                    assert!(untouched(&out), "a refused open wrote");
                    retry_len = Some(needed);
                }
                Err(error) => {
                    let body_len = expected.failed_body_len.unwrap_or(0);
                    assert_no_plaintext(&out[..body_len], pending, SHS1_HEADER_LEN);
                    assert!(
                        untouched(&out[body_len..]),
                        "a failed open wrote past the body"
                    );
                    run.error = Some(error);
                    assert_channel_dead(channel, error, rest);
                    return false;
                }
            }
            if got.is_ok() {
                assert_eq!(channel.peer_closed(), Ok(run.peer_closed));
                let keys = channel.export_shs1_keys().expect("a live channel");
                let receive = reference.keys();
                assert_eq!(keys[..32], send.key, "encryption key");
                assert_eq!(keys[32..56], send.nonce, "encryption nonce");
                assert_eq!(keys[56..88], receive.key, "decryption key");
                assert_eq!(keys[88..], receive.nonce, "decryption nonce");
            }
        }
    });
    run
}

/// After a stream that did not kill it, the channel still seals, from its
/// untouched sending nonce, boxes the reference opens, then the goodbye.
pub fn check_box_seal_after(channel: &mut Channel, run: &ChannelRun, send: &BoxKeys) {
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
    assert_eq!(opened.body.as_deref(), Some(&b"still here"[..]));
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
