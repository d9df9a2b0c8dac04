//! Manifests: what an object is made of, signed by its publisher.
//!
//! An object of `size` bytes is split into chunks of `chunk_bytes` (the last
//! one shorter). The manifest lists the BLAKE3 hash of every chunk, optional
//! metadata, the publisher's Ed25519 key and its signature. The encoded
//! manifest is itself a block, and the object's [`Cid`] is that block's
//! BLAKE3 hash, so a fetcher that knows the CID can verify the manifest, and
//! through it every chunk, without trusting whoever served them.
//!
//! Encoding: the bincode encoding (standard varint configuration) of
//! `(version, size, chunk_bytes, chunks, name, media_type, publisher)`, the
//! *signed part*, followed by the 64 raw signature bytes. The signature
//! covers [`SIGNING_CONTEXT`] followed by the signed part, exactly as it
//! appears in the block, so no re-encoding is ever involved in verification.

use super::cid::{BlockId, Cid};
use super::params::{MAX_CHUNK_BYTES, MIN_CHUNK_BYTES};
use crate::identity::{Identity, NodeId, SIGNATURE_LEN, verify_signature};
use crate::wire::{self, WireError};
use core::ops::Range;

/// Version byte at the front of every manifest.
pub const MANIFEST_VERSION: u8 = 1;
/// Largest encoded manifest, in bytes (about 32,000 chunks: 2 GiB at the default chunk size).
pub const MAX_MANIFEST_BYTES: usize = 1 << 20;
/// Longest `name`, in bytes.
pub const MAX_NAME_BYTES: usize = 255;
/// Longest `media_type`, in bytes.
pub const MAX_MEDIA_TYPE_BYTES: usize = 127;
/// Domain separation for manifest signatures.
pub const SIGNING_CONTEXT: &[u8] = b"allium 2026-11 manifest v1\0";

/// A byte range of an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub offset: u64,
    /// Number of bytes.
    pub len: u64,
}

/// Optional descriptive metadata carried in a manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    /// A file name (at most 255 bytes).
    pub name: Option<String>,
    /// A media type such as `text/plain` (at most 127 bytes).
    pub media_type: Option<String>,
}

/// A verified, decoded manifest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Manifest {
    /// Object size, in bytes.
    pub size: u64,
    /// Chunk size, in bytes (the last chunk may be shorter).
    pub chunk_bytes: u32,
    /// BLAKE3 hash of every chunk, in order.
    pub chunks: Vec<BlockId>,
    /// Descriptive metadata.
    pub metadata: Metadata,
    /// The publisher's Ed25519 public key.
    pub publisher: [u8; 32],
    /// The publisher's signature over the signed part.
    pub signature: [u8; SIGNATURE_LEN],
}

/// Why a manifest block was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The bytes do not decode.
    #[error("manifest does not decode: {0}")]
    Decode(#[from] WireError),
    /// Unknown version byte.
    #[error("unsupported manifest version {0}")]
    Version(u8),
    /// Larger than [`MAX_MANIFEST_BYTES`].
    #[error("manifest larger than the limit")]
    TooLarge,
    /// The chunk size is outside the allowed range.
    #[error("chunk size {0} outside 1 KiB ..= 1 MiB")]
    ChunkSize(u32),
    /// The chunk list does not match the object size.
    #[error("{chunks} chunks cannot hold {size} bytes")]
    ChunkCount {
        /// Listed chunks.
        chunks: usize,
        /// Claimed size.
        size: u64,
    },
    /// Name or media type too long.
    #[error("metadata field too long")]
    Metadata,
    /// The signature does not verify against the publisher key.
    #[error("bad publisher signature")]
    Signature,
    /// The content is larger than the caller allows.
    #[error("object of {0} bytes is larger than allowed")]
    ObjectTooLarge(u64),
}

type SignedPart = (u8, u64, u32, Vec<BlockId>, Option<String>, Option<String>, [u8; 32]);

impl Manifest {
    /// Number of chunks an object of `size` bytes has at `chunk_bytes` per chunk.
    pub fn chunk_count(size: u64, chunk_bytes: u32) -> u64 {
        size.div_ceil(u64::from(chunk_bytes.max(1)))
    }

    /// Splits `data` into chunks, signs the manifest, and returns it with its
    /// encoding (whose hash is the CID) and the chunks' hashes.
    pub fn build(
        identity: &Identity,
        data: &[u8],
        chunk_bytes: u32,
        metadata: Metadata,
    ) -> Result<(Manifest, Vec<u8>), ManifestError> {
        if !(MIN_CHUNK_BYTES..=MAX_CHUNK_BYTES).contains(&chunk_bytes) {
            return Err(ManifestError::ChunkSize(chunk_bytes));
        }
        let chunks = data.chunks(chunk_bytes as usize).map(BlockId::of).collect();
        let mut manifest = Manifest {
            size: data.len() as u64,
            chunk_bytes,
            chunks,
            metadata,
            publisher: identity.public().signing_key,
            signature: [0; SIGNATURE_LEN],
        };
        manifest.check_shape()?;
        let signed = wire::encode_plain(&manifest.signed_part());
        manifest.signature = identity.sign(&Self::signing_message(&signed));
        let mut encoded = signed;
        encoded.extend_from_slice(&manifest.signature);
        if encoded.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge);
        }
        Ok((manifest, encoded))
    }

    /// Decodes and verifies an encoded manifest: shape, limits and signature.
    /// (That its hash is the expected CID is the caller's check.)
    pub fn decode(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge);
        }
        let (part, used): (SignedPart, usize) = wire::decode_prefix_limited::<_, MAX_MANIFEST_BYTES>(bytes)?;
        // One manifest, one encoding, one CID: no long-form varints.
        if !wire::encodes_to(&part, &bytes[..used]) {
            return Err(wire::NON_CANONICAL.into());
        }
        let (version, size, chunk_bytes, chunks, name, media_type, publisher) = part;
        if version != MANIFEST_VERSION {
            return Err(ManifestError::Version(version));
        }
        let rest = &bytes[used..];
        let signature: [u8; SIGNATURE_LEN] = match rest.len() {
            n if n < SIGNATURE_LEN => return Err(WireError::Truncated.into()),
            n if n > SIGNATURE_LEN => return Err(WireError::TrailingBytes { extra: n - SIGNATURE_LEN }.into()),
            _ => rest.try_into().map_err(|_| WireError::Truncated)?,
        };
        let manifest =
            Manifest { size, chunk_bytes, chunks, metadata: Metadata { name, media_type }, publisher, signature };
        manifest.check_shape()?;
        if !verify_signature(&publisher, &Self::signing_message(&bytes[..used]), &signature) {
            return Err(ManifestError::Signature);
        }
        Ok(manifest)
    }

    /// The identifier of the publisher.
    pub fn publisher_id(&self) -> NodeId {
        NodeId::from_public_key(&self.publisher)
    }

    /// Where chunk `index` lies in the object: (offset, length in bytes).
    pub fn chunk_span(&self, index: u32) -> (u64, u32) {
        let offset = u64::from(index) * u64::from(self.chunk_bytes);
        let len = self.size.saturating_sub(offset).min(u64::from(self.chunk_bytes));
        (offset, len as u32)
    }

    /// The chunks that hold `range`, or `None` if the range is not inside the object.
    pub fn chunks_covering(&self, range: ByteRange) -> Option<Range<u32>> {
        let end = range.offset.checked_add(range.len)?;
        if end > self.size {
            return None;
        }
        if range.len == 0 {
            return Some(0..0);
        }
        let cb = u64::from(self.chunk_bytes);
        Some((range.offset / cb) as u32..end.div_ceil(cb) as u32)
    }

    fn check_shape(&self) -> Result<(), ManifestError> {
        if !(MIN_CHUNK_BYTES..=MAX_CHUNK_BYTES).contains(&self.chunk_bytes) {
            return Err(ManifestError::ChunkSize(self.chunk_bytes));
        }
        if Self::chunk_count(self.size, self.chunk_bytes) != self.chunks.len() as u64 {
            return Err(ManifestError::ChunkCount { chunks: self.chunks.len(), size: self.size });
        }
        let too_long = |field: &Option<String>, max: usize| field.as_ref().is_some_and(|s| s.len() > max);
        if too_long(&self.metadata.name, MAX_NAME_BYTES) || too_long(&self.metadata.media_type, MAX_MEDIA_TYPE_BYTES) {
            return Err(ManifestError::Metadata);
        }
        Ok(())
    }

    fn signed_part(&self) -> SignedPart {
        (
            MANIFEST_VERSION,
            self.size,
            self.chunk_bytes,
            self.chunks.clone(),
            self.metadata.name.clone(),
            self.metadata.media_type.clone(),
            self.publisher,
        )
    }

    fn signing_message(signed_part: &[u8]) -> Vec<u8> {
        let mut message = Vec::with_capacity(SIGNING_CONTEXT.len() + signed_part.len());
        message.extend_from_slice(SIGNING_CONTEXT);
        message.extend_from_slice(signed_part);
        message
    }
}

/// The content ID of an encoded manifest.
pub fn cid_of(encoded_manifest: &[u8]) -> Cid {
    Cid(BlockId::of(encoded_manifest).0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CryptoSuite, NodeSeed};

    fn identity() -> Identity {
        Identity::from_seed(&NodeSeed::derive(7, 7), CryptoSuite::Real)
    }

    #[test]
    fn build_decode_round_trip_and_spans() {
        let data: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let meta = Metadata { name: Some("a.bin".into()), media_type: Some("application/octet-stream".into()) };
        let (manifest, encoded) = Manifest::build(&identity(), &data, 2048, meta).unwrap();
        assert_eq!(manifest.chunks.len(), 3);
        assert_eq!(Manifest::decode(&encoded).unwrap(), manifest);
        assert_eq!(manifest.chunk_span(2), (4096, 904));
        assert!(manifest.chunks[2].matches(&data[4096..]));
        assert_eq!(manifest.chunks_covering(ByteRange { offset: 2047, len: 2 }), Some(0..2));
        assert_eq!(manifest.chunks_covering(ByteRange { offset: 4999, len: 1 }), Some(2..3));
        assert_eq!(manifest.chunks_covering(ByteRange { offset: 4999, len: 2 }), None);
        assert_eq!(manifest.chunks_covering(ByteRange { offset: u64::MAX, len: 2 }), None);
        assert_eq!(manifest.publisher_id(), identity().id());
    }

    #[test]
    fn empty_objects_have_no_chunks() {
        let (manifest, encoded) = Manifest::build(&identity(), &[], 1024, Metadata::default()).unwrap();
        assert!(manifest.chunks.is_empty());
        assert_eq!(Manifest::decode(&encoded).unwrap().size, 0);
    }

    #[test]
    fn tampering_is_refused() {
        let (_, encoded) = Manifest::build(&identity(), &[1; 3000], 1024, Metadata::default()).unwrap();
        for i in [1usize, 5, 20, encoded.len() - 1] {
            let mut bad = encoded.clone();
            bad[i] ^= 1;
            assert!(Manifest::decode(&bad).is_err(), "flip at {i}");
        }
        let mut long = encoded.clone();
        long.push(0);
        assert!(matches!(Manifest::decode(&long), Err(ManifestError::Decode(WireError::TrailingBytes { .. }))));
        assert!(Manifest::decode(&encoded[..encoded.len() - 1]).is_err());
        assert!(Manifest::build(&identity(), &[0; 10], 512, Metadata::default()).is_err());
    }

    #[test]
    fn long_form_varints_are_refused_even_when_signed() {
        let (_, encoded) = Manifest::build(&identity(), &[1; 3000], 1024, Metadata::default()).unwrap();
        // [version][size 3000 as 251 + u16]…: stretch the size to 252 + u32.
        assert_eq!(encoded[1..4], [251, 0xb8, 0x0b]);
        let signed_part =
            [&encoded[..1], &[252, 0xb8, 0x0b, 0, 0][..], &encoded[4..encoded.len() - SIGNATURE_LEN]].concat();
        let signature = identity().sign(&Manifest::signing_message(&signed_part));
        let stretched = [&signed_part[..], &signature[..]].concat();
        assert_eq!(Manifest::decode(&stretched), Err(ManifestError::Decode(wire::NON_CANONICAL)));
    }
}
