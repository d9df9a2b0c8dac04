//! What travels between a client and its provider besides mix packets:
//! deliveries (provider to client), the same size as a mix packet so that
//! every packet on every link looks alike, and the subscription by which a
//! client tells its provider where to push them (a signed answer to the
//! provider's challenge).
//!
//! Delivery datagram, [`DELIVERY_DATAGRAM_LEN`] bytes:
//!
//! ```text
//! [version][kind = MixDelivery][type: 1 message, 2 reply][SURB id: 16][len: u16 LE][content][zeros]
//! ```
//!
//! A message's content is what the last hop's Sphinx payload carried (a
//! message sealed to the client); a reply's is the whole still-encrypted
//! payload, which only the SURB's creator opens.

use super::packet::{PACKET_LEN, PAYLOAD_LEN, SurbId};
use crate::identity::{Identity, NodeId, SIGNATURE_LEN, verify_signature};
use crate::wire::{self, HEADER_LEN, MessageKind, VERSION, WireError};

/// Bytes of a delivery datagram: a mix packet's, header included.
pub const DELIVERY_DATAGRAM_LEN: usize = HEADER_LEN + PACKET_LEN;
/// Bytes of a delivery's fixed prefix: type, SURB id, length.
const PREFIX: usize = 1 + 16 + 2;
/// Delivery type byte: a message for the client.
const TYPE_MESSAGE: u8 = 1;
/// Delivery type byte: a SURB reply for the client.
const TYPE_REPLY: u8 = 2;
/// Domain separation of subscription signatures.
const SUBSCRIBE_CONTEXT: &[u8] = b"allium mix subscribe v1";

/// What a provider hands its client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// A message's content (sealed to the client, or cover).
    Message(Vec<u8>),
    /// A reply through one of the client's SURBs.
    Reply {
        /// Which SURB.
        surb_id: SurbId,
        /// The payload, still encrypted under the SURB's keys.
        payload: Box<[u8; PAYLOAD_LEN]>,
    },
}

impl Delivery {
    /// The delivery datagram: exactly [`DELIVERY_DATAGRAM_LEN`] bytes.
    pub fn to_datagram(&self) -> Vec<u8> {
        let mut out = vec![0u8; DELIVERY_DATAGRAM_LEN];
        out[0] = VERSION;
        out[1] = MessageKind::MixDelivery as u8;
        let body = &mut out[HEADER_LEN..];
        let (kind, id, content): (u8, [u8; 16], &[u8]) = match self {
            Delivery::Message(m) => (TYPE_MESSAGE, [0; 16], m),
            Delivery::Reply { surb_id, payload } => (TYPE_REPLY, surb_id.0, payload.as_ref()),
        };
        // A message longer than a payload cannot come out of a Sphinx packet.
        let len = content.len().min(PACKET_LEN - PREFIX);
        body[0] = kind;
        body[1..17].copy_from_slice(&id);
        body[17..19].copy_from_slice(&(len as u16).to_le_bytes());
        body[PREFIX..PREFIX + len].copy_from_slice(&content[..len]);
        out
    }

    /// Parses a delivery body (the datagram after its 2-byte header).
    pub fn parse(body: &[u8]) -> Result<Delivery, WireError> {
        if body.len() != PACKET_LEN {
            return Err(if body.len() < PACKET_LEN {
                WireError::Truncated
            } else {
                WireError::Protocol("delivery size")
            });
        }
        let len = usize::from(u16::from_le_bytes([body[17], body[18]]));
        let content = body.get(PREFIX..PREFIX + len).ok_or(WireError::InvalidField("delivery length"))?;
        if body[PREFIX + len..].iter().any(|&b| b != 0) {
            return Err(WireError::InvalidField("delivery padding"));
        }
        match body[0] {
            TYPE_MESSAGE if body[1..17].iter().all(|&b| b == 0) => Ok(Delivery::Message(content.to_vec())),
            TYPE_REPLY => {
                let payload: [u8; PAYLOAD_LEN] =
                    content.try_into().map_err(|_| WireError::InvalidField("reply length"))?;
                let mut id = [0u8; 16];
                id.copy_from_slice(&body[1..17]);
                Ok(Delivery::Reply { surb_id: SurbId(id), payload: Box::new(payload) })
            }
            _ => Err(WireError::InvalidField("delivery type")),
        }
    }
}

/// Messages between a client and its provider (bincode).
///
/// A subscription is a challenge and a signed answer: the client asks, the
/// provider answers with a nonce bound to the client and the current time
/// window (a keyed hash, so the provider keeps no state), and the client
/// signs the nonce. A recorded subscription is useless once its window has
/// passed, whatever the client did since (restarts included).
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum Control {
    /// "I want to subscribe": the client's id.
    Hello {
        /// The client.
        client: NodeId,
    },
    /// The provider's challenge for that client.
    Challenge {
        /// To be signed.
        nonce: [u8; 16],
    },
    /// "Push my messages to the address this came from", signed by the
    /// client over [`SUBSCRIBE_CONTEXT`], the provider id and the nonce.
    Subscribe {
        /// The client's Ed25519 public key; its id is the hash.
        signing_key: [u8; 32],
        /// The provider this subscription is for.
        provider: NodeId,
        /// The provider's challenge.
        nonce: [u8; 16],
        /// The signature.
        signature: [u8; SIGNATURE_LEN],
    },
    /// The provider accepted the subscription.
    Subscribed,
}

fn subscribe_message(provider: &NodeId, nonce: &[u8; 16]) -> Vec<u8> {
    let mut m = SUBSCRIBE_CONTEXT.to_vec();
    m.extend_from_slice(&provider.0);
    m.extend_from_slice(nonce);
    m
}

/// A provider's challenge for `client` in time window `window`, under the
/// provider's secret `key`.
pub fn challenge_nonce(key: &[u8; 32], client: &NodeId, window: u64) -> [u8; 16] {
    let mut h = blake3::Hasher::new_keyed(key);
    h.update(&client.0);
    h.update(&window.to_le_bytes());
    let mut nonce = [0u8; 16];
    nonce.copy_from_slice(&h.finalize().as_bytes()[..16]);
    nonce
}

impl Control {
    /// A subscription by `identity` to `provider`, answering `nonce`.
    pub fn subscribe(identity: &Identity, provider: NodeId, nonce: [u8; 16]) -> Control {
        Control::Subscribe {
            signing_key: identity.public().signing_key,
            provider,
            nonce,
            signature: identity.sign(&subscribe_message(&provider, &nonce)),
        }
    }

    /// The datagram.
    pub fn to_datagram(&self) -> Vec<u8> {
        wire::encode(MessageKind::MixControl, self)
    }

    /// Decodes a control body; a subscription's signature is checked here,
    /// and it must name `local` as the provider (its nonce is the caller's
    /// to check).
    pub fn parse(body: &[u8], local: &NodeId) -> Result<Control, WireError> {
        let control: Control = wire::decode_body(body)?;
        if let Control::Subscribe { signing_key, provider, nonce, signature } = &control {
            if provider != local {
                return Err(WireError::Protocol("subscription for another provider"));
            }
            if !verify_signature(signing_key, &subscribe_message(provider, nonce), signature) {
                return Err(WireError::Protocol("bad subscription signature"));
            }
        }
        Ok(control)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::CryptoSuite;
    use crate::rng::NodeSeed;

    #[test]
    fn deliveries_round_trip_at_packet_size() {
        for d in [
            Delivery::Message(vec![7; 2030]),
            Delivery::Message(Vec::new()),
            Delivery::Reply { surb_id: SurbId([3; 16]), payload: Box::new([9; PAYLOAD_LEN]) },
        ] {
            let bytes = d.to_datagram();
            assert_eq!(bytes.len(), DELIVERY_DATAGRAM_LEN);
            let (kind, body) = wire::split(&bytes).unwrap();
            assert_eq!(kind, MessageKind::MixDelivery);
            assert_eq!(Delivery::parse(body).unwrap(), d);
        }
    }

    #[test]
    fn bad_deliveries_are_refused() {
        let bytes = Delivery::Message(vec![1; 10]).to_datagram();
        let body = &bytes[HEADER_LEN..];
        assert!(Delivery::parse(&body[..100]).is_err());
        let mut padded = body.to_vec();
        padded[PREFIX + 20] = 1;
        assert!(Delivery::parse(&padded).is_err());
        let mut long = body.to_vec();
        long[17..19].copy_from_slice(&u16::MAX.to_le_bytes());
        assert!(Delivery::parse(&long).is_err());
        let mut kind = body.to_vec();
        kind[0] = 9;
        assert!(Delivery::parse(&kind).is_err());
    }

    #[test]
    fn subscriptions_verify_and_bind_the_provider() {
        let client = Identity::from_seed(&NodeSeed::derive(1, 1), CryptoSuite::Real);
        let provider = NodeId([5; 32]);
        let nonce = challenge_nonce(&[1; 32], &client.id(), 7);
        assert_ne!(nonce, challenge_nonce(&[1; 32], &client.id(), 8));
        assert_ne!(nonce, challenge_nonce(&[2; 32], &client.id(), 7));
        let bytes = Control::subscribe(&client, provider, nonce).to_datagram();
        let body = &bytes[HEADER_LEN..];
        assert!(matches!(Control::parse(body, &provider), Ok(Control::Subscribe { nonce: n, .. }) if n == nonce));
        assert!(Control::parse(body, &NodeId([6; 32])).is_err());
        let mut forged = body.to_vec();
        let n = forged.len();
        forged[n - 1] ^= 1;
        assert!(Control::parse(&forged, &provider).is_err());
    }
}
