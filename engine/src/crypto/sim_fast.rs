//! The `sim-fast` key-agreement stand-in: Diffie–Hellman in the
//! multiplicative group modulo the Mersenne prime 2^61 - 1.
//!
//! It is commutative, so both ends of a handshake derive the same secret,
//! and it uses the same 32-byte encodings as X25519. A 61-bit group is
//! trivially breakable: this exists only to make huge simulations cheap.

const P: u64 = (1 << 61) - 1;
const G: u64 = 37;

fn mul_mod(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    // Reduction modulo a Mersenne prime: fold the high bits onto the low bits.
    let folded = (product & u128::from(P)) + (product >> 61);
    let folded = (folded & u128::from(P)) + (folded >> 61);
    let r = folded as u64;
    if r >= P { r - P } else { r }
}

fn pow_mod(mut base: u64, mut exp: u64) -> u64 {
    let mut acc = 1u64;
    base %= P;
    while exp > 0 {
        if exp & 1 == 1 {
            acc = mul_mod(acc, base);
        }
        base = mul_mod(base, base);
        exp >>= 1;
    }
    acc
}

fn exponent(secret: &[u8; 32]) -> u64 {
    let raw = u64::from_le_bytes(secret[..8].try_into().unwrap_or_default());
    // Exponent in 1..P-1.
    raw % (P - 2) + 1
}

fn encode(element: u64) -> [u8; 32] {
    let mut out = [0u8; 32];
    out[..8].copy_from_slice(&element.to_le_bytes());
    out
}

/// The public key for `secret`.
pub fn public(secret: &[u8; 32]) -> [u8; 32] {
    encode(pow_mod(G, exponent(secret)))
}

/// The shared secret, or `None` for a peer key outside the group.
pub fn agree(secret: &[u8; 32], peer: &[u8; 32]) -> Option<[u8; 32]> {
    let element = u64::from_le_bytes(peer[..8].try_into().ok()?);
    if element <= 1 || element >= P || peer[8..].iter().any(|&b| b != 0) {
        return None;
    }
    let shared = pow_mod(element, exponent(secret));
    Some(blake3::derive_key("allium 2026-11 sim-fast kx v1", &encode(shared)))
}
