//! Single-use reply blocks.
//!
//! The original sender A builds a header for a path that ends at A (or at
//! A's provider, with A as recipient) whose last routing block says "reply,
//! SURB id I". It gives the recipient B a [`Surb`]: the first hop, that
//! header and a fresh payload key K (a 32-byte seed). It keeps the
//! [`SurbKeys`]: I, K and every hop's payload key.
//!
//! B encrypts the padded message once under K and sends header and payload
//! to the first hop. Each mix processes the packet as usual, decrypting one
//! payload layer. The last hop hands the payload (still encrypted) to A
//! with I; A re-applies the hops' layers in reverse, decrypts under K and
//! checks the marker. B learns only the first hop. The mixes cannot tell a
//! reply from a forward packet until the last hop.
//!
//! A SURB is single use: the same header through the same mixes gives the
//! same replay tags, so a second reply is refused as a replay.

use super::header::{Final, HEADER_LEN, Header};
use super::payload::{self, PayloadKey};
use super::{Hop, PAYLOAD_LEN, Packet, PacketError, SurbId, check_path, ephemeral, keys};
use crate::identity::NodeId;
use rand_core::CryptoRng;
use zeroize::Zeroizing;

/// Bytes of an encoded [`Surb`]: first hop (32), header ([`HEADER_LEN`]),
/// payload key seed (32): 377.
pub const SURB_LEN: usize = 32 + HEADER_LEN + 32;

/// A single-use reply block, given to a recipient so it can answer without
/// learning who the sender is. Holds a secret key seed (zeroized on drop).
#[derive(Clone, PartialEq, Eq)]
pub struct Surb {
    first_hop: NodeId,
    header: Header,
    key_seed: Zeroizing<[u8; 32]>,
}

impl core::fmt::Debug for Surb {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Surb").field("first_hop", &self.first_hop).finish_non_exhaustive()
    }
}

/// What the SURB's creator keeps to read the reply: the SURB id, the reply
/// key and every hop's payload key. Zeroized on drop.
pub struct SurbKeys {
    id: SurbId,
    key: PayloadKey,
    hops: Vec<PayloadKey>,
}

impl core::fmt::Debug for SurbKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SurbKeys").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Surb {
    /// Makes a reply block for `path` (1..=[`super::MAX_HOPS`] hops, ending
    /// at the creator's provider or the creator) that delivers to
    /// `recipient` (the creator). Returns the SURB to give away and the keys
    /// to keep. Draws 80 bytes plus padding from `rng`.
    pub fn create(rng: &mut impl CryptoRng, path: &[Hop], recipient: NodeId) -> Result<(Surb, SurbKeys), PacketError> {
        check_path(path)?;
        let x = ephemeral(rng);
        let (alpha0, keys) = keys::sender_keys(&x, path.iter().map(|h| h.key))?;
        let mut id = [0u8; 16];
        rng.fill_bytes(&mut id);
        let id = SurbId(id);
        let header = Header::build(rng, alpha0, path, &keys, Final::Reply(recipient, id));
        let key_seed = ephemeral(rng);
        let surb_keys = SurbKeys {
            id,
            key: PayloadKey::from_seed(&key_seed),
            hops: keys.iter().map(|k| k.payload.clone()).collect(),
        };
        Ok((Surb { first_hop: path[0].id, header, key_seed }, surb_keys))
    }

    /// The first hop, where the reply goes.
    pub fn first_hop(&self) -> NodeId {
        self.first_hop
    }

    /// Uses the SURB to send `message` (at most
    /// [`super::MAX_MESSAGE_LEN`] bytes). Returns the packet and the first
    /// hop to send it to.
    pub fn reply(self, message: &[u8]) -> Result<(Packet, NodeId), PacketError> {
        let mut payload = payload::encode_message(message)?;
        PayloadKey::from_seed(&self.key_seed).encrypt(&mut payload);
        Ok((Packet { header: self.header.clone(), payload }, self.first_hop))
    }

    /// The encoding: exactly [`SURB_LEN`] bytes (it contains a secret key:
    /// send it only inside an encrypted payload).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0u8; SURB_LEN];
        out[..32].copy_from_slice(&self.first_hop.0);
        self.header.write(&mut out[32..32 + HEADER_LEN]);
        out[32 + HEADER_LEN..].copy_from_slice(self.key_seed.as_ref());
        out
    }

    /// Parses [`Surb::to_bytes`]; [`PacketError::BadLength`] unless exactly
    /// [`SURB_LEN`] bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Surb, PacketError> {
        let bad = PacketError::BadLength { len: bytes.len() };
        if bytes.len() != SURB_LEN {
            return Err(bad);
        }
        let mut first_hop = [0u8; 32];
        first_hop.copy_from_slice(&bytes[..32]);
        let header: &[u8; HEADER_LEN] = bytes[32..32 + HEADER_LEN].try_into().map_err(|_| bad)?;
        let mut key_seed = Zeroizing::new([0u8; 32]);
        key_seed.copy_from_slice(&bytes[32 + HEADER_LEN..]);
        Ok(Surb { first_hop: NodeId(first_hop), header: Header::read(header), key_seed })
    }
}

impl SurbKeys {
    /// The SURB id the reply arrives with.
    pub fn id(&self) -> SurbId {
        self.id
    }

    /// Reads a reply payload ([`super::Processed::Reply`]'s).
    /// [`PacketError::PayloadTampered`] when it was altered on the way or
    /// belongs to another SURB.
    pub fn open(&self, payload: &[u8; PAYLOAD_LEN]) -> Result<Vec<u8>, PacketError> {
        let mut block = Zeroizing::new(*payload);
        for k in self.hops.iter().rev() {
            k.encrypt(&mut block);
        }
        self.key.decrypt(&mut block);
        payload::decode_message(&block)
    }
}
