//! Per-hop key agreement with a blinded group element, and the keys each
//! hop derives from its shared secret.
//!
//! ```text
//! mix i:    s_i = X25519(sk_i, alpha_i)           refused when all-zero (low-order alpha)
//!           b_i = derive_key(BLINDING, alpha_i | s_i)
//!           alpha_{i+1} = X25519(b_i, alpha_i)
//! sender:   alpha_0 = X25519(x, G)
//!           s_i = X25519(b_{i-1}, … X25519(b_0, X25519(x, pk_i)))
//! ```
//!
//! X25519 clamps every scalar, but clamped scalars are still integers and
//! scalar multiplication of Montgomery u-coordinates commutes, so both
//! sides reach the same `s_i`. From `s_i` each hop derives, each under its
//! own BLAKE3 context: the routing-info stream key, the header MAC key, the
//! payload (Lioness) key seed, the blinding factor and the replay tag.

use super::PacketError;
use super::payload::PayloadKey;
use super::replay::ReplayTag;
use crate::crypto::{KxPublic, KxSecret, ct_eq, kdf};
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

    /// The next hop's group element `alpha_{i+1} = X25519(b_i, alpha_i)`.
    pub(crate) fn blind(&self, alpha: &[u8; 32]) -> [u8; 32] {
        x25519_dalek::x25519(self.blinding, *alpha)
    }
}

/// Whether `bytes` is all zero (constant time).
fn is_zero(bytes: &[u8; 32]) -> bool {
    ct_eq(bytes, &[0u8; 32])
}

/// The mix's side: `s = X25519(sk, alpha)`. A low-order `alpha` gives the
/// all-zero secret, refused with [`PacketError::DegenerateAlpha`].
pub(crate) fn mix_shared(sk: &KxSecret, alpha: &[u8; 32]) -> Result<Zeroizing<[u8; 32]>, PacketError> {
    let s = Zeroizing::new(x25519_dalek::x25519(*sk.as_bytes(), *alpha));
    if is_zero(&s) {
        return Err(PacketError::DegenerateAlpha);
    }
    Ok(s)
}

/// The sender's side: from the ephemeral secret `x` and the hops' public
/// keys, `alpha_0` and every hop's keys. A low-order hop key is refused with
/// [`PacketError::DegenerateHopKey`].
pub(crate) fn sender_keys(
    x: &[u8; 32],
    hop_keys: impl ExactSizeIterator<Item = KxPublic>,
) -> Result<([u8; 32], Vec<HopKeys>), PacketError> {
    // X25519(x, G) through the fixed-base table: about three times faster than the ladder.
    let alpha0 = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*x)).to_bytes();
    let mut alpha = alpha0;
    let n = hop_keys.len();
    let mut keys: Vec<HopKeys> = Vec::with_capacity(n);
    for (hop, pk) in hop_keys.enumerate() {
        let mut s = Zeroizing::new(x25519_dalek::x25519(*x, pk.0));
        for earlier in &keys {
            *s = x25519_dalek::x25519(earlier.blinding, *s);
        }
        if is_zero(&s) {
            return Err(PacketError::DegenerateHopKey { hop });
        }
        let k = HopKeys::derive(&s, &alpha);
        if hop + 1 < n {
            alpha = k.blind(&alpha);
        }
        keys.push(k);
    }
    Ok((alpha0, keys))
}
