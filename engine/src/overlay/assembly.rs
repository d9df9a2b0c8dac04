//! Reassembling one block from pieces that may arrive in any order, twice,
//! or not at all. Pure bookkeeping: verification of the finished block is
//! the caller's job.

use super::message::PieceRange;
use super::params::MAX_CHUNK_BYTES;

/// Why a piece does not fit the block being assembled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PieceError {
    /// The piece claims a block length other than the expected one, or over the limit.
    #[error("block length mismatch")]
    Length,
    /// The piece index is past the end of the block.
    #[error("piece index out of range")]
    Index,
    /// The piece is not exactly as long as its position requires.
    #[error("piece size mismatch")]
    Size,
}

/// What a fitting piece did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PieceOutcome {
    /// New bytes were written.
    New,
    /// The piece was already there.
    Duplicate,
}

/// A block under reassembly.
#[derive(Clone, Debug)]
pub struct Assembly {
    /// Block length, once known (from the manifest, or from the first piece).
    len: Option<u32>,
    /// Largest length accepted while the length is unknown.
    max_len: u32,
    piece_bytes: u32,
    buf: Vec<u8>,
    have: Vec<bool>,
    received: u32,
}

impl Assembly {
    /// A block of `len` bytes if known, else of at most `max_len` bytes, cut
    /// into pieces of `piece_bytes`.
    pub fn new(len: Option<u32>, max_len: u32, piece_bytes: u32) -> Self {
        let mut assembly = Assembly {
            len: None,
            max_len: max_len.min(MAX_CHUNK_BYTES),
            piece_bytes: piece_bytes.max(1),
            buf: Vec::new(),
            have: Vec::new(),
            received: 0,
        };
        if let Some(len) = len {
            assembly.fix_len(len);
        }
        assembly
    }

    fn fix_len(&mut self, len: u32) {
        self.len = Some(len);
        self.buf = vec![0; len as usize];
        self.have = vec![false; len.div_ceil(self.piece_bytes) as usize];
    }

    /// Number of pieces, once the length is known.
    pub fn piece_count(&self) -> Option<u32> {
        self.len.map(|_| self.have.len() as u32)
    }

    /// Writes one piece.
    pub fn on_piece(&mut self, block_len: u32, index: u32, data: &[u8]) -> Result<PieceOutcome, PieceError> {
        match self.len {
            Some(len) if len != block_len => return Err(PieceError::Length),
            None if block_len > self.max_len || block_len == 0 => return Err(PieceError::Length),
            None => self.fix_len(block_len),
            Some(_) => {}
        }
        let slot = self.have.get_mut(index as usize).ok_or(PieceError::Index)?;
        let start = index as usize * self.piece_bytes as usize;
        let end = (start + self.piece_bytes as usize).min(block_len as usize);
        if data.len() != end - start {
            return Err(PieceError::Size);
        }
        if *slot {
            return Ok(PieceOutcome::Duplicate);
        }
        *slot = true;
        self.received += 1;
        self.buf[start..end].copy_from_slice(data);
        Ok(PieceOutcome::New)
    }

    /// Whether every piece has arrived (an empty block is never complete:
    /// blocks are at least one byte).
    pub fn is_complete(&self) -> bool {
        self.len.is_some() && self.received as usize == self.have.len() && !self.have.is_empty()
    }

    /// Pieces received so far.
    pub fn received(&self) -> u32 {
        self.received
    }

    /// The missing pieces as at most `max_ranges` ranges (all pieces up to
    /// the largest possible count while the length is unknown).
    pub fn missing(&self, max_ranges: usize) -> Vec<PieceRange> {
        if self.len.is_none() {
            return vec![PieceRange { start: 0, end: self.max_len.div_ceil(self.piece_bytes).max(1) }];
        }
        let mut ranges: Vec<PieceRange> = Vec::new();
        for (i, have) in self.have.iter().enumerate() {
            if *have {
                continue;
            }
            let i = i as u32;
            if let Some(last) = ranges.last_mut()
                && last.end == i
            {
                last.end = i + 1;
            } else if ranges.len() == max_ranges {
                break;
            } else {
                ranges.push(PieceRange { start: i, end: i + 1 });
            }
        }
        ranges
    }

    /// The assembled bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rejects_pieces_that_do_not_fit() {
        let mut a = Assembly::new(Some(2500), 2500, 1000);
        assert_eq!(a.piece_count(), Some(3));
        assert_eq!(a.on_piece(2400, 0, &[0; 1000]), Err(PieceError::Length));
        assert_eq!(a.on_piece(2500, 3, &[0; 1000]), Err(PieceError::Index));
        assert_eq!(a.on_piece(2500, 2, &[0; 1000]), Err(PieceError::Size));
        assert_eq!(a.on_piece(2500, 2, &[0; 500]), Ok(PieceOutcome::New));
        assert_eq!(a.on_piece(2500, 2, &[0; 500]), Ok(PieceOutcome::Duplicate));
        assert_eq!(a.missing(8), vec![PieceRange { start: 0, end: 2 }]);
        let mut unknown = Assembly::new(None, 4000, 1000);
        assert_eq!(unknown.missing(8), vec![PieceRange { start: 0, end: 4 }]);
        assert_eq!(unknown.on_piece(5000, 0, &[0; 1000]), Err(PieceError::Length));
        assert_eq!(unknown.on_piece(1500, 1, &[0; 500]), Ok(PieceOutcome::New));
        assert_eq!(unknown.piece_count(), Some(2));
    }

    proptest! {
        #[test]
        fn any_arrival_order_with_duplicates_rebuilds_the_block(
            len in 1u32..20_000,
            piece in 256u32..3000,
            order in proptest::collection::vec(any::<u32>(), 0..200),
        ) {
            let block: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let mut a = Assembly::new(None, 20_000, piece);
            let pieces = len.div_ceil(piece);
            let send = |a: &mut Assembly, i: u32| {
                let start = (i * piece) as usize;
                let end = (start + piece as usize).min(len as usize);
                a.on_piece(len, i, &block[start..end]).unwrap();
            };
            for x in order {
                send(&mut a, x % pieces);
            }
            send(&mut a, 0);
            for r in a.missing(usize::MAX) {
                for i in r.start..r.end.min(pieces) {
                    send(&mut a, i);
                }
            }
            prop_assert!(a.is_complete());
            prop_assert_eq!(a.into_bytes(), block);
        }
    }
}
