//! What an end-to-end cell carries once its layers are off: a one-byte type,
//! then either the channel's frames or a telescoping message.
//!
//! ```text
//! plaintext (PLAINTEXT_LEN = 1169 bytes)
//! 0     1     type: 1 CHANNEL, 2 EXTEND, 3 EXTENDED
//! 1     1168  CHANNEL: the channel's frames (see channel/frame.rs)
//!             EXTEND:  family 1 (4 or 6) | address 16 (IPv4 in the first 4) | port 2 BE
//!                      | next relay's id 32 | client ephemeral X 32 | next relay's hop 1 | zeros
//!             EXTENDED: relay ephemeral Y 32 | AUTH 32 | zeros
//! ```
//! EXTEND names the next relay and carries the client's half of the
//! handshake with it; the relay copies the X, id and hop into a CREATE. EXTENDED
//! carries the next relay's CREATED back. The padding must be zero.

use super::cell::{CreateBody, CreatedBody, PLAINTEXT_LEN};
use crate::crypto::KxPublic;
use crate::identity::NodeId;
use crate::node::Addr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Bytes after the type byte.
pub const BODY_LEN: usize = PLAINTEXT_LEN - 1;

/// The type byte of a CHANNEL payload.
pub const TYPE_CHANNEL: u8 = 1;
/// The type byte of an EXTEND payload.
pub const TYPE_EXTEND: u8 = 2;
/// The type byte of an EXTENDED payload.
pub const TYPE_EXTENDED: u8 = 3;

/// A malformed end-to-end payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The type byte is not 1, 2 or 3.
    #[error("unknown payload type {0}")]
    UnknownType(u8),
    /// The address family is not 4 or 6.
    #[error("bad address family {0}")]
    Family(u8),
    /// Bytes after the message are not zero.
    #[error("non-zero padding")]
    Padding,
}

/// Ask the last hop to extend the circuit to `next`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extend {
    /// Where the next relay listens.
    pub addr: Addr,
    /// The client's handshake with it.
    pub create: CreateBody,
}

/// A decoded payload.
#[derive(Debug, PartialEq, Eq)]
pub enum Payload<'a> {
    /// Channel frames.
    Channel(&'a [u8; BODY_LEN]),
    /// Extend the circuit.
    Extend(Extend),
    /// The next relay's handshake reply.
    Extended(CreatedBody),
}

const EXTEND_LEN: usize = 1 + 16 + 2 + 32 + 32 + 1;
const EXTENDED_LEN: usize = 64;

/// Reads a plaintext.
pub fn decode(plaintext: &[u8; PLAINTEXT_LEN]) -> Result<Payload<'_>, PayloadError> {
    let (kind, rest) = plaintext.split_first().ok_or(PayloadError::UnknownType(0))?;
    let body: &[u8; BODY_LEN] = rest.try_into().map_err(|_| PayloadError::UnknownType(*kind))?;
    match *kind {
        TYPE_CHANNEL => Ok(Payload::Channel(body)),
        TYPE_EXTEND => {
            zero_tail(&body[EXTEND_LEN..])?;
            let ip = match body[0] {
                4 => IpAddr::V4(Ipv4Addr::new(body[1], body[2], body[3], body[4])),
                6 => IpAddr::V6(Ipv6Addr::from(array::<16>(&body[1..17]))),
                other => return Err(PayloadError::Family(other)),
            };
            if body[0] == 4 && body[5..17].iter().any(|&b| b != 0) {
                return Err(PayloadError::Padding);
            }
            let port = u16::from_be_bytes([body[17], body[18]]);
            let relay_id = NodeId(array::<32>(&body[19..51]));
            let client_public = KxPublic(array::<32>(&body[51..83]));
            Ok(Payload::Extend(Extend {
                addr: SocketAddr::new(ip, port),
                create: CreateBody { client_public, relay_id, hop: body[83] },
            }))
        }
        TYPE_EXTENDED => {
            zero_tail(&body[EXTENDED_LEN..])?;
            Ok(Payload::Extended(CreatedBody {
                server_public: KxPublic(array::<32>(&body[..32])),
                auth: array::<32>(&body[32..64]),
            }))
        }
        other => Err(PayloadError::UnknownType(other)),
    }
}

/// Writes an EXTEND plaintext.
pub fn encode_extend(extend: &Extend, out: &mut [u8; PLAINTEXT_LEN]) {
    out.fill(0);
    out[0] = TYPE_EXTEND;
    let body = &mut out[1..];
    match extend.addr.ip() {
        IpAddr::V4(v4) => {
            body[0] = 4;
            body[1..5].copy_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            body[0] = 6;
            body[1..17].copy_from_slice(&v6.octets());
        }
    }
    body[17..19].copy_from_slice(&extend.addr.port().to_be_bytes());
    body[19..51].copy_from_slice(extend.create.relay_id.as_bytes());
    body[51..83].copy_from_slice(&extend.create.client_public.0);
    body[83] = extend.create.hop;
}

/// Writes an EXTENDED plaintext.
pub fn encode_extended(created: &CreatedBody, out: &mut [u8; PLAINTEXT_LEN]) {
    out.fill(0);
    out[0] = TYPE_EXTENDED;
    out[1..33].copy_from_slice(&created.server_public.0);
    out[33..65].copy_from_slice(&created.auth);
}

/// The channel's part of a CHANNEL plaintext, after setting the type byte.
pub fn channel_body(out: &mut [u8; PLAINTEXT_LEN]) -> &mut [u8; BODY_LEN] {
    out[0] = TYPE_CHANNEL;
    let (_, rest) = out.split_at_mut(1);
    // PLAINTEXT_LEN - 1 == BODY_LEN by definition.
    rest.try_into().expect("BODY_LEN is PLAINTEXT_LEN - 1")
}

fn zero_tail(tail: &[u8]) -> Result<(), PayloadError> {
    if tail.iter().all(|&b| b == 0) { Ok(()) } else { Err(PayloadError::Padding) }
}

fn array<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extend_and_extended_round_trip_and_padding_is_checked() {
        for addr in ["10.1.2.3:9000", "[2001:db8::7]:443"] {
            let extend = Extend {
                addr: addr.parse().unwrap(),
                create: CreateBody { client_public: KxPublic([7; 32]), relay_id: NodeId([9; 32]), hop: 2 },
            };
            let mut buf = [0u8; PLAINTEXT_LEN];
            encode_extend(&extend, &mut buf);
            assert_eq!(decode(&buf), Ok(Payload::Extend(extend.clone())));
            buf[PLAINTEXT_LEN - 1] = 1;
            assert_eq!(decode(&buf), Err(PayloadError::Padding));
        }
        let created = CreatedBody { server_public: KxPublic([1; 32]), auth: [2; 32] };
        let mut buf = [0u8; PLAINTEXT_LEN];
        encode_extended(&created, &mut buf);
        assert_eq!(decode(&buf), Ok(Payload::Extended(created)));
        buf[0] = 9;
        assert_eq!(decode(&buf), Err(PayloadError::UnknownType(9)));
        let mut buf = [0u8; PLAINTEXT_LEN];
        buf[0] = TYPE_EXTEND;
        buf[1] = 5;
        assert_eq!(decode(&buf), Err(PayloadError::Family(5)));
    }
}
