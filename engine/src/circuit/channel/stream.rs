//! The two halves of a stream: the send buffer with its acknowledged and
//! lost byte ranges, and the receive reassembly buffer with its
//! flow-control grant.

use super::frame::FrameError;
use super::ranges::RangeSet;
use std::collections::{BTreeMap, VecDeque};

/// Sending half: bytes from `base` (oldest unacknowledged) to `written`.
#[derive(Debug)]
pub(crate) struct SendStream {
    /// Bytes `base..written`.
    buf: VecDeque<u8>,
    /// Stream offset of `buf[0]`: everything below is acknowledged.
    base: u64,
    /// Stream offset after the last queued byte.
    written: u64,
    /// Next never-sent offset.
    next: u64,
    /// The peer's flow-control limit (exclusive).
    pub(crate) max_data: u64,
    /// Acknowledged ranges above `base`.
    acked: RangeSet,
    /// Sent ranges declared lost and not acknowledged since, to re-send first.
    lost: RangeSet,
    /// FIN queued by the application.
    fin: bool,
    /// FIN sent at least once.
    fin_sent: bool,
    /// FIN must be sent again.
    fin_lost: bool,
    /// FIN acknowledged.
    fin_acked: bool,
    /// The buffer reached the limit; `Writable` is due when it drains below half.
    pub(crate) blocked: bool,
}

/// One STREAM frame's worth of a send stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    pub(crate) offset: u64,
    pub(crate) len: usize,
    pub(crate) fin: bool,
}

impl SendStream {
    pub(crate) fn new() -> Self {
        SendStream {
            buf: VecDeque::new(),
            base: 0,
            written: 0,
            next: 0,
            max_data: 0,
            acked: RangeSet::new(),
            lost: RangeSet::new(),
            fin: false,
            fin_sent: false,
            fin_lost: false,
            fin_acked: false,
            blocked: false,
        }
    }

    /// Queues bytes; returns bytes buffered (unacknowledged) now.
    pub(crate) fn write(&mut self, data: &[u8]) -> usize {
        self.buf.extend(data);
        self.written += data.len() as u64;
        self.buf.len()
    }

    /// Queues FIN after the written bytes.
    pub(crate) fn finish(&mut self) {
        self.fin = true;
    }

    /// Whether FIN was queued.
    pub(crate) fn is_finishing(&self) -> bool {
        self.fin
    }

    /// Bytes queued and not yet acknowledged.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Highest offset ever sent.
    #[cfg(test)]
    pub(crate) fn sent_offset(&self) -> u64 {
        self.next
    }

    /// Everything, FIN included, is acknowledged.
    pub(crate) fn is_done(&self) -> bool {
        self.fin_acked && self.buf.is_empty()
    }

    /// Whether a frame could be sent now.
    pub(crate) fn has_sendable(&self) -> bool {
        !self.lost.is_empty() || self.next < self.written.min(self.max_data) || self.fin_pending()
    }

    fn fin_pending(&self) -> bool {
        self.fin && !self.fin_acked && (self.fin_lost || !self.fin_sent) && self.next == self.written
    }

    /// Chooses the next frame of at most `room(want)` bytes: lost ranges
    /// first, then fresh bytes within the peer's limit, then a bare FIN.
    /// `room` maps the bytes wanted to the bytes that fit (`None`: none fit).
    pub(crate) fn next_chunk(&mut self, room: impl Fn(usize) -> Option<usize>) -> Option<Chunk> {
        let (offset, want, fresh) = if let Some(range) = self.lost.first() {
            (range.start, (range.end - range.start) as usize, false)
        } else {
            let end = self.written.min(self.max_data);
            (self.next, (end.saturating_sub(self.next)) as usize, true)
        };
        if want == 0 && !self.fin_pending() {
            return None;
        }
        let len = room(want)?;
        if len == 0 && want > 0 {
            return None;
        }
        let end = offset + len as u64;
        if fresh {
            self.next = end;
        } else {
            self.lost.remove(offset..end);
        }
        let fin = self.fin && end == self.written && (fresh || self.fin_lost) && !self.fin_acked;
        if fin {
            self.fin_sent = true;
            self.fin_lost = false;
        }
        Some(Chunk { offset, len, fin })
    }

    /// Copies `len` bytes at stream offset `offset` (unacknowledged, so still buffered) into `out`.
    pub(crate) fn copy_out(&self, offset: u64, out: &mut [u8]) {
        let start = (offset - self.base) as usize;
        let (a, b) = self.buf.as_slices();
        let mut filled = 0;
        if start < a.len() {
            let n = out.len().min(a.len() - start);
            out[..n].copy_from_slice(&a[start..start + n]);
            filled = n;
        }
        if filled < out.len() {
            let from = start + filled - a.len();
            let rest = out.len() - filled;
            out[filled..].copy_from_slice(&b[from..from + rest]);
        }
    }

    /// The peer acknowledged a frame.
    pub(crate) fn on_ack(&mut self, chunk: Chunk) {
        let end = chunk.offset + chunk.len as u64;
        if chunk.fin {
            self.fin_acked = true;
            self.fin_lost = false;
        }
        if end <= self.base {
            return;
        }
        self.acked.insert(chunk.offset.max(self.base)..end);
        self.lost.remove(chunk.offset..end);
        if let Some(first) = self.acked.first()
            && first.start == self.base
        {
            self.acked.pop_first();
            self.buf.drain(..(first.end - self.base) as usize);
            self.base = first.end;
        }
    }

    /// A frame was lost (or is probed): re-send what is not acknowledged.
    pub(crate) fn on_lost(&mut self, chunk: Chunk) {
        if chunk.fin && !self.fin_acked {
            self.fin_lost = true;
        }
        let start = chunk.offset.max(self.base);
        let end = chunk.offset + chunk.len as u64;
        if start < end {
            for gap in self.acked.gaps_in(start..end) {
                self.lost.insert(gap);
            }
        }
    }
}

/// Receiving half: reassembly and flow control.
#[derive(Debug)]
pub(crate) struct RecvStream {
    /// Offset up to which bytes were handed out in order.
    next: u64,
    /// Offset up to which the application took the bytes (polled `Data`).
    consumed: u64,
    /// Limit advertised (or about to be): the peer may send below it.
    pub(crate) granted: u64,
    /// The flow-control window, in bytes.
    window: u64,
    /// Out-of-order bytes above `next`, disjoint, keyed by offset.
    chunks: BTreeMap<u64, Vec<u8>>,
    /// Final size, once a FIN arrived.
    final_size: Option<u64>,
    /// Highest end offset received.
    highest: u64,
    /// `Finished` was emitted.
    pub(crate) finished: bool,
    /// A MAX_STREAM_DATA with `granted` must be sent.
    pub(crate) need_grant: bool,
}

impl RecvStream {
    pub(crate) fn new(window: u64) -> Self {
        RecvStream {
            next: 0,
            consumed: 0,
            granted: window,
            window,
            chunks: BTreeMap::new(),
            final_size: None,
            highest: 0,
            finished: false,
            need_grant: false,
        }
    }

    /// Takes a STREAM frame; returns the bytes it made deliverable in order.
    pub(crate) fn on_data(&mut self, id: u16, offset: u64, data: &[u8], fin: bool) -> Result<Vec<u8>, FrameError> {
        let end = offset + data.len() as u64; // checked by the decoder
        if end > self.granted {
            return Err(FrameError::FlowControl { stream: id, end, limit: self.granted });
        }
        if let Some(size) = self.final_size
            && (end > size || (fin && end != size))
        {
            return Err(FrameError::FinalSize(id));
        }
        if fin {
            if end < self.highest {
                return Err(FrameError::FinalSize(id));
            }
            self.final_size = Some(end);
        }
        self.highest = self.highest.max(end);
        if end <= self.next {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        if offset <= self.next {
            out.extend_from_slice(&data[(self.next - offset) as usize..]);
            self.next = end;
        } else {
            self.store(offset, data);
        }
        // Drain stored chunks that are now contiguous.
        while let Some(entry) = self.chunks.first_entry() {
            let start = *entry.key();
            if start > self.next {
                break;
            }
            let chunk = entry.remove();
            let chunk_end = start + chunk.len() as u64;
            if chunk_end > self.next {
                out.extend_from_slice(&chunk[(self.next - start) as usize..]);
                self.next = chunk_end;
            }
        }
        Ok(out)
    }

    /// Stores the parts of `offset..` not yet held, keeping chunks disjoint
    /// (so memory stays within the window whatever the peer sends).
    fn store(&mut self, offset: u64, data: &[u8]) {
        let end = offset + data.len() as u64;
        let mut pos = offset;
        while pos < end {
            if let Some((&s, c)) = self.chunks.range(..=pos).next_back()
                && s + c.len() as u64 > pos
            {
                pos = s + c.len() as u64;
                continue;
            }
            let stop = self.chunks.range(pos..end).next().map_or(end, |(&s, _)| s);
            let piece = &data[(pos - offset) as usize..(stop - offset) as usize];
            self.chunks.insert(pos, piece.to_vec());
            pos = stop;
        }
    }

    /// Whether every byte up to the FIN was handed out.
    pub(crate) fn is_complete(&self) -> bool {
        self.final_size == Some(self.next)
    }

    /// The application took `n` bytes; returns true if a new grant is due
    /// (the limit moved by at least a quarter window).
    pub(crate) fn on_consumed(&mut self, n: usize) -> bool {
        self.consumed += n as u64;
        if self.final_size.is_some() {
            return false;
        }
        let limit = self.consumed + self.window;
        if limit.saturating_sub(self.granted) >= self.window / 4 {
            self.granted = limit;
            self.need_grant = true;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_stream_resends_lost_ranges_before_fresh_bytes() {
        let mut s = SendStream::new();
        s.max_data = 100;
        s.write(&(0..150u8).collect::<Vec<_>>());
        let a = s.next_chunk(|w| Some(w.min(40))).unwrap();
        let b = s.next_chunk(|w| Some(w.min(40))).unwrap();
        assert_eq!((a.offset, a.len, b.offset, b.len), (0, 40, 40, 40));
        s.on_lost(a);
        s.on_ack(Chunk { offset: 10, len: 5, fin: false });
        let r = s.next_chunk(|w| Some(w.min(40))).unwrap();
        assert_eq!((r.offset, r.len), (0, 10));
        let r = s.next_chunk(|w| Some(w.min(40))).unwrap();
        assert_eq!((r.offset, r.len), (15, 25));
        let mut out = [0u8; 25];
        s.copy_out(15, &mut out);
        assert_eq!(out[0], 15);
        // Fresh bytes stop at the flow-control limit.
        let r = s.next_chunk(|w| Some(w.min(40))).unwrap();
        assert_eq!((r.offset, r.len), (80, 20));
        assert!(s.next_chunk(Some).is_none());
        s.on_ack(Chunk { offset: 0, len: 100, fin: false });
        assert_eq!(s.buffered(), 50);
    }

    #[test]
    fn fin_is_sent_with_the_last_bytes_and_resent_alone_when_lost() {
        let mut s = SendStream::new();
        s.max_data = 1000;
        s.write(b"hello");
        s.finish();
        let c = s.next_chunk(Some).unwrap();
        assert!(c.fin && c.len == 5);
        assert!(s.next_chunk(Some).is_none());
        s.on_ack(Chunk { offset: 0, len: 5, fin: false });
        s.on_lost(c);
        let again = s.next_chunk(Some).unwrap();
        assert_eq!((again.offset, again.len, again.fin), (5, 0, true));
        s.on_ack(again);
        assert!(s.is_done());
    }

    #[test]
    fn recv_stream_reassembles_and_enforces_limits() {
        let mut r = RecvStream::new(100);
        assert_eq!(r.on_data(1, 10, &[1; 10], false).unwrap(), Vec::<u8>::new());
        assert_eq!(r.on_data(1, 5, &[2; 20], false).unwrap(), Vec::<u8>::new());
        let out = r.on_data(1, 0, &[3; 6], false).unwrap();
        assert_eq!(out.len(), 25);
        assert_eq!(&out[..6], &[3; 6]);
        assert_eq!(&out[6..10], &[2; 4]);
        assert_eq!(&out[10..20], &[1; 10]);
        assert_eq!(&out[20..], &[2; 5]);
        assert_eq!(r.on_data(1, 95, &[0; 6], false), Err(FrameError::FlowControl { stream: 1, end: 101, limit: 100 }));
        assert!(r.on_data(1, 30, &[0; 5], true).is_ok());
        assert_eq!(r.on_data(1, 30, &[0; 6], false), Err(FrameError::FinalSize(1)));
        assert_eq!(r.on_data(1, 20, &[0; 5], true), Err(FrameError::FinalSize(1)));
        assert!(r.on_data(1, 25, &[0; 10], true).is_ok());
        assert!(r.is_complete());
    }

    #[test]
    fn a_fin_below_received_data_is_refused() {
        let mut r = RecvStream::new(100);
        r.on_data(1, 50, &[0; 10], false).unwrap();
        assert_eq!(r.on_data(1, 0, &[0; 10], true), Err(FrameError::FinalSize(1)));
    }

    #[test]
    fn grants_move_by_quarter_windows() {
        let mut r = RecvStream::new(100);
        assert!(!r.on_consumed(24));
        assert!(r.on_consumed(1));
        assert_eq!(r.granted, 125);
    }
}
