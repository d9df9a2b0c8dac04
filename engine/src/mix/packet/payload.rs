//! The payload: a Lioness wide-block cipher over the whole fixed-size
//! payload, and the plaintext layout with its integrity marker.
//!
//! Lioness (Anderson & Biham) splits the block into `L` (32 bytes) and `R`
//! (the rest) and runs four unbalanced Feistel rounds with four keys:
//!
//! ```text
//! encrypt:  R ^= ChaCha20(L ^ K1)   L ^= BLAKE3_K2(R)   R ^= ChaCha20(L ^ K3)   L ^= BLAKE3_K4(R)
//! decrypt:  the same rounds in reverse order
//! ```
//!
//! It is a strong pseudorandom permutation of the whole block: changing any
//! bit of a ciphertext turns the entire decryption into fresh-looking
//! noise. That is what makes a tagged payload detectable at the last hop
//! (the [`MARKER_LEN`] zero bytes are gone) and what makes a mix's input
//! and output payloads unlinkable.
//!
//! Plaintext layout of a message payload ([`PAYLOAD_LEN`] bytes):
//!
//! ```text
//! offset  len                 field
//! 0       MARKER_LEN (16)     zero bytes: the integrity marker
//! 16      2                   message length, little-endian
//! 18      len                 message
//! 18+len  rest                zero padding
//! ```

use super::{PAYLOAD_LEN, PacketError};
use crate::crypto::{ct_eq, kdf};
use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Zero bytes at the start of every message payload's plaintext; a payload
/// that does not decrypt to them was tampered with (or under a wrong key).
/// 16 bytes: a forger succeeds with probability 2^-128.
pub const MARKER_LEN: usize = 16;

/// Bytes before the message in a payload's plaintext: the marker and a
/// 2-byte length.
const PREFIX_LEN: usize = MARKER_LEN + 2;

/// The longest message one packet carries: [`PAYLOAD_LEN`] minus the
/// 16-byte marker and the 2-byte length, so 2,030 bytes.
pub const MAX_MESSAGE_LEN: usize = PAYLOAD_LEN - PREFIX_LEN;

const LIONESS_CONTEXT: &str = "allium 2026-12 mix v1 lioness keys";
const LEFT: usize = 32;

/// A Lioness key: four 32-byte round keys. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub(crate) struct PayloadKey([[u8; 32]; 4]);

impl PayloadKey {
    /// Expands a 32-byte seed into the four round keys.
    pub(crate) fn from_seed(seed: &[u8; 32]) -> Self {
        let mut out = Zeroizing::new([0u8; 128]);
        kdf::derive_bytes(LIONESS_CONTEXT, seed, out.as_mut());
        let mut keys = [[0u8; 32]; 4];
        for (k, chunk) in keys.iter_mut().zip(out.chunks_exact(32)) {
            k.copy_from_slice(chunk);
        }
        PayloadKey(keys)
    }

    /// Encrypts `block` in place (the sender's direction).
    pub(crate) fn encrypt(&self, block: &mut [u8; PAYLOAD_LEN]) {
        let (l, r) = block.split_at_mut(LEFT);
        stream_round(l, r, &self.0[0]);
        hash_round(l, r, &self.0[1]);
        stream_round(l, r, &self.0[2]);
        hash_round(l, r, &self.0[3]);
    }

    /// Decrypts `block` in place (a mix's direction).
    pub(crate) fn decrypt(&self, block: &mut [u8; PAYLOAD_LEN]) {
        let (l, r) = block.split_at_mut(LEFT);
        hash_round(l, r, &self.0[3]);
        stream_round(l, r, &self.0[2]);
        hash_round(l, r, &self.0[1]);
        stream_round(l, r, &self.0[0]);
    }
}

/// `R ^= ChaCha20(L ^ k)`, nonce zero: the key `L ^ k` is used once.
fn stream_round(l: &[u8], r: &mut [u8], k: &[u8; 32]) {
    let mut key = Zeroizing::new([0u8; 32]);
    for ((out, a), b) in key.iter_mut().zip(l).zip(k) {
        *out = a ^ b;
    }
    let mut cipher = ChaCha20::new(&(*key).into(), &[0u8; 12].into());
    cipher.apply_keystream(r);
}

/// `L ^= BLAKE3_k(R)`.
fn hash_round(l: &mut [u8], r: &[u8], k: &[u8; 32]) {
    let h = blake3::keyed_hash(k, r);
    for (out, b) in l.iter_mut().zip(h.as_bytes()) {
        *out ^= b;
    }
}

/// The plaintext payload that carries `message`: marker, length, message,
/// zero padding. [`PacketError::MessageTooLong`] past [`MAX_MESSAGE_LEN`].
pub(crate) fn encode_message(message: &[u8]) -> Result<Box<[u8; PAYLOAD_LEN]>, PacketError> {
    if message.len() > MAX_MESSAGE_LEN {
        return Err(PacketError::MessageTooLong { len: message.len(), max: MAX_MESSAGE_LEN });
    }
    let mut block = Box::new([0u8; PAYLOAD_LEN]);
    // Fits: MAX_MESSAGE_LEN < u16::MAX.
    let len = message.len() as u16;
    block[MARKER_LEN..PREFIX_LEN].copy_from_slice(&len.to_le_bytes());
    block[PREFIX_LEN..PREFIX_LEN + message.len()].copy_from_slice(message);
    Ok(block)
}

/// The message inside a decrypted payload, after checking the marker (in
/// constant time) and the length. [`PacketError::PayloadTampered`] otherwise.
pub(crate) fn decode_message(block: &[u8; PAYLOAD_LEN]) -> Result<Vec<u8>, PacketError> {
    if !ct_eq(&block[..MARKER_LEN], &[0u8; MARKER_LEN]) {
        return Err(PacketError::PayloadTampered);
    }
    let len = usize::from(u16::from_le_bytes([block[MARKER_LEN], block[MARKER_LEN + 1]]));
    if len > MAX_MESSAGE_LEN {
        return Err(PacketError::PayloadTampered);
    }
    Ok(block[PREFIX_LEN..PREFIX_LEN + len].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lioness_round_trips_and_spreads_one_bit() {
        let key = PayloadKey::from_seed(&[7u8; 32]);
        let plain = encode_message(b"hello").unwrap();
        let mut block = plain.clone();
        key.encrypt(&mut block);
        assert_ne!(block, plain);
        let mut flipped = block.clone();
        key.decrypt(&mut block);
        assert_eq!(block, plain);
        flipped[PAYLOAD_LEN - 1] ^= 1;
        key.decrypt(&mut flipped);
        assert_eq!(decode_message(&flipped), Err(PacketError::PayloadTampered));
        let same = flipped.iter().zip(plain.iter()).filter(|(a, b)| a == b).count();
        assert!(same < 64, "a one-bit change must scramble the block ({same} bytes equal)");
    }

    #[test]
    fn messages_up_to_the_limit_round_trip() {
        for len in [0, 1, MAX_MESSAGE_LEN] {
            let m = vec![0xAB; len];
            assert_eq!(decode_message(&encode_message(&m).unwrap()).unwrap(), m);
        }
        assert!(matches!(encode_message(&[0; MAX_MESSAGE_LEN + 1]), Err(PacketError::MessageTooLong { .. })));
    }
}
