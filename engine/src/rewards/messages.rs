//! Rewards datagrams (`MessageKind::Rewards`): bincode bodies decoded under
//! the wire module's size limit ([`wire::MAX_BODY`], 64 KiB). Each message
//! that binds an identity carries its own proof: a receipt is signed by its
//! consumer, an announcement by the coordinator, a registration by the
//! registering node. Probe data, challenges,
//! answers, claims and acknowledgements are matched to what the receiver
//! asked for (nonce, registered address) and checked on their own merits
//! (a challenge answer is a BLAKE3 slice proof plus the signed manifest).
//!
//! Settled epochs are not sent as datagrams: the coordinator publishes the
//! record and its inputs as overlay content and a signed
//! [`super::RecordPointer`] in the DHT (see `machine/publication.rs`).

use super::challenge::{Challenge, ChallengeAnswer};
use super::receipt::Receipt;
use crate::identity::{Identity, NodeId, SIGNATURE_LEN, verify_signature};
use crate::node::Addr;
use crate::overlay::{BlockId, Cid};
use crate::wire::{self, MessageKind, WireError};

/// Domain separation for coordinator announcements.
pub const ANNOUNCE_CONTEXT: &[u8] = b"allium 2026-11 rewards announce v1\0";
/// Domain separation for registrations.
pub const REGISTER_CONTEXT: &[u8] = b"allium 2026-11 rewards register v1\0";
/// Most chunks a registration declares.
pub const MAX_DECLARED: usize = 64;
/// Peers a node passes an accepted announcement on to (once per epoch).
/// With every node forwarding to 12 random peers, a node is missed with
/// probability about e^-12 (6 in a million) per epoch.
pub const ANNOUNCE_FANOUT: usize = 12;
/// Payload bytes of one probe datagram (16 KiB).
pub const PROBE_DATAGRAM_BYTES: usize = 16 * 1024;
/// Largest manifest a challenge answer carries (32 KiB): content with a
/// larger manifest is not declared for storage challenges.
pub const MAX_ANSWER_MANIFEST: usize = 32 * 1024;

/// "I coordinate `group` in `epoch`, at `addr`": sent by the lease holder
/// to the peers of its routing table, and passed on once per epoch by
/// every node that accepts it (to [`ANNOUNCE_FANOUT`] random peers of its
/// own table), so that it reaches nodes the coordinator does not know.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Announce {
    /// The rewards (election) group.
    pub group: String,
    /// The epoch coordinated.
    pub epoch: u64,
    /// The coordinator's Ed25519 public key.
    pub coordinator_key: [u8; 32],
    /// Where to register: the coordinator's own address (an unspecified
    /// address or port 0 means "where this announcement came from").
    pub addr: Addr,
    /// Its signature over the fields above.
    pub signature: [u8; SIGNATURE_LEN],
}

/// One chunk a node declares it stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, bincode::Encode, bincode::Decode)]
pub struct Declared {
    /// The content.
    pub cid: Cid,
    /// The chunk's index in the content's manifest.
    pub chunk_index: u32,
    /// The chunk's BLAKE3 hash.
    pub block: BlockId,
    /// The chunk's length in bytes.
    pub chunk_len: u32,
}

/// A node's registration for an epoch, sent to the coordinator.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Register {
    /// The rewards group.
    pub group: String,
    /// The epoch.
    pub epoch: u64,
    /// The node's Ed25519 public key (its id is derived from it).
    pub signing_key: [u8; 32],
    /// Chunks it stores (at most [`MAX_DECLARED`]).
    pub stored: Vec<Declared>,
    /// Its signature over the fields above.
    pub signature: [u8; SIGNATURE_LEN],
}

/// Every rewards datagram body.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum RewardsMessage {
    /// A consumer's signed acknowledgement of the bytes it received from
    /// the addressee in an epoch (cumulative: a later one supersedes).
    Receipt(Receipt),
    /// The coordinator of an epoch announces itself.
    Announce(Announce),
    /// A node registers with the coordinator.
    Register(Register),
    /// The coordinator asks for a bandwidth probe burst.
    ProbeRequest {
        /// The epoch.
        epoch: u64,
        /// Names the probe.
        nonce: [u8; 32],
        /// Bytes to send back (at most `rewards.probe_bytes`).
        bytes: u64,
    },
    /// One datagram of a probe burst.
    ProbeData {
        /// The probe's nonce.
        nonce: [u8; 32],
        /// Filler (at most [`PROBE_DATAGRAM_BYTES`]).
        payload: Vec<u8>,
    },
    /// A storage challenge from the coordinator.
    Challenge(Challenge),
    /// The answer to a storage challenge, with the content's encoded
    /// manifest (which proves the chunk's hash and names the publisher).
    Answer {
        /// The slice proof.
        answer: ChallengeAnswer,
        /// The encoded, signed manifest of the challenged content.
        manifest: Vec<u8>,
    },
    /// A provider's receipts for an ended epoch.
    Claim {
        /// The epoch.
        epoch: u64,
        /// Which part of the claim this is (retries resend the same part).
        part: u32,
        /// Receipts (at most `rewards.max_receipts_per_claim`).
        receipts: Vec<Receipt>,
    },
    /// The coordinator took a claim part.
    ClaimAck {
        /// The epoch.
        epoch: u64,
        /// The part.
        part: u32,
    },
}

impl Announce {
    /// An announcement signed by `identity`, reachable at `addr`.
    pub fn sign(identity: &Identity, group: &str, epoch: u64, addr: Addr) -> Announce {
        let mut a = Announce {
            group: group.to_string(),
            epoch,
            coordinator_key: identity.public().signing_key,
            addr,
            signature: [0; SIGNATURE_LEN],
        };
        a.signature = identity.sign(&a.message());
        a
    }

    fn message(&self) -> Vec<u8> {
        let mut m = ANNOUNCE_CONTEXT.to_vec();
        m.extend(wire::encode_plain(&(&self.group, self.epoch, self.coordinator_key, self.addr)));
        m
    }

    /// Whether the signature verifies.
    pub fn verify(&self) -> bool {
        verify_signature(&self.coordinator_key, &self.message(), &self.signature)
    }

    /// The coordinator's id.
    pub fn coordinator(&self) -> NodeId {
        NodeId::from_public_key(&self.coordinator_key)
    }

    /// Where to register, for an announcement that arrived from `from`:
    /// the announced address, or `from` when none was announced.
    pub fn register_addr(&self, from: Addr) -> Addr {
        if self.addr.ip().is_unspecified() || self.addr.port() == 0 { from } else { self.addr }
    }
}

impl Register {
    /// A registration signed by `identity`.
    pub fn sign(identity: &Identity, group: &str, epoch: u64, stored: Vec<Declared>) -> Register {
        let mut r = Register {
            group: group.to_string(),
            epoch,
            signing_key: identity.public().signing_key,
            stored,
            signature: [0; SIGNATURE_LEN],
        };
        r.signature = identity.sign(&r.message());
        r
    }

    fn message(&self) -> Vec<u8> {
        let mut m = REGISTER_CONTEXT.to_vec();
        m.extend(wire::encode_plain(&(&self.group, self.epoch, self.signing_key, &self.stored)));
        m
    }

    /// Whether the signature verifies and the declaration is within bounds.
    pub fn verify(&self) -> bool {
        self.stored.len() <= MAX_DECLARED && verify_signature(&self.signing_key, &self.message(), &self.signature)
    }

    /// The registering node's id.
    pub fn node(&self) -> NodeId {
        NodeId::from_public_key(&self.signing_key)
    }
}

impl RewardsMessage {
    /// The complete datagram (header and body).
    pub fn encode(&self) -> Vec<u8> {
        wire::encode(MessageKind::Rewards, self)
    }

    /// Decodes a datagram body (no header); never panics.
    pub fn decode(body: &[u8]) -> Result<RewardsMessage, WireError> {
        wire::decode_body(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CryptoSuite;
    use crate::identity::{Identity, NodeId};
    use crate::rng::NodeSeed;

    #[test]
    fn receipts_round_trip_and_garbage_is_refused() {
        let consumer = Identity::from_seed(&NodeSeed::derive(7, 1), CryptoSuite::Real);
        let receipt = Receipt::sign(&consumer, 4, NodeId([9; 32]), 12_345);
        let message = RewardsMessage::Receipt(receipt);
        let bytes = message.encode();
        let (kind, body) = wire::split(&bytes).unwrap();
        assert_eq!(kind, MessageKind::Rewards);
        assert_eq!(RewardsMessage::decode(body).unwrap(), message);
        assert!(RewardsMessage::decode(&body[..body.len() - 1]).is_err());
        assert!(RewardsMessage::decode(&[77, 0, 0]).is_err());
        let mut longer = body.to_vec();
        longer.push(0);
        assert!(matches!(RewardsMessage::decode(&longer), Err(WireError::TrailingBytes { .. })));
        // The variant tag in the long form of its varint (marker 251, then a
        // little-endian u16), as a fuzz run found: refused, not re-encoded.
        let mut long = vec![251, body[0], 0];
        long.extend_from_slice(&body[1..]);
        assert_eq!(RewardsMessage::decode(&long), Err(wire::NON_CANONICAL));
    }

    #[test]
    fn announcements_and_registrations_are_signed() {
        let id = Identity::from_seed(&NodeSeed::derive(7, 2), CryptoSuite::Real);
        let at = Addr::from(([10, 0, 0, 1], 4000));
        let a = Announce::sign(&id, "g", 3, at);
        assert!(a.verify());
        assert_eq!(a.coordinator(), id.id());
        let relay = Addr::from(([10, 0, 0, 2], 4000));
        assert_eq!(a.register_addr(relay), at);
        let mut b = a.clone();
        b.epoch = 4;
        assert!(!b.verify());
        let mut moved = a.clone();
        moved.addr = relay;
        assert!(!moved.verify(), "the address is signed");
        let unannounced = Announce::sign(&id, "g", 3, Addr::from(([0, 0, 0, 0], 4000)));
        assert_eq!(unannounced.register_addr(relay), relay);
        let d = Declared { cid: Cid([1; 32]), chunk_index: 2, block: BlockId([3; 32]), chunk_len: 100 };
        let r = Register::sign(&id, "g", 3, vec![d]);
        assert!(r.verify());
        assert_eq!(r.node(), id.id());
        let mut s = r.clone();
        s.stored[0].chunk_index = 9;
        assert!(!s.verify());
        let m = RewardsMessage::Register(r);
        let bytes = m.encode();
        let (_, body) = wire::split(&bytes).unwrap();
        assert_eq!(RewardsMessage::decode(body).unwrap(), m);
    }
}
