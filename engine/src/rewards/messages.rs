//! Rewards datagrams (`MessageKind::Rewards`): bincode bodies decoded under
//! the wire module's size limit. Each message carries its own proof: a
//! receipt is signed by its consumer (see [`super::receipt`]).
//!
//! So far one message exists: a consumer's cumulative [`Receipt`] sent to
//! the provider it names. Registration, claims, probes and challenges
//! will be added as further variants (a decoder of this version refuses
//! them as `WireError::Decode`).

use super::receipt::Receipt;
use crate::wire::{self, MessageKind, WireError};

/// Every rewards datagram body.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum RewardsMessage {
    /// A consumer's signed acknowledgement of the bytes it received from
    /// the addressee in an epoch (cumulative: a later one supersedes).
    Receipt(Receipt),
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
        assert!(RewardsMessage::decode(&[7, 0, 0]).is_err());
        let mut longer = body.to_vec();
        longer.push(0);
        assert!(matches!(RewardsMessage::decode(&longer), Err(WireError::TrailingBytes { .. })));
    }
}
