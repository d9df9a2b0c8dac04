//! Overlay wire messages (bincode bodies of [`MessageKind::Overlay`] datagrams).
//!
//! Blocks travel as pieces of at most [`MAX_PIECE_BYTES`] so that every
//! datagram fits a path MTU. A requester names the block, the piece size and
//! the pieces it is missing; the holder reads the block once and answers
//! with one [`OverlayMessage::Piece`] per piece. Nothing in a piece is
//! trusted: the reassembled block is checked against its BLAKE3 identifier
//! before anything uses it.

use super::cid::{BlockId, Cid};
use super::params::{MAX_CHUNK_BYTES, MAX_PIECE_BYTES, MIN_PIECE_BYTES};
use crate::wire::{self, MessageKind, WireError};

/// Most piece ranges one request may list.
pub const MAX_RANGES_PER_REQUEST: usize = 64;

/// A half-open range `[start, end)` of piece indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct PieceRange {
    /// First piece.
    pub start: u32,
    /// One past the last piece.
    pub end: u32,
}

/// What a node answers to a replication request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum ReplicateStatus {
    /// The node will fetch the object and hold it.
    Accepted,
    /// The node already holds the whole object.
    AlreadyHeld,
    /// The node declines (not among the closest nodes it knows, or out of quota).
    Refused,
}

/// One overlay datagram.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum OverlayMessage {
    /// Asks for pieces of a block; answered by [`OverlayMessage::Piece`]s or
    /// [`OverlayMessage::NotFound`].
    GetBlock {
        /// Chosen by the requester, echoed in every answer.
        request: u64,
        /// The block wanted.
        block: BlockId,
        /// Piece size the requester reassembles with, in bytes.
        piece_bytes: u32,
        /// The pieces wanted.
        pieces: Vec<PieceRange>,
    },
    /// One piece of a block.
    Piece {
        /// The request answered.
        request: u64,
        /// Length of the whole block, in bytes.
        block_len: u32,
        /// Index of this piece.
        index: u32,
        /// The piece's bytes.
        data: Vec<u8>,
    },
    /// The holder does not have the block.
    NotFound {
        /// The request answered.
        request: u64,
    },
    /// Asks the receiver to hold a replica of `cid`, fetching it from the sender.
    Replicate {
        /// Chosen by the requester, echoed in the answer.
        request: u64,
        /// The object.
        cid: Cid,
        /// Whether this replaces a lost replica (repair) rather than placing a new one.
        repair: bool,
    },
    /// Answer to [`OverlayMessage::Replicate`].
    ReplicateAck {
        /// The request answered.
        request: u64,
        /// The decision.
        status: ReplicateStatus,
    },
}

/// A [`OverlayMessage::Piece`] borrowed from the datagram, decoded without
/// copying its data (the receive path's hot spot).
#[derive(Clone, Copy, Debug, PartialEq, Eq, bincode::Encode, bincode::BorrowDecode)]
pub struct PieceRef<'a> {
    /// The request answered.
    pub request: u64,
    /// Length of the whole block, in bytes.
    pub block_len: u32,
    /// Index of this piece.
    pub index: u32,
    /// The piece's bytes.
    pub data: &'a [u8],
}

/// A decoded overlay body: pieces borrowed, everything else owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MessageView<'a> {
    /// A block piece.
    Piece(PieceRef<'a>),
    /// Any other message.
    Other(OverlayMessage),
}

/// The variant index of [`OverlayMessage::Piece`] in the encoding.
const PIECE_TAG: u32 = 1;

impl OverlayMessage {
    /// Decodes a body like [`OverlayMessage::decode`], but borrows a piece's
    /// data from `body` instead of copying it.
    pub fn decode_view(body: &[u8]) -> Result<MessageView<'_>, WireError> {
        let (tag, used): (u32, usize) = wire::decode_prefix_limited::<_, { wire::MAX_BODY }>(body)?;
        if tag != PIECE_TAG {
            return Self::decode(body).map(MessageView::Other);
        }
        let rest = &body[used..];
        let config = bincode::config::standard().with_limit::<{ wire::MAX_BODY }>();
        let (piece, consumed): (PieceRef<'_>, usize) = bincode::borrow_decode_from_slice(rest, config)?;
        if consumed != rest.len() {
            return Err(WireError::TrailingBytes { extra: rest.len() - consumed });
        }
        // As in `wire::decode_body`: no long-form varints (the data is
        // compared too, a memcmp of at most one piece).
        if !wire::encodes_to(&(PIECE_TAG, piece), body) {
            return Err(wire::NON_CANONICAL);
        }
        if piece.block_len > MAX_CHUNK_BYTES || piece.data.len() > MAX_PIECE_BYTES as usize || piece.data.is_empty() {
            return Err(WireError::Protocol("piece size"));
        }
        Ok(MessageView::Piece(piece))
    }

    /// A complete datagram carrying this message.
    pub fn encode(&self) -> Vec<u8> {
        wire::encode(MessageKind::Overlay, self)
    }

    /// Decodes and checks a body: field ranges and list lengths.
    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        let message: OverlayMessage = wire::decode_body(body)?;
        message.check()?;
        Ok(message)
    }

    /// A stable label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            OverlayMessage::GetBlock { .. } => "get_block",
            OverlayMessage::Piece { .. } => "piece",
            OverlayMessage::NotFound { .. } => "not_found",
            OverlayMessage::Replicate { .. } => "replicate",
            OverlayMessage::ReplicateAck { .. } => "replicate_ack",
        }
    }

    fn check(&self) -> Result<(), WireError> {
        match self {
            OverlayMessage::GetBlock { piece_bytes, pieces, .. } => {
                if !(MIN_PIECE_BYTES..=MAX_PIECE_BYTES).contains(piece_bytes) {
                    return Err(WireError::Protocol("piece size out of range"));
                }
                if pieces.is_empty() || pieces.len() > MAX_RANGES_PER_REQUEST {
                    return Err(WireError::Protocol("piece range count"));
                }
                let max_pieces = MAX_CHUNK_BYTES.div_ceil(MIN_PIECE_BYTES);
                if pieces.iter().any(|r| r.start >= r.end || r.end > max_pieces) {
                    return Err(WireError::Protocol("bad piece range"));
                }
            }
            OverlayMessage::Piece { block_len, data, .. } => {
                if *block_len > MAX_CHUNK_BYTES || data.len() > MAX_PIECE_BYTES as usize || data.is_empty() {
                    return Err(WireError::Protocol("piece size"));
                }
            }
            OverlayMessage::NotFound { .. }
            | OverlayMessage::Replicate { .. }
            | OverlayMessage::ReplicateAck { .. } => {}
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(datagram: &[u8]) -> &[u8] {
        wire::split(datagram).unwrap().1
    }

    #[test]
    fn round_trips() {
        let messages = [
            OverlayMessage::GetBlock {
                request: 9,
                block: BlockId([3; 32]),
                piece_bytes: 1200,
                pieces: vec![PieceRange { start: 0, end: 55 }],
            },
            OverlayMessage::Piece { request: 9, block_len: 65536, index: 4, data: vec![7; 1200] },
            OverlayMessage::NotFound { request: 1 },
            OverlayMessage::Replicate { request: 2, cid: Cid([1; 32]), repair: true },
            OverlayMessage::ReplicateAck { request: 2, status: ReplicateStatus::Refused },
        ];
        for m in messages {
            assert_eq!(OverlayMessage::decode(body(&m.encode())).unwrap(), m);
        }
    }

    #[test]
    fn out_of_range_fields_are_refused() {
        let bad = [
            OverlayMessage::GetBlock { request: 1, block: BlockId([0; 32]), piece_bytes: 10, pieces: vec![] },
            OverlayMessage::GetBlock {
                request: 1,
                block: BlockId([0; 32]),
                piece_bytes: 1200,
                pieces: vec![PieceRange { start: 5, end: 5 }],
            },
            OverlayMessage::Piece { request: 1, block_len: u32::MAX, index: 0, data: vec![1] },
            OverlayMessage::Piece { request: 1, block_len: 10, index: 0, data: vec![] },
        ];
        for m in bad {
            assert!(matches!(OverlayMessage::decode(body(&m.encode())), Err(WireError::Protocol(_))), "{m:?}");
        }
    }

    #[test]
    fn borrowed_pieces_decode_like_owned_ones() {
        let piece = OverlayMessage::Piece { request: 3, block_len: 5000, index: 2, data: vec![9; 1200] };
        let datagram = piece.encode();
        let view = OverlayMessage::decode_view(body(&datagram)).unwrap();
        assert_eq!(view, MessageView::Piece(PieceRef { request: 3, block_len: 5000, index: 2, data: &[9; 1200] }));
        let other = OverlayMessage::NotFound { request: 4 };
        assert_eq!(OverlayMessage::decode_view(body(&other.encode())), Ok(MessageView::Other(other)));
        let mut long = datagram.clone();
        long.push(0);
        assert!(matches!(OverlayMessage::decode_view(body(&long)), Err(WireError::TrailingBytes { extra: 1 })));
        let empty = OverlayMessage::Piece { request: 3, block_len: 5000, index: 2, data: vec![] };
        assert!(matches!(OverlayMessage::decode_view(body(&empty.encode())), Err(WireError::Protocol(_))));
        assert!(OverlayMessage::decode_view(&[]).is_err());
        // Long-form varints, in the tag and in a field, are refused by both
        // decoders alike. The body is [tag 1][request 3][block_len …].
        let canonical = body(&datagram);
        assert_eq!(canonical[..2], [1, 3]);
        let long_tag = [&[251, 1, 0][..], &canonical[1..]].concat();
        let long_request = [&canonical[..1], &[251, 3, 0][..], &canonical[2..]].concat();
        for bytes in [long_tag, long_request] {
            assert_eq!(OverlayMessage::decode_view(&bytes), Err(wire::NON_CANONICAL));
            assert_eq!(OverlayMessage::decode(&bytes), Err(wire::NON_CANONICAL));
        }
    }

    #[test]
    fn a_full_piece_fits_the_ipv6_minimum_mtu() {
        let m =
            OverlayMessage::Piece { request: u64::MAX, block_len: MAX_CHUNK_BYTES, index: 873, data: vec![0; 1200] };
        assert!(m.encode().len() <= 1232, "{}", m.encode().len());
    }
}
