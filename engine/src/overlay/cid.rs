//! Content and block identifiers: BLAKE3 hashes.

use crate::crypto::ct_eq;
use crate::dht::Key;
use crate::identity::{NodeId, hex, parse_hex32};
use core::fmt;
use core::str::FromStr;

/// A block (a chunk or an encoded manifest), named by the BLAKE3 hash of its bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode)]
pub struct BlockId(pub [u8; 32]);

impl BlockId {
    /// The identifier of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        BlockId(*blake3::hash(bytes).as_bytes())
    }

    /// Whether `bytes` hash to this identifier (constant-time comparison).
    pub fn matches(&self, bytes: &[u8]) -> bool {
        ct_eq(blake3::hash(bytes).as_bytes(), &self.0)
    }
}

impl fmt::Debug for BlockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlockId({})", &hex(&self.0)[..16])
    }
}

/// A content ID: the BLAKE3 hash of an object's encoded, signed manifest.
/// Written `b3:` followed by 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode)]
pub struct Cid(pub [u8; 32]);

/// The text prefix of a [`Cid`].
pub const CID_PREFIX: &str = "b3:";

impl Cid {
    /// The manifest block this content ID names.
    pub fn block(&self) -> BlockId {
        BlockId(self.0)
    }

    /// The DHT key its provider records live under.
    pub fn key(&self) -> Key {
        NodeId(self.0)
    }
}

impl fmt::Display for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{CID_PREFIX}{}", hex(&self.0))
    }
}

impl fmt::Debug for Cid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{CID_PREFIX}{}", &hex(&self.0)[..16])
    }
}

/// A string that is not `b3:` followed by 64 hex digits.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a content ID (expected b3: and 64 hex digits): {0:?}")]
pub struct CidParseError(pub String);

impl FromStr for Cid {
    type Err = CidParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.strip_prefix(CID_PREFIX).and_then(parse_hex32).map(Cid).ok_or_else(|| CidParseError(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cids_print_and_parse() {
        let cid = Cid(BlockId::of(b"hello").0);
        let text = cid.to_string();
        assert!(text.starts_with("b3:") && text.len() == 67);
        assert_eq!(text.parse::<Cid>(), Ok(cid));
        assert!("b3:zz".parse::<Cid>().is_err());
        assert!(text[3..].parse::<Cid>().is_err(), "the prefix is required");
    }

    #[test]
    fn block_ids_match_only_their_bytes() {
        let id = BlockId::of(b"chunk");
        assert!(id.matches(b"chunk"));
        assert!(!id.matches(b"chunK"));
    }
}
