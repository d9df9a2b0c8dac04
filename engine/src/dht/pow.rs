//! S/Kademlia-style proof of work bound to a node identifier.
//!
//! A node proves work by publishing a nonce such that
//! `BLAKE3-derive("allium pow", id ‖ nonce)` has at least `difficulty`
//! leading zero bits (the "dynamic puzzle" of S/Kademlia). Every message
//! carries the nonce, so each identity costs about `2^difficulty` hashes to
//! mint and one hash to check; with identifiers bound to Ed25519 keys this
//! makes flooding the key space with Sybils proportionally expensive.

use crate::identity::NodeId;

fn work(id: &NodeId, nonce: u64) -> u32 {
    let mut hasher = blake3::Hasher::new_derive_key("allium 2026-11 dht pow v1");
    hasher.update(&id.0);
    hasher.update(&nonce.to_le_bytes());
    let digest = hasher.finalize();
    super::key::Distance(*digest.as_bytes()).leading_zeros()
}

/// Whether `nonce` proves `difficulty` bits of work for `id`.
pub fn verify(id: &NodeId, nonce: u64, difficulty: u32) -> bool {
    difficulty == 0 || work(id, nonce) >= difficulty
}

/// The smallest nonce proving `difficulty` bits of work for `id`.
pub fn solve(id: &NodeId, difficulty: u32) -> u64 {
    (0..).find(|&nonce| verify(id, nonce, difficulty)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn solved_nonces_verify_and_others_mostly_do_not() {
        let id = NodeId([5; 32]);
        let nonce = solve(&id, 8);
        assert!(verify(&id, nonce, 8));
        assert!(verify(&id, 12345, 0));
        let passing = (0..1000u64).filter(|&n| verify(&id, n, 8)).count();
        assert!(passing < 20, "about 1 in 256 nonces should pass, got {passing}/1000");
    }
}
