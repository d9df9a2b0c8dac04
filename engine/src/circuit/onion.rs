//! Layered encryption of FORWARD and BACKWARD cell bodies.
//!
//! Only the two ends of a circuit authenticate: the client and the *last*
//! hop share an end-to-end ChaCha20-Poly1305 layer, and every hop before the
//! last adds (BACKWARD) or removes (FORWARD) a plain ChaCha20 layer. Each hop
//! makes exactly one cipher pass per cell; the client makes one per hop.
//!
//! * nonce(seq) = 4 zero bytes | seq big-endian. Keys are per hop and per
//!   direction and a direction's seq never repeats, so no (key, nonce) pair
//!   is ever used twice.
//! * AEAD body: `ciphertext (PLAINTEXT_LEN) | tag (TAG_LEN)`, associated data
//!   the one-byte cell command (FORWARD = 3, BACKWARD = 4), so a cell cannot
//!   be turned around.
//! * ChaCha20 layer: the whole `BODY_LEN` body XORed with the keystream of
//!   (layer key, nonce(seq)) from block counter 0. The layers cover the tag
//!   too, so a bit flipped anywhere on the path reaches the end unchanged and
//!   the end's AEAD refuses it.
//!
//! The caller tears the circuit down when an open fails; the body is then garbage.

use super::cell::{BODY_LEN, CellCommand, PLAINTEXT_LEN, TAG_LEN};
use super::handshake::HopKeys;
use crate::crypto::aead::{self, NONCE_LEN, OpenError};
use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};

/// The 12-byte cipher nonce of sequence number `seq`: 4 zero bytes, then `seq` big-endian.
pub fn nonce(seq: u64) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    nonce[4..].copy_from_slice(&seq.to_be_bytes());
    nonce
}

/// XORs the whole body with the ChaCha20 keystream of (`key`, nonce(`seq`)).
/// Adding and removing a layer are the same operation.
fn apply_layer(key: &[u8; 32], seq: u64, body: &mut [u8; BODY_LEN]) {
    let mut cipher = ChaCha20::new(&(*key).into(), &nonce(seq).into());
    cipher.apply_keystream(body);
}

/// Seals `body[..PLAINTEXT_LEN]` in place and writes the tag after it.
fn seal_end(key: &[u8; 32], command: CellCommand, seq: u64, body: &mut [u8; BODY_LEN]) {
    let (text, tag) = body.split_at_mut(PLAINTEXT_LEN);
    tag.copy_from_slice(&aead::seal(key, &nonce(seq), &[command as u8], text));
}

/// Opens `body` in place: verifies the tag at its end and decrypts the plaintext before it.
fn open_end(key: &[u8; 32], command: CellCommand, seq: u64, body: &mut [u8; BODY_LEN]) -> Result<(), OpenError> {
    let (text, tag_bytes) = body.split_at_mut(PLAINTEXT_LEN);
    let mut tag = [0u8; TAG_LEN];
    tag.copy_from_slice(tag_bytes);
    aead::open(key, &nonce(seq), &[command as u8], text, &tag)
}

/// Client, forward: seals `plaintext` for the last hop
/// (`hops.last().forward_aead`), then applies the `forward_layer` of
/// `hops[n-2]`, …, `hops[0]` (innermost first), into `body`.
///
/// `hops` lists the circuit's hops from the first (the guard) to the last.
/// With no hops (a local misuse) `body` is zeroed and nothing is sealed.
pub fn client_seal_forward(hops: &[&HopKeys], seq: u64, plaintext: &[u8; PLAINTEXT_LEN], body: &mut [u8; BODY_LEN]) {
    let Some((last, before)) = hops.split_last() else {
        body.fill(0);
        return;
    };
    body[..PLAINTEXT_LEN].copy_from_slice(plaintext);
    seal_end(&last.forward_aead, CellCommand::Forward, seq, body);
    for hop in before.iter().rev() {
        apply_layer(&hop.forward_layer, seq, body);
    }
}

/// Client, backward: strips the `backward_layer` of `hops[0..n-1]`, then
/// opens with `hops[n-1].backward_aead`. On success the plaintext is
/// `&body[..PLAINTEXT_LEN]`. On failure the body is garbage; the caller
/// tears the circuit down. With no hops (a local misuse) it fails.
pub fn client_open_backward(hops: &[&HopKeys], seq: u64, body: &mut [u8; BODY_LEN]) -> Result<(), OpenError> {
    let (last, before) = hops.split_last().ok_or(OpenError)?;
    for hop in before {
        apply_layer(&hop.backward_layer, seq, body);
    }
    open_end(&last.backward_aead, CellCommand::Backward, seq, body)
}

/// Middle hop, forward: strips its `forward_layer` in place.
pub fn relay_peel_forward(keys: &HopKeys, seq: u64, body: &mut [u8; BODY_LEN]) {
    apply_layer(&keys.forward_layer, seq, body);
}

/// Middle hop, backward: adds its `backward_layer` in place.
pub fn relay_wrap_backward(keys: &HopKeys, seq: u64, body: &mut [u8; BODY_LEN]) {
    apply_layer(&keys.backward_layer, seq, body);
}

/// Last hop, forward: opens the end-to-end layer (`forward_aead`) in place.
/// On success the plaintext is `&body[..PLAINTEXT_LEN]`; on failure the body
/// is left as it was and the caller tears the circuit down.
pub fn relay_open_forward(keys: &HopKeys, seq: u64, body: &mut [u8; BODY_LEN]) -> Result<(), OpenError> {
    open_end(&keys.forward_aead, CellCommand::Forward, seq, body)
}

/// Last hop, backward: seals `plaintext` under `backward_aead` into `body`.
pub fn relay_seal_backward(keys: &HopKeys, seq: u64, plaintext: &[u8; PLAINTEXT_LEN], body: &mut [u8; BODY_LEN]) {
    body[..PLAINTEXT_LEN].copy_from_slice(plaintext);
    seal_end(&keys.backward_aead, CellCommand::Backward, seq, body);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn keys(seed: u8) -> HopKeys {
        let mut k = [[0u8; 32]; 4];
        for (i, key) in k.iter_mut().enumerate() {
            *key = blake3::derive_key("onion test keys", &[seed, i as u8]);
        }
        HopKeys { forward_layer: k[0], forward_aead: k[1], backward_layer: k[2], backward_aead: k[3] }
    }

    fn circuit(n: usize, salt: u8) -> Vec<HopKeys> {
        (0..n).map(|i| keys(salt.wrapping_mul(8).wrapping_add(i as u8))).collect()
    }

    fn plaintext(fill: &[u8]) -> [u8; PLAINTEXT_LEN] {
        let mut p = [0u8; PLAINTEXT_LEN];
        for (i, b) in p.iter_mut().enumerate() {
            *b = fill[i % fill.len()].wrapping_add((i / fill.len()) as u8);
        }
        p
    }

    /// Runs a FORWARD cell through every hop; `flip` (hop index, bit) flips
    /// one bit of the body just before that hop processes it.
    fn forward(
        hops: &[HopKeys],
        seq: u64,
        p: &[u8; PLAINTEXT_LEN],
        flip: Option<(usize, usize)>,
    ) -> Result<[u8; BODY_LEN], OpenError> {
        let refs: Vec<&HopKeys> = hops.iter().collect();
        let mut body = [0u8; BODY_LEN];
        client_seal_forward(&refs, seq, p, &mut body);
        let n = hops.len();
        for (i, hop) in hops.iter().enumerate() {
            if let Some((at, bit)) = flip
                && at == i
            {
                body[bit / 8] ^= 1 << (bit % 8);
            }
            if i + 1 < n {
                relay_peel_forward(hop, seq, &mut body);
            } else {
                relay_open_forward(hop, seq, &mut body)?;
            }
        }
        Ok(body)
    }

    /// Runs a BACKWARD cell from the last hop to the client; `flip` (hop
    /// index, bit) flips a bit just after that hop processed it.
    fn backward(
        hops: &[HopKeys],
        seq: u64,
        p: &[u8; PLAINTEXT_LEN],
        flip: Option<(usize, usize)>,
    ) -> Result<[u8; BODY_LEN], OpenError> {
        let refs: Vec<&HopKeys> = hops.iter().collect();
        let mut body = [0u8; BODY_LEN];
        let n = hops.len();
        for i in (0..n).rev() {
            if i + 1 == n {
                relay_seal_backward(&hops[i], seq, p, &mut body);
            } else {
                relay_wrap_backward(&hops[i], seq, &mut body);
            }
            if let Some((at, bit)) = flip
                && at == i
            {
                body[bit / 8] ^= 1 << (bit % 8);
            }
        }
        client_open_backward(&refs, seq, &mut body)?;
        Ok(body)
    }

    proptest! {
        #[test]
        fn layers_round_trip(n in 1usize..=4, salt in any::<u8>(), seq in any::<u64>(), fill in prop::collection::vec(any::<u8>(), 1..64)) {
            let hops = circuit(n, salt);
            let p = plaintext(&fill);
            let body = forward(&hops, seq, &p, None).unwrap();
            prop_assert_eq!(&body[..PLAINTEXT_LEN], &p[..]);
            let body = backward(&hops, seq, &p, None).unwrap();
            prop_assert_eq!(&body[..PLAINTEXT_LEN], &p[..]);
        }

        #[test]
        fn any_flipped_bit_is_detected(n in 1usize..=4, salt in any::<u8>(), seq in any::<u64>(), at in 0usize..4, bit in 0usize..BODY_LEN * 8) {
            let hops = circuit(n, salt);
            let p = plaintext(&[seq as u8, 9]);
            let at = at % n;
            prop_assert_eq!(forward(&hops, seq, &p, Some((at, bit))), Err(OpenError));
            prop_assert_eq!(backward(&hops, seq, &p, Some((at, bit))), Err(OpenError));
        }

        #[test]
        fn wrong_seq_is_detected(n in 1usize..=4, salt in any::<u8>(), seq in any::<u64>(), delta in 1u64.., at in 0usize..4) {
            let hops = circuit(n, salt);
            let refs: Vec<&HopKeys> = hops.iter().collect();
            let p = plaintext(&[1, 2, 3]);
            let wrong = seq.wrapping_add(delta);
            let at = at % n;
            let mut body = [0u8; BODY_LEN];
            client_seal_forward(&refs, seq, &p, &mut body);
            for (i, hop) in hops[..n - 1].iter().enumerate() {
                relay_peel_forward(hop, if i == at { wrong } else { seq }, &mut body);
            }
            let last_seq = if at == n - 1 { wrong } else { seq };
            prop_assert_eq!(relay_open_forward(&hops[n - 1], last_seq, &mut body), Err(OpenError));

            let mut body = [0u8; BODY_LEN];
            relay_seal_backward(&hops[n - 1], seq, &p, &mut body);
            for hop in hops[..n - 1].iter().rev() {
                relay_wrap_backward(hop, seq, &mut body);
            }
            prop_assert_eq!(client_open_backward(&refs, wrong, &mut body), Err(OpenError));
        }
    }

    #[test]
    fn directions_cannot_be_swapped() {
        let p = plaintext(b"turn me around");
        for n in 1..=4 {
            let hops = circuit(n, 3);
            let refs: Vec<&HopKeys> = hops.iter().collect();
            // A FORWARD cell handed back to the client as BACKWARD.
            let mut body = [0u8; BODY_LEN];
            client_seal_forward(&refs, 5, &p, &mut body);
            assert_eq!(client_open_backward(&refs, 5, &mut body), Err(OpenError));
            // A BACKWARD cell sealed by the last hop, replayed to it as FORWARD.
            let mut body = [0u8; BODY_LEN];
            relay_seal_backward(&hops[n - 1], 5, &p, &mut body);
            assert_eq!(relay_open_forward(&hops[n - 1], 5, &mut body), Err(OpenError));
        }
        // Even with identical keys in both directions, the associated data
        // (the command byte) tells the directions apart.
        let same =
            HopKeys { forward_layer: [1; 32], forward_aead: [2; 32], backward_layer: [1; 32], backward_aead: [2; 32] };
        let mut body = [0u8; BODY_LEN];
        client_seal_forward(&[&same], 5, &p, &mut body);
        let mut copy = body;
        assert_eq!(client_open_backward(&[&same], 5, &mut copy), Err(OpenError));
        assert_eq!(relay_open_forward(&same, 5, &mut body), Ok(()));
    }

    #[test]
    fn layers_hide_the_plaintext_and_differ_per_seq() {
        let hops = circuit(3, 1);
        let refs: Vec<&HopKeys> = hops.iter().collect();
        let p = [0u8; PLAINTEXT_LEN];
        let mut a = [0u8; BODY_LEN];
        let mut b = [0u8; BODY_LEN];
        client_seal_forward(&refs, 1, &p, &mut a);
        client_seal_forward(&refs, 2, &p, &mut b);
        assert_ne!(a, b);
        assert!(a[..PLAINTEXT_LEN].iter().filter(|&&x| x == 0).count() < 64);
        // After the first peel the body still looks nothing like the plaintext or the input.
        let before = a;
        relay_peel_forward(&hops[0], 1, &mut a);
        assert_ne!(a, before);
        assert!(a[..PLAINTEXT_LEN].iter().filter(|&&x| x == 0).count() < 64);
    }

    #[test]
    fn empty_circuits_seal_nothing_and_open_nothing() {
        let mut body = [7u8; BODY_LEN];
        client_seal_forward(&[], 0, &[9; PLAINTEXT_LEN], &mut body);
        assert!(body.iter().all(|&b| b == 0));
        assert_eq!(client_open_backward(&[], 0, &mut body), Err(OpenError));
    }

    #[test]
    fn nonce_layout() {
        assert_eq!(nonce(0x0102_0304_0506_0708), [0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]);
    }
}
