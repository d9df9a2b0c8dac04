//! Storage challenges: prove possession of a chunk by revealing a 1 KiB
//! slice of it that the challenge's nonce picks, with a BLAKE3 tree proof.
//!
//! BLAKE3 hashes its input as a binary tree of 1 KiB leaves ("chunks" in
//! BLAKE3's terms; here *slices*, to keep "chunk" for the overlay's
//! chunks). A chunk's [`BlockId`] is the root of that tree. The answer to a
//! challenge carries one slice and the chaining values of the sibling
//! subtrees on the path from that slice to the root (a Bao-style slice
//! proof, built with `blake3::hazmat`); the verifier recomputes the root
//! from them and compares it with the chunk's block id. It needs only the
//! challenge: the block id and the chunk's length, which the coordinator
//! takes from the content's signed manifest ([`Challenge::for_chunk`]).
//!
//! Which slice is drawn by BLAKE3 over the whole challenge (nonce
//! included), so a node cannot know it in advance: to pass, it must hold
//! the slice when asked, and holding every slice is holding the chunk. A
//! node that kept a fraction `f` of a chunk passes with probability about
//! `f`. The answer is at most 1 KiB plus 32 bytes per tree level (10 levels
//! for a 1 MiB chunk), whatever the chunk size.
//!
//! Encoding: bincode (standard varint configuration) of the structs'
//! fields in declaration order, each decoder bounded and canonical.

use super::inputs::ChallengeOutcome;
use crate::crypto::ct_eq;
use crate::identity::NodeId;
use crate::overlay::MAX_CHUNK_BYTES;
use crate::overlay::cid::{BlockId, Cid};
use crate::overlay::manifest::Manifest;
use crate::wire::{self, WireError};
use blake3::hazmat::{HasherExt, Mode, left_subtree_len, merge_subtrees_non_root, merge_subtrees_root};

/// Size of a proof slice, in bytes (BLAKE3's chunk length; the last slice
/// of a chunk may be shorter).
pub const SLICE_BYTES: usize = blake3::CHUNK_LEN;
/// Most sibling chaining values in a proof: the tree depth of the largest
/// chunk ([`MAX_CHUNK_BYTES`], 1 MiB = 1024 slices: 10 levels).
pub const MAX_PROOF_LEVELS: usize = 10;
/// Longest encoded challenge, in bytes.
pub const MAX_CHALLENGE_BYTES: usize = 9 + 32 + 32 + 5 + 32 + 5;
/// Longest encoded answer, in bytes.
pub const MAX_ANSWER_BYTES: usize = 9 + 32 + 32 + 5 + 9 + SLICE_BYTES + 9 + 32 * MAX_PROOF_LEVELS;
/// BLAKE3 key-derivation context that draws the slice.
pub const SLICE_CONTEXT: &str = "allium 2026-11 rewards challenge slice v1";

/// A storage challenge: "prove you hold chunk `chunk_index` of `cid`".
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode)]
pub struct Challenge {
    /// The epoch the challenge counts for.
    pub epoch: u64,
    /// Fresh random bytes from the coordinator: they pick the slice.
    pub nonce: [u8; 32],
    /// The content.
    pub cid: Cid,
    /// The chunk's index in the content's manifest.
    pub chunk_index: u32,
    /// The chunk's BLAKE3 hash (from the manifest).
    pub block: BlockId,
    /// The chunk's length in bytes (from the manifest; 1 ..= 1 MiB).
    pub chunk_len: u32,
}

/// The answer to a [`Challenge`]: the drawn slice and its proof.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct ChallengeAnswer {
    /// The challenge's epoch, echoed.
    pub epoch: u64,
    /// The challenge's nonce, echoed.
    pub nonce: [u8; 32],
    /// The challenge's content, echoed.
    pub cid: Cid,
    /// The challenge's chunk index, echoed.
    pub chunk_index: u32,
    /// The slice the nonce drew (at most [`SLICE_BYTES`]).
    pub slice: Vec<u8>,
    /// Chaining values of the sibling subtrees from the root down to the
    /// slice (at most [`MAX_PROOF_LEVELS`]).
    pub proof: Vec<[u8; 32]>,
}

/// Why a challenge or an answer was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChallengeError {
    /// The bytes do not decode.
    #[error("challenge does not decode: {0}")]
    Decode(#[from] WireError),
    /// The decoded value does not re-encode to the same bytes, or a list
    /// is longer than allowed.
    #[error("malformed or non-canonical challenge encoding")]
    Malformed,
    /// The challenge's chunk length is 0 or over 1 MiB.
    #[error("chunk length {0} outside 1 ..= 1 MiB")]
    ChunkLength(u32),
    /// The answer echoes another challenge (epoch, nonce, content or chunk).
    #[error("answer to another challenge")]
    OtherChallenge,
    /// The slice has the wrong length.
    #[error("slice of {got} bytes, expected {expected}")]
    SliceLength {
        /// Expected length.
        expected: usize,
        /// Received length.
        got: usize,
    },
    /// The proof has the wrong number of levels.
    #[error("proof of {got} levels, expected {expected}")]
    ProofLength {
        /// Expected levels.
        expected: usize,
        /// Received levels.
        got: usize,
    },
    /// The slice and proof do not hash to the chunk's block id.
    #[error("proof does not match the chunk hash")]
    Proof,
}

/// The path from the root of a chunk's tree to one slice.
struct Path {
    /// Offset of the slice in the chunk.
    offset: usize,
    /// Length of the slice.
    len: usize,
    /// Per level from the root down: the sibling subtree's (offset, length)
    /// and whether the path goes left (the sibling is on the right).
    levels: Vec<(usize, usize, bool)>,
}

/// The path to the slice with index `slice` in a chunk of `chunk_len` bytes
/// (`1 ≤ chunk_len`, `slice < ⌈chunk_len / SLICE_BYTES⌉`).
fn path(chunk_len: usize, slice: usize) -> Path {
    let target = slice * SLICE_BYTES;
    let (mut offset, mut len) = (0usize, chunk_len);
    let mut levels = Vec::new();
    while len > SLICE_BYTES {
        let left = left_subtree_len(len as u64) as usize;
        if target < offset + left {
            levels.push((offset + left, len - left, true));
            len = left;
        } else {
            levels.push((offset, left, false));
            offset += left;
            len -= left;
        }
    }
    Path { offset, len, levels }
}

/// The chaining value of the subtree of `bytes` starting at `offset` of its chunk.
fn chaining_value(bytes: &[u8], offset: usize) -> [u8; 32] {
    blake3::Hasher::new().set_input_offset(offset as u64).update(bytes).finalize_non_root()
}

impl Challenge {
    /// A challenge for chunk `chunk_index` of the content `cid` described by
    /// `manifest`, with the chunk's hash and length from the manifest;
    /// `None` if the manifest has no such chunk.
    pub fn for_chunk(epoch: u64, nonce: [u8; 32], cid: Cid, manifest: &Manifest, chunk_index: u32) -> Option<Self> {
        let block = *manifest.chunks.get(usize::try_from(chunk_index).ok()?)?;
        let (_, chunk_len) = manifest.chunk_span(chunk_index);
        Some(Challenge { epoch, nonce, cid, chunk_index, block, chunk_len })
    }

    /// Number of slices of the chunk (0 if its length is 0).
    pub fn slices(&self) -> u64 {
        u64::from(self.chunk_len).div_ceil(SLICE_BYTES as u64)
    }

    /// The index of the slice the answer must reveal: BLAKE3 key
    /// derivation with [`SLICE_CONTEXT`] over the encoded challenge, as a
    /// little-endian integer, modulo the number of slices (0 for an empty
    /// chunk).
    pub fn slice_index(&self) -> u64 {
        let digest = blake3::derive_key(SLICE_CONTEXT, &self.encode());
        let mut word = [0u8; 16];
        word.copy_from_slice(&digest[..16]);
        let slices = u128::from(self.slices().max(1));
        (u128::from_le_bytes(word) % slices) as u64
    }

    /// The prover's side: the answer for `chunk`, the chunk's bytes. Given
    /// other bytes than the chunk the challenge names, it returns an
    /// answer that fails verification.
    pub fn answer(&self, chunk: &[u8]) -> ChallengeAnswer {
        let mut answer = ChallengeAnswer {
            epoch: self.epoch,
            nonce: self.nonce,
            cid: self.cid,
            chunk_index: self.chunk_index,
            slice: Vec::new(),
            proof: Vec::new(),
        };
        let slice = self.slice_index() as usize;
        if chunk.is_empty() || chunk.len() > MAX_CHUNK_BYTES as usize || slice * SLICE_BYTES >= chunk.len() {
            return answer;
        }
        let path = path(chunk.len(), slice);
        answer.slice = chunk[path.offset..path.offset + path.len].to_vec();
        answer.proof =
            path.levels.iter().map(|&(offset, len, _)| chaining_value(&chunk[offset..offset + len], offset)).collect();
        answer
    }

    /// The verifier's side: checks that `answer` answers this challenge and
    /// that its slice and proof hash to the chunk's block id.
    pub fn verify(&self, answer: &ChallengeAnswer) -> Result<(), ChallengeError> {
        if self.chunk_len == 0 || self.chunk_len > MAX_CHUNK_BYTES {
            return Err(ChallengeError::ChunkLength(self.chunk_len));
        }
        if answer.epoch != self.epoch
            || !ct_eq(&answer.nonce, &self.nonce)
            || answer.cid != self.cid
            || answer.chunk_index != self.chunk_index
        {
            return Err(ChallengeError::OtherChallenge);
        }
        let path = path(self.chunk_len as usize, self.slice_index() as usize);
        if answer.slice.len() != path.len {
            return Err(ChallengeError::SliceLength { expected: path.len, got: answer.slice.len() });
        }
        if answer.proof.len() != path.levels.len() {
            return Err(ChallengeError::ProofLength { expected: path.levels.len(), got: answer.proof.len() });
        }
        // Leaf to root: chaining values below the top, the root hash at the top.
        let pair = |went_left: bool, cv: &[u8; 32], sibling: &[u8; 32]| {
            if went_left { (*cv, *sibling) } else { (*sibling, *cv) }
        };
        let root = match (path.levels.split_first(), answer.proof.split_first()) {
            (Some((&(_, _, top_left), levels)), Some((top_sibling, siblings))) => {
                let mut cv = chaining_value(&answer.slice, path.offset);
                for (&(_, _, went_left), sibling) in levels.iter().zip(siblings).rev() {
                    let (left, right) = pair(went_left, &cv, sibling);
                    cv = merge_subtrees_non_root(&left, &right, Mode::Hash);
                }
                let (left, right) = pair(top_left, &cv, top_sibling);
                merge_subtrees_root(&left, &right, Mode::Hash)
            }
            // A chunk of one slice: its hash is the root.
            _ => blake3::hash(&answer.slice),
        };
        if ct_eq(root.as_bytes(), &self.block.0) { Ok(()) } else { Err(ChallengeError::Proof) }
    }

    /// The outcome to record in the epoch's inputs for `node`, with the
    /// content's `publisher` (the id of the manifest's publisher key).
    pub fn outcome(&self, node: NodeId, publisher: NodeId, passed: bool) -> ChallengeOutcome {
        ChallengeOutcome { node, cid: self.cid, chunk_index: self.chunk_index, block: self.block, publisher, passed }
    }

    /// The encoding (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        wire::encode_plain(self)
    }

    /// Decodes a challenge: at most [`MAX_CHALLENGE_BYTES`], consumed
    /// exactly, canonical. (The chunk length is checked by
    /// [`Challenge::verify`], and by the prover's [`Challenge::answer`].)
    pub fn decode(bytes: &[u8]) -> Result<Challenge, ChallengeError> {
        let challenge: Challenge = decode_exact::<_, MAX_CHALLENGE_BYTES>(bytes)?;
        if challenge.encode() != bytes {
            return Err(ChallengeError::Malformed);
        }
        Ok(challenge)
    }
}

impl ChallengeAnswer {
    /// The encoding (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        wire::encode_plain(self)
    }

    /// Decodes an answer: at most [`MAX_ANSWER_BYTES`], a slice of at most
    /// [`SLICE_BYTES`] and at most [`MAX_PROOF_LEVELS`] levels, consumed
    /// exactly, canonical.
    pub fn decode(bytes: &[u8]) -> Result<ChallengeAnswer, ChallengeError> {
        let answer: ChallengeAnswer = decode_exact::<_, MAX_ANSWER_BYTES>(bytes)?;
        if answer.slice.len() > SLICE_BYTES || answer.proof.len() > MAX_PROOF_LEVELS || answer.encode() != bytes {
            return Err(ChallengeError::Malformed);
        }
        Ok(answer)
    }
}

fn decode_exact<T: bincode::Decode<()>, const LIMIT: usize>(bytes: &[u8]) -> Result<T, ChallengeError> {
    if bytes.len() > LIMIT {
        return Err(WireError::LimitExceeded.into());
    }
    let (value, used): (T, usize) = wire::decode_prefix_limited::<_, LIMIT>(bytes)?;
    if used != bytes.len() {
        return Err(WireError::TrailingBytes { extra: bytes.len() - used }.into());
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::overlay::manifest::Metadata;
    use crate::{CryptoSuite, Identity, NodeSeed};

    fn data(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8).collect()
    }

    fn challenge(chunk: &[u8], nonce: u8) -> Challenge {
        Challenge {
            epoch: 3,
            nonce: [nonce; 32],
            cid: Cid([5; 32]),
            chunk_index: 2,
            block: BlockId::of(chunk),
            chunk_len: chunk.len() as u32,
        }
    }

    const LENGTHS: [usize; 12] =
        [1, 100, 1024, 1025, 2048, 2049, 3000, 4096, 5 * 1024 + 7, 33 * 1024, 64 * 1024, 1 << 20];

    #[test]
    fn honest_answers_verify_for_every_slice_and_length() {
        for len in LENGTHS {
            let chunk = data(len, 1);
            let mut seen = std::collections::BTreeSet::new();
            for nonce in 0..24u8 {
                let c = challenge(&chunk, nonce);
                let answer = c.answer(&chunk);
                assert_eq!(c.verify(&answer), Ok(()), "len {len} nonce {nonce}");
                let expected_len = SLICE_BYTES.min(len - c.slice_index() as usize * SLICE_BYTES);
                assert_eq!(answer.slice.len(), expected_len);
                assert!(answer.proof.len() <= MAX_PROOF_LEVELS);
                assert!(answer.encode().len() <= MAX_ANSWER_BYTES);
                assert_eq!(ChallengeAnswer::decode(&answer.encode()), Ok(answer));
                seen.insert(c.slice_index());
            }
            // Different nonces draw different slices.
            assert!(seen.len() > usize::from(len > 4 * SLICE_BYTES) * 3, "len {len}: {seen:?}");
        }
    }

    #[test]
    fn wrong_data_slices_nonces_and_proofs_fail() {
        for len in [1000, 3000, 64 * 1024] {
            let chunk = data(len, 1);
            let c = challenge(&chunk, 7);
            let good = c.answer(&chunk);
            // Wrong data: a byte of the slice changed, or other content.
            let mut flipped = good.clone();
            flipped.slice[0] ^= 1;
            assert_eq!(c.verify(&flipped), Err(ChallengeError::Proof));
            assert_eq!(c.verify(&c.answer(&data(len, 2))), Err(ChallengeError::Proof));
            // The chunk, short by a byte.
            assert!(c.verify(&c.answer(&chunk[..len - 1])).is_err());
            // Wrong nonce: an echo of another nonce is refused outright.
            let mut other_nonce = good.clone();
            other_nonce.nonce[31] ^= 1;
            assert_eq!(c.verify(&other_nonce), Err(ChallengeError::OtherChallenge));
            for (field, change) in [
                ("epoch", Box::new(|a: &mut ChallengeAnswer| a.epoch += 1) as Box<dyn Fn(&mut ChallengeAnswer)>),
                ("cid", Box::new(|a: &mut ChallengeAnswer| a.cid.0[0] ^= 1)),
                ("chunk", Box::new(|a: &mut ChallengeAnswer| a.chunk_index += 1)),
            ] {
                let mut other = good.clone();
                change(&mut other);
                assert_eq!(c.verify(&other), Err(ChallengeError::OtherChallenge), "{field}");
            }
            if len <= SLICE_BYTES {
                continue;
            }
            // Wrong slice: the answer to another nonce that draws another
            // slice, with this challenge's nonce echoed.
            let other = (0..=255u8).map(|n| challenge(&chunk, n)).find(|o| o.slice_index() != c.slice_index()).unwrap();
            let mut wrong_slice = other.answer(&chunk);
            wrong_slice.nonce = c.nonce;
            assert!(matches!(c.verify(&wrong_slice), Err(ChallengeError::Proof | ChallengeError::SliceLength { .. })));
            // Truncated, extended and altered proofs.
            let mut truncated = good.clone();
            truncated.proof.pop();
            assert!(matches!(c.verify(&truncated), Err(ChallengeError::ProofLength { .. })));
            let mut extended = good.clone();
            extended.proof.push([0; 32]);
            assert!(matches!(c.verify(&extended), Err(ChallengeError::ProofLength { .. })));
            for level in 0..good.proof.len() {
                let mut altered = good.clone();
                altered.proof[level][9] ^= 0x40;
                assert_eq!(c.verify(&altered), Err(ChallengeError::Proof), "level {level}");
            }
            let mut short = good.clone();
            short.slice.pop();
            assert!(matches!(c.verify(&short), Err(ChallengeError::SliceLength { .. })));
            // A verifier told another length refuses the honest answer.
            let mut wrong_len = c;
            wrong_len.chunk_len += 1024;
            assert!(wrong_len.verify(&good).is_err());
        }
        let mut empty = challenge(&[], 1);
        assert_eq!(empty.verify(&empty.answer(&[])), Err(ChallengeError::ChunkLength(0)));
        empty.chunk_len = MAX_CHUNK_BYTES + 1;
        assert_eq!(empty.verify(&empty.answer(&[1; 10])), Err(ChallengeError::ChunkLength(MAX_CHUNK_BYTES + 1)));
    }

    #[test]
    fn challenges_from_manifests_and_codecs() {
        let publisher = Identity::from_seed(&NodeSeed::derive(0xcc, 1), CryptoSuite::Real);
        let object = data(5000, 9);
        let (manifest, encoded) = Manifest::build(&publisher, &object, 2048, Metadata::default()).unwrap();
        let cid = crate::overlay::manifest::cid_of(&encoded);
        let c = Challenge::for_chunk(4, [1; 32], cid, &manifest, 2).unwrap();
        assert_eq!((c.chunk_len, c.block), (904, manifest.chunks[2]));
        assert_eq!(c.verify(&c.answer(&object[4096..])), Ok(()));
        assert!(Challenge::for_chunk(4, [1; 32], cid, &manifest, 3).is_none());
        let outcome = c.outcome(NodeId([1; 32]), manifest.publisher_id(), true);
        assert_eq!((outcome.block, outcome.publisher, outcome.passed), (c.block, publisher.id(), true));
        // Codecs.
        assert_eq!(Challenge::decode(&c.encode()), Ok(c));
        assert!(c.encode().len() <= MAX_CHALLENGE_BYTES);
        let mut long = c.encode();
        long.push(0);
        assert!(matches!(Challenge::decode(&long), Err(ChallengeError::Decode(WireError::TrailingBytes { .. }))));
        let answer = c.answer(&object[4096..]);
        let encoded = answer.encode();
        assert!(ChallengeAnswer::decode(&encoded[..encoded.len() - 1]).is_err());
        let mut oversized = answer.clone();
        oversized.proof = vec![[0; 32]; MAX_PROOF_LEVELS + 1];
        assert_eq!(ChallengeAnswer::decode(&oversized.encode()), Err(ChallengeError::Malformed));
        oversized.proof.clear();
        oversized.slice = vec![0; SLICE_BYTES + 1];
        assert_eq!(ChallengeAnswer::decode(&oversized.encode()), Err(ChallengeError::Malformed));
    }
}
