//! BLAKE3 key derivation and hashing helpers.

use zeroize::Zeroizing;

/// Derives a 32-byte key from `material` under a fixed, globally unique
/// context string (BLAKE3 `derive_key` mode).
pub fn derive_key(context: &str, material: &[u8]) -> Zeroizing<[u8; 32]> {
    Zeroizing::new(blake3::derive_key(context, material))
}

/// Derives `out.len()` bytes of key material (BLAKE3 extendable output).
pub fn derive_bytes(context: &str, material: &[u8], out: &mut [u8]) {
    let mut hasher = blake3::Hasher::new_derive_key(context);
    hasher.update(material);
    hasher.finalize_xof().fill(out);
}

/// BLAKE3 hash of `data`.
pub fn hash(data: &[u8]) -> [u8; 32] {
    *blake3::hash(data).as_bytes()
}
