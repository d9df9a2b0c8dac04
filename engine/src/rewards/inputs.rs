//! [`EpochInputs`]: everything the settlement of one epoch is computed
//! from. The coordinator gathers them, publishes them, and any node that
//! fetches them recomputes the settlement ([`super::settle()`]) and
//! compares it with the signed record.
//!
//! Encoding: the bincode encoding (standard varint configuration) of
//! `(INPUTS_VERSION, group, epoch, emission, carried_in, nodes, receipts,
//! probes, challenges)` with every list sorted ([`EpochInputs::canonicalize`]),
//! so that the same inputs, gathered in any order, encode to the same
//! bytes and have the same [`EpochInputs::digest`]. The decoder refuses
//! unsorted lists, so decoding and re-encoding gives back the same bytes.

use super::probe::ProbeResult;
use super::receipt::Receipt;
use crate::election::membership::MAX_GROUP_NAME;
use crate::identity::{NodeId, PublicIdentity};
use crate::overlay::cid::{BlockId, Cid};
use crate::wire::{self, WireError};

/// Version byte at the front of encoded inputs.
pub const INPUTS_VERSION: u8 = 1;
/// Largest encoded inputs, in bytes (64 MiB: e.g. 100,000 nodes with four
/// receipts each and their probes and challenges).
pub const MAX_INPUTS_BYTES: usize = 64 << 20;
/// BLAKE3 key-derivation context of [`EpochInputs::digest`].
pub const DIGEST_CONTEXT: &str = "allium 2026-11 rewards epoch inputs v1";

/// A node registered with the coordinator for the epoch: only receipts
/// signed by registered keys count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode)]
pub struct NodeEntry {
    /// The node's id; BLAKE3 of `signing_key` (an entry where it is not
    /// registers nobody).
    pub id: NodeId,
    /// The node's Ed25519 public key.
    pub signing_key: [u8; 32],
}

impl NodeEntry {
    /// The entry of the node whose public identity is `public`.
    pub fn of(public: &PublicIdentity) -> Self {
        NodeEntry { id: public.id, signing_key: public.signing_key }
    }

    /// The entry of the node with Ed25519 key `signing_key`.
    pub fn from_key(signing_key: [u8; 32]) -> Self {
        NodeEntry { id: NodeId::from_public_key(&signing_key), signing_key }
    }

    /// Whether `id` is the hash of `signing_key`.
    pub fn is_consistent(&self) -> bool {
        NodeId::from_public_key(&self.signing_key) == self.id
    }
}

/// The result of one storage challenge, as the coordinator saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode)]
pub struct ChallengeOutcome {
    /// The challenged node.
    pub node: NodeId,
    /// The content the challenged chunk belongs to.
    pub cid: Cid,
    /// The chunk's index in the content's manifest.
    pub chunk_index: u32,
    /// The chunk's BLAKE3 hash (from the manifest).
    pub block: BlockId,
    /// The content's publisher: the id of the manifest's publisher key.
    pub publisher: NodeId,
    /// Whether the node answered in time with a valid proof.
    pub passed: bool,
}

/// Everything one epoch's settlement is computed from.
#[derive(Clone, Debug, Default, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct EpochInputs {
    /// The rewards group (the election group whose leader coordinates).
    pub group: String,
    /// The epoch settled.
    pub epoch: u64,
    /// This epoch's base emission, in units.
    pub emission: u64,
    /// Units carried over from the previous epoch (its record's `carried_out`).
    pub carried_in: u64,
    /// Nodes registered for the epoch.
    pub nodes: Vec<NodeEntry>,
    /// Receipts claimed by providers (valid or not: the settlement sorts
    /// them out and counts the rejected ones).
    pub receipts: Vec<Receipt>,
    /// Bandwidth probes the coordinator measured.
    pub probes: Vec<ProbeResult>,
    /// Storage challenges the coordinator issued, and their outcomes.
    pub challenges: Vec<ChallengeOutcome>,
}

/// Why encoded inputs were refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InputsError {
    /// The bytes do not decode.
    #[error("epoch inputs do not decode: {0}")]
    Decode(#[from] WireError),
    /// Larger than [`MAX_INPUTS_BYTES`].
    #[error("epoch inputs larger than the limit")]
    TooLarge,
    /// Unknown version byte.
    #[error("unsupported epoch inputs version {0}")]
    Version(u8),
    /// Group name longer than 64 bytes.
    #[error("group name too long")]
    GroupName,
    /// A list is not sorted, or the encoding is not the canonical one.
    #[error("non-canonical epoch inputs")]
    NonCanonical,
}

fn sorted<T: Ord>(items: &[T]) -> bool {
    items.windows(2).all(|w| w[0] <= w[1])
}

impl EpochInputs {
    /// Empty inputs for `epoch` of `group`.
    pub fn new(group: impl Into<String>, epoch: u64, emission: u64, carried_in: u64) -> Self {
        EpochInputs { group: group.into(), epoch, emission, carried_in, ..Default::default() }
    }

    /// Sorts every list (the canonical order: by the derived `Ord` of
    /// each element). Duplicates are kept: they are part of what the
    /// coordinator saw, and the settlement gives them no weight twice
    /// where that matters (see `README.md`).
    pub fn canonicalize(&mut self) {
        self.nodes.sort_unstable();
        self.receipts.sort_unstable();
        self.probes.sort_unstable();
        self.challenges.sort_unstable();
    }

    /// Whether every list is sorted.
    pub fn is_canonical(&self) -> bool {
        sorted(&self.nodes) && sorted(&self.receipts) && sorted(&self.probes) && sorted(&self.challenges)
    }

    /// The units this epoch has to pay out: `emission + carried_in`,
    /// saturating at `u64::MAX` (parameter validation keeps the emission
    /// below 2^60, so saturation needs a corrupted carry).
    pub fn available(&self) -> u64 {
        self.emission.saturating_add(self.carried_in)
    }

    /// The canonical encoding (of a sorted copy if `self` is not sorted).
    pub fn encode(&self) -> Vec<u8> {
        if self.is_canonical() {
            wire::encode_plain(&(INPUTS_VERSION, self))
        } else {
            let mut sorted = self.clone();
            sorted.canonicalize();
            wire::encode_plain(&(INPUTS_VERSION, &sorted))
        }
    }

    /// BLAKE3 (key derivation with [`DIGEST_CONTEXT`]) of the canonical
    /// encoding: the same for the same inputs in any order.
    pub fn digest(&self) -> [u8; 32] {
        blake3::derive_key(DIGEST_CONTEXT, &self.encode())
    }

    /// Decodes canonical inputs: at most [`MAX_INPUTS_BYTES`], known
    /// version, group name at most 64 bytes, every list sorted, whole input
    /// consumed, canonical encoding. Receipts are not verified here (the
    /// settlement counts the invalid ones).
    pub fn decode(bytes: &[u8]) -> Result<EpochInputs, InputsError> {
        if bytes.len() > MAX_INPUTS_BYTES {
            return Err(InputsError::TooLarge);
        }
        let (version, _): (u8, usize) = wire::decode_prefix_limited::<_, MAX_INPUTS_BYTES>(bytes)?;
        if version != INPUTS_VERSION {
            return Err(InputsError::Version(version));
        }
        let ((_, inputs), used): ((u8, EpochInputs), usize) =
            wire::decode_prefix_limited::<_, MAX_INPUTS_BYTES>(bytes)?;
        if used != bytes.len() {
            return Err(WireError::TrailingBytes { extra: bytes.len() - used }.into());
        }
        if inputs.group.len() > MAX_GROUP_NAME {
            return Err(InputsError::GroupName);
        }
        if !inputs.is_canonical() || inputs.encode() != bytes {
            return Err(InputsError::NonCanonical);
        }
        Ok(inputs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CryptoSuite, Identity, NodeSeed};

    fn identity(i: u64) -> Identity {
        Identity::from_seed(&NodeSeed::derive(0x1b, i), CryptoSuite::Real)
    }

    fn sample() -> EpochInputs {
        let ids: Vec<Identity> = (0..3).map(identity).collect();
        let mut inputs = EpochInputs::new("g", 4, 1000, 7);
        inputs.nodes = ids.iter().map(|i| NodeEntry::of(i.public())).collect();
        inputs.receipts = vec![
            Receipt::sign(&ids[0], 4, ids[1].id(), 500),
            Receipt::sign(&ids[1], 4, ids[0].id(), 300),
            Receipt::sign(&ids[2], 4, ids[0].id(), 200),
        ];
        inputs.probes = vec![
            ProbeResult { node: ids[1].id(), bytes: 10, elapsed_micros: 10 },
            ProbeResult { node: ids[0].id(), bytes: 10, elapsed_micros: 10 },
        ];
        inputs.challenges = vec![ChallengeOutcome {
            node: ids[2].id(),
            cid: Cid([1; 32]),
            chunk_index: 0,
            block: BlockId([2; 32]),
            publisher: ids[0].id(),
            passed: true,
        }];
        inputs
    }

    #[test]
    fn encoding_is_canonical_and_order_independent() {
        let inputs = sample();
        let mut reversed = inputs.clone();
        reversed.nodes.reverse();
        reversed.receipts.reverse();
        reversed.probes.reverse();
        assert_eq!(inputs.encode(), reversed.encode());
        assert_eq!(inputs.digest(), reversed.digest());
        let mut canonical = inputs.clone();
        canonical.canonicalize();
        assert!(canonical.is_canonical());
        let encoded = inputs.encode();
        assert_eq!(EpochInputs::decode(&encoded), Ok(canonical.clone()));
        assert_eq!(canonical.encode(), encoded);
        // Any change changes the digest.
        let mut other = canonical.clone();
        other.carried_in += 1;
        assert_ne!(other.digest(), canonical.digest());
        assert_eq!(canonical.available(), 1007);
        assert_eq!(EpochInputs::new("g", 0, u64::MAX, 5).available(), u64::MAX);
    }

    #[test]
    fn malformed_inputs_are_refused() {
        let mut inputs = sample();
        inputs.canonicalize();
        let encoded = inputs.encode();
        let mut long = encoded.clone();
        long.push(0);
        assert!(matches!(EpochInputs::decode(&long), Err(InputsError::Decode(WireError::TrailingBytes { .. }))));
        assert!(EpochInputs::decode(&encoded[..encoded.len() - 1]).is_err());
        let mut version = encoded.clone();
        version[0] = 2;
        assert_eq!(EpochInputs::decode(&version), Err(InputsError::Version(2)));
        // Unsorted lists, encoded by hand.
        let mut unsorted = inputs.clone();
        unsorted.receipts.swap(0, 1);
        let bytes = wire::encode_plain(&(INPUTS_VERSION, &unsorted));
        assert_eq!(EpochInputs::decode(&bytes), Err(InputsError::NonCanonical));
        let mut named = inputs.clone();
        named.group = "x".repeat(65);
        assert_eq!(EpochInputs::decode(&named.encode()), Err(InputsError::GroupName));
        // A group name whose length prefix is u64::MAX.
        let mut huge = vec![INPUTS_VERSION, 0xfd];
        huge.extend_from_slice(&[0xff; 8]);
        assert_eq!(EpochInputs::decode(&huge), Err(InputsError::Decode(WireError::LimitExceeded)));
        assert!(NodeEntry::of(identity(1).public()).is_consistent());
        assert!(!NodeEntry { id: identity(2).id(), signing_key: identity(1).public().signing_key }.is_consistent());
    }
}
