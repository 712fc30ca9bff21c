//! A handshake compared with what its protocol prescribes, step by step:
//! which bytes it consumes, what it answers, which error it fails with,
//! and that a failure is final.

use privline::{Error, Handshake, PublicKey, Status, Step, HANDSHAKE_MAX_MESSAGE_LEN};

use super::fragmenter::Fragmenter;
use super::{input, untouched, Summary, SENTINEL};

/// The verdict on one complete incoming handshake message (by its index):
/// `Ok` when it must be answered, else the exact error it must fail with.
/// Called once per complete message, in order.
pub type Judge<'a> = Box<dyn FnMut(usize, &[u8]) -> Result<(), Error> + 'a>;

/// What one side of a handshake must do with the bytes it receives.
pub struct HandshakeSpec<'a> {
    /// The lengths of the two messages it waits for, the verdict on each,
    /// its reply to each valid one and the status then.
    pub lens: [usize; 2],
    pub judge: Judge<'a>,
    pub replies: [&'a [u8]; 2],
    pub statuses: [Status; 2],
}

impl<'a> HandshakeSpec<'a> {
    /// privline/1 with fixed ephemerals: a message is valid only when it is
    /// byte for byte `incoming[i]`, and otherwise fails with `errors[i]`.
    pub fn exact(
        incoming: [&'a [u8]; 2],
        errors: [Error; 2],
        replies: [&'a [u8]; 2],
        statuses: [Status; 2],
    ) -> HandshakeSpec<'a> {
        HandshakeSpec {
            lens: [incoming[0].len(), incoming[1].len()],
            judge: Box::new(move |index, message| {
                if message == incoming[index] {
                    Ok(())
                } else {
                    Err(errors[index])
                }
            }),
            replies,
            statuses,
        }
    }
}

enum HandshakeEnd {
    /// Both messages were valid: the server waits for authorization, the
    /// client is done. `offset` stream bytes were consumed.
    Reached {
        offset: usize,
    },
    /// The input ran out mid-handshake.
    Starved,
    Failed(Error),
}

/// Asserts that a handshake that failed with `error` refuses every later
/// call with that same error and writes nothing.
pub fn assert_handshake_dead(hs: &mut Handshake, error: Error, rest: &[u8]) {
    let mut out = [SENTINEL; HANDSHAKE_MAX_MESSAGE_LEN];
    assert!(error.is_fatal(), "{error:?} must be fatal");
    assert_eq!(hs.failure(), Some(error));
    assert!(!hs.is_done());
    assert_eq!(hs.step(rest, &mut out), Err(error), "step after {error:?}");
    assert_eq!(hs.step(&[], &mut out), Err(error), "step after {error:?}");
    assert_eq!(hs.authorize(true), Err(error), "authorize after {error:?}");
    assert_eq!(hs.peer_key(), Err(error));
    assert!(untouched(&out), "a failed handshake wrote");
}

/// Feeds `stream` to `hs` in fragments and checks every step against
/// `spec`: exactly the bytes of the awaited message are consumed, a reply
/// is written only for a valid message and is the valid reply, anything
/// else fails with the message's error and writes nothing, and the failure
/// is final. With `tight`, steps use random (often too small) output
/// buffers first, which must be refused without any change.
fn drive_handshake(
    hs: &mut Handshake,
    spec: &mut HandshakeSpec,
    stream: &[u8],
    frag: &mut Fragmenter,
    tight: bool,
) -> HandshakeEnd {
    let mut out = [SENTINEL; HANDSHAKE_MAX_MESSAGE_LEN];
    let mut message: Vec<u8> = Vec::new();
    let mut index = 0;
    let mut offset = 0;
    let mut arrived = 0;
    let mut full_buffer = !tight;
    loop {
        if index == spec.lens.len() {
            return HandshakeEnd::Reached { offset };
        }
        if offset == arrived {
            if arrived == stream.len() {
                assert!(!hs.is_done());
                assert_eq!(hs.failure(), None);
                return HandshakeEnd::Starved;
            }
            arrived += frag.next_len(stream.len() - arrived);
        }
        let input = &stream[offset..arrived];
        let out_len = if full_buffer {
            HANDSHAKE_MAX_MESSAGE_LEN
        } else {
            frag.below(HANDSHAKE_MAX_MESSAGE_LEN + 1)
        };
        full_buffer = !tight;
        out.fill(SENTINEL);
        let got = hs.step(input, &mut out[..out_len]);

        let awaited_len = spec.lens[index];
        let take = input.len().min(awaited_len - message.len());
        let completes = message.len() + take == awaited_len;
        let reply = spec.replies[index];
        if completes && out_len < reply.len() {
            assert_eq!(
                got,
                Err(Error::BufferTooSmall {
                    needed: reply.len()
                })
            );
            assert!(untouched(&out), "a refused step wrote");
            assert_eq!(hs.failure(), None);
            full_buffer = true;
            continue;
        }
        message.extend_from_slice(&input[..take]);
        offset += take;
        if !completes {
            assert_eq!(
                got,
                Ok(Step {
                    consumed: take,
                    written: 0,
                    status: Status::NeedInput,
                })
            );
        } else {
            match (spec.judge)(index, &message) {
                Ok(()) => {
                    assert_eq!(
                        got,
                        Ok(Step {
                            consumed: take,
                            written: reply.len(),
                            status: spec.statuses[index],
                        }),
                        "message {index} is valid"
                    );
                    assert_eq!(&out[..reply.len()], reply, "reply to message {index}");
                    index += 1;
                    message.clear();
                }
                Err(error) => {
                    assert_eq!(got, Err(error), "message {index} is not the valid one");
                    assert!(untouched(&out), "a failing step wrote");
                    assert_handshake_dead(hs, error, &stream[offset..]);
                    return HandshakeEnd::Failed(error);
                }
            }
        }
        assert!(
            untouched(&out[got.map_or(0, |s| s.written)..]),
            "step wrote past its message"
        );
    }
}

/// Control byte of the handshake targets: bit 7 accept (server), bit 6
/// tight output buffers, the bits below `fragmentation_bits` the
/// fragmentation seed.
pub fn handshake_control(control: u8, fragmentation_bits: u32) -> (bool, bool, Fragmenter) {
    (
        control & 0x80 != 0,
        control & 0x40 != 0,
        Fragmenter::new(control & ((1 << fragmentation_bits) - 1)),
    )
}

/// Drives `hs` through its two incoming messages (see [`drive_handshake`])
/// and returns it with how many stream bytes they took; a handshake that
/// starved or failed is checked to give neither an authorization nor a
/// channel, and the input's summary is returned instead.
pub fn reach(
    mut hs: Handshake,
    spec: &mut HandshakeSpec,
    stream: &[u8],
    frag: &mut Fragmenter,
    tight: bool,
) -> Result<(Handshake, usize), Summary> {
    let (error, summary) = match drive_handshake(&mut hs, spec, stream, frag, tight) {
        HandshakeEnd::Reached { offset } => return Ok((hs, offset)),
        HandshakeEnd::Starved => {
            assert_eq!(hs.authorize(true), Err(Error::WrongState));
            (Error::WrongState, Summary::default())
        }
        HandshakeEnd::Failed(error) => (error, Summary::failed(error)),
    };
    assert_eq!(hs.into_channel().err(), Some(error));
    Err(summary)
}

/// The end of a server handshake whose client message verified: it names
/// the client (`peer`) and, until the application decides, stepping only
/// repeats the question; a refusal (`accept` false) is final and silent;
/// after an acceptance the next step writes the final message of
/// `final_len` bytes (after refusing a too-small buffer when `tight`), and
/// then the handshake is done. Returns the final message, or the summary
/// of a refusal.
pub fn authorize(
    server: &mut Handshake,
    rest: &[u8],
    peer: [u8; 32],
    final_len: usize,
    accept: bool,
    tight: bool,
    frag: &mut Fragmenter,
) -> Result<Vec<u8>, Summary> {
    let mut out = [SENTINEL; HANDSHAKE_MAX_MESSAGE_LEN];
    assert_eq!(server.peer_key(), Ok(PublicKey(peer)));
    let question = Step {
        consumed: 0,
        written: 0,
        status: Status::AuthorizePeer,
    };
    assert_eq!(server.step(rest, &mut out), Ok(question));
    assert!(untouched(&out), "the question wrote");
    if !accept {
        assert_eq!(server.authorize(false), Err(Error::ClientRefused));
        assert_handshake_dead(server, Error::ClientRefused, rest);
        return Err(Summary::failed(Error::ClientRefused));
    }
    assert_eq!(server.authorize(true), Ok(()));
    assert_eq!(server.authorize(true), Err(Error::WrongState));
    if tight {
        assert_refuses_small_buffer(server, rest, final_len, frag);
    }
    let done = Step {
        consumed: 0,
        written: final_len,
        status: Status::Done,
    };
    assert_eq!(server.step(rest, &mut out), Ok(done));
    assert!(untouched(&out[final_len..]), "step wrote past its message");
    assert_done(server, rest);
    Ok(out[..final_len].to_vec())
}

/// A step that would write a message of `needed` bytes, given a random
/// smaller buffer, is refused with that need and writes nothing.
pub fn assert_refuses_small_buffer(
    hs: &mut Handshake,
    input: &[u8],
    needed: usize,
    frag: &mut Fragmenter,
) {
    let mut out = [SENTINEL; HANDSHAKE_MAX_MESSAGE_LEN];
    let small = frag.below(needed);
    assert_eq!(
        hs.step(input, &mut out[..small]),
        Err(Error::BufferTooSmall { needed })
    );
    assert!(untouched(&out), "a refused step wrote");
    assert_eq!(hs.failure(), None);
}

/// A finished handshake refuses every further step and authorization.
pub fn assert_done(hs: &mut Handshake, rest: &[u8]) {
    let mut out = [SENTINEL; HANDSHAKE_MAX_MESSAGE_LEN];
    assert!(hs.is_done());
    assert_eq!(hs.step(rest, &mut out), Err(Error::WrongState));
    assert_eq!(hs.authorize(true), Err(Error::WrongState));
    assert!(untouched(&out), "a finished handshake wrote");
}

/// Seeds of a handshake target: each `(name, control byte, n)` is that
/// control byte, then the first `n` parts of `stream` (the peer's two
/// messages, then records).
pub fn prefix_seeds(
    stream: &[&[u8]],
    seeds: &[(&'static str, u8, usize)],
) -> Vec<(&'static str, Vec<u8>)> {
    seeds
        .iter()
        .map(|&(name, control, n)| (name, input(&[control], &stream[..n])))
        .collect()
}
