//! Sphinx packets (Danezis & Goldberg 2009, as in Loopix and Nym): one
//! fixed size at every hop, bitwise unlinkable across a mix, with
//! single-use reply blocks.
//!
//! Wire layout ([`PACKET_LEN`] = 2,362 bytes):
//!
//! ```text
//! offset  len    field
//! 0       1      version (VERSION = 1)
//! 1       32     alpha: the hop's blinded group element (Edwards y, sign bit 0)
//! 33      265    beta: routing information, MAX_HOPS blocks of 53 bytes
//! 298     16     gamma: keyed-BLAKE3 MAC of beta, truncated
//! 314     2048   payload, Lioness-encrypted in layers
//! ```
//!
//! * [`Packet::create`] builds a packet for a path of 1..=[`MAX_HOPS`] hops.
//! * [`process`] is one mix's step: it returns [`Processed::Forward`] (the
//!   next hop, the sender's delay and the re-encrypted packet) or, at the
//!   last hop, [`Processed::Deliver`] / [`Processed::Reply`], always with
//!   the hop's [`ReplayTag`]; [`process_checked`] also consults a
//!   [`ReplayFilter`].
//! * [`Surb::create`] makes a single-use reply block; the recipient calls
//!   [`Surb::reply`]; the original sender reads the reply with
//!   [`SurbKeys::open`].
//!
//! Everything is pure: no I/O, no clock; randomness comes from the
//! caller's generator, so a seeded generator gives the same packet. Only
//! the real X25519 suite is supported (`CryptoSuite::SimFast` is not).

mod header;
mod keys;
mod payload;
mod replay;
mod surb;
#[cfg(test)]
mod tests;

pub use header::{BETA_LEN, HEADER_LEN, Header, ROUTING_BLOCK_LEN};
pub use payload::{MARKER_LEN, MAX_MESSAGE_LEN};
pub use replay::{ReplayFilter, ReplayTag};
pub use surb::{SURB_LEN, Surb, SurbKeys};

use crate::crypto::{KxPublic, KxSecret};
use crate::identity::NodeId;
use header::{Final, Routing};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

/// The wire format version, the first byte of every packet.
pub const VERSION: u8 = 1;

/// The most hops a packet can take. 5: Loopix's path is the sender's
/// provider, three mix layers (issue 6's default) and the recipient's
/// provider; a shorter path pads beta with random bytes, so the header
/// costs the same and hides the path length.
pub const MAX_HOPS: usize = 5;

/// Bytes of the header MAC. 16 (128 bits): a forger must guess it online,
/// one packet per try, against a mix that drops failures, so 2^-128 per
/// try is ample; the full 32 bytes would add 16 bytes to every packet.
pub const MAC_LEN: usize = 16;

/// Bytes of the payload: 2 KiB at every hop, whatever the message length.
pub const PAYLOAD_LEN: usize = 2048;

/// Bytes of a packet on the wire: version, header, payload (2,362).
pub const PACKET_LEN: usize = 1 + HEADER_LEN + PAYLOAD_LEN;

/// One hop of a path, as the sender sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hop {
    /// The mix's identity; the previous hop forwards to it.
    pub id: NodeId,
    /// The mix's X25519 public key for the current key epoch.
    pub key: KxPublic,
    /// How long this mix holds the packet, in microseconds (sender-chosen,
    /// e.g. exponential with mean μ for Poisson mixing; unused at the last hop).
    pub delay_us: u32,
}

/// The identifier of a single-use reply block: 16 random bytes the final
/// hop hands on with the reply, so the original sender finds its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SurbId(pub [u8; 16]);

/// Why a packet could not be made, parsed or processed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// A path needs at least one hop.
    #[error("empty path")]
    EmptyPath,
    /// A path longer than [`MAX_HOPS`].
    #[error("path of {hops} hops exceeds {max}")]
    PathTooLong {
        /// Hops asked for.
        hops: usize,
        /// [`MAX_HOPS`].
        max: usize,
    },
    /// A message longer than [`MAX_MESSAGE_LEN`].
    #[error("message of {len} bytes exceeds {max}")]
    MessageTooLong {
        /// Bytes asked for.
        len: usize,
        /// [`MAX_MESSAGE_LEN`].
        max: usize,
    },
    /// Hop `hop`'s public key is a low-order point (no shared secret).
    #[error("degenerate public key at hop {hop}")]
    DegenerateHopKey {
        /// Index of the hop in the path, from 0.
        hop: usize,
    },
    /// The bytes are not [`PACKET_LEN`] (or [`SURB_LEN`]) long.
    #[error("wrong length {len}")]
    BadLength {
        /// The length received.
        len: usize,
    },
    /// The version byte is not [`VERSION`].
    #[error("unknown version {0}")]
    BadVersion(u8),
    /// Alpha is not the canonical encoding of a curve point of large order
    /// (sign bit set, y not below p, not on the curve, or low order).
    #[error("degenerate group element")]
    DegenerateAlpha,
    /// The header MAC does not verify (tampered header, or not our key).
    #[error("header MAC mismatch")]
    BadMac,
    /// The routing block has an unknown flag (a malformed packet that the sender authenticated).
    #[error("unknown routing flag {0}")]
    BadRoutingFlag(u8),
    /// The payload does not decrypt to the integrity marker: it was tampered with.
    #[error("payload integrity check failed")]
    PayloadTampered,
    /// The packet's replay tag was seen before in this key epoch.
    #[error("replayed packet")]
    Replay,
    /// The packet was processed with a key epoch the filter no longer (or not yet) covers.
    #[error("key epoch {epoch} outside the replay filter (current {current})")]
    StaleEpoch {
        /// The epoch of the key used.
        epoch: u64,
        /// The filter's current epoch.
        current: u64,
    },
}

/// A Sphinx packet: header and payload, [`PACKET_LEN`] bytes on the wire.
#[derive(Clone, PartialEq, Eq)]
pub struct Packet {
    header: Header,
    payload: Box<[u8; PAYLOAD_LEN]>,
}

impl core::fmt::Debug for Packet {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Packet").field("header", &self.header).finish_non_exhaustive()
    }
}

/// What a mix does with a packet it processed.
// `Forward` (a 313-byte header inline) is the common case at a mix; boxing it
// would add an allocation per hop to save stack space in the rare variants.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, PartialEq, Eq)]
pub enum Processed {
    /// Hold the packet for `delay_us`, then send it to `next`.
    Forward {
        /// The next hop.
        next: NodeId,
        /// The sender-chosen delay at this mix, in microseconds.
        delay_us: u32,
        /// The re-encrypted packet, the same size as the one received.
        packet: Packet,
        /// Remember this to refuse replays ([`ReplayFilter`]).
        replay_tag: ReplayTag,
    },
    /// This is the last hop: hand `message` to `recipient`.
    Deliver {
        /// Who the message is for (a client this provider serves, or the node itself).
        recipient: NodeId,
        /// The message, its integrity checked.
        message: Vec<u8>,
        /// Remember this to refuse replays.
        replay_tag: ReplayTag,
    },
    /// This is the last hop of a SURB reply: hand the still-encrypted
    /// payload to `recipient`, who opens it with the [`SurbKeys`] of `surb_id`.
    Reply {
        /// The original sender (the SURB's creator).
        recipient: NodeId,
        /// Which SURB this answers.
        surb_id: SurbId,
        /// The payload, readable only with the SURB's keys.
        payload: Box<[u8; PAYLOAD_LEN]>,
        /// Remember this to refuse replays.
        replay_tag: ReplayTag,
    },
}

/// Checks a path's length.
fn check_path(path: &[Hop]) -> Result<(), PacketError> {
    match path.len() {
        0 => Err(PacketError::EmptyPath),
        n if n > MAX_HOPS => Err(PacketError::PathTooLong { hops: n, max: MAX_HOPS }),
        _ => Ok(()),
    }
}

/// 32 fresh bytes from `rng` as an ephemeral X25519 scalar.
fn ephemeral(rng: &mut impl CryptoRng) -> Zeroizing<[u8; 32]> {
    let mut x = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(x.as_mut());
    x
}

impl Packet {
    /// Builds a packet that carries `message` (at most [`MAX_MESSAGE_LEN`]
    /// bytes) along `path` (1..=[`MAX_HOPS`] hops; the last is the
    /// recipient's provider, or the recipient) to `recipient`. Returns the
    /// packet and the first hop to send it to. Draws 32 bytes plus padding
    /// from `rng`.
    pub fn create(
        rng: &mut impl CryptoRng,
        path: &[Hop],
        recipient: NodeId,
        message: &[u8],
    ) -> Result<(Packet, NodeId), PacketError> {
        check_path(path)?;
        let mut payload = payload::encode_message(message)?;
        let x = ephemeral(rng);
        let (alpha0, keys) = keys::sender_keys(&x, path.iter().map(|h| h.key))?;
        let header = Header::build(rng, alpha0, path, &keys, Final::Deliver(recipient));
        for k in keys.iter().rev() {
            k.payload.encrypt(&mut payload);
        }
        Ok((Packet { header, payload }, path[0].id))
    }

    /// The wire bytes: exactly [`PACKET_LEN`].
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_bytes_after(&[])
    }

    /// `prefix` (a datagram header) followed by the wire bytes, in one allocation.
    pub fn to_bytes_after(&self, prefix: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; prefix.len() + PACKET_LEN];
        out[..prefix.len()].copy_from_slice(prefix);
        let packet = &mut out[prefix.len()..];
        packet[0] = VERSION;
        self.header.write(&mut packet[1..1 + HEADER_LEN]);
        packet[1 + HEADER_LEN..].copy_from_slice(self.payload.as_ref());
        out
    }

    /// Parses wire bytes: [`PacketError::BadLength`] unless exactly
    /// [`PACKET_LEN`], [`PacketError::BadVersion`] unless [`VERSION`].
    /// Any such bytes parse; the cryptography is checked by [`process`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Packet, PacketError> {
        if bytes.len() != PACKET_LEN {
            return Err(PacketError::BadLength { len: bytes.len() });
        }
        if bytes[0] != VERSION {
            return Err(PacketError::BadVersion(bytes[0]));
        }
        let header_bytes: &[u8; HEADER_LEN] =
            bytes[1..1 + HEADER_LEN].try_into().map_err(|_| PacketError::BadLength { len: bytes.len() })?;
        let mut payload = Box::new([0u8; PAYLOAD_LEN]);
        payload.copy_from_slice(&bytes[1 + HEADER_LEN..]);
        Ok(Packet { header: Header::read(header_bytes), payload })
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }
}

/// One mix's step on `packet` with its key-epoch secret `sk`: checks the
/// header MAC, decrypts its routing block and a payload layer, blinds
/// alpha. No replay check: the caller must remember the returned
/// [`ReplayTag`] (or use [`process_checked`]).
pub fn process(sk: &KxSecret, packet: Packet) -> Result<Processed, PacketError> {
    process_inner(sk, packet, None)
}

/// [`process`] with a replay check: after the MAC verifies (so a forgery
/// cannot poison the filter) the tag is recorded in `filter` under key
/// epoch `epoch`, and a packet seen before is refused with
/// [`PacketError::Replay`] before any further work.
pub fn process_checked(
    sk: &KxSecret,
    epoch: u64,
    filter: &mut ReplayFilter,
    packet: Packet,
) -> Result<Processed, PacketError> {
    process_inner(sk, packet, Some((filter, epoch)))
}

fn process_inner(
    sk: &KxSecret,
    packet: Packet,
    filter: Option<(&mut ReplayFilter, u64)>,
) -> Result<Processed, PacketError> {
    let Packet { header, mut payload } = packet;
    let (s, alpha) = keys::mix_shared(sk, &header.alpha)?;
    let k = keys::HopKeys::derive(&s, &header.alpha);
    let (routing, beta) = header.unwrap(&k)?;
    if let Some((filter, epoch)) = filter {
        filter.insert(epoch, k.replay)?;
    }
    k.payload.decrypt(&mut payload);
    let replay_tag = k.replay;
    Ok(match routing {
        Routing::Forward { next, delay_us, mac } => Processed::Forward {
            next,
            delay_us,
            packet: Packet { header: Header { alpha: k.blind(&alpha).0, beta, gamma: mac }, payload },
            replay_tag,
        },
        Routing::Final(Final::Deliver(recipient)) => {
            Processed::Deliver { recipient, message: payload::decode_message(&payload)?, replay_tag }
        }
        Routing::Final(Final::Reply(recipient, surb_id)) => {
            Processed::Reply { recipient, surb_id, payload, replay_tag }
        }
    })
}
