//! The record pointer: what a rewards coordinator stores in the DHT for a
//! settled epoch.
//!
//! An [`EpochRecord`](super::EpochRecord) has one row per paid node and the
//! epoch's inputs are larger still, so neither fits in a DHT value
//! (`dht.max_value_bytes`, default 1 KiB, at most 16 KiB). The coordinator
//! publishes both as overlay content and stores this small signed pointer
//! (about 270 bytes) under [`record_key`](super::record_key)`(group, epoch)`:
//! the record's hash and content id, the inputs' content id, and the
//! coordinator's key and signature. An auditor gets the pointer from the
//! DHT, verifies it, fetches both objects through the overlay and checks
//! that the record hashes to `record_hash` and names `inputs_cid`.
//!
//! Encoding: the bincode encoding (standard varint configuration) of every
//! field of [`RecordPointer`] in declaration order, the 64 signature bytes
//! last; at most [`MAX_POINTER_BYTES`]. The signature covers
//! [`POINTER_CONTEXT`] followed by the encoding without its signature.

use crate::election::membership::MAX_GROUP_NAME;
use crate::identity::{Identity, NodeId, SIGNATURE_LEN, signed_part_message, verify_signature};
use crate::overlay::Cid;
use crate::wire::{self, WireError};

/// Domain separation for pointer signatures.
pub const POINTER_CONTEXT: &[u8] = b"allium 2026-11 rewards record pointer v1\0";
/// Largest encoded pointer, in bytes (512; a pointer with a 64-byte group
/// name is about 270 bytes, under the smallest sensible `dht.max_value_bytes`).
pub const MAX_POINTER_BYTES: usize = 512;

/// "The record of `group`'s epoch `epoch` hashes to `record_hash` and is
/// the overlay content `record_cid`; its inputs are `inputs_cid`", signed
/// by the coordinator that settled the epoch.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct RecordPointer {
    /// The rewards (election) group (at most 64 bytes).
    pub group: String,
    /// The epoch settled.
    pub epoch: u64,
    /// [`super::EpochRecord::hash`] of the record.
    pub record_hash: [u8; 32],
    /// The overlay content id of the encoded record.
    pub record_cid: Cid,
    /// The overlay content id of the encoded inputs (the record's `inputs_cid`).
    pub inputs_cid: Cid,
    /// The coordinator's Ed25519 public key.
    pub coordinator_key: [u8; 32],
    /// The coordinator's signature over the fields above.
    pub signature: [u8; SIGNATURE_LEN],
}

/// Why a pointer was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PointerError {
    /// The bytes do not decode.
    #[error("record pointer does not decode: {0}")]
    Decode(#[from] WireError),
    /// Larger than [`MAX_POINTER_BYTES`].
    #[error("record pointer larger than the limit")]
    TooLarge,
    /// Group name longer than 64 bytes.
    #[error("group name too long")]
    GroupName,
    /// The decoded pointer does not re-encode to the same bytes.
    #[error("non-canonical record pointer encoding")]
    NonCanonical,
    /// The signature does not verify against `coordinator_key`.
    #[error("bad record pointer signature")]
    Signature,
}

impl PointerError {
    /// A short stable label (for metrics).
    pub fn label(&self) -> &'static str {
        match self {
            PointerError::Decode(_) => "decode",
            PointerError::TooLarge => "too_large",
            PointerError::GroupName => "group_name",
            PointerError::NonCanonical => "non_canonical",
            PointerError::Signature => "signature",
        }
    }
}

impl RecordPointer {
    /// A pointer signed by `identity` (the coordinator).
    pub fn sign(
        identity: &Identity,
        group: &str,
        epoch: u64,
        record_hash: [u8; 32],
        record_cid: Cid,
        inputs_cid: Cid,
    ) -> RecordPointer {
        let mut p = RecordPointer {
            group: group.to_string(),
            epoch,
            record_hash,
            record_cid,
            inputs_cid,
            coordinator_key: identity.public().signing_key,
            signature: [0; SIGNATURE_LEN],
        };
        p.signature = identity.sign(&signed_part_message(POINTER_CONTEXT, &p.encode()));
        p
    }

    /// The coordinator's id.
    pub fn coordinator(&self) -> NodeId {
        NodeId::from_public_key(&self.coordinator_key)
    }

    /// Checks the group name's length and the signature.
    pub fn verify(&self) -> Result<(), PointerError> {
        if self.group.len() > MAX_GROUP_NAME {
            return Err(PointerError::GroupName);
        }
        let message = signed_part_message(POINTER_CONTEXT, &self.encode());
        if !verify_signature(&self.coordinator_key, &message, &self.signature) {
            return Err(PointerError::Signature);
        }
        Ok(())
    }

    /// The encoding (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        wire::encode_plain(self)
    }

    /// Decodes a pointer: at most [`MAX_POINTER_BYTES`], group name at most
    /// 64 bytes, whole input consumed, canonical encoding. The signature is
    /// not checked here (see [`RecordPointer::verify`]). Never panics.
    pub fn decode(bytes: &[u8]) -> Result<RecordPointer, PointerError> {
        if bytes.len() > MAX_POINTER_BYTES {
            return Err(PointerError::TooLarge);
        }
        let (pointer, used): (RecordPointer, usize) = wire::decode_prefix_limited::<_, MAX_POINTER_BYTES>(bytes)?;
        if used != bytes.len() {
            return Err(WireError::TrailingBytes { extra: bytes.len() - used }.into());
        }
        if pointer.group.len() > MAX_GROUP_NAME {
            return Err(PointerError::GroupName);
        }
        if pointer.encode() != bytes {
            return Err(PointerError::NonCanonical);
        }
        Ok(pointer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CryptoSuite;
    use crate::rng::NodeSeed;

    fn coordinator() -> Identity {
        Identity::from_seed(&NodeSeed::derive(0xc1, 1), CryptoSuite::Real)
    }

    fn pointer() -> RecordPointer {
        RecordPointer::sign(&coordinator(), "rewards", 7, [1; 32], Cid([2; 32]), Cid([3; 32]))
    }

    #[test]
    fn pointers_round_trip_and_verify() {
        let p = pointer();
        assert_eq!(p.verify(), Ok(()));
        assert_eq!(p.coordinator(), coordinator().id());
        let encoded = p.encode();
        assert!(encoded.len() <= 1024, "fits the default dht.max_value_bytes: {}", encoded.len());
        assert_eq!(RecordPointer::decode(&encoded), Ok(p.clone()));
        // The largest group name still fits the limit.
        let long = RecordPointer::sign(&coordinator(), &"g".repeat(64), u64::MAX, [9; 32], Cid([9; 32]), Cid([9; 32]));
        let encoded = long.encode();
        assert!(encoded.len() <= MAX_POINTER_BYTES);
        assert_eq!(RecordPointer::decode(&encoded), Ok(long));
    }

    #[test]
    fn any_changed_field_breaks_the_signature() {
        let p = pointer();
        let changes: [&dyn Fn(&mut RecordPointer); 6] = [
            &|p| p.group.push('x'),
            &|p| p.epoch += 1,
            &|p| p.record_hash[0] ^= 1,
            &|p| p.record_cid.0[31] ^= 1,
            &|p| p.inputs_cid.0[5] ^= 1,
            &|p| p.signature[10] ^= 1,
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut q = p.clone();
            change(&mut q);
            assert_eq!(q.verify(), Err(PointerError::Signature), "change {i}");
        }
        // Another key cannot claim the pointer.
        let other = Identity::from_seed(&NodeSeed::derive(0xc1, 2), CryptoSuite::Real);
        let mut q = p.clone();
        q.coordinator_key = other.public().signing_key;
        assert_eq!(q.verify(), Err(PointerError::Signature));
        // Any flipped byte of the encoding is refused or fails to verify.
        let encoded = p.encode();
        for i in 0..encoded.len() {
            let mut bad = encoded.clone();
            bad[i] ^= 0x40;
            if let Ok(decoded) = RecordPointer::decode(&bad) {
                assert!(decoded.verify().is_err(), "flip at {i} still verifies");
            }
        }
    }

    #[test]
    fn malformed_pointers_are_typed_errors() {
        let encoded = pointer().encode();
        assert!(matches!(RecordPointer::decode(&encoded[..encoded.len() - 1]), Err(PointerError::Decode(_))));
        let mut long = encoded.clone();
        long.push(0);
        assert!(matches!(
            RecordPointer::decode(&long),
            Err(PointerError::Decode(WireError::TrailingBytes { extra: 1 }))
        ));
        assert_eq!(RecordPointer::decode(&vec![0; MAX_POINTER_BYTES + 1]), Err(PointerError::TooLarge));
        assert!(RecordPointer::decode(&[]).is_err());
        let mut named = pointer();
        named.group = "g".repeat(65);
        assert_eq!(RecordPointer::decode(&named.encode()), Err(PointerError::GroupName));
        assert_eq!(named.verify(), Err(PointerError::GroupName));
        // A non-minimal varint for the epoch (7 as 0xfb 7 0) is not canonical.
        let p = pointer();
        let mut bytes = wire::encode_plain(&p.group);
        bytes.extend_from_slice(&[0xfb, 7, 0]);
        bytes.extend_from_slice(&encoded[bytes.len() - 2..]);
        let decoded = RecordPointer::decode(&bytes);
        assert!(matches!(decoded, Err(PointerError::NonCanonical) | Err(PointerError::Decode(_))), "{decoded:?}");
        assert_eq!(PointerError::Signature.label(), "signature");
    }
}
