//! Node identity: an Ed25519 signing key, an X25519 onion key, and the
//! 256-bit [`NodeId`] = BLAKE3(Ed25519 public key).

use crate::crypto::{CryptoSuite, KxPublic, KxSecret};
use crate::rng::NodeSeed;
use core::fmt;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use zeroize::Zeroizing;

/// Length of an Ed25519 signature, in bytes.
pub const SIGNATURE_LEN: usize = 64;

/// A 256-bit node identifier: the BLAKE3 hash of the node's Ed25519 public key.
/// Also the key space of the DHT.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, bincode::Encode, bincode::Decode)]
pub struct NodeId(pub [u8; 32]);

/// The 32 bytes as four big-endian words: comparing those orders like
/// comparing the bytes, without a call to `memcmp`. Identifiers and
/// distances are the keys of the hottest ordered maps in the engine.
pub(crate) fn be_words(bytes: &[u8; 32]) -> [u64; 4] {
    let mut words = [0u64; 4];
    for (word, chunk) in words.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut be = [0u8; 8];
        be.copy_from_slice(chunk);
        *word = u64::from_be_bytes(be);
    }
    words
}

impl Ord for NodeId {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        be_words(&self.0).cmp(&be_words(&other.0))
    }
}

impl PartialOrd for NodeId {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl NodeId {
    /// The identifier of the node whose Ed25519 public key is `public_key`.
    pub fn from_public_key(public_key: &[u8; 32]) -> Self {
        NodeId(blake3::derive_key("allium 2026-11 node id v1", public_key))
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex of all 32 bytes.
    pub fn to_hex(&self) -> String {
        hex(&self.0)
    }

    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Option<Self> {
        parse_hex32(s).map(NodeId)
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({})", &self.to_hex()[..12])
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex()[..16])
    }
}

/// Lower-case hex encoding.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Parses exactly 64 hex digits into 32 bytes.
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let digits = s.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// What a self-signed encoding's signature covers: `context` followed by
/// `encoded` without its trailing [`SIGNATURE_LEN`]-byte signature (all
/// of it when shorter). Signed descriptors (relay and mix) use this.
pub fn signed_part_message(context: &[u8], encoded: &[u8]) -> Vec<u8> {
    let unsigned = &encoded[..encoded.len().saturating_sub(SIGNATURE_LEN)];
    let mut message = Vec::with_capacity(context.len() + unsigned.len());
    message.extend_from_slice(context);
    message.extend_from_slice(unsigned);
    message
}

/// A node's long-term secrets. Zeroized on drop (both key types wipe themselves).
pub struct Identity {
    signing: SigningKey,
    onion: KxSecret,
    suite: CryptoSuite,
    public: PublicIdentity,
}

/// The public half of an [`Identity`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct PublicIdentity {
    /// The node's identifier, BLAKE3 of `signing_key`.
    pub id: NodeId,
    /// Ed25519 public key.
    pub signing_key: [u8; 32],
    /// Onion (key-agreement) public key in the node's crypto suite.
    pub onion_key: KxPublic,
}

impl Identity {
    /// Builds an identity from its 64 secret bytes: the Ed25519 seed, then
    /// the onion secret (the layout [`Identity::secret_bytes`] returns).
    pub fn from_secret(secret: &[u8; 64], suite: CryptoSuite) -> Self {
        let (signing_seed, onion_secret) = secret.split_at(32);
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(signing_seed);
        let signing = SigningKey::from_bytes(&seed);
        seed.copy_from_slice(onion_secret);
        let onion = KxSecret::from_bytes(*seed);
        let signing_key = signing.verifying_key().to_bytes();
        let public = PublicIdentity {
            id: NodeId::from_public_key(&signing_key),
            signing_key,
            onion_key: suite.kx_public(&onion),
        };
        Identity { signing, onion, suite, public }
    }

    /// Derives an identity deterministically from a node seed (the simulator,
    /// and real drivers that feed OS entropy into the seed).
    pub fn from_seed(seed: &NodeSeed, suite: CryptoSuite) -> Self {
        let mut material = Zeroizing::new([0u8; 64]);
        crate::crypto::kdf::derive_bytes("allium 2026-11 identity v1", seed.as_bytes(), material.as_mut());
        Identity::from_secret(&material, suite)
    }

    /// The secret material, for persisting the identity (Ed25519 seed, onion secret).
    pub fn secret_bytes(&self) -> Zeroizing<[u8; 64]> {
        let mut out = Zeroizing::new([0u8; 64]);
        out[..32].copy_from_slice(self.signing.as_bytes());
        out[32..].copy_from_slice(self.onion.as_bytes());
        out
    }

    /// The public half.
    pub fn public(&self) -> &PublicIdentity {
        &self.public
    }

    /// This node's identifier.
    pub fn id(&self) -> NodeId {
        self.public.id
    }

    /// The crypto suite the onion key belongs to.
    pub fn suite(&self) -> CryptoSuite {
        self.suite
    }

    /// The onion key-agreement secret.
    pub fn onion_secret(&self) -> &KxSecret {
        &self.onion
    }

    /// Signs `message` with the node's Ed25519 key.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.signing.sign(message).to_bytes()
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity").field("id", &self.public.id).finish_non_exhaustive()
    }
}

/// Most verified signatures remembered per thread before the cache starts over.
pub const SIGNATURE_CACHE_CAPACITY: usize = 1 << 16;

thread_local! {
    /// Digests of (key, signature, message) triples that verified on this
    /// thread. A pure function's results, so the cache changes speed, never
    /// outcomes: the same signed record reaches every one of its k holders,
    /// and in a simulation all of them share one thread. Only successes are
    /// kept, so invalid input cannot fill it with anything but work for the
    /// sender. (Bitcoin Core's signature cache is the same idea.)
    static VERIFIED: core::cell::RefCell<std::collections::BTreeSet<[u8; 32]>> = const {
        core::cell::RefCell::new(std::collections::BTreeSet::new())
    };
}

fn signature_digest(public_key: &[u8; 32], message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("allium 2026-11 signature cache v1");
    hasher.update(public_key).update(signature).update(message);
    *hasher.finalize().as_bytes()
}

/// Verifies an Ed25519 signature (strict verification: rejects weak keys and
/// malleable signatures). Successful verifications are remembered per
/// thread (see [`SIGNATURE_CACHE_CAPACITY`]).
pub fn verify_signature(public_key: &[u8; 32], message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
    let digest = signature_digest(public_key, message, signature);
    if VERIFIED.with(|cache| cache.borrow().contains(&digest)) {
        return true;
    }
    let valid = verify_uncached(public_key, message, signature);
    if valid {
        VERIFIED.with(|cache| {
            let mut cache = cache.borrow_mut();
            if cache.len() >= SIGNATURE_CACHE_CAPACITY {
                cache.clear();
            }
            cache.insert(digest);
        });
    }
    valid
}

fn verify_uncached(public_key: &[u8; 32], message: &[u8], signature: &[u8; SIGNATURE_LEN]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let signature = ed25519_dalek::Signature::from_bytes(signature);
    key.verify_strict(message, &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_hash_of_signing_key_and_signatures_verify() {
        let identity = Identity::from_seed(&NodeSeed::derive(1, 1), CryptoSuite::Real);
        let public = identity.public();
        assert_eq!(public.id, NodeId::from_public_key(&public.signing_key));
        let sig = identity.sign(b"hello");
        assert!(verify_signature(&public.signing_key, b"hello", &sig));
        assert!(!verify_signature(&public.signing_key, b"hellp", &sig));
        // Cached successes do not leak to other messages, keys or signatures.
        assert!(verify_signature(&public.signing_key, b"hello", &sig));
        assert!(!verify_signature(&public.signing_key, b"hellp", &sig));
        let mut bad = sig;
        bad[0] ^= 1;
        assert!(!verify_signature(&public.signing_key, b"hello", &bad));
        let other = Identity::from_seed(&NodeSeed::derive(1, 2), CryptoSuite::Real);
        assert!(!verify_signature(&other.public().signing_key, b"hello", &sig));
        let restored = Identity::from_secret(&identity.secret_bytes(), CryptoSuite::Real);
        assert_eq!(restored.public(), public);
    }

    #[test]
    fn ordering_matches_the_bytes() {
        let ids = [
            [0u8; 32],
            [1u8; 32],
            [0xff; 32],
            {
                let mut x = [0u8; 32];
                x[31] = 1;
                x
            },
            {
                let mut x = [0u8; 32];
                x[8] = 1;
                x
            },
        ];
        for a in ids {
            for b in ids {
                assert_eq!(NodeId(a).cmp(&NodeId(b)), a.cmp(&b));
            }
        }
    }

    #[test]
    fn hex_round_trips() {
        let id = NodeId([0xab; 32]);
        assert_eq!(NodeId::from_hex(&id.to_hex()), Some(id));
        assert_eq!(NodeId::from_hex("zz"), None);
    }
}
