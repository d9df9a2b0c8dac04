//! DHT wire messages (bincode bodies of [`MessageKind::Dht`] datagrams).
//!
//! Every message names its sender's Ed25519 public key; the sender's
//! identifier is its hash, so a peer cannot answer for an identifier it does
//! not hold the key of. When S/Kademlia proof-of-work is on, the sender also
//! carries a nonce proving the work for its identifier.

use super::key::Key;
use super::record::{ProviderRecord, ValueRecord};
use super::routing::PeerInfo;
use crate::wire::{self, MessageKind, WireError};

/// Most peers one message may carry; larger lists are a protocol violation.
pub const MAX_PEERS_PER_MESSAGE: usize = 64;

/// One DHT datagram.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct DhtMessage {
    /// The sender's Ed25519 public key.
    pub sender_key: [u8; 32],
    /// Proof-of-work nonce for the sender's identifier (0 when unused).
    pub pow_nonce: u64,
    /// Chosen by the requester, echoed in the response.
    pub request_id: u64,
    /// The request or response itself.
    pub body: Body,
}

/// Requests and responses.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum Body {
    /// Liveness check; answered with [`Body::Pong`].
    Ping,
    /// Asks for the contacts closest to `target`; answered with [`Body::Nodes`].
    FindNode {
        /// The point of the key space to approach.
        target: Key,
    },
    /// Asks for the record under `key`; answered with [`Body::Value`] or [`Body::Nodes`].
    FindValue {
        /// The record key.
        key: Key,
    },
    /// Asks the receiver to hold a record; answered with [`Body::Stored`].
    Store {
        /// The signed record.
        record: ValueRecord,
    },
    /// Announces that the sender provides `record.key`; answered with [`Body::Stored`].
    AddProvider {
        /// The signed provider record.
        record: ProviderRecord,
    },
    /// Asks for providers of `key`; answered with [`Body::Providers`].
    GetProviders {
        /// The content key.
        key: Key,
    },
    /// Answer to [`Body::Ping`].
    Pong,
    /// Contacts closer to the requested key.
    Nodes {
        /// Up to k contacts, closest first.
        closer: Vec<PeerInfo>,
    },
    /// The requested record.
    Value {
        /// The signed record.
        record: ValueRecord,
    },
    /// Whether a [`Body::Store`] or [`Body::AddProvider`] was accepted.
    Stored {
        /// True if the record is now held.
        accepted: bool,
    },
    /// Providers known for the requested key, and contacts closer to it.
    Providers {
        /// Signed provider records.
        providers: Vec<ProviderRecord>,
        /// Up to k contacts, closest first.
        closer: Vec<PeerInfo>,
    },
}

impl Body {
    /// Whether this body is a request (as opposed to a response).
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            Body::Ping
                | Body::FindNode { .. }
                | Body::FindValue { .. }
                | Body::Store { .. }
                | Body::AddProvider { .. }
                | Body::GetProviders { .. }
        )
    }

    /// Stable label for per-kind message metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Body::Ping => "ping",
            Body::FindNode { .. } => "find_node",
            Body::FindValue { .. } => "find_value",
            Body::Store { .. } => "store",
            Body::AddProvider { .. } => "add_provider",
            Body::GetProviders { .. } => "get_providers",
            Body::Pong => "pong",
            Body::Nodes { .. } => "nodes",
            Body::Value { .. } => "value",
            Body::Stored { .. } => "stored",
            Body::Providers { .. } => "providers",
        }
    }
}

impl DhtMessage {
    /// Encodes the message as a complete datagram.
    pub fn encode(&self) -> Vec<u8> {
        wire::encode(MessageKind::Dht, self)
    }

    /// Decodes a DHT body and checks its structural limits.
    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        let message: DhtMessage = wire::decode_body(body)?;
        let too_many = match &message.body {
            Body::Nodes { closer } => closer.len() > MAX_PEERS_PER_MESSAGE,
            Body::Providers { providers, closer } => {
                providers.len() > MAX_PEERS_PER_MESSAGE || closer.len() > MAX_PEERS_PER_MESSAGE
            }
            _ => false,
        };
        if too_many {
            return Err(WireError::Protocol("too many peers in one message"));
        }
        Ok(message)
    }
}
