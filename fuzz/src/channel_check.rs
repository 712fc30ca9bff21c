//! A channel compared with a reference, call by call: the privline/1
//! record stream against the reference receiver, and what every channel,
//! of either protocol, must do once it failed.

use privline::{Channel, Error, Opened, RECORD_HEADER_LEN, RECORD_MAX_INNER_LEN};

use super::fragmenter::Fragmenter;
use super::reference::privline1_records::{inner, ref_open_body, RefReceiver, TYPE_DATA};
use super::{untouched, Summary, SENTINEL};

/// What a channel made of a stream.
#[derive(Default)]
pub struct ChannelRun {
    pub delivered: Vec<Vec<u8>>,
    pub peer_closed: bool,
    pub error: Option<Error>,
}

impl ChannelRun {
    /// The summary of an input whose handshake completed and whose channel
    /// made this of the rest.
    pub fn summary(&self) -> Summary {
        Summary {
            handshake_done: true,
            data_records: self.delivered.len(),
            peer_closed: self.peer_closed,
            error: self.error,
        }
    }
}

/// Asserts that a channel that failed with `error` refuses every later
/// call with that same error, sealing included, and writes nothing.
pub fn assert_channel_dead(channel: &mut Channel, error: Error, rest: &[u8]) {
    assert!(error.is_fatal(), "{error:?} must be fatal");
    let mut out = vec![SENTINEL; 256];
    assert_eq!(
        channel.open(rest, &mut out),
        Err(error),
        "open after {error:?}"
    );
    assert_eq!(
        channel.open(&[], &mut out),
        Err(error),
        "open after {error:?}"
    );
    assert_eq!(
        channel.seal(b"x", 0, &mut out),
        Err(error),
        "seal after {error:?}"
    );
    assert_eq!(
        channel.update_key(0, &mut out),
        Err(error),
        "update after {error:?}"
    );
    assert_eq!(
        channel.close(0, &mut out),
        Err(error),
        "close after {error:?}"
    );
    assert!(untouched(&out), "a dead channel wrote");
    assert_eq!(channel.peer_key().err(), Some(error));
    assert_eq!(channel.session_id().err(), Some(error));
    assert_eq!(channel.peer_closed().err(), Some(error));
    assert_eq!(channel.export_shs1_keys().err(), Some(error));
}

/// After a failed `open` of a record or box whose ciphertext starts at
/// `input[header_len..]`, each byte of `out` is untouched, zero (wiped) or
/// that ciphertext: never plaintext.
pub fn assert_no_plaintext(out: &[u8], input: &[u8], header_len: usize) {
    let ciphertext = input.get(header_len..).unwrap_or(&[]);
    for (i, &b) in out.iter().enumerate() {
        assert!(
            b == SENTINEL || b == 0 || ciphertext.get(i) == Some(&b),
            "output byte {i} after a failed open is neither untouched, zero nor ciphertext"
        );
    }
}

/// Feeds `stream` to `channel` in fragments, as an application reading a
/// socket would, and checks every `open` against `reference`: the same
/// result, the same payload, nothing written beyond the record, no
/// plaintext left in the buffer after an error, a too-small buffer changes
/// nothing, a fatal error is final. With `tight`, calls use random
/// (often too small) output buffers first.
pub fn check_channel_stream(
    channel: &mut Channel,
    reference: &mut RefReceiver,
    stream: &[u8],
    frag: &mut Fragmenter,
    tight: bool,
) -> ChannelRun {
    let mut run = ChannelRun::default();
    let mut out = vec![SENTINEL; RECORD_MAX_INNER_LEN + 32];
    frag.deliver(stream, |pending, rest, frag| {
        let mut full_buffer = !tight;
        loop {
            let out_len = if full_buffer {
                RECORD_MAX_INNER_LEN
            } else {
                frag.below(400)
            };
            full_buffer = !tight;
            out.fill(SENTINEL);
            let expected = reference.open(pending, out_len);
            let got = channel.open(pending, &mut out[..out_len]);
            assert_eq!(got, expected.result, "open of {} bytes", pending.len());
            match got {
                Ok(Opened::Incomplete { .. }) => return true,
                Ok(opened) => {
                    let inner = expected.inner.expect("an opened record");
                    assert!(
                        untouched(&out[inner.len()..]),
                        "open wrote past the record's inner plaintext"
                    );
                    if let Opened::Data { len, .. } = opened {
                        assert_eq!(out[..len], inner[..len], "payload");
                        run.delivered.push(out[..len].to_vec());
                    }
                    if let Opened::Close { .. } = opened {
                        run.peer_closed = true;
                    }
                    assert_eq!(channel.peer_closed(), Ok(run.peer_closed));
                    pending.drain(..opened.consumed());
                }
                Err(Error::BufferTooSmall { needed }) => {
                    assert!(needed > out_len);
                    assert!(untouched(&out), "a refused open wrote");
                    full_buffer = true;
                }
                Err(error) => {
                    // A record that opened but was malformed is wiped; one
                    // that did not open leaves at most its ciphertext.
                    match expected.inner {
                        Some(inner) => assert!(
                            out[..inner.len()].iter().all(|&b| b == 0),
                            "plaintext of a malformed record left in the output"
                        ),
                        None => assert_no_plaintext(&out[..out_len], pending, RECORD_HEADER_LEN),
                    }
                    run.error = Some(error);
                    assert_channel_dead(channel, error, rest);
                    return false;
                }
            }
        }
    });
    run
}

/// After a stream that did not kill the channel, sealing still works and
/// uses the untouched sending key and counter.
pub fn check_seal_after(
    channel: &mut Channel,
    run: &ChannelRun,
    send_key: &[u8; 32],
    counter: u64,
) {
    if run.error.is_some() {
        return;
    }
    let mut out = [SENTINEL; 64];
    let n = channel.seal(b"still here", 0, &mut out).expect("seal");
    let opened = ref_open_body(send_key, counter, &out[..2], &out[2..n]).expect("opens");
    assert_eq!(opened, inner(b"still here", TYPE_DATA, 0));
}
