//! Bandwidth receipts: a *consumer* signs how many bytes it has received
//! from a *provider* so far in an epoch.
//!
//! Receipts are cumulative: a later receipt for the same (epoch, consumer,
//! provider) replaces an earlier one, so only the highest counts and a
//! replayed or older receipt adds nothing. [`ReceiptBook`] keeps the best
//! receipt per triple.
//!
//! Encoding: the bincode encoding (standard varint configuration) of
//! `(epoch, consumer_key, provider, bytes, signature)`; the 64 signature
//! bytes come last. The signature covers [`SIGNING_CONTEXT`] followed by
//! the encoding without its signature ([`signed_part_message`]).

use crate::identity::{Identity, NodeId, SIGNATURE_LEN, signed_part_message, verify_signature};
use crate::wire::{self, WireError};
use std::collections::BTreeMap;

/// Domain separation for receipt signatures.
pub const SIGNING_CONTEXT: &[u8] = b"allium 2026-11 rewards receipt v1\0";

/// Longest encoded receipt, in bytes: two varint `u64`s (at most 9 bytes
/// each), two 32-byte keys and the 64-byte signature.
pub const MAX_RECEIPT_BYTES: usize = 9 + 32 + 32 + 9 + SIGNATURE_LEN;

/// Default capacity of a [`ReceiptBook`], in (epoch, consumer, provider)
/// entries: 65,536 (about 10 MiB of receipts).
pub const DEFAULT_BOOK_CAPACITY: usize = 1 << 16;

/// A consumer's signed acknowledgement of the cumulative bytes it received
/// from `provider` during `epoch`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode)]
pub struct Receipt {
    /// The epoch the bytes were received in.
    pub epoch: u64,
    /// The consumer's Ed25519 public key (the consumer's id is its hash,
    /// see [`Receipt::consumer`]).
    pub consumer_key: [u8; 32],
    /// The node that delivered the bytes.
    pub provider: NodeId,
    /// Bytes received from `provider` in `epoch` so far (cumulative).
    pub bytes: u64,
    /// The consumer's signature.
    pub signature: [u8; SIGNATURE_LEN],
}

/// Why a receipt was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReceiptError {
    /// The bytes do not decode to a receipt.
    #[error("receipt does not decode: {0}")]
    Decode(#[from] WireError),
    /// The decoded receipt does not re-encode to the same bytes.
    #[error("non-canonical receipt encoding")]
    NonCanonical,
    /// The signature does not verify against the consumer key.
    #[error("bad receipt signature")]
    Signature,
    /// Consumer and provider are the same node.
    #[error("a node cannot sign a receipt to itself")]
    SelfReceipt,
}

impl Receipt {
    /// A receipt signed by `identity` (the consumer) for `bytes` received
    /// from `provider` in `epoch`.
    pub fn sign(identity: &Identity, epoch: u64, provider: NodeId, bytes: u64) -> Receipt {
        let mut receipt = Receipt {
            epoch,
            consumer_key: identity.public().signing_key,
            provider,
            bytes,
            signature: [0; SIGNATURE_LEN],
        };
        receipt.signature = identity.sign(&receipt.signing_message());
        receipt
    }

    /// The consumer's id, BLAKE3 of its key.
    pub fn consumer(&self) -> NodeId {
        NodeId::from_public_key(&self.consumer_key)
    }

    /// Checks that consumer and provider differ and that the signature
    /// verifies.
    pub fn verify(&self) -> Result<(), ReceiptError> {
        if self.consumer() == self.provider {
            return Err(ReceiptError::SelfReceipt);
        }
        if !verify_signature(&self.consumer_key, &self.signing_message(), &self.signature) {
            return Err(ReceiptError::Signature);
        }
        Ok(())
    }

    /// The encoding (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        wire::encode_plain(self)
    }

    /// Decodes `bytes`: at most [`MAX_RECEIPT_BYTES`], consumed exactly,
    /// canonical. It does not check the signature: see [`Receipt::verify`].
    pub fn decode(bytes: &[u8]) -> Result<Receipt, ReceiptError> {
        if bytes.len() > MAX_RECEIPT_BYTES {
            return Err(WireError::LimitExceeded.into());
        }
        let (receipt, used): (Receipt, usize) = wire::decode_prefix_limited::<_, MAX_RECEIPT_BYTES>(bytes)?;
        if used != bytes.len() {
            return Err(WireError::TrailingBytes { extra: bytes.len() - used }.into());
        }
        if receipt.encode() != bytes {
            return Err(ReceiptError::NonCanonical);
        }
        Ok(receipt)
    }

    fn signing_message(&self) -> Vec<u8> {
        signed_part_message(SIGNING_CONTEXT, &self.encode())
    }
}

/// Why a [`ReceiptBook`] did not take a receipt.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    /// The receipt itself is invalid (bad signature, self receipt).
    #[error("invalid receipt: {0}")]
    Invalid(ReceiptError),
    /// The book holds a receipt for the same triple with at least as many
    /// bytes (a replay, a duplicate or an older receipt).
    #[error("stale receipt: {offered} bytes offered, {held} held")]
    Stale {
        /// Bytes the book already holds for the triple.
        held: u64,
        /// Bytes the refused receipt carried.
        offered: u64,
    },
    /// The book is at capacity and the receipt is for a new triple.
    #[error("receipt book full")]
    Full,
}

/// The best receipt per (epoch, consumer, provider): only the highest
/// valid one is kept. Holds at most `capacity` entries (triples); a
/// receipt for a new triple is refused with [`BookError::Full`] when the
/// book is full, and [`ReceiptBook::prune_before`] frees whole epochs.
#[derive(Clone, Debug)]
pub struct ReceiptBook {
    entries: BTreeMap<(u64, NodeId, NodeId), Receipt>,
    capacity: usize,
}

impl Default for ReceiptBook {
    fn default() -> Self {
        ReceiptBook::new(DEFAULT_BOOK_CAPACITY)
    }
}

impl ReceiptBook {
    /// An empty book holding at most `capacity` triples.
    pub fn new(capacity: usize) -> Self {
        ReceiptBook { entries: BTreeMap::new(), capacity }
    }

    /// Verifies `receipt` and keeps it if it carries more bytes than the
    /// one held for its triple. Returns by how many bytes it advanced
    /// (positive).
    pub fn insert(&mut self, receipt: Receipt) -> Result<u64, BookError> {
        receipt.verify().map_err(BookError::Invalid)?;
        let key = (receipt.epoch, receipt.consumer(), receipt.provider);
        let full = self.entries.len() >= self.capacity;
        match self.entries.get_mut(&key) {
            Some(held) if held.bytes >= receipt.bytes => {
                Err(BookError::Stale { held: held.bytes, offered: receipt.bytes })
            }
            Some(held) => {
                let advance = receipt.bytes - held.bytes;
                *held = receipt;
                Ok(advance)
            }
            None if full => Err(BookError::Full),
            None => {
                let advance = receipt.bytes;
                self.entries.insert(key, receipt);
                Ok(advance)
            }
        }
    }

    /// The receipt held for (epoch, consumer, provider).
    pub fn get(&self, epoch: u64, consumer: &NodeId, provider: &NodeId) -> Option<&Receipt> {
        self.entries.get(&(epoch, *consumer, *provider))
    }

    /// Every receipt held for `epoch`, ordered by consumer then provider.
    pub fn epoch(&self, epoch: u64) -> impl Iterator<Item = &Receipt> {
        self.entries
            .range((epoch, NodeId([0; 32]), NodeId([0; 32]))..=(epoch, NodeId([0xff; 32]), NodeId([0xff; 32])))
            .map(|(_, r)| r)
    }

    /// Every receipt held for `epoch` naming `provider` (what a provider
    /// claims), ordered by consumer.
    pub fn for_provider(&self, epoch: u64, provider: &NodeId) -> Vec<&Receipt> {
        self.epoch(epoch).filter(|r| r.provider == *provider).collect()
    }

    /// Removes every receipt of an epoch before `epoch`; returns how many.
    pub fn prune_before(&mut self, epoch: u64) -> usize {
        let kept = self.entries.split_off(&(epoch, NodeId([0; 32]), NodeId([0; 32])));
        let removed = self.entries.len();
        self.entries = kept;
        removed
    }

    /// Number of triples held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the book is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Most triples the book holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CryptoSuite, NodeSeed};

    fn identity(i: u64) -> Identity {
        Identity::from_seed(&NodeSeed::derive(0x5ec, i), CryptoSuite::Real)
    }

    #[test]
    fn signed_receipts_verify_round_trip_and_tampering_fails() {
        let consumer = identity(1);
        let provider = identity(2).id();
        let r = Receipt::sign(&consumer, 7, provider, 123_456);
        assert_eq!(r.verify(), Ok(()));
        assert_eq!(r.consumer(), consumer.id());
        let encoded = r.encode();
        assert!(encoded.len() <= MAX_RECEIPT_BYTES);
        assert_eq!(Receipt::decode(&encoded), Ok(r.clone()));
        // Every field is covered by the signature.
        let tampered = [
            Receipt { epoch: 8, ..r.clone() },
            Receipt { bytes: 123_457, ..r.clone() },
            Receipt { provider: identity(3).id(), ..r.clone() },
            Receipt { consumer_key: identity(3).public().signing_key, ..r.clone() },
        ];
        for t in tampered {
            assert_eq!(t.verify(), Err(ReceiptError::Signature), "{t:?}");
        }
        for i in 0..encoded.len() {
            let mut bad = encoded.clone();
            bad[i] ^= 0x01;
            if let Ok(decoded) = Receipt::decode(&bad) {
                assert!(decoded.verify().is_err(), "flip at {i} still verifies");
            }
        }
        // A signature over another context does not verify.
        let mut other = r.clone();
        other.signature = consumer.sign(&signed_part_message(b"other context", &r.encode()));
        assert_eq!(other.verify(), Err(ReceiptError::Signature));
    }

    #[test]
    fn self_receipts_and_malformed_encodings_are_refused() {
        let node = identity(1);
        let r = Receipt::sign(&node, 1, node.id(), 10);
        assert_eq!(r.verify(), Err(ReceiptError::SelfReceipt));
        let good = Receipt::sign(&node, 1, identity(2).id(), 10).encode();
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(Receipt::decode(&long), Err(ReceiptError::Decode(WireError::TrailingBytes { .. }))));
        assert!(matches!(Receipt::decode(&good[..good.len() - 1]), Err(ReceiptError::Decode(_))));
        assert!(Receipt::decode(&[0xff; MAX_RECEIPT_BYTES + 1]).is_err());
        // epoch 1 written as a 3-byte varint (tag 251 + u16) instead of 1 byte.
        let mut padded = vec![251, 1, 0];
        padded.extend_from_slice(&good[1..]);
        assert_eq!(Receipt::decode(&padded), Err(ReceiptError::NonCanonical));
    }

    #[test]
    fn the_book_keeps_only_the_highest_valid_receipt() {
        let (c1, c2, p) = (identity(1), identity(2), identity(3).id());
        let mut book = ReceiptBook::new(3);
        assert_eq!(book.insert(Receipt::sign(&c1, 5, p, 100)), Ok(100));
        // Replay, duplicate, older.
        assert_eq!(book.insert(Receipt::sign(&c1, 5, p, 100)), Err(BookError::Stale { held: 100, offered: 100 }));
        assert_eq!(book.insert(Receipt::sign(&c1, 5, p, 99)), Err(BookError::Stale { held: 100, offered: 99 }));
        assert_eq!(book.insert(Receipt::sign(&c1, 5, p, 150)), Ok(50));
        assert_eq!(book.insert(Receipt::sign(&c1, 5, p, 100)), Err(BookError::Stale { held: 150, offered: 100 }));
        // Forged: a higher count with a bad signature changes nothing.
        let mut forged = Receipt::sign(&c1, 5, p, 150);
        forged.bytes = 1_000_000;
        assert_eq!(book.insert(forged), Err(BookError::Invalid(ReceiptError::Signature)));
        assert_eq!(book.get(5, &c1.id(), &p).map(|r| r.bytes), Some(150));
        // Self receipts.
        assert_eq!(book.insert(Receipt::sign(&c1, 5, c1.id(), 1)), Err(BookError::Invalid(ReceiptError::SelfReceipt)));
        // Other consumers and epochs are separate triples.
        assert_eq!(book.insert(Receipt::sign(&c2, 5, p, 10)), Ok(10));
        assert_eq!(book.insert(Receipt::sign(&c1, 6, p, 10)), Ok(10));
        assert_eq!(book.len(), 3);
        assert_eq!(book.insert(Receipt::sign(&c2, 6, p, 10)), Err(BookError::Full));
        // A held triple may still advance when the book is full.
        assert_eq!(book.insert(Receipt::sign(&c2, 5, p, 11)), Ok(1));
        assert_eq!(book.for_provider(5, &p).len(), 2);
        assert_eq!(book.epoch(6).count(), 1);
        assert_eq!(book.prune_before(6), 2);
        assert_eq!(book.len(), 1);
        assert!(book.get(5, &c1.id(), &p).is_none());
        assert_eq!(book.insert(Receipt::sign(&c2, 6, p, 10)), Ok(10));
    }
}
