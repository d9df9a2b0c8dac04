//! Mix descriptors: what a mix or provider publishes about itself so that
//! clients can build paths through it, and the DHT keys under which mixes
//! are discovered.
//!
//! A mix stores its descriptor in the DHT as a value record under
//! [`descriptor_name`] (the DHT key is [`crate::dht::key_for_name`] of that
//! name), and announces itself with a provider record under
//! [`layer_key`] (mixes) or [`providers_key`] (providers). The DHT signs
//! the record with the publisher's identity; the descriptor is also signed
//! by the mix's Ed25519 key, so it stands alone wherever it travels.
//!
//! Encoding: the bincode encoding (standard varint configuration, via
//! [`crate::wire::encode_plain`]) of every field in declaration order. The
//! signature, a fixed 64-byte array, comes last, so the *unsigned part* is
//! the encoding minus its last 64 bytes. The signature covers
//! [`SIGNING_CONTEXT`] followed by the unsigned part exactly as it appears
//! in the bytes, and a decoder insists that the bytes are the canonical
//! encoding of what they decode to, so `decode(b).encode() == b`.

use crate::crypto::KxPublic;
use crate::dht::{Key, ValueRecord, key_for_name};
use crate::identity::{Identity, NodeId, SIGNATURE_LEN, verify_signature};
use crate::node::Addr;
use crate::wire::{self, WireError};

/// Layers a path can cross: packets have `MAX_HOPS` = 5 hops = provider +
/// layers + provider.
pub const MAX_LAYERS: u8 = 3;
/// Most keys a descriptor lists: the current one and the next (or previous).
pub const MAX_KEYS: usize = 2;
/// Largest encoded descriptor a decoder accepts, in bytes. The largest
/// valid descriptor (IPv6 address, two keys, 64-bit epochs and version) is
/// 210 bytes, well under the DHT's default `dht.max_value_bytes` (1,024).
pub const MAX_DESCRIPTOR_BYTES: usize = 256;
/// Domain separation for mix descriptor signatures.
pub const SIGNING_CONTEXT: &[u8] = b"allium mix descriptor v1";
/// Prefix of every mix descriptor's DHT name.
pub const DESCRIPTOR_NAME_PREFIX: &[u8] = b"allium/mix/v1/descriptor/";
/// Prefix of a layer's discovery name; the layer number (one byte) follows.
const LAYER_NAME_PREFIX: &[u8] = b"allium/mix/v1/layer/";
/// The providers' discovery name.
const PROVIDERS_NAME: &[u8] = b"allium/mix/v1/providers";
/// The bincode decode limit. bincode counts the in-memory size of what a
/// length prefix announces against it, so it is looser than
/// [`MAX_DESCRIPTOR_BYTES`] (checked against the input first); it caps what
/// a lying key-count prefix can make the decoder allocate.
const DECODE_LIMIT: usize = 4096;

/// What a node does in the mixnet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode)]
pub enum MixRole {
    /// A mix of stratified layer `layer` (0-based, below [`MAX_LAYERS`]).
    Mix {
        /// The layer, 0-based (0 follows the sender's provider).
        layer: u8,
    },
    /// A provider (gateway): first and last hop, holds messages for its clients.
    Provider,
}

/// One of a mix's per-epoch key-agreement keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct EpochKey {
    /// Key epoch number (see the mix parameters' `key_epoch_secs`).
    pub epoch: u64,
    /// The mix's X25519 public key for that epoch.
    pub key: KxPublic,
}

/// A mix's (or provider's) signed self-description.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct MixDescriptor {
    /// The node's Ed25519 public key; its id is [`NodeId::from_public_key`] of this.
    pub signing_key: [u8; 32],
    /// Where the node takes datagrams.
    pub addr: Addr,
    /// Mix of some layer, or provider.
    pub role: MixRole,
    /// 1 or [`MAX_KEYS`] keys with strictly increasing epochs (the current
    /// one, and the next or the previous one).
    pub keys: Vec<EpochKey>,
    /// Publication counter; a newer descriptor has a higher version.
    pub version: u64,
    /// Ed25519 signature over [`SIGNING_CONTEXT`] and the unsigned part.
    pub signature: [u8; SIGNATURE_LEN],
}

/// Why a mix descriptor was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MixDescriptorError {
    /// The bytes do not decode (or leave bytes over).
    #[error("mix descriptor does not decode: {0}")]
    Decode(#[from] WireError),
    /// Longer than [`MAX_DESCRIPTOR_BYTES`].
    #[error("mix descriptor of {len} bytes exceeds the maximum")]
    TooLarge {
        /// Length, in bytes.
        len: usize,
    },
    /// The bytes decode but are not the canonical encoding of the result.
    #[error("mix descriptor encoding is not canonical")]
    NonCanonical,
    /// No key, or more than [`MAX_KEYS`].
    #[error("mix descriptor lists {0} keys")]
    KeyCount(usize),
    /// The keys' epochs are not strictly increasing.
    #[error("mix descriptor keys out of epoch order")]
    KeyOrder,
    /// A mix layer at or above [`MAX_LAYERS`].
    #[error("mix layer {0} out of range")]
    BadLayer(u8),
    /// An all-zero key, which every key agreement refuses.
    #[error("degenerate mix key")]
    DegenerateKey,
    /// The signature does not verify against `signing_key`.
    #[error("bad mix descriptor signature")]
    Signature,
}

impl From<MixDescriptorError> for WireError {
    fn from(e: MixDescriptorError) -> Self {
        match e {
            MixDescriptorError::Decode(inner) => inner,
            MixDescriptorError::TooLarge { .. } => WireError::LimitExceeded,
            MixDescriptorError::NonCanonical => WireError::Protocol("non-canonical mix descriptor"),
            MixDescriptorError::KeyCount(_) => WireError::Protocol("mix descriptor key count"),
            MixDescriptorError::KeyOrder => WireError::Protocol("mix descriptor key order"),
            MixDescriptorError::BadLayer(_) => WireError::Protocol("mix descriptor layer"),
            MixDescriptorError::DegenerateKey => WireError::Protocol("degenerate mix key"),
            MixDescriptorError::Signature => WireError::Protocol("bad mix descriptor signature"),
        }
    }
}

impl MixDescriptor {
    /// Builds and signs the descriptor of `identity`, reachable at `addr`,
    /// in `role`, listing `keys` (1 or 2, strictly increasing epochs),
    /// publication `version`. It checks nothing: a descriptor breaking a
    /// rule of [`MixDescriptor::decode`] is signed as given and every
    /// decoder refuses it.
    pub fn sign(identity: &Identity, addr: Addr, role: MixRole, keys: Vec<EpochKey>, version: u64) -> MixDescriptor {
        let mut descriptor = MixDescriptor {
            signing_key: identity.public().signing_key,
            addr,
            role,
            keys,
            version,
            signature: [0; SIGNATURE_LEN],
        };
        let encoded = descriptor.encode();
        descriptor.signature = identity.sign(&signing_message(&encoded));
        descriptor
    }

    /// The node's id.
    pub fn id(&self) -> NodeId {
        NodeId::from_public_key(&self.signing_key)
    }

    /// The encoding (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        wire::encode_plain(self)
    }

    /// Decodes and verifies `bytes`: at most [`MAX_DESCRIPTOR_BYTES`], whole
    /// input consumed, 1 or [`MAX_KEYS`] keys with strictly increasing
    /// epochs, none all-zero, a mix layer below [`MAX_LAYERS`], canonical
    /// encoding, and a valid signature.
    pub fn decode(bytes: &[u8]) -> Result<MixDescriptor, MixDescriptorError> {
        if bytes.len() > MAX_DESCRIPTOR_BYTES {
            return Err(MixDescriptorError::TooLarge { len: bytes.len() });
        }
        let (descriptor, used): (MixDescriptor, usize) = wire::decode_prefix_limited::<_, DECODE_LIMIT>(bytes)?;
        if used != bytes.len() {
            return Err(WireError::TrailingBytes { extra: bytes.len() - used }.into());
        }
        descriptor.check_fields()?;
        if descriptor.encode() != bytes {
            return Err(MixDescriptorError::NonCanonical);
        }
        if !verify_signature(&descriptor.signing_key, &signing_message(bytes), &descriptor.signature) {
            return Err(MixDescriptorError::Signature);
        }
        Ok(descriptor)
    }

    /// The key with the highest epoch. A descriptor without keys (which no
    /// decoder accepts) gives epoch 0 with the all-zero key, which every key
    /// agreement refuses.
    pub fn newest_key(&self) -> EpochKey {
        self.keys.iter().copied().max_by_key(|k| k.epoch).unwrap_or(EpochKey { epoch: 0, key: KxPublic([0; 32]) })
    }

    /// The key for `epoch` (a key epoch number), if listed.
    pub fn key_for(&self, epoch: u64) -> Option<KxPublic> {
        self.keys.iter().find(|k| k.epoch == epoch).map(|k| k.key)
    }

    fn check_fields(&self) -> Result<(), MixDescriptorError> {
        if self.keys.is_empty() || self.keys.len() > MAX_KEYS {
            return Err(MixDescriptorError::KeyCount(self.keys.len()));
        }
        if self.keys.windows(2).any(|w| w[0].epoch >= w[1].epoch) {
            return Err(MixDescriptorError::KeyOrder);
        }
        if self.keys.iter().any(|k| k.key.0 == [0; 32]) {
            return Err(MixDescriptorError::DegenerateKey);
        }
        if let MixRole::Mix { layer } = self.role
            && layer >= MAX_LAYERS
        {
            return Err(MixDescriptorError::BadLayer(layer));
        }
        Ok(())
    }
}

/// The DHT name a node's mix descriptor is stored under:
/// [`DESCRIPTOR_NAME_PREFIX`] followed by the 32 bytes of `id`.
pub fn descriptor_name(id: &NodeId) -> Vec<u8> {
    let mut name = Vec::with_capacity(DESCRIPTOR_NAME_PREFIX.len() + 32);
    name.extend_from_slice(DESCRIPTOR_NAME_PREFIX);
    name.extend_from_slice(id.as_bytes());
    name
}

/// The DHT provider-record key under which every mix of `layer` (0-based)
/// announces itself: [`key_for_name`] of `b"allium/mix/v1/layer/"` followed
/// by the layer byte.
pub fn layer_key(layer: u8) -> Key {
    let mut name = Vec::with_capacity(LAYER_NAME_PREFIX.len() + 1);
    name.extend_from_slice(LAYER_NAME_PREFIX);
    name.push(layer);
    key_for_name(&name)
}

/// The DHT provider-record key under which every provider announces itself:
/// [`key_for_name`] of `b"allium/mix/v1/providers"`.
pub fn providers_key() -> Key {
    key_for_name(PROVIDERS_NAME)
}

/// The descriptor carried by `record`, a DHT value record fetched under
/// [`descriptor_name`] of `id`: `None` unless the record is stored under
/// that name's key, was published by `id`, and its value decodes to a
/// descriptor of `id`. (The DHT verified the record's own signature when
/// it accepted it; the descriptor's is verified here.)
pub fn descriptor_from_record(id: &NodeId, record: &ValueRecord) -> Option<MixDescriptor> {
    if record.key != key_for_name(&descriptor_name(id)) || record.publisher_id() != *id {
        return None;
    }
    let descriptor = MixDescriptor::decode(&record.value).ok()?;
    (descriptor.id() == *id).then_some(descriptor)
}

/// What the descriptor's signature covers.
fn signing_message(encoded: &[u8]) -> Vec<u8> {
    crate::identity::signed_part_message(SIGNING_CONTEXT, encoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dht::DhtParams;
    use crate::{CryptoSuite, NodeSeed};
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

    fn identity(i: u64) -> Identity {
        Identity::from_seed(&NodeSeed::derive(0x313, i), CryptoSuite::Real)
    }

    fn addr() -> Addr {
        SocketAddr::from((Ipv4Addr::new(192, 0, 2, 9), 4100))
    }

    fn key(epoch: u64, byte: u8) -> EpochKey {
        EpochKey { epoch, key: KxPublic([byte; 32]) }
    }

    fn mix(id: &Identity, layer: u8) -> MixDescriptor {
        MixDescriptor::sign(id, addr(), MixRole::Mix { layer }, vec![key(7, 1), key(8, 2)], 3)
    }

    /// Re-signs a tampered descriptor honestly, so only the rule under test fails.
    fn resign(mut d: MixDescriptor, id: &Identity) -> Vec<u8> {
        let encoded = d.encode();
        d.signature = id.sign(&signing_message(&encoded));
        d.encode()
    }

    #[test]
    fn signed_descriptors_round_trip() {
        let id = identity(1);
        for role in [MixRole::Mix { layer: 0 }, MixRole::Mix { layer: MAX_LAYERS - 1 }, MixRole::Provider] {
            for keys in [vec![key(5, 9)], vec![key(5, 9), key(6, 10)]] {
                let d = MixDescriptor::sign(&id, addr(), role, keys.clone(), 11);
                assert_eq!(MixDescriptor::decode(&d.encode()), Ok(d.clone()));
                assert_eq!(d.id(), id.id());
                assert_eq!(d.role, role);
                assert_eq!(d.keys, keys);
                assert_eq!(d.newest_key(), *keys.last().unwrap());
                assert_eq!(d.key_for(5), Some(KxPublic([9; 32])));
                assert_eq!(d.key_for(6), keys.get(1).map(|k| k.key));
                assert_eq!(d.key_for(4), None);
            }
        }
        // Not decodable, but still no panic.
        let empty = MixDescriptor::sign(&id, addr(), MixRole::Provider, vec![], 1);
        assert_eq!(empty.newest_key(), EpochKey { epoch: 0, key: KxPublic([0; 32]) });
    }

    #[test]
    fn the_largest_descriptor_fits_a_dht_value() {
        let id = identity(2);
        let v6 =
            SocketAddr::from((Ipv6Addr::new(0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff, 0xffff), 65535));
        let keys = vec![key(u64::MAX - 1, 0xff), key(u64::MAX, 0xfe)];
        let d = MixDescriptor::sign(&id, v6, MixRole::Mix { layer: MAX_LAYERS - 1 }, keys, u64::MAX);
        let bytes = d.encode();
        assert!(bytes.len() <= MAX_DESCRIPTOR_BYTES, "{} bytes", bytes.len());
        assert_eq!(bytes.len(), 210, "the documented largest size");
        assert!(MAX_DESCRIPTOR_BYTES * 4 <= DhtParams::default().max_value_bytes);
        assert_eq!(MixDescriptor::decode(&bytes), Ok(d));
    }

    #[test]
    fn every_rule_is_enforced() {
        let id = identity(3);
        let good = mix(&id, 1);
        let bytes = good.encode();

        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            MixDescriptor::decode(&trailing),
            Err(MixDescriptorError::Decode(WireError::TrailingBytes { extra: 1 }))
        );
        assert!(matches!(MixDescriptor::decode(&bytes[..bytes.len() - 1]), Err(MixDescriptorError::Decode(_))));
        assert!(matches!(MixDescriptor::decode(&[]), Err(MixDescriptorError::Decode(_))));
        assert_eq!(
            MixDescriptor::decode(&[0; MAX_DESCRIPTOR_BYTES + 1]),
            Err(MixDescriptorError::TooLarge { len: MAX_DESCRIPTOR_BYTES + 1 })
        );

        let none = MixDescriptor { keys: vec![], ..good.clone() };
        assert_eq!(MixDescriptor::decode(&resign(none, &id)), Err(MixDescriptorError::KeyCount(0)));
        let three = MixDescriptor { keys: vec![key(1, 1), key(2, 2), key(3, 3)], ..good.clone() };
        assert_eq!(MixDescriptor::decode(&resign(three, &id)), Err(MixDescriptorError::KeyCount(3)));
        let backwards = MixDescriptor { keys: vec![key(8, 1), key(7, 2)], ..good.clone() };
        assert_eq!(MixDescriptor::decode(&resign(backwards, &id)), Err(MixDescriptorError::KeyOrder));
        let same_epoch = MixDescriptor { keys: vec![key(8, 1), key(8, 2)], ..good.clone() };
        assert_eq!(MixDescriptor::decode(&resign(same_epoch, &id)), Err(MixDescriptorError::KeyOrder));
        let zero = MixDescriptor { keys: vec![key(7, 1), key(8, 0)], ..good.clone() };
        assert_eq!(MixDescriptor::decode(&resign(zero, &id)), Err(MixDescriptorError::DegenerateKey));
        for layer in [MAX_LAYERS, 200, u8::MAX] {
            let high = MixDescriptor { role: MixRole::Mix { layer }, ..good.clone() };
            assert_eq!(MixDescriptor::decode(&resign(high, &id)), Err(MixDescriptorError::BadLayer(layer)));
        }
        // sign() checks nothing, decode() does.
        let signed_bad = mix(&id, MAX_LAYERS);
        assert_eq!(MixDescriptor::decode(&signed_bad.encode()), Err(MixDescriptorError::BadLayer(MAX_LAYERS)));

        let moved = MixDescriptor { version: 4, ..good.clone() };
        assert_eq!(MixDescriptor::decode(&moved.encode()), Err(MixDescriptorError::Signature));
        let promoted = MixDescriptor { role: MixRole::Provider, ..good.clone() };
        assert_eq!(MixDescriptor::decode(&promoted.encode()), Err(MixDescriptorError::Signature));
        let stolen = MixDescriptor { signing_key: identity(4).public().signing_key, ..good.clone() };
        assert_eq!(MixDescriptor::decode(&stolen.encode()), Err(MixDescriptorError::Signature));
        let mut bad_sig = good.clone();
        bad_sig.signature[10] ^= 1;
        assert_eq!(MixDescriptor::decode(&bad_sig.encode()), Err(MixDescriptorError::Signature));
        // The same fields signed under another context (a relay descriptor's) do not verify.
        let mut other_context = good.clone();
        let mut message = b"allium relay descriptor v1".to_vec();
        message.extend_from_slice(&bytes[..bytes.len() - SIGNATURE_LEN]);
        other_context.signature = id.sign(&message);
        assert_eq!(MixDescriptor::decode(&other_context.encode()), Err(MixDescriptorError::Signature));

        for error in [MixDescriptorError::Signature, MixDescriptorError::KeyOrder, MixDescriptorError::BadLayer(3)] {
            assert_eq!(WireError::from(error).label(), "protocol");
        }
        assert_eq!(WireError::from(MixDescriptorError::TooLarge { len: 999 }).label(), "limit");
    }

    #[test]
    fn non_canonical_encodings_are_refused() {
        // The version (1,000,000, just before the signature) written with the
        // u64 varint tag instead of the u32 one decodes to the same value but
        // is not the signed encoding.
        let id = identity(5);
        let d = MixDescriptor::sign(&id, addr(), MixRole::Provider, vec![key(1, 1)], 1_000_000);
        let canonical = d.encode();
        let at = canonical.len() - SIGNATURE_LEN - 5;
        assert_eq!(canonical[at..at + 5], [252, 0x40, 0x42, 0x0f, 0x00]);
        let mut stretched = canonical[..at].to_vec();
        stretched.push(253);
        stretched.extend_from_slice(&1_000_000u64.to_le_bytes());
        stretched.extend_from_slice(&canonical[at + 5..]);
        // (bincode itself accepts the long form.)
        let (value, _): (MixDescriptor, usize) = wire::decode_prefix_limited::<_, DECODE_LIMIT>(&stretched).unwrap();
        assert_eq!(value, d);
        assert_eq!(MixDescriptor::decode(&stretched), Err(MixDescriptorError::NonCanonical));
        // Even re-signed over the long form, it stays refused.
        let mut resigned = stretched.clone();
        let n = resigned.len();
        let signature = id.sign(&signing_message(&stretched));
        resigned[n - SIGNATURE_LEN..].copy_from_slice(&signature);
        assert_eq!(MixDescriptor::decode(&resigned), Err(MixDescriptorError::NonCanonical));
    }

    #[test]
    fn records_must_come_from_the_mix_under_its_own_name() {
        let id = identity(6);
        let d = mix(&id, 0);
        let name = descriptor_name(&id.id());
        assert!(name.starts_with(DESCRIPTOR_NAME_PREFIX));
        assert_eq!(&name[DESCRIPTOR_NAME_PREFIX.len()..], id.id().as_bytes());
        let key = key_for_name(&name);

        let record = ValueRecord::sign(&id, key, d.encode(), 1, 3600);
        assert_eq!(descriptor_from_record(&id.id(), &record), Some(d.clone()));

        let other = identity(7);
        // Asked about another node.
        assert_eq!(descriptor_from_record(&other.id(), &record), None);
        // Stored under another key.
        let elsewhere = ValueRecord::sign(&id, key_for_name(b"elsewhere"), d.encode(), 1, 3600);
        assert_eq!(descriptor_from_record(&id.id(), &elsewhere), None);
        // Someone else republishes the mix's (validly signed) descriptor.
        let replayed = ValueRecord::sign(&other, key, d.encode(), 1, 3600);
        assert_eq!(descriptor_from_record(&id.id(), &replayed), None);
        // The mix publishes another node's descriptor under its own name.
        let foreign = mix(&other, 0);
        let swapped = ValueRecord::sign(&id, key, foreign.encode(), 1, 3600);
        assert_eq!(descriptor_from_record(&id.id(), &swapped), None);
        let garbage = ValueRecord::sign(&id, key, vec![1, 2, 3], 1, 3600);
        assert_eq!(descriptor_from_record(&id.id(), &garbage), None);
    }

    #[test]
    fn discovery_keys_are_distinct() {
        let mut keys: Vec<Key> = (0..MAX_LAYERS).map(layer_key).collect();
        keys.push(providers_key());
        keys.push(key_for_name(&descriptor_name(&identity(8).id())));
        let mut unique = keys.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), keys.len());
        assert_eq!(layer_key(1), key_for_name(b"allium/mix/v1/layer/\x01"));
        assert_eq!(providers_key(), key_for_name(b"allium/mix/v1/providers"));
    }
}
