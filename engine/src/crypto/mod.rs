//! Cryptographic primitives, behind one [`CryptoSuite`] switch.
//!
//! * AEAD: ChaCha20-Poly1305 ([`aead`]).
//! * Key agreement: X25519, or in very large simulations the `sim-fast`
//!   stand-in ([`kx`]).
//! * Hashing and key derivation: BLAKE3 ([`kdf`]).
//! * Signatures: Ed25519 (see [`crate::identity`]).
//!
//! Secrets are held in [`zeroize::Zeroizing`] wrappers so they are wiped on
//! drop; tags and tokens are compared with [`ct_eq`].

pub mod aead;
pub mod kdf;
pub mod kx;
mod sim_fast;

pub use kx::{KxPublic, KxSecret, SharedSecret};

use serde::{Deserialize, Serialize};

/// Which implementation of the key-agreement primitive a node uses.
///
/// `Real` is the only suite a production node may run. `SimFast` swaps
/// X25519 for a cheap commutative stand-in with the same sizes and the same
/// semantics (both sides derive the same 32-byte secret), so that simulations
/// of a hundred thousand nodes spend their time in the protocols rather than
/// in scalar multiplication. It offers no security at all.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CryptoSuite {
    /// X25519, ChaCha20-Poly1305, BLAKE3, Ed25519. Default.
    #[default]
    Real,
    /// Insecure stand-in for X25519, for simulations only.
    SimFast,
}

impl CryptoSuite {
    /// The name printed in reports and accepted in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            CryptoSuite::Real => "real",
            CryptoSuite::SimFast => "sim-fast",
        }
    }
}

/// Constant-time equality of two byte strings (lengths are not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ct_eq_compares_contents_and_lengths() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
