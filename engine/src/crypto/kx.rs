//! Key agreement: X25519 or the `sim-fast` stand-in.

use super::{CryptoSuite, sim_fast};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// A key-agreement secret (static or ephemeral). Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KxSecret([u8; 32]);

/// A key-agreement public key: 32 bytes in either suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode)]
pub struct KxPublic(pub [u8; 32]);

/// The output of a key agreement. Zeroized on drop.
pub type SharedSecret = Zeroizing<[u8; 32]>;

impl KxSecret {
    /// Wraps 32 random bytes as a secret.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        KxSecret(bytes)
    }

    /// The raw secret bytes (for persistence of static keys only).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl core::fmt::Debug for KxSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("KxSecret(..)")
    }
}

impl CryptoSuite {
    /// The public key that goes with `secret`.
    pub fn kx_public(self, secret: &KxSecret) -> KxPublic {
        match self {
            CryptoSuite::Real => {
                let s = x25519_dalek::StaticSecret::from(secret.0);
                KxPublic(x25519_dalek::PublicKey::from(&s).to_bytes())
            }
            CryptoSuite::SimFast => KxPublic(sim_fast::public(&secret.0)),
        }
    }

    /// Agrees on a shared secret with `peer`. Returns `None` when the peer's
    /// key is degenerate (an X25519 low-order point), which a handshake must
    /// treat as a failure.
    pub fn kx_agree(self, secret: &KxSecret, peer: &KxPublic) -> Option<SharedSecret> {
        match self {
            CryptoSuite::Real => {
                let s = x25519_dalek::StaticSecret::from(secret.0);
                let shared = s.diffie_hellman(&x25519_dalek::PublicKey::from(peer.0));
                shared.was_contributory().then(|| Zeroizing::new(shared.to_bytes()))
            }
            CryptoSuite::SimFast => sim_fast::agree(&secret.0, &peer.0).map(Zeroizing::new),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_suites_agree_commutatively() {
        for suite in [CryptoSuite::Real, CryptoSuite::SimFast] {
            let a = KxSecret::from_bytes([3u8; 32]);
            let b = KxSecret::from_bytes([9u8; 32]);
            let ab = suite.kx_agree(&a, &suite.kx_public(&b)).unwrap();
            let ba = suite.kx_agree(&b, &suite.kx_public(&a)).unwrap();
            assert_eq!(*ab, *ba, "{suite:?}");
            let c = KxSecret::from_bytes([4u8; 32]);
            assert_ne!(*ab, *suite.kx_agree(&c, &suite.kx_public(&b)).unwrap());
        }
    }

    #[test]
    fn degenerate_peer_keys_are_refused() {
        let a = KxSecret::from_bytes([3u8; 32]);
        assert!(CryptoSuite::Real.kx_agree(&a, &KxPublic([0u8; 32])).is_none());
        assert!(CryptoSuite::SimFast.kx_agree(&a, &KxPublic([0u8; 32])).is_none());
    }
}
