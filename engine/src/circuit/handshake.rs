//! The one-way authenticated circuit handshake (ntor-style, over BLAKE3).
//!
//! The client knows the relay's [`NodeId`] (ID) and its onion public key B;
//! the relay holds the onion secret b. The client sends an ephemeral X, the
//! relay answers with an ephemeral Y and AUTH:
//!
//! ```text
//! PROTOID      = "allium-ntor-blake3-v1"
//! secret_input = EXP(X,y) | EXP(X,b) | ID | B | X | Y | PROTOID   (client: EXP(Y,x) | EXP(B,x))
//! key_seed     = derive_key("allium circuit v1 key seed", secret_input)
//! verify       = derive_key("allium circuit v1 verify", secret_input)
//! auth         = keyed_hash(verify, ID | B | Y | X | PROTOID | "server")
//! hop keys     = derive_bytes("allium circuit v1 hop keys", key_seed), 128 bytes:
//!                forward_layer | forward_aead | backward_layer | backward_aead
//! ```
//!
//! Only the holder of b can compute AUTH, so the client knows it reached the
//! relay it named; the relay learns nothing about the client. The ephemerals
//! give forward secrecy: once x and y are gone, a later compromise of b does
//! not reveal the hop keys.

use super::cell::{CreateBody, CreatedBody};
use crate::crypto::kdf;
use crate::crypto::{CryptoSuite, KxPublic, KxSecret, ct_eq};
use crate::identity::NodeId;
use crate::rng::EngineRng;
use rand_core::Rng;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The protocol identifier mixed into every derivation.
pub const PROTOID: &[u8] = b"allium-ntor-blake3-v1";
const KEY_SEED_CONTEXT: &str = "allium circuit v1 key seed";
const VERIFY_CONTEXT: &str = "allium circuit v1 verify";
const HOP_KEYS_CONTEXT: &str = "allium circuit v1 hop keys";

/// The four keys one hop shares with the client. Zeroized on drop; `Debug`
/// prints none of them.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct HopKeys {
    /// ChaCha20 key of this hop's layer on FORWARD cells (used when the hop is not the last).
    pub forward_layer: [u8; 32],
    /// ChaCha20-Poly1305 key of FORWARD cells (used when the hop is the last).
    pub forward_aead: [u8; 32],
    /// ChaCha20 key of this hop's layer on BACKWARD cells (used when the hop is not the last).
    pub backward_layer: [u8; 32],
    /// ChaCha20-Poly1305 key of BACKWARD cells (used when the hop is the last).
    pub backward_aead: [u8; 32],
}

impl core::fmt::Debug for HopKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HopKeys(..)")
    }
}

/// Why a handshake failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// The CREATE names another relay.
    #[error("handshake addressed to another relay")]
    WrongRelay,
    /// A public key is degenerate (an X25519 low-order point, or outside the sim-fast group).
    #[error("degenerate public key")]
    Degenerate,
    /// The relay's AUTH does not verify: it does not hold the onion key the client used.
    #[error("relay authentication failed")]
    BadAuth,
}

/// The client's half of a handshake in flight: its ephemeral secret and
/// what it expects of the relay. The secret is zeroized on drop.
#[derive(Debug)]
pub struct ClientHandshake {
    suite: CryptoSuite,
    secret: KxSecret,
    public: KxPublic,
    relay_id: NodeId,
    relay_onion: KxPublic,
}

impl ClientHandshake {
    /// Starts a handshake with the relay `relay_id` whose onion public key
    /// is `relay_onion` (from its descriptor): draws the ephemeral secret
    /// from `rng` and returns the CREATE body to send.
    pub fn start(
        suite: CryptoSuite,
        rng: &mut EngineRng,
        relay_id: NodeId,
        relay_onion: KxPublic,
    ) -> (ClientHandshake, CreateBody) {
        let secret = ephemeral(rng);
        let public = suite.kx_public(&secret);
        let handshake = ClientHandshake { suite, secret, public, relay_id, relay_onion };
        (handshake, CreateBody { client_public: public, relay_id, hop: 0 })
    }

    /// Completes the handshake with the relay's CREATED body: checks AUTH
    /// (in constant time) and returns the hop keys.
    pub fn finish(self, reply: &CreatedBody) -> Result<HopKeys, HandshakeError> {
        let exp_y = self.suite.kx_agree(&self.secret, &reply.server_public).ok_or(HandshakeError::Degenerate)?;
        let exp_b = self.suite.kx_agree(&self.secret, &self.relay_onion).ok_or(HandshakeError::Degenerate)?;
        let derived = derive(&exp_y, &exp_b, &self.relay_id, &self.relay_onion, &self.public, &reply.server_public);
        if !ct_eq(&derived.auth, &reply.auth) {
            return Err(HandshakeError::BadAuth);
        }
        Ok(derived.keys)
    }

    /// The client's ephemeral public key (X), as sent in CREATE.
    pub fn client_public(&self) -> KxPublic {
        self.public
    }
}

/// The relay's side: answers the CREATE body `request` with the onion
/// secret `onion_secret` of the local node `local_id`, drawing the ephemeral
/// from `rng`. Returns the CREATED body to send back and the hop keys.
pub fn respond(
    suite: CryptoSuite,
    rng: &mut EngineRng,
    local_id: NodeId,
    onion_secret: &KxSecret,
    request: &CreateBody,
) -> Result<(CreatedBody, HopKeys), HandshakeError> {
    if request.relay_id != local_id {
        return Err(HandshakeError::WrongRelay);
    }
    let onion_public = suite.kx_public(onion_secret);
    let secret = ephemeral(rng);
    let public = suite.kx_public(&secret);
    let x = &request.client_public;
    let exp_y = suite.kx_agree(&secret, x).ok_or(HandshakeError::Degenerate)?;
    let exp_b = suite.kx_agree(onion_secret, x).ok_or(HandshakeError::Degenerate)?;
    let derived = derive(&exp_y, &exp_b, &local_id, &onion_public, x, &public);
    let reply = CreatedBody { server_public: public, auth: derived.auth };
    Ok((reply, derived.keys))
}

/// 32 random bytes from `rng` as an ephemeral secret.
fn ephemeral(rng: &mut EngineRng) -> KxSecret {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(bytes.as_mut());
    KxSecret::from_bytes(*bytes)
}

struct Derived {
    auth: [u8; 32],
    keys: HopKeys,
}

/// Everything both sides derive from the two agreements and the transcript.
fn derive(exp_y: &[u8; 32], exp_b: &[u8; 32], id: &NodeId, b: &KxPublic, x: &KxPublic, y: &KxPublic) -> Derived {
    let mut input = Zeroizing::new(Vec::with_capacity(6 * 32 + PROTOID.len()));
    for part in [&exp_y[..], &exp_b[..], id.as_bytes(), &b.0, &x.0, &y.0, PROTOID] {
        input.extend_from_slice(part);
    }
    let key_seed = kdf::derive_key(KEY_SEED_CONTEXT, &input);
    let verify = kdf::derive_key(VERIFY_CONTEXT, &input);

    let mut mac = blake3::Hasher::new_keyed(&verify);
    for part in [id.as_bytes(), &b.0, &y.0, &x.0, PROTOID, b"server"] {
        mac.update(part);
    }
    let auth = *mac.finalize().as_bytes();

    let mut okm = Zeroizing::new([0u8; 128]);
    kdf::derive_bytes(HOP_KEYS_CONTEXT, key_seed.as_ref(), okm.as_mut());
    let mut keys =
        HopKeys { forward_layer: [0; 32], forward_aead: [0; 32], backward_layer: [0; 32], backward_aead: [0; 32] };
    keys.forward_layer.copy_from_slice(&okm[..32]);
    keys.forward_aead.copy_from_slice(&okm[32..64]);
    keys.backward_layer.copy_from_slice(&okm[64..96]);
    keys.backward_aead.copy_from_slice(&okm[96..]);
    Derived { auth, keys }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::NodeSeed;

    const SUITES: [CryptoSuite; 2] = [CryptoSuite::Real, CryptoSuite::SimFast];

    struct Relay {
        id: NodeId,
        secret: KxSecret,
        public: KxPublic,
    }

    fn relay(suite: CryptoSuite, n: u8) -> Relay {
        let secret = KxSecret::from_bytes([n; 32]);
        Relay { id: NodeId([n.wrapping_add(100); 32]), public: suite.kx_public(&secret), secret }
    }

    fn rng(label: &str) -> EngineRng {
        NodeSeed::derive(5, 0).stream(label)
    }

    #[test]
    fn client_and_relay_derive_identical_keys() {
        for suite in SUITES {
            let r = relay(suite, 7);
            let (client, create) = ClientHandshake::start(suite, &mut rng("c"), r.id, r.public);
            assert_eq!(create.relay_id, r.id);
            assert_eq!(create.client_public, client.client_public());
            let (created, relay_keys) = respond(suite, &mut rng("r"), r.id, &r.secret, &create).unwrap();
            let client_keys = client.finish(&created).unwrap();
            assert_eq!(client_keys, relay_keys, "{suite:?}");
            let all = [
                client_keys.forward_layer,
                client_keys.forward_aead,
                client_keys.backward_layer,
                client_keys.backward_aead,
            ];
            for (i, a) in all.iter().enumerate() {
                assert!(all[i + 1..].iter().all(|b| a != b), "the four keys are distinct");
            }
            assert_eq!(format!("{client_keys:?}"), "HopKeys(..)");
        }
    }

    #[test]
    fn wrong_relay_id_is_refused() {
        for suite in SUITES {
            let r = relay(suite, 7);
            let (_, create) = ClientHandshake::start(suite, &mut rng("c"), NodeId([1; 32]), r.public);
            assert_eq!(respond(suite, &mut rng("r"), r.id, &r.secret, &create).err(), Some(HandshakeError::WrongRelay));
        }
    }

    #[test]
    fn wrong_onion_key_fails_authentication() {
        for suite in SUITES {
            let r = relay(suite, 7);
            let other = relay(suite, 8);
            // The client believes the relay's onion key is another one.
            let (client, create) = ClientHandshake::start(suite, &mut rng("c"), r.id, other.public);
            let (created, _) = respond(suite, &mut rng("r"), r.id, &r.secret, &create).unwrap();
            assert_eq!(client.finish(&created), Err(HandshakeError::BadAuth), "{suite:?}");
        }
    }

    #[test]
    fn tampered_reply_fails_authentication() {
        for suite in SUITES {
            let r = relay(suite, 7);
            for tamper in 0..2 {
                let (client, create) = ClientHandshake::start(suite, &mut rng("c"), r.id, r.public);
                let (mut created, _) = respond(suite, &mut rng("r"), r.id, &r.secret, &create).unwrap();
                if tamper == 0 {
                    created.auth[31] ^= 1;
                } else {
                    // Another valid group element, so the failure is the AUTH check.
                    created.server_public = suite.kx_public(&KxSecret::from_bytes([42; 32]));
                }
                assert_eq!(client.finish(&created), Err(HandshakeError::BadAuth), "{suite:?} {tamper}");
            }
        }
    }

    #[test]
    fn ephemerals_give_fresh_keys() {
        for suite in SUITES {
            let r = relay(suite, 7);
            let mut client_rng = rng("c");
            let mut relay_rng = rng("r");
            let mut run = || {
                let (client, create) = ClientHandshake::start(suite, &mut client_rng, r.id, r.public);
                let (created, _) = respond(suite, &mut relay_rng, r.id, &r.secret, &create).unwrap();
                client.finish(&created).unwrap()
            };
            let first = run();
            let second = run();
            assert_ne!(first.forward_aead, second.forward_aead);
            assert_ne!(first.backward_layer, second.backward_layer);
        }
    }

    #[test]
    fn degenerate_keys_are_refused() {
        for suite in SUITES {
            let r = relay(suite, 7);
            let create = CreateBody { client_public: KxPublic([0; 32]), relay_id: r.id, hop: 0 };
            assert_eq!(respond(suite, &mut rng("r"), r.id, &r.secret, &create).err(), Some(HandshakeError::Degenerate));

            let (client, _) = ClientHandshake::start(suite, &mut rng("c"), r.id, r.public);
            let created = CreatedBody { server_public: KxPublic([0; 32]), auth: [0; 32] };
            assert_eq!(client.finish(&created), Err(HandshakeError::Degenerate));

            let (client, create) = ClientHandshake::start(suite, &mut rng("c"), r.id, KxPublic([0; 32]));
            let (created, _) = respond(suite, &mut rng("r"), r.id, &r.secret, &create).unwrap();
            assert_eq!(client.finish(&created), Err(HandshakeError::Degenerate));
        }
        // u = 1, an X25519 point of order 4 (a low-order point other than 0).
        let mut low_order = [0u8; 32];
        low_order[0] = 1;
        let r = relay(CryptoSuite::Real, 7);
        let create = CreateBody { client_public: KxPublic(low_order), relay_id: r.id, hop: 0 };
        let got = respond(CryptoSuite::Real, &mut rng("r"), r.id, &r.secret, &create);
        assert_eq!(got.err(), Some(HandshakeError::Degenerate));
    }
}
