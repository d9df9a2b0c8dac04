//! The epoch record: the coordinator's signed statement of one epoch's
//! settlement, chained to the previous record by hash.
//!
//! Encoding: the bincode encoding (standard varint configuration) of every
//! field of [`EpochRecord`] in declaration order; the 64 signature bytes
//! come last. The signature covers [`SIGNING_CONTEXT`] followed by the
//! encoding without its signature ([`signed_part_message`]). A record's
//! [`EpochRecord::hash`] covers the whole encoding, signature included,
//! and the next record's `prev` names it.
//!
//! An auditor that holds a record and the inputs it names checks, in this
//! order: [`EpochRecord::verify_signature`] (and that the key is the
//! coordinator it expects), [`EpochRecord::follows`] the previous record,
//! and [`EpochRecord::verify_against`] the inputs, which recomputes the
//! settlement and names the first difference.
//!
//! For an external settlement system, [`EpochRecord::json_view`] is a
//! serde-serializable view with hex ids and hashes.

use super::inputs::EpochInputs;
use super::params::RewardsParams;
use super::settle::{Payout, RejectCounts, settle};
use crate::dht::Key;
use crate::election::membership::MAX_GROUP_NAME;
use crate::identity::{Identity, NodeId, SIGNATURE_LEN, hex, signed_part_message, verify_signature};
use crate::overlay::cid::Cid;
use crate::wire::{self, WireError};
use serde::Serialize;

/// Version byte at the front of every record.
pub const RECORD_VERSION: u8 = 1;
/// Largest encoded record, in bytes (16 MiB: about 200,000 payout rows).
pub const MAX_RECORD_BYTES: usize = 16 << 20;
/// Domain separation for record signatures.
pub const SIGNING_CONTEXT: &[u8] = b"allium 2026-11 rewards epoch record v1\0";
/// BLAKE3 key-derivation context of [`EpochRecord::hash`].
pub const HASH_CONTEXT: &str = "allium 2026-11 rewards epoch record hash v1";
/// BLAKE3 key-derivation context of [`record_key`].
pub const KEY_CONTEXT: &str = "allium 2026-11 rewards epoch record key v1";

/// One epoch's settlement, signed by the coordinator that computed it.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct EpochRecord {
    /// [`RECORD_VERSION`].
    pub version: u8,
    /// The rewards group.
    pub group: String,
    /// The epoch settled.
    pub epoch: u64,
    /// [`EpochRecord::hash`] of the previous record of the group; all
    /// zeros for the group's first record.
    pub prev: [u8; 32],
    /// The epoch's base emission, in units.
    pub emission: u64,
    /// Units carried in from the previous record.
    pub carried_in: u64,
    /// Units carried out to the next record (pools without weight).
    pub carried_out: u64,
    /// [`EpochInputs::digest`] of the inputs settled.
    pub inputs_digest: [u8; 32],
    /// Where the encoded inputs are published (overlay content), if they are.
    pub inputs_cid: Option<Cid>,
    /// Payouts, sorted by node, without zero rows.
    pub payouts: Vec<Payout>,
    /// What the settlement refused, by reason.
    pub rejected: RejectCounts,
    /// The coordinator's Ed25519 public key.
    pub coordinator_key: [u8; 32],
    /// The coordinator's signature.
    pub signature: [u8; SIGNATURE_LEN],
}

/// Why an encoded record was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The bytes do not decode.
    #[error("epoch record does not decode: {0}")]
    Decode(#[from] WireError),
    /// Larger than [`MAX_RECORD_BYTES`].
    #[error("epoch record larger than the limit")]
    TooLarge,
    /// Unknown version byte.
    #[error("unsupported epoch record version {0}")]
    Version(u8),
    /// Group name longer than 64 bytes.
    #[error("group name too long")]
    GroupName,
    /// Payouts not strictly sorted by node, a zero row, or a total that
    /// is not the sum of its parts.
    #[error("malformed payout rows")]
    Payouts,
    /// The decoded record does not re-encode to the same bytes.
    #[error("non-canonical epoch record encoding")]
    NonCanonical,
}

/// The first difference between a record and the settlement recomputed
/// from its inputs ([`EpochRecord::verify_against`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Mismatch {
    /// The record is for another group than the inputs.
    #[error("group differs")]
    Group,
    /// The record is for another epoch than the inputs.
    #[error("epoch: record {record}, inputs {inputs}")]
    Epoch {
        /// In the record.
        record: u64,
        /// In the inputs.
        inputs: u64,
    },
    /// The emission differs between record, inputs and parameters.
    #[error("emission: record {record}, inputs {inputs}, parameters {params}")]
    Emission {
        /// In the record.
        record: u64,
        /// In the inputs.
        inputs: u64,
        /// In the auditor's parameters.
        params: u64,
    },
    /// The carry-in differs between record and inputs.
    #[error("carried_in: record {record}, inputs {inputs}")]
    CarriedIn {
        /// In the record.
        record: u64,
        /// In the inputs.
        inputs: u64,
    },
    /// The inputs are not the ones the record names.
    #[error("inputs digest differs")]
    InputsDigest,
    /// The carry-out differs from the recomputed one.
    #[error("carried_out: record {record}, computed {computed}")]
    CarriedOut {
        /// In the record.
        record: u64,
        /// Recomputed.
        computed: u64,
    },
    /// The payout rows differ, first at `node` (in node order).
    #[error("payout of {node}: record {record:?}, computed {computed:?}")]
    Payout {
        /// The first node whose row differs.
        node: NodeId,
        /// The record's row, if it has one.
        record: Option<Box<Payout>>,
        /// The recomputed row, if there is one.
        computed: Option<Box<Payout>>,
    },
    /// A refusal count differs.
    #[error("rejected.{field}: record {record}, computed {computed}")]
    Rejected {
        /// The count's name.
        field: &'static str,
        /// In the record.
        record: u64,
        /// Recomputed.
        computed: u64,
    },
}

impl Mismatch {
    /// A short stable label for the kind of mismatch (for metrics and events).
    pub fn label(&self) -> &'static str {
        match self {
            Mismatch::Group => "group",
            Mismatch::Epoch { .. } => "epoch",
            Mismatch::Emission { .. } => "emission",
            Mismatch::CarriedIn { .. } => "carried_in",
            Mismatch::InputsDigest => "inputs_digest",
            Mismatch::CarriedOut { .. } => "carried_out",
            Mismatch::Payout { .. } => "payout",
            Mismatch::Rejected { .. } => "rejected",
        }
    }
}

/// The DHT key of `group`'s record for `epoch`: BLAKE3 key derivation
/// with [`KEY_CONTEXT`] over the bincode encoding of `(group, epoch)`.
pub fn record_key(group: &str, epoch: u64) -> Key {
    NodeId(blake3::derive_key(KEY_CONTEXT, &wire::encode_plain(&(group, epoch))))
}

impl EpochRecord {
    /// Settles `inputs` under `params` and signs the result with
    /// `identity` (the coordinator), chained to the record whose hash is
    /// `prev` (zeros for the first). `inputs_cid` is left `None`: set it and
    /// [`EpochRecord::sign`] again once the inputs are published.
    pub fn build(params: &RewardsParams, inputs: &EpochInputs, prev: [u8; 32], identity: &Identity) -> EpochRecord {
        let settlement = settle(params, inputs);
        EpochRecord {
            version: RECORD_VERSION,
            group: inputs.group.clone(),
            epoch: inputs.epoch,
            prev,
            emission: inputs.emission,
            carried_in: inputs.carried_in,
            carried_out: settlement.carried_out,
            inputs_digest: inputs.digest(),
            inputs_cid: None,
            payouts: settlement.payouts,
            rejected: settlement.rejected,
            coordinator_key: [0; 32],
            signature: [0; SIGNATURE_LEN],
        }
        .sign(identity)
    }

    /// Sets `coordinator_key` to `identity`'s and signs every other field.
    pub fn sign(mut self, identity: &Identity) -> EpochRecord {
        self.coordinator_key = identity.public().signing_key;
        self.signature = identity.sign(&signed_part_message(SIGNING_CONTEXT, &self.encode()));
        self
    }

    /// The coordinator's id.
    pub fn coordinator(&self) -> NodeId {
        NodeId::from_public_key(&self.coordinator_key)
    }

    /// Whether the coordinator's signature verifies.
    pub fn verify_signature(&self) -> bool {
        verify_signature(&self.coordinator_key, &signed_part_message(SIGNING_CONTEXT, &self.encode()), &self.signature)
    }

    /// BLAKE3 (key derivation with [`HASH_CONTEXT`]) of the whole encoding.
    pub fn hash(&self) -> [u8; 32] {
        blake3::derive_key(HASH_CONTEXT, &self.encode())
    }

    /// Whether this is the first record of its chain (`prev` all zeros).
    pub fn is_first(&self) -> bool {
        self.prev == [0; 32]
    }

    /// Whether this record directly follows `prev` in its group's chain:
    /// same group, a later epoch (epochs nobody settled may be skipped),
    /// `self.prev == prev.hash()`, and the carry passed on
    /// (`self.carried_in == prev.carried_out`).
    pub fn follows(&self, prev: &EpochRecord) -> bool {
        self.group == prev.group
            && self.epoch > prev.epoch
            && self.carried_in == prev.carried_out
            && crate::crypto::ct_eq(&self.prev, &prev.hash())
    }

    /// Recomputes the settlement of `inputs` under `params` and compares it
    /// with the record, field by field: group, epoch, emission (record,
    /// inputs and `params.emission` agree), carry-in, inputs digest,
    /// carry-out, payout rows, refusal counts. Returns the first difference.
    /// (The signature and the chain are separate checks.)
    pub fn verify_against(&self, params: &RewardsParams, inputs: &EpochInputs) -> Result<(), Mismatch> {
        if self.group != inputs.group {
            return Err(Mismatch::Group);
        }
        if self.epoch != inputs.epoch {
            return Err(Mismatch::Epoch { record: self.epoch, inputs: inputs.epoch });
        }
        if self.emission != inputs.emission || inputs.emission != params.emission {
            return Err(Mismatch::Emission { record: self.emission, inputs: inputs.emission, params: params.emission });
        }
        if self.carried_in != inputs.carried_in {
            return Err(Mismatch::CarriedIn { record: self.carried_in, inputs: inputs.carried_in });
        }
        if self.inputs_digest != inputs.digest() {
            return Err(Mismatch::InputsDigest);
        }
        let computed = settle(params, inputs);
        if self.carried_out != computed.carried_out {
            return Err(Mismatch::CarriedOut { record: self.carried_out, computed: computed.carried_out });
        }
        let (mut ours, mut theirs) = (self.payouts.iter().peekable(), computed.payouts.iter().peekable());
        loop {
            let (record, computed) = match (ours.peek(), theirs.peek()) {
                (None, None) => break,
                (Some(a), Some(b)) if a == b => {
                    ours.next();
                    theirs.next();
                    continue;
                }
                (Some(a), Some(b)) if a.node == b.node => (Some(**a), Some(**b)),
                (Some(a), Some(b)) if a.node < b.node => (Some(**a), None),
                (Some(a), None) => (Some(**a), None),
                (_, Some(b)) => (None, Some(**b)),
            };
            let node = record.or(computed).map(|p| p.node).unwrap_or_default();
            return Err(Mismatch::Payout { node, record: record.map(Box::new), computed: computed.map(Box::new) });
        }
        for ((field, record), (_, computed)) in self.rejected.fields().into_iter().zip(computed.rejected.fields()) {
            if record != computed {
                return Err(Mismatch::Rejected { field, record, computed });
            }
        }
        Ok(())
    }

    /// The encoding (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        wire::encode_plain(self)
    }

    /// Decodes a record: at most [`MAX_RECORD_BYTES`], known version, group
    /// name at most 64 bytes, payout rows strictly sorted by node with
    /// non-zero totals that are the sums of their parts, whole input
    /// consumed, canonical encoding. The signature is not checked here
    /// (see [`EpochRecord::verify_signature`]).
    pub fn decode(bytes: &[u8]) -> Result<EpochRecord, RecordError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(RecordError::TooLarge);
        }
        let (version, _): (u8, usize) = wire::decode_prefix_limited::<_, MAX_RECORD_BYTES>(bytes)?;
        if version != RECORD_VERSION {
            return Err(RecordError::Version(version));
        }
        let (record, used): (EpochRecord, usize) = wire::decode_prefix_limited::<_, MAX_RECORD_BYTES>(bytes)?;
        if used != bytes.len() {
            return Err(WireError::TrailingBytes { extra: bytes.len() - used }.into());
        }
        if record.group.len() > MAX_GROUP_NAME {
            return Err(RecordError::GroupName);
        }
        let sum = |p: &Payout| u128::from(p.bandwidth) + u128::from(p.storage) + u128::from(p.publisher);
        if !record.payouts.windows(2).all(|w| w[0].node < w[1].node)
            || record.payouts.iter().any(|p| p.total == 0 || u128::from(p.total) != sum(p))
        {
            return Err(RecordError::Payouts);
        }
        if record.encode() != bytes {
            return Err(RecordError::NonCanonical);
        }
        Ok(record)
    }

    /// A serde-serializable view for JSON export (hex ids and hashes).
    pub fn json_view(&self) -> RecordJson {
        RecordJson {
            version: self.version,
            group: self.group.clone(),
            epoch: self.epoch,
            hash: hex(&self.hash()),
            prev: hex(&self.prev),
            emission: self.emission,
            carried_in: self.carried_in,
            carried_out: self.carried_out,
            inputs_digest: hex(&self.inputs_digest),
            inputs_cid: self.inputs_cid.map(|cid| cid.to_string()),
            payouts: self
                .payouts
                .iter()
                .map(|p| PayoutJson {
                    node: p.node.to_hex(),
                    bandwidth: p.bandwidth,
                    storage: p.storage,
                    publisher: p.publisher,
                    total: p.total,
                })
                .collect(),
            rejected: self.rejected,
            coordinator: self.coordinator().to_hex(),
            coordinator_key: hex(&self.coordinator_key),
            signature: hex(&self.signature),
        }
    }
}

/// The JSON form of an [`EpochRecord`] (see [`EpochRecord::json_view`]).
/// Ids, keys, hashes and the signature are lower-case hex; the CID is
/// `b3:` and hex; amounts are JSON integers in units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RecordJson {
    /// Record format version.
    pub version: u8,
    /// The rewards group.
    pub group: String,
    /// The epoch settled.
    pub epoch: u64,
    /// This record's hash (what the next record's `prev` names).
    pub hash: String,
    /// The previous record's hash (zeros for the first).
    pub prev: String,
    /// Base emission, in units.
    pub emission: u64,
    /// Units carried in.
    pub carried_in: u64,
    /// Units carried out.
    pub carried_out: u64,
    /// Digest of the inputs settled.
    pub inputs_digest: String,
    /// Where the inputs are published.
    pub inputs_cid: Option<String>,
    /// Payouts, sorted by node.
    pub payouts: Vec<PayoutJson>,
    /// Refusal counts.
    pub rejected: RejectCounts,
    /// The coordinator's node id.
    pub coordinator: String,
    /// The coordinator's Ed25519 key.
    pub coordinator_key: String,
    /// The coordinator's signature.
    pub signature: String,
}

/// One payout row of a [`RecordJson`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PayoutJson {
    /// Node id, hex.
    pub node: String,
    /// Bandwidth pool share, in units.
    pub bandwidth: u64,
    /// Storage pool share, in units.
    pub storage: u64,
    /// Publisher pool share, in units.
    pub publisher: u64,
    /// Total, in units.
    pub total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rewards::receipt::Receipt;
    use crate::rewards::settle::tests::{generated, worked_example};
    use crate::{CryptoSuite, NodeSeed};
    use proptest::prelude::*;

    fn coordinator() -> Identity {
        Identity::from_seed(&NodeSeed::derive(0xc0, 1), CryptoSuite::Real)
    }

    fn params() -> RewardsParams {
        RewardsParams { emission: 900, ..Default::default() }
    }

    #[test]
    fn records_round_trip_verify_and_detect_tampering() {
        let (_, inputs) = worked_example();
        let record = EpochRecord::build(&params(), &inputs, [0; 32], &coordinator());
        assert!(record.verify_signature());
        assert!(record.is_first());
        assert_eq!(record.coordinator(), coordinator().id());
        assert_eq!(record.verify_against(&params(), &inputs), Ok(()));
        let encoded = record.encode();
        assert_eq!(EpochRecord::decode(&encoded), Ok(record.clone()));
        for i in [0usize, 3, encoded.len() / 2, encoded.len() - 70, encoded.len() - 1] {
            let mut bad = encoded.clone();
            bad[i] ^= 0x10;
            if let Ok(decoded) = EpochRecord::decode(&bad) {
                assert!(!decoded.verify_signature(), "flip at {i} still verifies");
            }
        }
        let mut long = encoded.clone();
        long.push(0);
        assert!(matches!(EpochRecord::decode(&long), Err(RecordError::Decode(WireError::TrailingBytes { .. }))));
        assert!(EpochRecord::decode(&encoded[..encoded.len() - 1]).is_err());
        let mut version = encoded.clone();
        version[0] = 9;
        assert_eq!(EpochRecord::decode(&version), Err(RecordError::Version(9)));
        // Unsorted or inconsistent rows are refused even when signed.
        let mut unsorted = record.clone();
        unsorted.payouts.swap(0, 1);
        assert_eq!(EpochRecord::decode(&unsorted.sign(&coordinator()).encode()), Err(RecordError::Payouts));
        let mut bad_total = record.clone();
        bad_total.payouts[0].total += 1;
        assert_eq!(EpochRecord::decode(&bad_total.sign(&coordinator()).encode()), Err(RecordError::Payouts));
        // Setting the CID needs a new signature.
        let mut published = record.clone();
        published.inputs_cid = Some(Cid([9; 32]));
        assert!(!published.verify_signature());
        let published = published.sign(&coordinator());
        assert!(published.verify_signature());
        assert_eq!(EpochRecord::decode(&published.encode()), Ok(published.clone()));
        assert_ne!(published.hash(), record.hash());
    }

    #[test]
    fn recomputation_names_the_first_difference() {
        let (ids, inputs) = worked_example();
        let p = params();
        let id = coordinator();
        let record = EpochRecord::build(&p, &inputs, [0; 32], &id);
        let check = |f: &dyn Fn(&mut EpochRecord)| {
            let mut r = record.clone();
            f(&mut r);
            r.sign(&id).verify_against(&p, &inputs).map_err(|m| m.label())
        };
        assert_eq!(check(&|r| r.group = "other".into()), Err("group"));
        assert_eq!(check(&|r| r.epoch += 1), Err("epoch"));
        assert_eq!(check(&|r| r.emission += 1), Err("emission"));
        assert_eq!(check(&|r| r.carried_in += 1), Err("carried_in"));
        assert_eq!(check(&|r| r.inputs_digest[0] ^= 1), Err("inputs_digest"));
        assert_eq!(check(&|r| r.carried_out += 1), Err("carried_out"));
        assert_eq!(check(&|r| r.payouts[1].storage += 1), Err("payout"));
        assert_eq!(check(&|r| r.rejected.stale_receipts = 0), Err("rejected"));
        // A row moved from one node to another names the first of them.
        let mut moved = record.clone();
        let victim = moved.payouts.remove(0);
        let mismatch = moved.sign(&id).verify_against(&p, &inputs);
        assert_eq!(
            mismatch,
            Err(Mismatch::Payout { node: victim.node, record: None, computed: Some(Box::new(victim)) })
        );
        // Other inputs than the record names.
        let mut more = inputs.clone();
        more.receipts.push(Receipt::sign(&ids[0], 3, ids[1].id(), 1));
        assert_eq!(record.verify_against(&p, &more), Err(Mismatch::InputsDigest));
        // An auditor with another emission parameter disagrees.
        let other = RewardsParams { emission: 901, ..params() };
        assert!(matches!(record.verify_against(&other, &inputs), Err(Mismatch::Emission { .. })));
    }

    #[test]
    fn records_chain_by_hash_and_carry() {
        let id = coordinator();
        let p = RewardsParams { emission: 1000, ..Default::default() };
        let first = EpochRecord::build(&p, &EpochInputs::new("g", 1, 1000, 0), [0; 32], &id);
        assert_eq!(first.carried_out, 1000, "nobody earned anything");
        let second = EpochRecord::build(&p, &EpochInputs::new("g", 2, 1000, 1000), first.hash(), &id);
        let third = EpochRecord::build(&p, &EpochInputs::new("g", 4, 1000, 2000), second.hash(), &id);
        assert!(second.follows(&first) && third.follows(&second));
        assert!(!third.follows(&first) && !first.follows(&second) && !second.follows(&second));
        let wrong_carry = EpochRecord::build(&p, &EpochInputs::new("g", 3, 1000, 7), second.hash(), &id);
        assert!(!wrong_carry.follows(&second));
        let other_group = EpochRecord::build(&p, &EpochInputs::new("h", 3, 1000, 2000), second.hash(), &id);
        assert!(!other_group.follows(&second));
        // Any change to a record breaks the link to it.
        let mut altered = second.clone();
        altered.carried_out = 2000;
        altered.inputs_cid = Some(Cid([1; 32]));
        let altered = altered.sign(&id);
        assert!(!third.follows(&altered));
        assert_ne!(record_key("g", 1), record_key("g", 2));
        assert_ne!(record_key("g", 1), record_key("h", 1));
    }

    #[test]
    fn the_json_view_uses_hex() {
        let (_, inputs) = worked_example();
        let record = EpochRecord::build(&params(), &inputs, [0xab; 32], &coordinator());
        let value = serde_json::to_value(record.json_view()).unwrap();
        assert_eq!(value["epoch"], 3);
        assert_eq!(value["prev"], "ab".repeat(32));
        assert_eq!(value["hash"], hex(&record.hash()));
        assert_eq!(value["coordinator"], coordinator().id().to_hex());
        assert_eq!(value["payouts"].as_array().unwrap().len(), 5);
        assert_eq!(value["payouts"][0]["node"], record.payouts[0].node.to_hex());
        assert_eq!(value["rejected"]["capped_bytes"], 2_000_000);
        assert_eq!(value["inputs_cid"], serde_json::Value::Null);
        let total: u64 = value["payouts"].as_array().unwrap().iter().map(|p| p["total"].as_u64().unwrap()).sum();
        assert_eq!(total + value["carried_out"].as_u64().unwrap(), 1000);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Any single changed payout (or carry-out, when there are no rows) is
        /// found by recomputation, even when the coordinator signs it; and
        /// the next record in the chain no longer follows the changed one.
        #[test]
        fn recomputation_detects_any_single_changed_payout(
            registered in any::<u8>(),
            receipts in proptest::collection::vec((0..6u8, 0..6u8, any::<u64>(), any::<u8>()), 0..10),
            probes in proptest::collection::vec((0..6u8, any::<u64>(), 1..1_000_000u64), 0..6),
            challenges in proptest::collection::vec((0..6u8, 0..6u8, any::<bool>()), 0..8),
            row in any::<usize>(),
            field in 0..4usize,
            delta in 1..u64::MAX,
        ) {
            let p = RewardsParams { emission: 1_000_000, ..Default::default() };
            let inputs = generated(1_000_000, 17, registered, &receipts, &probes, &challenges);
            let id = coordinator();
            let record = EpochRecord::build(&p, &inputs, [0; 32], &id);
            prop_assert_eq!(record.verify_against(&p, &inputs), Ok(()));
            let next = EpochRecord::build(&p, &EpochInputs { epoch: 6, carried_in: record.carried_out, ..inputs.clone() }, record.hash(), &id);
            prop_assert!(next.follows(&record));
            let mut changed = record.clone();
            if changed.payouts.is_empty() {
                changed.carried_out = changed.carried_out.wrapping_add(delta);
            } else {
                let i = row % changed.payouts.len();
                let target = &mut changed.payouts[i];
                let cell = match field {
                    0 => &mut target.bandwidth,
                    1 => &mut target.storage,
                    2 => &mut target.publisher,
                    _ => &mut target.total,
                };
                *cell = cell.wrapping_add(delta);
            }
            let changed = changed.sign(&id);
            prop_assert!(changed.verify_against(&p, &inputs).is_err());
            prop_assert!(!next.follows(&changed));
        }
    }
}
