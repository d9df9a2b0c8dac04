//! Per-hop key agreement with a blinded group element, and the keys each
//! hop derives from its shared secret.
//!
//! ```text
//! mix i:    s_i = X25519(sk_i, alpha_i)           refused when alpha_i is not a canonical large-order point
//!           b_i = derive_key(BLINDING, alpha_i | s_i)
//!           alpha_{i+1} = X25519(b_i, alpha_i)
//! sender:   alpha_0 = X25519(x, G)
//!           s_i = X25519(b_{i-1}, … X25519(b_0, X25519(x, pk_i)))
//! ```
//!
//! X25519 clamps every scalar, but clamped scalars are still integers and
//! scalar multiplication commutes, so both sides reach the same `s_i`.
//! From `s_i` each hop derives, each under its own BLAKE3 context: the
//! routing-info stream key, the header MAC key, the payload (Lioness) key
//! seed, the blinding factor and the replay tag.
//!
//! **Encoding of alpha.** Alpha travels as the Edwards form of the point:
//! its y-coordinate, little-endian, with the top (sign) bit always 0. The
//! y-coordinate and the X25519 u-coordinate determine each other
//! (`u = (1 + y) / (1 - y)`), and the u-coordinate of `[k]P` does not
//! depend on the sign of P, so every value above is exactly the X25519
//! one. The Edwards form lets the scalar multiplications run on
//! curve25519-dalek's vectorised (AVX2 / AVX-512 IFMA) Edwards code
//! instead of the serial Montgomery ladder. Fixing the sign bit at 0, and
//! refusing a non-canonical y, gives each point exactly one encoding: a
//! changed alpha always changes `s_i`, so the MAC catches it.

use super::PacketError;
use super::payload::PayloadKey;
use super::replay::ReplayTag;
use crate::crypto::{KxPublic, KxSecret, ct_eq, kdf};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::montgomery::MontgomeryPoint;
use curve25519_dalek::scalar::{Scalar, clamp_integer};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

const ROUTING_CONTEXT: &str = "allium 2026-12 mix v1 routing stream key";
const MAC_CONTEXT: &str = "allium 2026-12 mix v1 header mac key";
const PAYLOAD_CONTEXT: &str = "allium 2026-12 mix v1 payload key seed";
const BLINDING_CONTEXT: &str = "allium 2026-12 mix v1 blinding factor";
const REPLAY_CONTEXT: &str = "allium 2026-12 mix v1 replay tag";

/// The keys one hop shares with the sender, all derived from `s_i`.
/// Zeroized on drop; `Debug` prints none of them.
#[derive(Zeroize, ZeroizeOnDrop)]
pub(crate) struct HopKeys {
    /// ChaCha20 key of the routing-information (beta) stream.
    pub(crate) routing: [u8; 32],
    /// Keyed-BLAKE3 key of the header MAC (gamma).
    pub(crate) mac: [u8; 32],
    /// The payload's Lioness key.
    pub(crate) payload: PayloadKey,
    /// The blinding factor `b_i` (a scalar, clamped by X25519).
    pub(crate) blinding: [u8; 32],
    /// `H(s_i)` under its own context: what a mix remembers to refuse replays.
    #[zeroize(skip)]
    pub(crate) replay: ReplayTag,
}

impl core::fmt::Debug for HopKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("HopKeys(..)")
    }
}

impl HopKeys {
    /// Derives every per-hop key from the shared secret `s` and the hop's
    /// group element `alpha`.
    pub(crate) fn derive(s: &[u8; 32], alpha: &[u8; 32]) -> Self {
        let mut blind_input = Zeroizing::new([0u8; 64]);
        blind_input[..32].copy_from_slice(alpha);
        blind_input[32..].copy_from_slice(s);
        HopKeys {
            routing: *kdf::derive_key(ROUTING_CONTEXT, s),
            mac: *kdf::derive_key(MAC_CONTEXT, s),
            payload: PayloadKey::from_seed(&kdf::derive_key(PAYLOAD_CONTEXT, s)),
            blinding: *kdf::derive_key(BLINDING_CONTEXT, blind_input.as_ref()),
            replay: ReplayTag(*kdf::derive_key(REPLAY_CONTEXT, s)),
        }
    }

    /// The next hop's group element `alpha_{i+1} = [b_i] alpha_i`, encoded.
    pub(crate) fn blind(&self, alpha: &EdwardsPoint) -> ([u8; 32], EdwardsPoint) {
        let next = alpha.mul_clamped(self.blinding);
        (encode(&next), next)
    }
}

/// Whether `bytes` is all zero (constant time).
fn is_zero(bytes: &[u8; 32]) -> bool {
    ct_eq(bytes, &[0u8; 32])
}

/// The encoding of a point as alpha: its compressed y with the sign bit cleared.
fn encode(point: &EdwardsPoint) -> [u8; 32] {
    let mut bytes = point.compress().to_bytes();
    bytes[31] &= 0x7f;
    bytes
}

/// Whether the 255-bit little-endian `y` (sign bit clear) is at least
/// p = 2^255 - 19, i.e. a non-canonical field element.
fn non_canonical(y: &[u8; 32]) -> bool {
    y[31] == 0x7f && y[1..31].iter().all(|&b| b == 0xff) && y[0] >= 0xed
}

/// Decodes alpha: [`PacketError::DegenerateAlpha`] unless it is the
/// canonical encoding (sign bit 0, y below p) of a curve point of large order.
fn decode(alpha: &[u8; 32]) -> Result<EdwardsPoint, PacketError> {
    if alpha[31] & 0x80 != 0 || non_canonical(alpha) {
        return Err(PacketError::DegenerateAlpha);
    }
    let point = CompressedEdwardsY(*alpha).decompress().ok_or(PacketError::DegenerateAlpha)?;
    if point.is_small_order() {
        return Err(PacketError::DegenerateAlpha);
    }
    Ok(point)
}

/// `u([k] P)` as 32 bytes: X25519(k, u(P)). Zeroizes the intermediate point.
fn shared_u(point: &EdwardsPoint, k: &[u8; 32]) -> Zeroizing<[u8; 32]> {
    let mut product = point.mul_clamped(*k);
    let s = Zeroizing::new(product.to_montgomery().to_bytes());
    product.zeroize();
    s
}

/// The mix's side: decodes `alpha` and computes `s = X25519(sk, alpha)`.
/// Returns the secret and the decoded point (to blind).
/// [`PacketError::DegenerateAlpha`] for a malformed or low-order alpha.
pub(crate) fn mix_shared(sk: &KxSecret, alpha: &[u8; 32]) -> Result<(Zeroizing<[u8; 32]>, EdwardsPoint), PacketError> {
    let point = decode(alpha)?;
    let s = shared_u(&point, sk.as_bytes());
    if is_zero(&s) {
        return Err(PacketError::DegenerateAlpha);
    }
    Ok((s, point))
}

/// The sender's side: from the ephemeral secret `x` and the hops' public
/// keys, `alpha_0` (encoded) and every hop's keys. A hop key that is not a
/// curve point of large order is refused with [`PacketError::DegenerateHopKey`].
///
/// Hop `i`'s group element is `[c_i] G` with the integer
/// `c_i = clamp(x) · clamp(b_0) ⋯ clamp(b_{i-1})`, a multiple of 8. The
/// sender tracks `d_i = c_i / 8 mod l` as a scalar, so each hop costs one
/// fixed-base multiplication (`alpha_i = [8 d_i] G`, G of prime order l)
/// and one variable-base one: `s_i = u([8]([d_i] PK_i))`, which equals
/// `u([c_i] PK_i)` even if `PK_i` has a small-order component (the final
/// `[8]` clears it, as the clamped `c_i` does).
pub(crate) fn sender_keys(
    x: &[u8; 32],
    hop_keys: impl ExactSizeIterator<Item = KxPublic>,
) -> Result<([u8; 32], Vec<HopKeys>), PacketError> {
    let eight = Scalar::from(8u8);
    let mut d = Zeroizing::new(Scalar::from_bytes_mod_order(div8(&clamp_integer(*x))));
    let mut alpha = encode(&EdwardsPoint::mul_base(&(*d * eight)));
    let alpha0 = alpha;
    let n = hop_keys.len();
    let mut keys: Vec<HopKeys> = Vec::with_capacity(n);
    for (hop, pk) in hop_keys.enumerate() {
        // Either sign of the Edwards point will do: only u-coordinates are used.
        let degenerate = PacketError::DegenerateHopKey { hop };
        let pk_point = MontgomeryPoint(pk.0).to_edwards(0).ok_or(degenerate)?;
        if pk_point.is_small_order() {
            return Err(degenerate);
        }
        let mut acc = (pk_point * *d).mul_by_cofactor();
        let s = Zeroizing::new(acc.to_montgomery().to_bytes());
        acc.zeroize();
        if is_zero(&s) {
            return Err(degenerate);
        }
        let k = HopKeys::derive(&s, &alpha);
        if hop + 1 < n {
            *d *= Scalar::from_bytes_mod_order(clamp_integer(k.blinding));
            alpha = encode(&EdwardsPoint::mul_base(&(*d * eight)));
        }
        keys.push(k);
    }
    Ok((alpha0, keys))
}

/// A clamped scalar (a multiple of 8 below 2^255) divided by 8, exactly.
fn div8(v: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        let high = v.get(i + 1).map_or(0, |b| b << 5);
        *o = (v[i] >> 3) | high;
    }
    out
}
