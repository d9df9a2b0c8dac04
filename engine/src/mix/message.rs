//! What mix packets carry: end-to-end sealing, the inner messages and the
//! message body.
//!
//! * [`seal`] / [`open`]: a fragment delivered through a provider is sealed
//!   to the recipient's X25519 key so the provider cannot read it. A fresh
//!   ephemeral key per message; the AEAD key is
//!   `derive_key("allium mix e2e v1 key", shared | eph_pub | recipient_pub)`
//!   and the nonce is zero (each key seals exactly one message). Layout:
//!   `eph_pub (32) | ciphertext | tag (16)`.
//! * [`Inner`]: the plaintext of a sealed fragment or of a SURB reply.
//! * [`MessageBody`]: the whole message (reply SURBs and data) that is
//!   split into fragments and reassembled.
//!
//! Inner layout (little-endian integers; strict: exact length, unknown type
//! and trailing bytes refused):
//!
//! ```text
//! type u8: 1 fragment, 2 ack, 3 loop
//! fragment: id 16 | index u16 | count u16 | has_surb u8 (0/1) | [SURB_LEN SURB] | data len u16 | data
//! ack:      id 16 | index u16
//! loop:     nonce u64
//! ```
//!
//! Message body layout: `n u8 (<= MAX_REPLY_SURBS) | n × SURB_LEN SURBs | data (the rest)`.

use crate::crypto::{CryptoSuite, KxPublic, KxSecret, SharedSecret, aead, kdf};
use crate::mix::packet::{MAX_MESSAGE_LEN, SURB_LEN, Surb};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

/// Context string of the end-to-end key derivation.
const E2E_KEY_CONTEXT: &str = "allium mix e2e v1 key";

/// Bytes [`seal`] adds: the ephemeral public key (32) and the Poly1305 tag (16).
pub const SEAL_OVERHEAD: usize = 32 + aead::TAG_LEN;

/// The most fragments one message may have (a fragment's `count` is at most this).
pub const MAX_FRAGMENTS: usize = 256;

/// The most reply SURBs one [`MessageBody`] carries.
pub const MAX_REPLY_SURBS: usize = 16;

/// Bytes of an encoded fragment besides its SURB and data: type, id,
/// index, count, SURB flag, data length.
const FRAGMENT_HEADER_LEN: usize = 1 + 16 + 2 + 2 + 1 + 2;

/// Largest `data` of one fragment such that `seal(encode(Fragment with an
/// ack SURB))` fits one packet's [`MAX_MESSAGE_LEN`] (2,030 bytes): 1,581.
pub const MAX_FRAGMENT_DATA: usize = MAX_MESSAGE_LEN - SEAL_OVERHEAD - FRAGMENT_HEADER_LEN - SURB_LEN;

/// Largest `data` of one fragment without an ack SURB sent unsealed (a
/// reply through a SURB, which only the SURB's creator can read) such that
/// `encode(Fragment)` fits [`MAX_MESSAGE_LEN`]: 2,006.
pub const MAX_REPLY_FRAGMENT_DATA: usize = MAX_MESSAGE_LEN - FRAGMENT_HEADER_LEN;

const TYPE_FRAGMENT: u8 = 1;
const TYPE_ACK: u8 = 2;
const TYPE_LOOP: u8 = 3;

/// Why a sealed message, an inner message or a message body was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    /// The bytes ended before the message did.
    #[error("message truncated")]
    Truncated,
    /// The message decoded but bytes were left over.
    #[error("{extra} trailing bytes after message")]
    TrailingBytes {
        /// Number of unread bytes.
        extra: usize,
    },
    /// The inner message type byte is not one this version knows.
    #[error("unknown inner message type {0}")]
    UnknownType(u8),
    /// A fragment's SURB flag is neither 0 nor 1.
    #[error("invalid SURB flag {0}")]
    BadSurbFlag(u8),
    /// A fragment's index and count break the rules: `1 <= count <=
    /// MAX_FRAGMENTS` and `index < count`.
    #[error("fragment {index} of {count} is out of range")]
    BadFragment {
        /// The fragment's index.
        index: u16,
        /// The fragment's count.
        count: u16,
    },
    /// A message body announces more than [`MAX_REPLY_SURBS`] SURBs.
    #[error("{0} reply SURBs exceed {MAX_REPLY_SURBS}")]
    TooManySurbs(u8),
    /// A public key is degenerate (an X25519 low-order point): no shared secret.
    #[error("degenerate public key")]
    DegenerateKey,
    /// The sealed message does not authenticate (tampered, or not for this key).
    #[error("sealed message does not authenticate")]
    Unauthentic,
}

impl MessageError {
    /// Name of the per-reason counter, `mix.message.rejected.<label>`.
    pub fn metric(&self) -> &'static str {
        match self {
            MessageError::Truncated => "mix.message.rejected.truncated",
            MessageError::TrailingBytes { .. } => "mix.message.rejected.trailing",
            MessageError::UnknownType(_) => "mix.message.rejected.type",
            MessageError::BadSurbFlag(_) => "mix.message.rejected.surb_flag",
            MessageError::BadFragment { .. } => "mix.message.rejected.fragment",
            MessageError::TooManySurbs(_) => "mix.message.rejected.surbs",
            MessageError::DegenerateKey => "mix.message.rejected.degenerate_key",
            MessageError::Unauthentic => "mix.message.rejected.auth",
        }
    }

    /// The stable reason label: the last segment of [`MessageError::metric`].
    pub fn label(&self) -> &'static str {
        let metric = self.metric();
        metric.strip_prefix("mix.message.rejected.").unwrap_or(metric)
    }
}

/// The end-to-end AEAD key of one message.
fn message_key(shared: &SharedSecret, eph_pub: &KxPublic, recipient: &KxPublic) -> Zeroizing<[u8; 32]> {
    let mut material = Zeroizing::new([0u8; 96]);
    material[..32].copy_from_slice(shared.as_ref());
    material[32..64].copy_from_slice(&eph_pub.0);
    material[64..].copy_from_slice(&recipient.0);
    kdf::derive_key(E2E_KEY_CONTEXT, material.as_ref())
}

/// Seals `plaintext` to the holder of `to`'s secret.
///
/// * `suite`: the key-agreement suite (the recipient's).
/// * `rng`: draws the 32-byte ephemeral secret.
/// * `to`: the recipient's X25519 public key (its onion key).
/// * `plaintext`: any length; the result is [`SEAL_OVERHEAD`] bytes longer.
///
/// [`MessageError::DegenerateKey`] when `to` is a low-order point.
pub fn seal(
    suite: CryptoSuite,
    rng: &mut impl CryptoRng,
    to: &KxPublic,
    plaintext: &[u8],
) -> Result<Vec<u8>, MessageError> {
    let mut x = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(x.as_mut());
    let eph = KxSecret::from_bytes(*x);
    let eph_pub = suite.kx_public(&eph);
    let shared = suite.kx_agree(&eph, to).ok_or(MessageError::DegenerateKey)?;
    let key = message_key(&shared, &eph_pub, to);
    let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
    out.extend_from_slice(&eph_pub.0);
    out.extend_from_slice(plaintext);
    let tag = aead::seal(&key, &[0u8; aead::NONCE_LEN], &[], &mut out[32..]);
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens a message [`seal`]ed to `secret`'s public key.
///
/// * `suite`: the key-agreement suite `secret` belongs to.
/// * `secret`: the recipient's X25519 secret (its onion key).
/// * `sealed`: at least [`SEAL_OVERHEAD`] bytes, else [`MessageError::Truncated`].
///
/// [`MessageError::DegenerateKey`] when the ephemeral key is a low-order
/// point; [`MessageError::Unauthentic`] when the tag does not verify.
pub fn open(suite: CryptoSuite, secret: &KxSecret, sealed: &[u8]) -> Result<Vec<u8>, MessageError> {
    let (eph_pub, rest) = sealed.split_first_chunk::<32>().ok_or(MessageError::Truncated)?;
    let (ciphertext, tag) = rest.split_last_chunk::<{ aead::TAG_LEN }>().ok_or(MessageError::Truncated)?;
    let eph_pub = KxPublic(*eph_pub);
    let shared = suite.kx_agree(secret, &eph_pub).ok_or(MessageError::DegenerateKey)?;
    let key = message_key(&shared, &eph_pub, &suite.kx_public(secret));
    let mut plaintext = ciphertext.to_vec();
    aead::open(&key, &[0u8; aead::NONCE_LEN], &[], &mut plaintext, tag).map_err(|_| MessageError::Unauthentic)?;
    Ok(plaintext)
}

/// The identifier of a message, shared by all of its fragments: 16 random bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MessageId(pub [u8; 16]);

/// One fragment of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fragment {
    /// The message this is part of.
    pub message: MessageId,
    /// Which part, from 0; below `count`.
    pub index: u16,
    /// How many parts the message has: 1 to [`MAX_FRAGMENTS`].
    pub count: u16,
    /// Lets the recipient acknowledge this fragment without learning the
    /// sender (None for fragments that are themselves replies).
    pub ack_surb: Option<Surb>,
    /// This part of the encoded [`MessageBody`]: at most
    /// [`MAX_FRAGMENT_DATA`] bytes with an ack SURB (sealed),
    /// [`MAX_REPLY_FRAGMENT_DATA`] without one (unsealed reply). The
    /// encoding holds at most `u16::MAX` bytes of it.
    pub data: Vec<u8>,
}

/// An inner message: the plaintext of a sealed fragment, or of a SURB reply.
// `Fragment` (an inline SURB header) is the common case; boxing it would add
// an allocation per fragment to save stack space in the small variants.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inner {
    /// Part `index` of `count` of message `message`; `ack_surb` lets the
    /// recipient acknowledge it without learning the sender (None for
    /// fragments that are themselves replies).
    Fragment(Fragment),
    /// Acknowledges fragment `index` of `message`.
    Ack {
        /// The message acknowledged.
        message: MessageId,
        /// The fragment acknowledged.
        index: u16,
    },
    /// Cover traffic that returns to its sender (loop); `nonce` lets the sender match it.
    Loop {
        /// Chosen by the sender, echoed unchanged.
        nonce: u64,
    },
}

/// Checks a fragment's index and count.
fn check_fragment(index: u16, count: u16) -> Result<(), MessageError> {
    if count == 0 || usize::from(count) > MAX_FRAGMENTS || index >= count {
        return Err(MessageError::BadFragment { index, count });
    }
    Ok(())
}

/// A cursor over untrusted bytes; every read is checked.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], MessageError> {
        let (head, rest) = self.0.split_at_checked(n).ok_or(MessageError::Truncated)?;
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], MessageError> {
        let (head, rest) = self.0.split_first_chunk::<N>().ok_or(MessageError::Truncated)?;
        self.0 = rest;
        Ok(*head)
    }

    fn u8(&mut self) -> Result<u8, MessageError> {
        self.array::<1>().map(|[b]| b)
    }

    fn u16(&mut self) -> Result<u16, MessageError> {
        self.array().map(u16::from_le_bytes)
    }

    fn surb(&mut self) -> Result<Surb, MessageError> {
        // `take` gave exactly SURB_LEN bytes, the only thing `from_bytes` checks.
        Surb::from_bytes(self.take(SURB_LEN)?).map_err(|_| MessageError::Truncated)
    }

    /// Refuses leftover bytes.
    fn finish(self) -> Result<(), MessageError> {
        match self.0.len() {
            0 => Ok(()),
            extra => Err(MessageError::TrailingBytes { extra }),
        }
    }
}

impl Inner {
    /// The encoding (see the module documentation). A fragment's data is
    /// cut to `u16::MAX` bytes, far more than any packet carries.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Inner::Fragment(f) => {
                let len = f.data.len().min(usize::from(u16::MAX));
                let surb_len = if f.ack_surb.is_some() { SURB_LEN } else { 0 };
                let mut out = Vec::with_capacity(FRAGMENT_HEADER_LEN + surb_len + len);
                out.push(TYPE_FRAGMENT);
                out.extend_from_slice(&f.message.0);
                out.extend_from_slice(&f.index.to_le_bytes());
                out.extend_from_slice(&f.count.to_le_bytes());
                match &f.ack_surb {
                    Some(surb) => {
                        out.push(1);
                        out.extend_from_slice(&surb.to_bytes());
                    }
                    None => out.push(0),
                }
                out.extend_from_slice(&(len as u16).to_le_bytes());
                out.extend_from_slice(f.data.get(..len).unwrap_or_default());
                out
            }
            Inner::Ack { message, index } => {
                let mut out = Vec::with_capacity(19);
                out.push(TYPE_ACK);
                out.extend_from_slice(&message.0);
                out.extend_from_slice(&index.to_le_bytes());
                out
            }
            Inner::Loop { nonce } => {
                let mut out = Vec::with_capacity(9);
                out.push(TYPE_LOOP);
                out.extend_from_slice(&nonce.to_le_bytes());
                out
            }
        }
    }

    /// Parses [`Inner::encode`]'s output, strictly: the exact length, a
    /// known type, a SURB flag of 0 or 1, a valid index and count, no
    /// trailing bytes.
    pub fn decode(bytes: &[u8]) -> Result<Inner, MessageError> {
        let mut r = Reader(bytes);
        let inner = match r.u8()? {
            TYPE_FRAGMENT => {
                let message = MessageId(r.array()?);
                let index = r.u16()?;
                let count = r.u16()?;
                check_fragment(index, count)?;
                let ack_surb = match r.u8()? {
                    0 => None,
                    1 => Some(r.surb()?),
                    flag => return Err(MessageError::BadSurbFlag(flag)),
                };
                let len = r.u16()?;
                let data = r.take(usize::from(len))?.to_vec();
                Inner::Fragment(Fragment { message, index, count, ack_surb, data })
            }
            TYPE_ACK => Inner::Ack { message: MessageId(r.array()?), index: r.u16()? },
            TYPE_LOOP => Inner::Loop { nonce: u64::from_le_bytes(r.array()?) },
            other => return Err(MessageError::UnknownType(other)),
        };
        r.finish()?;
        Ok(inner)
    }
}

/// A whole message, as fragmented and reassembled: the reply SURBs the
/// sender gives the recipient, and the data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageBody {
    /// SURBs the recipient may use to answer: at most [`MAX_REPLY_SURBS`]
    /// (the encoding holds the first [`MAX_REPLY_SURBS`]).
    pub reply_surbs: Vec<Surb>,
    /// The application's bytes.
    pub data: Vec<u8>,
}

impl MessageBody {
    /// The encoding: SURB count, SURBs, data. Only the first
    /// [`MAX_REPLY_SURBS`] SURBs are written.
    pub fn encode(&self) -> Vec<u8> {
        let surbs = self.reply_surbs.get(..MAX_REPLY_SURBS).unwrap_or(&self.reply_surbs);
        let mut out = Vec::with_capacity(1 + surbs.len() * SURB_LEN + self.data.len());
        out.push(surbs.len() as u8);
        for surb in surbs {
            out.extend_from_slice(&surb.to_bytes());
        }
        out.extend_from_slice(&self.data);
        out
    }

    /// Parses [`MessageBody::encode`]'s output: [`MessageError::TooManySurbs`]
    /// over [`MAX_REPLY_SURBS`], [`MessageError::Truncated`] when the SURBs
    /// announced are not all there.
    pub fn decode(bytes: &[u8]) -> Result<MessageBody, MessageError> {
        let mut r = Reader(bytes);
        let n = r.u8()?;
        if usize::from(n) > MAX_REPLY_SURBS {
            return Err(MessageError::TooManySurbs(n));
        }
        let reply_surbs = (0..n).map(|_| r.surb()).collect::<Result<Vec<_>, _>>()?;
        Ok(MessageBody { reply_surbs, data: r.0.to_vec() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::NodeId;
    use crate::mix::packet::{Hop, Packet, PacketError};
    use crate::rng::EngineRng;
    use proptest::prelude::*;
    use rand_core::SeedableRng;

    fn rng(seed: u8) -> EngineRng {
        EngineRng::from_seed([seed; 32])
    }

    fn surb(byte: u8) -> Surb {
        Surb::from_bytes(&[byte; SURB_LEN]).unwrap()
    }

    fn keypair(suite: CryptoSuite, byte: u8) -> (KxSecret, KxPublic) {
        let sk = KxSecret::from_bytes([byte; 32]);
        let pk = suite.kx_public(&sk);
        (sk, pk)
    }

    #[test]
    fn seal_open_round_trip_in_both_suites() {
        for suite in [CryptoSuite::Real, CryptoSuite::SimFast] {
            let (sk, pk) = keypair(suite, 7);
            for len in [0, 1, 100, MAX_MESSAGE_LEN - SEAL_OVERHEAD] {
                let msg: Vec<u8> = (0..len).map(|i| i as u8).collect();
                let sealed = seal(suite, &mut rng(1), &pk, &msg).unwrap();
                assert_eq!(sealed.len(), len + SEAL_OVERHEAD);
                assert_eq!(open(suite, &sk, &sealed).unwrap(), msg, "{suite:?} {len}");
            }
        }
    }

    #[test]
    fn seal_is_fresh_per_message() {
        let (_, pk) = keypair(CryptoSuite::Real, 7);
        let mut r = rng(1);
        let a = seal(CryptoSuite::Real, &mut r, &pk, b"same").unwrap();
        let b = seal(CryptoSuite::Real, &mut r, &pk, b"same").unwrap();
        assert_ne!(a[..32], b[..32]);
        assert_ne!(a[32..], b[32..]);
        // Deterministic for a seeded generator.
        assert_eq!(a, seal(CryptoSuite::Real, &mut rng(1), &pk, b"same").unwrap());
    }

    #[test]
    fn open_refuses_wrong_key_tampering_and_truncation() {
        let suite = CryptoSuite::Real;
        let (sk, pk) = keypair(suite, 7);
        let (other, _) = keypair(suite, 8);
        let sealed = seal(suite, &mut rng(1), &pk, b"attack at dawn").unwrap();
        assert_eq!(open(suite, &other, &sealed), Err(MessageError::Unauthentic));
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 0x80;
            // Flipping bit 255 of the ephemeral key leaves the X25519 shared
            // secret unchanged; the key derivation still binds its bytes.
            assert_eq!(open(suite, &sk, &t), Err(MessageError::Unauthentic), "byte {i}");
        }
        for len in 0..SEAL_OVERHEAD {
            assert_eq!(open(suite, &sk, &sealed[..len]), Err(MessageError::Truncated), "len {len}");
        }
        assert_eq!(open(suite, &sk, &sealed[..sealed.len() - 1]), Err(MessageError::Unauthentic));
        let mut degenerate = sealed.clone();
        degenerate[..32].fill(0);
        assert_eq!(open(suite, &sk, &degenerate), Err(MessageError::DegenerateKey));
    }

    #[test]
    fn seal_refuses_degenerate_recipient_keys() {
        for suite in [CryptoSuite::Real, CryptoSuite::SimFast] {
            let r = seal(suite, &mut rng(1), &KxPublic([0; 32]), b"x");
            assert_eq!(r, Err(MessageError::DegenerateKey), "{suite:?}");
        }
    }

    fn fragment(surb: Option<Surb>, len: usize) -> Inner {
        Inner::Fragment(Fragment {
            message: MessageId([9; 16]),
            index: 3,
            count: 256,
            ack_surb: surb,
            data: vec![0x5A; len],
        })
    }

    #[test]
    fn max_fragment_data_is_exact() {
        assert_eq!(MAX_FRAGMENT_DATA, 1_581);
        assert_eq!(MAX_REPLY_FRAGMENT_DATA, 2_006);
        let (_, pk) = keypair(CryptoSuite::Real, 7);
        let hop = Hop { id: NodeId([1; 32]), key: pk, delay_us: 0 };
        let fits = |plain: &[u8]| {
            let sealed = seal(CryptoSuite::Real, &mut rng(2), &pk, plain).unwrap();
            (sealed.len(), Packet::create(&mut rng(3), &[hop], NodeId([2; 32]), &sealed).map(|_| ()))
        };
        assert_eq!(fits(&fragment(Some(surb(1)), MAX_FRAGMENT_DATA).encode()), (MAX_MESSAGE_LEN, Ok(())));
        let (len, r) = fits(&fragment(Some(surb(1)), MAX_FRAGMENT_DATA + 1).encode());
        assert_eq!(r, Err(PacketError::MessageTooLong { len, max: MAX_MESSAGE_LEN }));
        assert_eq!(len, MAX_MESSAGE_LEN + 1);

        let reply = fragment(None, MAX_REPLY_FRAGMENT_DATA).encode();
        assert_eq!(reply.len(), MAX_MESSAGE_LEN);
        assert!(Packet::create(&mut rng(3), &[hop], NodeId([2; 32]), &reply).is_ok());
        let over = fragment(None, MAX_REPLY_FRAGMENT_DATA + 1).encode();
        assert!(Packet::create(&mut rng(3), &[hop], NodeId([2; 32]), &over).is_err());
    }

    #[test]
    fn inner_layouts() {
        assert_eq!(Inner::Loop { nonce: 0x0102 }.encode(), [3, 2, 1, 0, 0, 0, 0, 0, 0]);
        let ack = Inner::Ack { message: MessageId([7; 16]), index: 0x0304 }.encode();
        assert_eq!(ack.len(), 19);
        assert_eq!((ack[0], &ack[1..17], &ack[17..]), (2, &[7u8; 16][..], &[4u8, 3][..]));
        let f = fragment(None, 2).encode();
        assert_eq!(f.len(), FRAGMENT_HEADER_LEN + 2);
        assert_eq!(&f[17..], &[3, 0, 0, 1, 0, 2, 0, 0x5A, 0x5A]);
        let f = fragment(Some(surb(4)), 0).encode();
        assert_eq!(f.len(), FRAGMENT_HEADER_LEN + SURB_LEN);
        assert_eq!(f[21], 1);
        assert_eq!(&f[22..22 + SURB_LEN], &[4u8; SURB_LEN][..]);
    }

    #[test]
    fn oversized_values_encode_truncated() {
        let Inner::Fragment(mut f) = fragment(None, 70_000) else { unreachable!() };
        let encoded = Inner::Fragment(f.clone()).encode();
        f.data.truncate(usize::from(u16::MAX));
        assert_eq!(Inner::decode(&encoded), Ok(Inner::Fragment(f)));

        let body = MessageBody { reply_surbs: vec![surb(1); MAX_REPLY_SURBS + 3], data: b"x".to_vec() };
        let decoded = MessageBody::decode(&body.encode()).unwrap();
        assert_eq!(decoded.reply_surbs.len(), MAX_REPLY_SURBS);
        assert_eq!(decoded.data, b"x");
    }

    #[test]
    fn inner_rejections() {
        use MessageError as E;
        let good_fragment = fragment(Some(surb(4)), 5).encode();
        let good_ack = Inner::Ack { message: MessageId([7; 16]), index: 1 }.encode();
        let good_loop = Inner::Loop { nonce: 5 }.encode();
        for good in [&good_fragment, &good_ack, &good_loop] {
            assert!(Inner::decode(good).is_ok());
            for len in 0..good.len() {
                assert_eq!(Inner::decode(&good[..len]), Err(E::Truncated), "len {len}");
            }
            let mut long = good.clone();
            long.extend_from_slice(&[0, 0]);
            assert_eq!(Inner::decode(&long), Err(E::TrailingBytes { extra: 2 }));
        }
        for t in [0, 4, 255] {
            let mut b = good_loop.clone();
            b[0] = t;
            assert_eq!(Inner::decode(&b), Err(E::UnknownType(t)));
        }
        let mut b = good_fragment.clone();
        b[21] = 2;
        assert_eq!(Inner::decode(&b), Err(E::BadSurbFlag(2)));
        let with = |index: u16, count: u16| {
            let mut b = good_fragment.clone();
            b[17..19].copy_from_slice(&index.to_le_bytes());
            b[19..21].copy_from_slice(&count.to_le_bytes());
            Inner::decode(&b)
        };
        assert!(with(0, 1).is_ok());
        assert!(with(255, 256).is_ok());
        for (index, count) in [(0, 0), (1, 1), (5, 3), (0, 257), (256, 256), (0, u16::MAX)] {
            assert_eq!(with(index, count), Err(E::BadFragment { index, count }));
        }
        // A data length past the end.
        let mut b = fragment(None, 5).encode();
        b[22] = 6;
        assert_eq!(Inner::decode(&b), Err(E::Truncated));
    }

    #[test]
    fn body_rejections() {
        let body = MessageBody { reply_surbs: vec![surb(1), surb(2)], data: vec![] };
        let b = body.encode();
        assert_eq!(b.len(), 1 + 2 * SURB_LEN);
        assert_eq!(MessageBody::decode(&b), Ok(body));
        assert_eq!(MessageBody::decode(&[]), Err(MessageError::Truncated));
        assert_eq!(MessageBody::decode(&b[..b.len() - 1]), Err(MessageError::Truncated));
        assert_eq!(MessageBody::decode(&[17]), Err(MessageError::TooManySurbs(17)));
        assert_eq!(MessageBody::decode(&[255; 4]), Err(MessageError::TooManySurbs(255)));
        assert_eq!(MessageBody::decode(&[0]), Ok(MessageBody { reply_surbs: vec![], data: vec![] }));
    }

    #[test]
    fn metric_labels_are_distinct() {
        use MessageError as E;
        let all = [
            E::Truncated,
            E::TrailingBytes { extra: 1 },
            E::UnknownType(0),
            E::BadSurbFlag(2),
            E::BadFragment { index: 0, count: 0 },
            E::TooManySurbs(17),
            E::DegenerateKey,
            E::Unauthentic,
        ];
        let labels: std::collections::BTreeSet<_> = all.iter().map(|e| e.label()).collect();
        assert_eq!(labels.len(), all.len());
        for e in all {
            assert_eq!(e.metric(), format!("mix.message.rejected.{}", e.label()));
        }
    }

    fn surb_strategy() -> impl Strategy<Value = Surb> {
        prop::collection::vec(any::<u8>(), SURB_LEN).prop_map(|b| Surb::from_bytes(&b).unwrap())
    }

    fn inner_strategy() -> impl Strategy<Value = Inner> {
        let fragment = (
            any::<[u8; 16]>(),
            1..=MAX_FRAGMENTS as u16,
            any::<u16>(),
            prop::option::of(surb_strategy()),
            prop::collection::vec(any::<u8>(), 0..MAX_REPLY_FRAGMENT_DATA),
        )
            .prop_map(|(id, count, index, ack_surb, data)| {
                Inner::Fragment(Fragment { message: MessageId(id), index: index % count, count, ack_surb, data })
            });
        prop_oneof![
            fragment,
            (any::<[u8; 16]>(), any::<u16>()).prop_map(|(id, index)| Inner::Ack { message: MessageId(id), index }),
            any::<u64>().prop_map(|nonce| Inner::Loop { nonce }),
        ]
    }

    proptest! {
        #[test]
        fn inner_round_trips(inner in inner_strategy()) {
            let bytes = inner.encode();
            prop_assert_eq!(Inner::decode(&bytes), Ok(inner));
        }

        #[test]
        fn body_round_trips(
            reply_surbs in prop::collection::vec(surb_strategy(), 0..=MAX_REPLY_SURBS),
            data in prop::collection::vec(any::<u8>(), 0..4096),
        ) {
            let body = MessageBody { reply_surbs, data };
            prop_assert_eq!(MessageBody::decode(&body.encode()), Ok(body));
        }

        #[test]
        fn sealed_inner_round_trips(inner in inner_strategy(), seed in any::<u8>()) {
            let (sk, pk) = keypair(CryptoSuite::Real, 7);
            let sealed = seal(CryptoSuite::Real, &mut rng(seed), &pk, &inner.encode()).unwrap();
            let opened = open(CryptoSuite::Real, &sk, &sealed).unwrap();
            prop_assert_eq!(Inner::decode(&opened), Ok(inner));
        }
    }
}
