//! A channel compared with a reference, call by call: the privline/1
//! record stream against the reference receiver, and what every channel,
//! of either protocol, must do once it failed.

use privline::{Channel, Error, Opened, RECORD_HEADER_LEN, RECORD_MAX_INNER_LEN};

use super::case1::case1_keys;
use super::fragmenter::Fragmenter;
use super::reference::privline1_records::{inner, ref_open_body, RefReceiver, TYPE_DATA};
use super::reference::RefOpen;
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

/// A reference reader, as [`check_stream`] drives it for one protocol.
pub trait Reader {
    /// Bytes of a record's or box's header, before its ciphertext.
    const HEADER_LEN: usize;
    /// An output buffer that holds any plaintext.
    const FULL_LEN: usize;
    /// The prescribed result of `open(input)` with `out_len` bytes of output.
    fn open(&mut self, input: &[u8], out_len: usize) -> RefOpen;
    /// A random, often too small, output buffer length.
    fn tight_len(frag: &mut Fragmenter) -> usize;
    /// Checks what a live channel reports after a successful `open`.
    fn check_live(&self, channel: &Channel);
}

impl Reader for RefReceiver {
    const HEADER_LEN: usize = RECORD_HEADER_LEN;
    const FULL_LEN: usize = RECORD_MAX_INNER_LEN;

    fn open(&mut self, input: &[u8], out_len: usize) -> RefOpen {
        RefReceiver::open(self, input, out_len)
    }

    fn tight_len(frag: &mut Fragmenter) -> usize {
        frag.below(400)
    }

    fn check_live(&self, _: &Channel) {}
}

/// After a failed `open`, the output holds no plaintext: a record that
/// opened but was malformed is wiped, a body that did not open leaves at
/// most its ciphertext (which starts after the `header_len` bytes of
/// `input`) or zeros, and nothing is written past them.
fn assert_no_plaintext(out: &[u8], input: &[u8], header_len: usize, expected: &RefOpen) {
    let written = match (&expected.plain, expected.failed_len) {
        (Some(malformed), _) => {
            assert!(
                out[..malformed.len()].iter().all(|&b| b == 0),
                "plaintext of a malformed record left in the output"
            );
            malformed.len()
        }
        (None, Some(len)) => {
            let ciphertext = input.get(header_len..).unwrap_or(&[]);
            for (i, &b) in out[..len].iter().enumerate() {
                assert!(
                    b == SENTINEL || b == 0 || ciphertext.get(i) == Some(&b),
                    "output byte {i} after a failed open is neither untouched, zero nor ciphertext"
                );
            }
            len
        }
        (None, None) => 0,
    };
    assert!(
        untouched(&out[written..]),
        "a failed open wrote past its body"
    );
}

/// Feeds `stream` to `channel` in fragments, as an application reading a
/// socket would, and checks every `open` against `reference`: the same
/// result, the same payload, nothing written beyond the plaintext, no
/// plaintext left in the buffer after an error, a too-small buffer changes
/// nothing (and a retry with the size it asked for works), a fatal error
/// is final. With `tight`, calls use random (often too small) output
/// buffers first.
pub fn check_stream<R: Reader>(
    channel: &mut Channel,
    reference: &mut R,
    stream: &[u8],
    frag: &mut Fragmenter,
    tight: bool,
) -> ChannelRun {
    let mut run = ChannelRun::default();
    let mut out = vec![SENTINEL; R::FULL_LEN + 64];
    frag.deliver(stream, |pending, rest, frag| {
        let mut retry_len = None;
        loop {
            let out_len = match retry_len.take() {
                Some(needed) => needed,
                None if tight => R::tight_len(frag),
                None => R::FULL_LEN,
            };
            out.fill(SENTINEL);
            let expected = reference.open(pending, out_len);
            let got = channel.open(pending, &mut out[..out_len]);
            assert_eq!(got, expected.result, "open of {} bytes", pending.len());
            let opened = match got {
                Ok(Opened::Incomplete { .. }) => {
                    assert!(untouched(&out), "an incomplete open wrote");
                    return true;
                }
                Ok(opened) => opened,
                Err(Error::BufferTooSmall { needed }) => {
                    assert!(needed > out_len);
                    assert!(untouched(&out), "a refused open wrote");
                    retry_len = Some(needed);
                    continue;
                }
                Err(error) => {
                    assert_no_plaintext(&out, pending, R::HEADER_LEN, &expected);
                    run.error = Some(error);
                    assert_channel_dead(channel, error, rest);
                    return false;
                }
            };
            let plain = expected.plain.unwrap_or_default();
            assert!(
                untouched(&out[plain.len()..]),
                "open wrote past the plaintext"
            );
            match opened {
                Opened::Data { len, .. } => {
                    assert_eq!(out[..len], plain[..len], "payload");
                    run.delivered.push(plain[..len].to_vec());
                }
                Opened::Close { .. } => run.peer_closed = true,
                _ => {}
            }
            pending.drain(..opened.consumed());
            assert_eq!(channel.peer_closed(), Ok(run.peer_closed));
            reference.check_live(channel);
        }
    });
    run
}

/// One end of a case1 channel reading `stream` (the reference receives
/// under the peer's traffic key from counter `start`), then, if the stream
/// did not kill it, sealing under its own from counter 0.
pub fn check_records(
    channel: &mut Channel,
    start: u64,
    stream: &[u8],
    frag: &mut Fragmenter,
    tight: bool,
) -> Summary {
    let (receive_key, send_key) = case1_keys(channel.is_client());
    let mut reference = RefReceiver::new(receive_key, start);
    let run = check_stream(channel, &mut reference, stream, frag, tight);
    check_seal_after(channel, &run, &send_key, 0);
    run.summary()
}

/// After a stream that did not kill the channel, sealing still works and
/// uses the untouched sending key and counter.
fn check_seal_after(channel: &mut Channel, run: &ChannelRun, send_key: &[u8; 32], counter: u64) {
    if run.error.is_some() {
        return;
    }
    let mut out = [SENTINEL; 64];
    let n = channel.seal(b"still here", 0, &mut out).expect("seal");
    let opened = ref_open_body(send_key, counter, &out[..2], &out[2..n]).expect("opens");
    assert_eq!(opened, inner(b"still here", TYPE_DATA, 0));
}
