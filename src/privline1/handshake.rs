//! privline/1's four handshake messages (PROTOCOL.md, "Handshake"), for
//! the one handshake driver (`crate::handshake::Driver`): M1 and M2 carry
//! the ephemeral keys under the network key's MAC, M3 the client's sealed
//! greeting (its identity and signature), M4 the server's sealed answer.
//! The driver keeps the stages, the peer's key and the failure latch; this
//! keeps the transcript and every secret.

use x25519_dalek::StaticSecret;
use zeroize::{Zeroize, Zeroizing};

use super::records::SessionKeys;
use super::{
    hkdf, mac, mac_matches, open_inout, seal_in_place, ANSWER_LEN, GREETING_LEN, L_K3, L_K4,
    L_KEYS, L_M1, L_M2, L_SIG_C, L_SIG_S, M1_LEN, M2_LEN, M3_LEN, M4_LEN, PROTO, TAG_LEN,
};
use crate::crypto::{
    check_client_proof, hash, x25519, x25519_public, Secret32, ValidIdentityKey, PUBLIC_KEY_LEN,
    SIGNATURE_LEN, X25519_LEN,
};
use crate::error::Error;
use crate::handshake::Messages;
use crate::identity::{Identity, NetworkKey};
use crate::slot::Slot;

/// The secrets of a handshake. Each is wiped when its slot is emptied
/// and when the block is dropped; all at once when the handshake fails.
#[derive(Zeroize)]
struct HandshakeSecrets {
    network_key: NetworkKey,
    /// Our first ephemeral secret (`ec` or `es`).
    first_secret: Slot<StaticSecret>,
    /// Our second ephemeral secret (`fc` or `fs`).
    second_secret: Slot<StaticSecret>,
    ee: Slot<Secret32>,
    eb: Slot<Secret32>,
    ae: Slot<Secret32>,
    k3: Slot<Secret32>,
    keys: Slot<SessionKeys>,
}

/// The privline/1 side of a handshake in progress, in either role: the
/// transcript, the ephemeral keys and every secret. Each secret is wiped
/// when it is no longer needed and, at the latest, when the handshake is
/// dropped.
pub(crate) struct Privline1Messages {
    /// Every secret of the handshake, in a heap block of its own: moving
    /// the `Handshake` (out of a `Box`, into a `Vec`) then moves only this
    /// pointer, and the block is wiped in place when the handshake drops.
    /// Inline secrets would be left behind, unwiped, in the memory a move
    /// frees.
    secrets: Box<HandshakeSecrets>,
    identity: Identity,
    /// The running transcript hash h0 .. h4.
    transcript: [u8; 32],
    /// The public half of our first ephemeral secret (`EC` or `ES`).
    first_public: [u8; X25519_LEN],
    /// The peer's first ephemeral key (`EC` for a server, `ES` for a client).
    peer_first: [u8; X25519_LEN],
    /// The peer's second ephemeral key (`FC`, known to a server after M3).
    peer_second: [u8; X25519_LEN],
    /// `H(G)`, which the server signs and the client checks in M4.
    greeting_hash: [u8; 32],
}

impl Privline1Messages {
    /// The messages of a handshake whose ephemeral secrets are `first`
    /// (`ec` or `es`) and `second` (`fc` or `fs`), fresh random ones except
    /// in the test vectors (reusing them destroys forward secrecy).
    pub(crate) fn new(
        network_key: &NetworkKey,
        identity: &Identity,
        first: StaticSecret,
        second: StaticSecret,
    ) -> Self {
        let first_public = x25519_public(&first);
        Privline1Messages {
            secrets: Box::new(HandshakeSecrets {
                network_key: NetworkKey::new(*network_key.bytes()),
                first_secret: Slot::holding(first),
                second_secret: Slot::holding(second),
                ee: Slot::empty(Zeroizing::new([0; 32])),
                eb: Slot::empty(Zeroizing::new([0; 32])),
                ae: Slot::empty(Zeroizing::new([0; 32])),
                k3: Slot::empty(Zeroizing::new([0; 32])),
                keys: Slot::empty(SessionKeys::zeroed()),
            }),
            identity: identity.share(),
            transcript: hash(&[PROTO, network_key.bytes()]),
            first_public,
            peer_first: [0; X25519_LEN],
            peer_second: [0; X25519_LEN],
            greeting_hash: [0; 32],
        }
    }

    /// The session keys of a finished handshake (the channel takes a copy;
    /// this one is wiped where it lives when the handshake drops).
    pub(crate) fn session_keys(&self) -> Result<&SessionKeys, Error> {
        self.secrets.keys.get()
    }

    fn first_secret(&self) -> Result<&StaticSecret, Error> {
        self.secrets.first_secret.get()
    }

    fn second_secret(&self) -> Result<&StaticSecret, Error> {
        self.secrets.second_secret.get()
    }
}

/// The secret in `slot`, which the state machine guarantees is set.
///
/// Secrets are borrowed, never moved out of their slot: moving a value out
/// leaves its bytes behind unwiped. A slot is emptied by `clear`, which
/// wipes the value in place.
fn secret(slot: &Slot<Secret32>) -> Result<&Secret32, Error> {
    slot.get()
}

/// `okm = HKDF(h4, ff ‖ ee ‖ eb ‖ ae, L_KEYS, 96)`, split into the two
/// traffic keys and the session id; `okm` is wiped.
fn derive_session_keys(
    h4: &[u8; 32],
    ff: &Secret32,
    ee: &Secret32,
    eb: &Secret32,
    ae: &Secret32,
) -> SessionKeys {
    let mut okm = Zeroizing::new([0u8; 96]);
    hkdf(
        h4,
        &[ff.as_ref(), ee.as_ref(), eb.as_ref(), ae.as_ref()],
        L_KEYS,
        okm.as_mut(),
    );
    let mut key_c2s = Zeroizing::new([0u8; 32]);
    let mut key_s2c = Zeroizing::new([0u8; 32]);
    let mut session_id = Zeroizing::new([0u8; 32]);
    key_c2s.copy_from_slice(&okm[..32]);
    key_s2c.copy_from_slice(&okm[32..64]);
    session_id.copy_from_slice(&okm[64..]);
    SessionKeys {
        key_c2s,
        key_s2c,
        session_id,
    }
}

impl Messages for Privline1Messages {
    const LENS: [usize; 4] = [M1_LEN, M2_LEN, M3_LEN, M4_LEN];

    /// Client: `M1 = EC ‖ MAC(N, L_M1 ‖ EC)`.
    fn write_first(&mut self, out: &mut [u8]) {
        let ec_public = self.first_public;
        out[..X25519_LEN].copy_from_slice(&ec_public);
        out[X25519_LEN..M1_LEN]
            .copy_from_slice(&mac(self.secrets.network_key.bytes(), &[L_M1, &ec_public]));
        self.transcript = hash(&[&self.transcript, &out[..M1_LEN]]);
    }

    /// Server: check M1, compute `ee` and `eb`, write M2, derive `k3`.
    fn read_first(&mut self, m1: &[u8], out: &mut [u8]) -> Result<(), Error> {
        let (ec_public, m1_mac) = m1.split_at(X25519_LEN);
        let expected = mac(self.secrets.network_key.bytes(), &[L_M1, ec_public]);
        if !mac_matches(&expected, m1_mac) {
            return Err(Error::M1BadMac);
        }
        self.peer_first.copy_from_slice(ec_public);
        let h1 = hash(&[&self.transcript, m1]);

        let ee = x25519(self.first_secret()?, &self.peer_first)?;
        let eb = x25519(self.identity.x25519_secret(), &self.peer_first)?;

        let es_public = self.first_public;
        out[..X25519_LEN].copy_from_slice(&es_public);
        out[X25519_LEN..M2_LEN].copy_from_slice(&mac(
            self.secrets.network_key.bytes(),
            &[L_M2, &self.peer_first, &es_public],
        ));
        let h2 = hash(&[&h1, &out[..M2_LEN]]);

        let mut k3 = Zeroizing::new([0u8; 32]);
        hkdf(&h2, &[ee.as_ref(), eb.as_ref()], L_K3, k3.as_mut());
        self.transcript = h2;
        self.secrets.ee.set(ee);
        self.secrets.eb.set(eb);
        self.secrets.k3.set(k3);
        Ok(())
    }

    /// Client: check M2, compute `ee`, `eb` and `ae`, sign and seal the
    /// greeting as M3.
    fn read_second(
        &mut self,
        server: &ValidIdentityKey,
        m2: &[u8],
        out: &mut [u8],
    ) -> Result<(), Error> {
        let (es_public, m2_mac) = m2.split_at(X25519_LEN);
        let expected = mac(
            self.secrets.network_key.bytes(),
            &[L_M2, &self.first_public, es_public],
        );
        if !mac_matches(&expected, m2_mac) {
            return Err(Error::M2BadMac);
        }
        self.peer_first.copy_from_slice(es_public);
        let h2 = hash(&[&self.transcript, m2]);

        let ee = x25519(self.first_secret()?, &self.peer_first)?;
        let eb = x25519(self.first_secret()?, &server.mont())?;
        let ae = x25519(self.identity.x25519_secret(), &self.peer_first)?;
        // `ec` has done all its work.
        self.secrets.first_secret.clear();

        let mut k3 = Zeroizing::new([0u8; 32]);
        hkdf(&h2, &[ee.as_ref(), eb.as_ref()], L_K3, k3.as_mut());

        let fc_public = x25519_public(self.second_secret()?);
        let sig_c = self
            .identity
            .sign(&[L_SIG_C, &h2, server.bytes(), &fc_public]);
        let (greeting, tag) = out.split_at_mut(GREETING_LEN);
        greeting[..32].copy_from_slice(self.identity.valid_public().bytes());
        greeting[32..64].copy_from_slice(&fc_public);
        greeting[64..].copy_from_slice(&sig_c);
        self.greeting_hash = hash(&[greeting]);
        let m3_tag = seal_in_place(&k3, 0, &h2, greeting);
        tag.copy_from_slice(&m3_tag);

        self.transcript = hash(&[&h2, &out[..M3_LEN]]);
        self.secrets.ee.set(ee);
        self.secrets.eb.set(eb);
        self.secrets.ae.set(ae);
        Ok(())
    }

    /// Server: open M3 and check the client's key and signature. Every
    /// path, failed or not, does the same work up to the application's
    /// decision: one AEAD open, the client proof check (one identity key
    /// check, one strict verification: `check_client_proof`) and the two
    /// hashes of the greeting and the transcript. The X25519 with the
    /// client's key waits until the application has accepted it.
    fn read_third(&mut self, m3: &[u8]) -> Result<ValidIdentityKey, Error> {
        let h2 = self.transcript;
        // The greeting holds the client's identity in plaintext once
        // opened: a buffer that is wiped.
        let mut greeting = Zeroizing::new([0u8; GREETING_LEN]);
        greeting.copy_from_slice(&m3[..GREETING_LEN]);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&m3[GREETING_LEN..M3_LEN]);
        let opened = open_inout(
            secret(&self.secrets.k3)?,
            0,
            &h2,
            greeting.as_mut().into(),
            &tag,
        );
        self.secrets.k3.clear();

        let mut client_key = [0u8; PUBLIC_KEY_LEN];
        client_key.copy_from_slice(&greeting[..32]);
        let mut sig_c = [0u8; SIGNATURE_LEN];
        sig_c.copy_from_slice(&greeting[64..]);
        let fc_public = &greeting[32..64];
        let checked = check_client_proof(
            opened,
            &client_key,
            &[
                L_SIG_C,
                &h2,
                self.identity.valid_public().bytes(),
                fc_public,
            ],
            &sig_c,
        );
        let greeting_hash = hash(&[greeting.as_ref()]);
        let h3 = hash(&[&h2, m3]);
        let client = checked?;

        self.peer_second.copy_from_slice(fc_public);
        self.greeting_hash = greeting_hash;
        self.transcript = h3;
        Ok(client)
    }

    /// Server, after the application accepted: compute `ae`, `k4` and `ff`,
    /// sign and seal the answer as M4, derive the session keys.
    fn write_fourth(&mut self, client: &ValidIdentityKey, m4: &mut [u8]) -> Result<(), Error> {
        let h3 = self.transcript;
        let ae = x25519(self.first_secret()?, &client.mont())?;
        self.secrets.first_secret.clear();
        let (ee, eb) = (secret(&self.secrets.ee)?, secret(&self.secrets.eb)?);

        let k4 = derive_k4(&h3, ee.as_ref(), eb.as_ref(), ae.as_ref());
        let ff = x25519(self.second_secret()?, &self.peer_second)?;
        let fs_public = x25519_public(self.second_secret()?);
        self.secrets.second_secret.clear();

        let sig_s = self
            .identity
            .sign(&[L_SIG_S, &h3, &self.greeting_hash, &fs_public]);
        let (answer, tag) = m4.split_at_mut(ANSWER_LEN);
        answer[..32].copy_from_slice(&fs_public);
        answer[32..].copy_from_slice(&sig_s);
        let m4_tag = seal_in_place(&k4, 0, &h3, answer);
        tag.copy_from_slice(&m4_tag);

        let h4 = hash(&[&h3, m4]);
        let keys = derive_session_keys(&h4, &ff, ee, eb, &ae);
        self.secrets.keys.set(keys);
        self.secrets.ee.clear();
        self.secrets.eb.clear();
        self.transcript = h4;
        Ok(())
    }

    /// Client: open M4, check the server's signature, compute `ff`, derive
    /// the session keys.
    fn read_fourth(&mut self, server: &ValidIdentityKey, m4: &[u8]) -> Result<(), Error> {
        let h3 = self.transcript;
        let (ee, eb, ae) = (
            secret(&self.secrets.ee)?,
            secret(&self.secrets.eb)?,
            secret(&self.secrets.ae)?,
        );
        let k4 = derive_k4(&h3, ee.as_ref(), eb.as_ref(), ae.as_ref());

        let mut answer = [0u8; ANSWER_LEN];
        answer.copy_from_slice(&m4[..ANSWER_LEN]);
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&m4[ANSWER_LEN..M4_LEN]);
        if !open_inout(&k4, 0, &h3, answer.as_mut().into(), &tag) {
            return Err(Error::M4DoesNotOpen);
        }
        drop(k4);
        let mut fs_public = [0u8; X25519_LEN];
        fs_public.copy_from_slice(&answer[..32]);
        let mut sig_s = [0u8; SIGNATURE_LEN];
        sig_s.copy_from_slice(&answer[32..]);
        if !server.verify_strict(&[L_SIG_S, &h3, &self.greeting_hash, &fs_public], &sig_s) {
            return Err(Error::M4BadServerSignature);
        }
        let ff = x25519(self.second_secret()?, &fs_public)?;
        self.secrets.second_secret.clear();

        let h4 = hash(&[&h3, m4]);
        let keys = derive_session_keys(&h4, &ff, ee, eb, ae);
        self.secrets.keys.set(keys);
        self.secrets.ee.clear();
        self.secrets.eb.clear();
        self.secrets.ae.clear();
        self.transcript = h4;
        Ok(())
    }

    fn wipe(&mut self) {
        self.secrets.zeroize();
    }
}

/// `k4`, the key of M4, which both ends derive from the transcript through
/// M3 and the three secrets the server's answer depends on.
fn derive_k4(h3: &[u8; 32], ee: &[u8], eb: &[u8], ae: &[u8]) -> Zeroizing<[u8; 32]> {
    let mut k4 = Zeroizing::new([0u8; 32]);
    hkdf(h3, &[ee, eb, ae], L_K4, k4.as_mut());
    k4
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::work::{self, Op};
    use crate::{Status, HANDSHAKE_MAX_MESSAGE_LEN};
    use serde_json::Value;

    fn unhex32(value: &Value) -> [u8; 32] {
        let text = value.as_str().unwrap();
        let bytes: Vec<u8> = (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect();
        bytes.try_into().unwrap()
    }

    fn unhex(value: &Value) -> Vec<u8> {
        let text = value.as_str().unwrap();
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    /// A server given a negative vector's M1 and then its M3: the server,
    /// every primitive call it made on M3, and the outcome.
    fn server_on_m3(case_name: &str) -> (crate::Handshake, work::Work, Result<Status, Error>) {
        let vectors: Value =
            serde_json::from_str(include_str!("../../tests/vectors/privline1.json")).unwrap();
        let case = vectors["negative"]
            .as_array()
            .unwrap()
            .iter()
            .find(|case| case["name"] == case_name)
            .unwrap();
        let inputs = &case["inputs"];
        let mut server = crate::Handshake::server_with_ephemerals_for_tests(
            &NetworkKey::new(unhex32(&inputs["network_key"])),
            &Identity::from_seed(&unhex32(&inputs["server_seed"])),
            unhex32(&inputs["es"]),
            unhex32(&inputs["fs"]),
        );
        let mut out = [0u8; HANDSHAKE_MAX_MESSAGE_LEN];
        let inbound = case["inbound"].as_array().unwrap();
        server.step(&unhex(&inbound[0]["hex"]), &mut out).unwrap();
        work::take();
        let outcome = server
            .step(&unhex(&inbound[1]["hex"]), &mut out)
            .map(|step| step.status);
        (server, work::take(), outcome)
    }

    /// Every primitive call a server makes on a negative vector's M3, and
    /// the outcome.
    fn m3_work(case_name: &str) -> (work::Work, Result<Status, Error>) {
        let (_, work, outcome) = server_on_m3(case_name);
        (work, outcome)
    }

    #[test]
    fn every_m3_failure_path_does_the_work_of_success() {
        // Success up to the authorization decision: M3 opened, the client
        // key checked, its signature verified, the greeting and the
        // transcript hashed; nothing else, in particular no X25519.
        let (success, outcome) = m3_work("m3_refused");
        assert_eq!(outcome, Ok(Status::AuthorizePeer));
        let expected = work::client_proof_and(&[(Op::AeadOpen, 1), (Op::Sha256, 2)]);
        assert_eq!(success, expected);
        for (name, error) in [
            ("m3_bit_flip", Error::M3DoesNotOpen),
            ("m3_wrong_server_key", Error::M3DoesNotOpen),
            ("m3_replayed", Error::M3DoesNotOpen),
            ("m3_noncanonical_s", Error::M3BadClientSignature),
            ("m3_small_order_r", Error::M3BadClientSignature),
            ("m3_cofactored_only", Error::M3BadClientSignature),
            ("m3_small_order_client_key", Error::M3InvalidClientKey),
            (
                "m3_small_order_client_key_order8",
                Error::M3InvalidClientKey,
            ),
            ("m3_torsion_client_key", Error::M3InvalidClientKey),
            ("m3_noncanonical_client_key", Error::M3InvalidClientKey),
        ] {
            let (work, outcome) = m3_work(name);
            assert_eq!(outcome, Err(error), "{name}");
            assert_eq!(work, success, "{name}: every primitive call");
        }
    }

    #[test]
    fn the_x25519_with_the_client_key_waits_for_acceptance() {
        let (mut server, _, outcome) = server_on_m3("m3_refused");
        assert_eq!(outcome, Ok(Status::AuthorizePeer));
        work::take();
        server.authorize(true).unwrap();
        let accepted = work::take();
        // `ae` and `ff`, then M4's signature: only after the decision.
        assert_eq!(accepted.get(&Op::X25519), Some(&2));
        assert_eq!(accepted.get(&Op::Sign), Some(&1));
    }
}
