//! The channel, either protocol: the public [`Channel`] that both the safe
//! API and the C ABI use. It keeps the state both protocols share (role,
//! peer key, close flags, the failure latch) and decides what each
//! protocol supports; the protocol's record layer (privline/1 records, or
//! box-stream after an SHS1 handshake) only seals and opens.
//!
//! The sending and the receiving half each sit behind a lock of their own,
//! so one thread may seal while another opens the same channel: the
//! full-duplex pattern of C servers. Through `&mut self` (the Rust API) no
//! lock is ever taken; through `&self` (the C ABI) a half that another
//! thread holds is refused with [`Error::Busy`], never waited for.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError, RwLock, TryLockError};

use zeroize::{Zeroize, Zeroizing};

use crate::crypto::Secret32;
use crate::error::Error;
use crate::identity::{PublicKey, SessionId};
use crate::privline1::records::{record_halves, RecordReceiver, RecordSender, SessionKeys};
use crate::privline1::{RECORD_MAX_INNER_LEN, TYPE_CLOSE, TYPE_DATA, TYPE_KEY_UPDATE};
use crate::shs1::box_stream::{
    box_stream_halves, box_stream_sealed_len, export_keys, BoxReceiver, BoxSender,
};
use crate::shs1::{BoxStreamKeys, SHS1_KEYS_LEN};
use crate::stack;
use crate::vocabulary::{Opened, Protocol, Role};

pub use crate::privline1::records::sealed_len;

/// The sending half of either protocol.
enum Sender {
    Records(RecordSender),
    BoxStream(BoxSender),
}

/// The receiving half of either protocol.
enum Receiver {
    Records(RecordReceiver),
    BoxStream(BoxReceiver),
}

impl Sender {
    fn wipe(&mut self) {
        match self {
            Sender::Records(records) => records.wipe(),
            Sender::BoxStream(stream) => stream.wipe(),
        }
    }
}

impl Receiver {
    fn wipe(&mut self) {
        match self {
            Receiver::Records(records) => records.wipe(),
            Receiver::BoxStream(stream) => stream.wipe(),
        }
    }
}

/// The secrets of a channel, each half behind its own lock, in a heap
/// block of their own: moving the `Channel` moves only the pointer, and
/// the block is wiped in place when the channel drops (inline keys would be
/// left behind, unwiped, in the memory a move frees).
struct Halves {
    send: Mutex<Sender>,
    receive: Mutex<Receiver>,
    /// privline/1's session id (all zero for SHS1, which has none).
    session_id: RwLock<Secret32>,
}

/// What both halves share: set when the channel is made, or atomic.
struct Shared {
    protocol: Protocol,
    role: Role,
    peer_key: PublicKey,
    /// The first fatal error, latched for good: every later call returns
    /// it. Either half may set it; each half wipes its own key when it sees
    /// it.
    failed: OnceLock<Error>,
    sent_close: AtomicBool,
    peer_closed: AtomicBool,
}

impl Shared {
    fn check_usable(&self) -> Result<(), Error> {
        match self.failed.get() {
            Some(error) => Err(*error),
            None => Ok(()),
        }
    }

    /// Latches `error` (the first fatal error stays) and returns the one
    /// latched.
    fn latch(&self, error: Error) -> Error {
        *self.failed.get_or_init(|| error)
    }
}

/// An established channel: privline/1 records, or box-stream after an SHS1
/// handshake.
///
/// Seals data for the peer and opens the peer's data, one record (or box)
/// at a time, into caller buffers; nothing is allocated. After any fatal
/// error every later call returns that error and the keys are wiped. Keys
/// are wiped on drop too.
pub struct Channel {
    shared: Shared,
    halves: Box<Halves>,
}

/// A half's lock through `&self`: refused with [`Error::Busy`] when
/// another thread holds it. A lock poisoned by a panic in an earlier call
/// (caught at the C boundary) means the channel failed.
fn try_lock<'a, T>(lock: &'a Mutex<T>, shared: &Shared) -> Result<MutexGuard<'a, T>, Error> {
    match lock.try_lock() {
        Ok(guard) => Ok(guard),
        Err(TryLockError::WouldBlock) => Err(Error::Busy),
        Err(TryLockError::Poisoned(poisoned)) => {
            drop(poisoned.into_inner());
            Err(shared.latch(Error::Internal))
        }
    }
}

impl Channel {
    fn new(
        protocol: Protocol,
        role: Role,
        peer_key: PublicKey,
        sender: Sender,
        receiver: Receiver,
        session_id: Secret32,
    ) -> Channel {
        Channel {
            shared: Shared {
                protocol,
                role,
                peer_key,
                failed: OnceLock::new(),
                sent_close: AtomicBool::new(false),
                peer_closed: AtomicBool::new(false),
            },
            halves: Box::new(Halves {
                send: Mutex::new(sender),
                receive: Mutex::new(receiver),
                session_id: RwLock::new(session_id),
            }),
        }
    }

    /// A privline/1 channel from a finished handshake's keys.
    pub(crate) fn privline1(role: Role, keys: SessionKeys, peer_key: PublicKey) -> Channel {
        let (sender, receiver, session_id) = record_halves(role, keys);
        Channel::new(
            Protocol::Privline1,
            role,
            peer_key,
            Sender::Records(sender),
            Receiver::Records(receiver),
            session_id,
        )
    }

    /// A box-stream channel from a finished SHS1 handshake's keys.
    pub(crate) fn shs1(role: Role, keys: &BoxStreamKeys, peer_key: PublicKey) -> Channel {
        let (sender, receiver) = box_stream_halves(keys);
        Channel::new(
            Protocol::Shs1,
            role,
            peer_key,
            Sender::BoxStream(sender),
            Receiver::BoxStream(receiver),
            Zeroizing::new([0; 32]),
        )
    }

    /// Test vectors only: a privline/1 channel from raw traffic keys, as if
    /// a handshake had produced them. Not in the C ABI.
    #[doc(hidden)]
    pub fn from_keys_for_tests(
        is_client: bool,
        key_c2s: [u8; 32],
        key_s2c: [u8; 32],
        peer_key: PublicKey,
    ) -> Channel {
        let role = if is_client {
            Role::Client
        } else {
            Role::Server
        };
        let keys = SessionKeys {
            key_c2s: Zeroizing::new(key_c2s),
            key_s2c: Zeroizing::new(key_s2c),
            session_id: Zeroizing::new([0; 32]),
        };
        Channel::privline1(role, keys, peer_key)
    }

    /// Tests only: moves a privline/1 channel's record counters, to reach
    /// the automatic key update at 2^32 and the end of the counter space
    /// without sealing billions of records. Does nothing to box-stream.
    #[doc(hidden)]
    pub fn set_counters_for_tests(&mut self, send: u64, receive: u64) {
        if let Sender::Records(sender) = self.sender_mut() {
            sender.set_counter_for_tests(send);
        }
        if let Receiver::Records(receiver) = self.receiver_mut() {
            receiver.set_counter_for_tests(receive);
        }
    }

    fn sender_mut(&mut self) -> &mut Sender {
        self.halves
            .send
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn receiver_mut(&mut self) -> &mut Receiver {
        self.halves
            .receive
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Ends the channel as if by an internal error (the C boundary caught a
    /// panic inside a call on it). The halves wipe their keys when they
    /// next run, or on drop.
    pub(crate) fn poison(&self) {
        self.shared.latch(Error::Internal);
    }

    /// The protocol this channel speaks.
    pub fn protocol(&self) -> Protocol {
        self.shared.protocol
    }

    /// Whether this channel is the client's end.
    pub fn is_client(&self) -> bool {
        self.shared.role == Role::Client
    }

    /// The peer's identity public key, as proven in the handshake.
    pub fn peer_key(&self) -> Result<PublicKey, Error> {
        self.shared.check_usable()?;
        Ok(self.shared.peer_key)
    }

    /// The 32-byte session id, equal on both ends and secret to them: bind
    /// application-level authentication to this channel with it. The copy
    /// returned wipes itself when dropped. SHS1 has none:
    /// [`Error::NotSupported`]. While another thread's call is wiping the
    /// channel's copy (after a failure): [`Error::Busy`].
    pub fn session_id(&self) -> Result<SessionId, Error> {
        self.shared.check_usable()?;
        if self.shared.protocol == Protocol::Shs1 {
            return Err(Error::NotSupported);
        }
        let session_id = match self.halves.session_id.try_read() {
            Ok(session_id) => session_id,
            Err(TryLockError::WouldBlock) => return Err(Error::Busy),
            Err(TryLockError::Poisoned(_)) => return Err(self.shared.latch(Error::Internal)),
        };
        // The latch is checked again: a failure may have wiped the id.
        self.shared.check_usable()?;
        Ok(SessionId(Zeroizing::new(**session_id)))
    }

    /// Whether the peer's close (or box-stream goodbye) has arrived. When the
    /// connection ends and this is false, the stream was truncated.
    pub fn peer_closed(&self) -> Result<bool, Error> {
        self.shared.check_usable()?;
        Ok(self.shared.peer_closed.load(Ordering::Acquire))
    }

    /// Whether this side has sent its close.
    pub fn sent_close(&self) -> bool {
        self.shared.sent_close.load(Ordering::Acquire)
    }

    /// The exact bytes [`Channel::seal`] writes for `payload_len` bytes with
    /// `pad_block` right now (privline/1: including the automatic
    /// key-update record when one is due; SHS1: one 34-byte header per 4096
    /// bytes, nothing for an empty payload). `None` when the size does not
    /// fit in `usize` or the padding is not possible.
    pub fn sealed_len(&self, payload_len: usize, pad_block: usize) -> Option<usize> {
        let sender = try_lock(&self.halves.send, &self.shared).ok()?;
        sealed_len_of(&sender, payload_len, pad_block)
    }

    /// Seals `payload` into `output` and returns the bytes written.
    ///
    /// privline/1: one or more data records (a record carries at most 65518
    /// bytes); `pad_block` > 1 pads each record's inner plaintext with zeros
    /// up to a multiple of `pad_block` bytes (capped at the largest record),
    /// hiding payload lengths; 0 or 1 means no padding. SHS1: boxes of at
    /// most 4096 bytes, nothing for an empty payload; padding is
    /// [`Error::NotSupported`]. [`Channel::sealed_len`] gives the exact size.
    /// A too-small `output` returns [`Error::BufferTooSmall`] with the exact
    /// need and changes nothing.
    pub fn seal(
        &mut self,
        payload: &[u8],
        pad_block: usize,
        output: &mut [u8],
    ) -> Result<usize, Error> {
        self.seal_mut(Sealing::Data(payload), pad_block, output)
    }

    /// Seals this side's close (privline/1: a close record; SHS1: the
    /// box-stream goodbye): it sends nothing more afterwards, but keeps
    /// opening the peer's data until the peer's own close.
    pub fn close(&mut self, pad_block: usize, output: &mut [u8]) -> Result<usize, Error> {
        self.seal_mut(Sealing::Close, pad_block, output)
    }

    /// privline/1: seals a key-update record, then replaces the sending key
    /// (the peer follows when it opens the record). The old key is wiped.
    /// SHS1 has no key update: [`Error::NotSupported`].
    pub fn update_key(&mut self, pad_block: usize, output: &mut [u8]) -> Result<usize, Error> {
        self.seal_mut(Sealing::KeyUpdate, pad_block, output)
    }

    /// Opens the first record (or box) in `input` into `output`.
    ///
    /// Exactly one is opened per call, so message boundaries survive; call
    /// again with the rest of the input. `output` must hold its whole
    /// plaintext (privline/1: the record's length field minus 16, at most
    /// [`crate::RECORD_MAX_INNER_LEN`] bytes; SHS1: the body, at most 4096
    /// bytes); the payload is written to its start. A too-small `output`
    /// returns [`Error::BufferTooSmall`] with the need and changes nothing.
    /// Any damaged, replayed, reordered or malformed record, and any record
    /// after the peer's close, is fatal.
    pub fn open(&mut self, input: &[u8], output: &mut [u8]) -> Result<Opened, Error> {
        let Channel { shared, halves } = self;
        let receiver = halves
            .receive
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let result = open(shared, receiver, input, output);
        if shared.failed.get().is_some() {
            // Exclusive access: the other half and the session id are
            // wiped now, not when they next run.
            self.wipe_all();
        }
        result
    }

    /// Seals with exclusive access: no lock is taken, and after a fatal
    /// error everything is wiped at once.
    fn seal_mut(
        &mut self,
        what: Sealing<'_>,
        pad_block: usize,
        output: &mut [u8],
    ) -> Result<usize, Error> {
        let Channel { shared, halves } = self;
        let sender = halves
            .send
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        let result = seal(shared, sender, what, pad_block, output);
        if shared.failed.get().is_some() {
            self.wipe_all();
        }
        result
    }

    /// [`Channel::seal`], [`Channel::close`] or [`Channel::update_key`]
    /// through a shared reference, for the C ABI: one thread may seal while
    /// another opens. Another seal, close or key update on the same channel
    /// at the same time: [`Error::Busy`]. Under the send half's lock; after
    /// a fatal error, wipes what no other thread holds.
    pub(crate) fn seal_shared(
        &self,
        what: Sealing<'_>,
        pad_block: usize,
        output: &mut [u8],
    ) -> Result<usize, Error> {
        let mut sender = try_lock(&self.halves.send, &self.shared)?;
        let result = seal(&self.shared, &mut sender, what, pad_block, output);
        drop(sender);
        self.wipe_after_failure();
        result
    }

    /// [`Channel::open`] through a shared reference, for the C ABI: one
    /// thread may open while another seals. Another open on the same
    /// channel at the same time: [`Error::Busy`].
    pub(crate) fn open_shared(&self, input: &[u8], output: &mut [u8]) -> Result<Opened, Error> {
        let mut receiver = try_lock(&self.halves.receive, &self.shared)?;
        let result = open(&self.shared, &mut receiver, input, output);
        drop(receiver);
        self.wipe_after_failure();
        result
    }

    /// SHS1 only: the current box-stream keys and nonces (encryption key
    /// and nonce, then decryption key and nonce; [`crate::SHS1_KEYS_LEN`]
    /// bytes), for interoperability tests such as `shs1-test` that compare
    /// them. Anyone holding them reads and forges the channel: never log or
    /// send them. privline/1 keeps its keys to itself:
    /// [`Error::NotSupported`]. While another thread seals or opens:
    /// [`Error::Busy`].
    pub fn export_shs1_keys(&self) -> Result<Zeroizing<[u8; SHS1_KEYS_LEN]>, Error> {
        self.shared.check_usable()?;
        let sender = try_lock(&self.halves.send, &self.shared)?;
        let receiver = try_lock(&self.halves.receive, &self.shared)?;
        self.shared.check_usable()?;
        match (&*sender, &*receiver) {
            (Sender::BoxStream(sender), Receiver::BoxStream(receiver)) => {
                Ok(export_keys(sender, receiver))
            }
            _ => Err(Error::NotSupported),
        }
    }

    /// After a fatal error, wipes every key this call can reach now: the
    /// halves and the session id that no other thread holds. One that is
    /// held is wiped by its holder when it next sees the latch, or on drop.
    fn wipe_after_failure(&self) {
        if self.shared.failed.get().is_none() {
            return;
        }
        if let Ok(mut sender) = self.halves.send.try_lock() {
            sender.wipe();
        }
        if let Ok(mut receiver) = self.halves.receive.try_lock() {
            receiver.wipe();
        }
        if let Ok(mut session_id) = self.halves.session_id.try_write() {
            session_id.zeroize();
        }
    }

    /// [`Channel::wipe_after_failure`] with exclusive access: everything.
    fn wipe_all(&mut self) {
        self.sender_mut().wipe();
        self.receiver_mut().wipe();
        self.halves
            .session_id
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .zeroize();
    }
}

/// What a seal call seals.
#[derive(Clone, Copy)]
pub(crate) enum Sealing<'a> {
    Data(&'a [u8]),
    Close,
    KeyUpdate,
}

/// The exact bytes sealing `payload_len` bytes of data writes now.
fn sealed_len_of(sender: &Sender, payload_len: usize, pad_block: usize) -> Option<usize> {
    match sender {
        Sender::Records(records) => {
            if pad_block > RECORD_MAX_INNER_LEN {
                return None;
            }
            records.needed_len(TYPE_DATA, payload_len, pad_block)
        }
        Sender::BoxStream(_) if pad_block > 1 => None,
        Sender::BoxStream(_) => box_stream_sealed_len(payload_len),
    }
}

/// The one seal of either protocol: the channel's rules (failure, close,
/// what each protocol supports), then the protocol's record layer.
fn seal(
    shared: &Shared,
    sender: &mut Sender,
    what: Sealing<'_>,
    pad_block: usize,
    output: &mut [u8],
) -> Result<usize, Error> {
    if let Err(error) = shared.check_usable() {
        sender.wipe();
        return Err(error);
    }
    if matches!((&*sender, what), (Sender::BoxStream(_), Sealing::KeyUpdate)) {
        // Box-stream has no key update.
        return Err(Error::NotSupported);
    }
    if shared.sent_close.load(Ordering::Acquire) {
        return Err(Error::AlreadyClosed);
    }
    let result = stack::record_scrubbed(|| match (sender, what) {
        (Sender::Records(records), what) => {
            let (record_type, payload) = match what {
                Sealing::Data(payload) => (TYPE_DATA, payload),
                Sealing::Close => (TYPE_CLOSE, &[][..]),
                Sealing::KeyUpdate => (TYPE_KEY_UPDATE, &[][..]),
            };
            records.seal(record_type, payload, pad_block, output)
        }
        // Box-stream has no padding: every body length is on the wire.
        (Sender::BoxStream(_), _) if pad_block > 1 => Err(Error::NotSupported),
        (Sender::BoxStream(_), Sealing::KeyUpdate) => Err(Error::NotSupported),
        (Sender::BoxStream(stream), Sealing::Data(payload)) => stream.seal(payload, output),
        (Sender::BoxStream(stream), Sealing::Close) => stream.goodbye(output),
    });
    match result {
        Ok(written) => {
            if matches!(what, Sealing::Close) {
                shared.sent_close.store(true, Ordering::Release);
            }
            Ok(written)
        }
        Err(error) if error.is_fatal() => Err(shared.latch(error)),
        Err(error) => Err(error),
    }
}

/// The one open of either protocol: the channel's rules (failure, the
/// peer's close), then the protocol's record layer; a fatal error is
/// latched and the receive key wiped.
fn open(
    shared: &Shared,
    receiver: &mut Receiver,
    input: &[u8],
    output: &mut [u8],
) -> Result<Opened, Error> {
    if let Err(error) = shared.check_usable() {
        receiver.wipe();
        return Err(error);
    }
    if shared.peer_closed.load(Ordering::Acquire) {
        if input.is_empty() {
            let needed = match receiver {
                Receiver::Records(_) => crate::RECORD_HEADER_LEN,
                Receiver::BoxStream(_) => crate::SHS1_HEADER_LEN,
            };
            return Ok(Opened::Incomplete { needed });
        }
        receiver.wipe();
        return Err(shared.latch(Error::RecordAfterClose));
    }
    let result = stack::record_scrubbed(|| match receiver {
        Receiver::Records(records) => records.open(input, output),
        Receiver::BoxStream(stream) => stream.open(input, output),
    });
    match result {
        Ok(Opened::Close { consumed }) => {
            shared.peer_closed.store(true, Ordering::Release);
            Ok(Opened::Close { consumed })
        }
        Ok(opened) => Ok(opened),
        Err(error) if error.is_fatal() => {
            receiver.wipe();
            Err(shared.latch(error))
        }
        Err(error) => Err(error),
    }
}

impl core::fmt::Debug for Channel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Channel")
            .field("protocol", &self.shared.protocol)
            .field("role", &self.shared.role)
            .field("peer_key", &self.shared.peer_key)
            .field("sent_close", &self.sent_close())
            .field(
                "peer_closed",
                &self.shared.peer_closed.load(Ordering::Acquire),
            )
            .field("failed", &self.shared.failed.get())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privline1::open_inout;
    use std::sync::mpsc;

    const KEY_C2S: [u8; 32] = [0x11; 32];
    const KEY_S2C: [u8; 32] = [0x22; 32];

    fn pair() -> (Channel, Channel) {
        let peer = PublicKey([9; 32]);
        (
            Channel::from_keys_for_tests(true, KEY_C2S, KEY_S2C, peer),
            Channel::from_keys_for_tests(false, KEY_C2S, KEY_S2C, peer),
        )
    }

    fn sealed(channel: &Channel, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; payload.len() + 64 * 19 + 64];
        loop {
            match channel.seal_shared(Sealing::Data(payload), 0, &mut out) {
                Ok(n) => {
                    out.truncate(n);
                    return out;
                }
                Err(Error::Busy) => std::thread::yield_now(),
                Err(error) => panic!("seal: {error:?}"),
            }
        }
    }

    /// The send key as it is now (tests look inside the half).
    fn send_key(channel: &mut Channel) -> [u8; 32] {
        match channel.sender_mut() {
            Sender::Records(records) => records.key_for_tests(),
            Sender::BoxStream(_) => unreachable!(),
        }
    }

    /// Every key byte both halves hold now (box-stream: keys and nonces).
    fn key_bytes(channel: &mut Channel) -> Vec<u8> {
        let mut bytes = match channel.sender_mut() {
            Sender::Records(records) => records.key_for_tests().to_vec(),
            Sender::BoxStream(_) => Vec::new(),
        };
        let halves = channel.halves.as_mut();
        match (halves.send.get_mut(), halves.receive.get_mut()) {
            (Ok(Sender::Records(_)), Ok(Receiver::Records(receiver))) => {
                bytes.extend(receiver.key_for_tests())
            }
            (Ok(Sender::BoxStream(sender)), Ok(Receiver::BoxStream(receiver))) => {
                bytes.extend(crate::shs1::box_stream::export_keys(sender, receiver).iter())
            }
            _ => unreachable!("a channel's halves speak one protocol"),
        }
        bytes
    }

    #[test]
    fn a_fatal_error_wipes_both_keys_at_once_in_both_protocols() {
        let peer = PublicKey([9; 32]);
        let box_keys = BoxStreamKeys {
            encrypt_key: [0x31; 32],
            encrypt_nonce: [0x32; 24],
            decrypt_key: [0x33; 32],
            decrypt_nonce: [0x34; 24],
        };
        let channels = [
            Channel::from_keys_for_tests(true, KEY_C2S, KEY_S2C, peer),
            Channel::shs1(Role::Client, &box_keys, peer),
        ];
        for mut channel in channels {
            let protocol = channel.protocol();
            assert!(
                key_bytes(&mut channel).iter().all(|&b| b != 0),
                "{protocol:?}"
            );
            // A record (privline/1: length 17) or a header (SHS1: the
            // first 34 bytes) that does not open.
            let mut garbage = [0x5au8; 40];
            garbage[..2].copy_from_slice(&[0, 17]);
            let mut out = [0u8; 64];
            assert!(channel.open(&garbage, &mut out).is_err(), "{protocol:?}");
            assert!(
                key_bytes(&mut channel).iter().all(|&b| b == 0),
                "{protocol:?}: a key outlived the failure"
            );
        }
    }

    #[test]
    fn a_second_sealer_or_opener_is_refused_with_busy_and_nothing_changes() {
        let (client, mut server) = pair();
        let mut out = [0u8; 64];
        {
            let _sealing = client.halves.send.lock().unwrap();
            assert_eq!(
                client.seal_shared(Sealing::Data(b"x"), 0, &mut out),
                Err(Error::Busy)
            );
            assert_eq!(
                client.seal_shared(Sealing::Close, 0, &mut out),
                Err(Error::Busy)
            );
            assert_eq!(
                client.seal_shared(Sealing::KeyUpdate, 0, &mut out),
                Err(Error::Busy)
            );
            assert_eq!(client.sealed_len(1, 0), None);
            assert_eq!(client.export_shs1_keys().map(|_| ()), Err(Error::Busy));
            // The other half is free: opening goes on while a seal runs.
            assert_eq!(
                client.open_shared(&[], &mut out),
                Ok(Opened::Incomplete { needed: 2 })
            );
        }
        {
            let _opening = client.halves.receive.lock().unwrap();
            assert_eq!(client.open_shared(&[0, 17], &mut out), Err(Error::Busy));
        }
        // Nothing changed: the first record still has counter 0 and opens.
        let record = sealed(&client, b"after");
        assert_eq!(client.sealed_len(5, 0), Some(5 + 19));
        assert!(!client.sent_close());
        let mut plain = [0u8; 64];
        assert_eq!(
            server.open(&record, &mut plain),
            Ok(Opened::Data {
                consumed: record.len(),
                len: 5
            })
        );
        assert_eq!(&plain[..5], b"after");
    }

    #[test]
    fn a_failure_while_another_thread_seals_leaves_its_key_until_that_seal_is_done() {
        let (mut client, _) = pair();
        let key = send_key(&mut client);
        let mut out = [0u8; 64];
        {
            // A seal in progress on another thread holds the send half.
            let _sealing = client.halves.send.lock().unwrap();
            let garbage = [
                0u8, 17, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
            ];
            assert_eq!(
                client.open_shared(&garbage, &mut out),
                Err(Error::RecordDoesNotOpen)
            );
            // The receive key is gone; the send key is the sealer's to wipe.
        }
        assert_eq!(send_key(&mut client), key, "not wiped under the sealer");
        // The sealer's next call sees the latch and wipes its own key.
        assert_eq!(
            client.seal_shared(Sealing::Data(b"x"), 0, &mut out),
            Err(Error::RecordDoesNotOpen)
        );
        assert_eq!(send_key(&mut client), [0; 32]);
        assert_eq!(client.peer_key(), Err(Error::RecordDoesNotOpen));
        assert_eq!(
            client.session_id().map(|_| ()),
            Err(Error::RecordDoesNotOpen)
        );
    }

    #[test]
    fn one_sealer_and_one_opener_per_channel_run_at_once_and_every_record_arrives() {
        let (client, server) = pair();
        let messages: Vec<Vec<u8>> = (0..400usize)
            .map(|i| (0..(i * 37) % 3000).map(|j| (i + j) as u8).collect())
            .collect();
        let (to_server, from_client) = mpsc::channel::<Vec<u8>>();
        let (to_client, from_server) = mpsc::channel::<Vec<u8>>();
        let send_all = |channel: &Channel, queue: mpsc::Sender<Vec<u8>>| {
            for message in &messages {
                let mut out = vec![0u8; message.len() + 19];
                let n = channel
                    .seal_shared(Sealing::Data(message), 0, &mut out)
                    .unwrap();
                out.truncate(n);
                queue.send(out).unwrap();
            }
        };
        let receive_all = |channel: &Channel, queue: mpsc::Receiver<Vec<u8>>| {
            let mut plain = vec![0u8; crate::RECORD_MAX_INNER_LEN];
            for message in &messages {
                let record = queue.recv().unwrap();
                let opened = channel.open_shared(&record, &mut plain).unwrap();
                assert_eq!(
                    opened,
                    Opened::Data {
                        consumed: record.len(),
                        len: message.len()
                    }
                );
                assert_eq!(&plain[..message.len()], &message[..]);
            }
        };
        std::thread::scope(|scope| {
            scope.spawn(|| send_all(&client, to_server));
            scope.spawn(|| send_all(&server, to_client));
            scope.spawn(|| receive_all(&server, from_client));
            scope.spawn(|| receive_all(&client, from_server));
        });
    }

    #[test]
    fn concurrent_sealers_never_reuse_a_counter() {
        let (client, _) = pair();
        let records: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for thread in 0..2u8 {
                let (client, records) = (&client, &records);
                scope.spawn(move || {
                    for i in 0..150u8 {
                        let record = sealed(client, &[thread, i]);
                        records.lock().unwrap().push(record);
                    }
                });
            }
        });
        let records = records.into_inner().unwrap();
        assert_eq!(records.len(), 300);
        // Each record opens under exactly one counter, and the counters
        // are 0..300, each once: no nonce was used twice.
        let mut counters: Vec<u64> = records
            .iter()
            .map(|record| {
                let (header, body) = record.split_at(2);
                let (inner, tag) = body.split_at(body.len() - 16);
                let tag: [u8; 16] = tag.try_into().unwrap();
                let opening: Vec<u64> = (0..300u64)
                    .filter(|&counter| {
                        let mut plain = inner.to_vec();
                        open_inout(&KEY_C2S, counter, header, plain.as_mut_slice().into(), &tag)
                    })
                    .collect();
                assert_eq!(opening.len(), 1, "{opening:?}");
                opening[0]
            })
            .collect();
        counters.sort_unstable();
        assert_eq!(counters, (0..300).collect::<Vec<u64>>());
    }
}
