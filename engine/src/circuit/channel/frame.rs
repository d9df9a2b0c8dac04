//! Channel frames: the wire format inside the payload of a channel cell.
//!
//! A payload is exactly [`PAYLOAD_LEN`] (1168) bytes: a sequence of frames,
//! each starting with a one-byte type, then zero padding to the end. All
//! integers are big-endian. A stream is named on the wire by its id (`u16`,
//! never 0) and a generation byte `gen` chosen by the client when it opens
//! the id; frames of an older incarnation of a reused id are thereby told
//! apart and ignored.
//!
//! | type | frame | body after the type byte |
//! |---|---|---|
//! | `0x00` | PADDING | none: this byte and every later byte of the payload are zero; parsing stops |
//! | `0x01` | PING | none (ack-eliciting; sent by a probe timeout when there is nothing else) |
//! | `0x02` | ACK | `largest u64`, `ack_delay_us u32`, `first_range u16`, `extra u8`, then `extra` × (`gap u16`, `len u16`) |
//! | `0x03` | BEGIN | `stream u16`, `gen u8`, `window u32`, `target_len u8`, `target` (UTF-8, "host:port") |
//! | `0x04` | CONNECTED | `stream u16`, `gen u8`, `window u32` |
//! | `0x05` | END | `stream u16`, `gen u8`, `reason u8` ([`crate::circuit::StreamEnd::code`]) |
//! | `0x06` | MAX_STREAM_DATA | `stream u16`, `gen u8`, `max u64` (absolute byte offset the sender may reach) |
//! | `0x08`..=`0x0b` | STREAM | type bit `0x01` = FIN, bit `0x02` = LEN present; `stream u16`, `gen u8`, `offset u64`, [`len u16`], data: `len` bytes, or with no LEN bit the rest of the payload |
//!
//! BEGIN and CONNECTED carry the sender's initial receive window: the peer
//! may send stream bytes below that offset until a MAX_STREAM_DATA raises it.
//!
//! ACK ranges follow QUIC (RFC 9000 §19.3.1): the first range acknowledges
//! `largest - first_range ..= largest`; each extra range lies below the
//! previous one's smallest `s`, its largest being `s - gap - 2` and its
//! smallest that minus `len`. Every cell but one holding only ACK and
//! PADDING frames is ack-eliciting.
//!
//! A full data cell holds one STREAM frame without LEN: 1156 bytes of stream
//! data, or 1140 with a one-range ACK piggybacked.

use thiserror::Error;

/// Bytes of channel payload in one cell (the cell plaintext minus the machine's 1-byte type tag).
pub const PAYLOAD_LEN: usize = 1168;

/// Frame type bytes.
mod ty {
    pub const PADDING: u8 = 0x00;
    pub const PING: u8 = 0x01;
    pub const ACK: u8 = 0x02;
    pub const BEGIN: u8 = 0x03;
    pub const CONNECTED: u8 = 0x04;
    pub const END: u8 = 0x05;
    pub const MAX_STREAM_DATA: u8 = 0x06;
    pub const STREAM: u8 = 0x08;
    pub const STREAM_FIN: u8 = 0x01;
    pub const STREAM_LEN: u8 = 0x02;
}

/// Bytes of an ACK frame with only its first range.
pub const ACK_BASE_LEN: usize = 16;
/// Bytes each extra ACK range adds.
pub const ACK_RANGE_LEN: usize = 4;
/// Most extra ranges one ACK frame carries (the type's `extra` field allows 255).
pub const MAX_ACK_EXTRA_RANGES: usize = 32;
/// Bytes of a STREAM frame header without the LEN field.
pub const STREAM_HEADER_LEN: usize = 12;
/// Bytes of a STREAM frame header with the LEN field.
pub const STREAM_HEADER_LEN_WITH_LEN: usize = 14;
/// Bytes of a MAX_STREAM_DATA frame.
pub const MAX_STREAM_DATA_LEN: usize = 12;
/// Bytes of an END frame.
pub const END_LEN: usize = 5;
/// Bytes of a CONNECTED frame.
pub const CONNECTED_LEN: usize = 8;
/// Bytes of a BEGIN frame without its target.
pub const BEGIN_BASE_LEN: usize = 9;
/// Longest BEGIN target, in bytes.
pub const MAX_TARGET_LEN: usize = 255;

/// A stream as named on the wire: id (never 0) and generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamKey {
    /// Stream id, 1..=65535.
    pub id: u16,
    /// Incarnation of the id, chosen by the client (serial-number order).
    pub generation: u8,
}

/// A decoded ACK frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckFrame {
    /// Inclusive ranges of acknowledged seqs, highest first, disjoint.
    pub ranges: Vec<(u64, u64)>,
    /// How long the peer held the largest before acknowledging it, in microseconds.
    pub ack_delay_us: u32,
}

impl AckFrame {
    /// The largest acknowledged seq.
    pub fn largest(&self) -> u64 {
        self.ranges.first().map_or(0, |r| r.1)
    }
}

/// One decoded frame; data and target borrow from the payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame<'a> {
    /// Ack-eliciting no-op.
    Ping,
    /// Acknowledgement of received cell seqs.
    Ack(AckFrame),
    /// Client asks for a stream to `target`.
    Begin {
        /// The stream.
        stream: StreamKey,
        /// The client's initial receive window, in bytes.
        window: u32,
        /// "host:port" as the client wrote it.
        target: &'a str,
    },
    /// Exit connected the stream.
    Connected {
        /// The stream.
        stream: StreamKey,
        /// The exit's initial receive window, in bytes.
        window: u32,
    },
    /// Abort of the stream.
    End {
        /// The stream.
        stream: StreamKey,
        /// [`crate::circuit::StreamEnd`] code.
        reason: u8,
    },
    /// New flow-control limit for the peer's sending on the stream.
    MaxStreamData {
        /// The stream.
        stream: StreamKey,
        /// Absolute byte offset the peer may send up to (exclusive).
        max: u64,
    },
    /// Stream bytes at `offset`, optionally the last ones.
    Stream {
        /// The stream.
        stream: StreamKey,
        /// Byte offset of `data[0]` in the stream.
        offset: u64,
        /// The bytes.
        data: &'a [u8],
        /// Whether the stream ends after `data`.
        fin: bool,
    },
}

impl Frame<'_> {
    /// Whether a cell carrying this frame must be acknowledged.
    pub fn is_ack_eliciting(&self) -> bool {
        !matches!(self, Frame::Ack(_))
    }
}

/// A malformed channel payload from the peer. The machine tears the circuit down on any.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FrameError {
    /// A frame type byte this version does not know.
    #[error("unknown frame type {0:#04x}")]
    UnknownType(u8),
    /// A frame runs past the end of the payload.
    #[error("truncated frame")]
    Truncated,
    /// A frame names stream 0.
    #[error("stream id 0")]
    ZeroStream,
    /// A PADDING byte is followed by a non-zero byte.
    #[error("padding not zero")]
    PaddingNotZero,
    /// A STREAM frame's offset plus length overflows.
    #[error("stream offset overflow")]
    OffsetOverflow,
    /// ACK ranges run below seq 0.
    #[error("ack ranges underflow")]
    AckRange,
    /// A BEGIN target is not UTF-8.
    #[error("begin target not UTF-8")]
    BadTarget,
    /// An ACK acknowledges a seq this side never assigned.
    #[error("ack of unsent seq {0}")]
    AckOfUnsent(u64),
    /// Stream data beyond the flow-control limit this side granted.
    #[error("stream {stream}: data up to {end} beyond granted {limit}")]
    FlowControl {
        /// Stream id.
        stream: u16,
        /// End offset of the data.
        end: u64,
        /// The limit granted.
        limit: u64,
    },
    /// A FIN disagrees with an earlier FIN or with data already received.
    #[error("stream {0}: inconsistent final size")]
    FinalSize(u16),
    /// A frame the peer's role may not send (BEGIN to a client, CONNECTED to an exit).
    #[error("frame not allowed from this peer: {0}")]
    Unexpected(&'static str),
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len()).ok_or(FrameError::Truncated)?;
        let slice = &self.buf[self.pos..end];
        self.pos = end;
        Ok(slice)
    }
    fn u8(&mut self) -> Result<u8, FrameError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, FrameError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, FrameError> {
        let mut a = [0u8; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(a))
    }
    fn u64(&mut self) -> Result<u64, FrameError> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    fn stream(&mut self) -> Result<StreamKey, FrameError> {
        let id = self.u16()?;
        let generation = self.u8()?;
        if id == 0 {
            return Err(FrameError::ZeroStream);
        }
        Ok(StreamKey { id, generation })
    }
}

/// Decodes every frame of a payload. Pure format checks only; the channel
/// adds the checks that need its state (flow control, final size, acks of
/// unsent seqs, role).
pub fn decode(payload: &[u8]) -> Result<Vec<Frame<'_>>, FrameError> {
    let mut r = Reader { buf: payload, pos: 0 };
    let mut frames = Vec::new();
    while r.pos < payload.len() {
        let t = r.u8()?;
        let frame = match t {
            ty::PADDING => {
                if payload[r.pos..].iter().any(|&b| b != 0) {
                    return Err(FrameError::PaddingNotZero);
                }
                break;
            }
            ty::PING => Frame::Ping,
            ty::ACK => Frame::Ack(decode_ack(&mut r)?),
            ty::BEGIN => {
                let stream = r.stream()?;
                let window = r.u32()?;
                let len = r.u8()? as usize;
                let target = core::str::from_utf8(r.take(len)?).map_err(|_| FrameError::BadTarget)?;
                Frame::Begin { stream, window, target }
            }
            ty::CONNECTED => Frame::Connected { stream: r.stream()?, window: r.u32()? },
            ty::END => Frame::End { stream: r.stream()?, reason: r.u8()? },
            ty::MAX_STREAM_DATA => Frame::MaxStreamData { stream: r.stream()?, max: r.u64()? },
            t if t & !(ty::STREAM_FIN | ty::STREAM_LEN) == ty::STREAM => {
                let stream = r.stream()?;
                let offset = r.u64()?;
                let len = if t & ty::STREAM_LEN != 0 { r.u16()? as usize } else { payload.len() - r.pos };
                let data = r.take(len)?;
                offset.checked_add(len as u64).ok_or(FrameError::OffsetOverflow)?;
                Frame::Stream { stream, offset, data, fin: t & ty::STREAM_FIN != 0 }
            }
            other => return Err(FrameError::UnknownType(other)),
        };
        frames.push(frame);
    }
    Ok(frames)
}

fn decode_ack(r: &mut Reader<'_>) -> Result<AckFrame, FrameError> {
    let largest = r.u64()?;
    let ack_delay_us = r.u32()?;
    let first = r.u16()? as u64;
    let extra = r.u8()?;
    let mut smallest = largest.checked_sub(first).ok_or(FrameError::AckRange)?;
    let mut ranges = Vec::with_capacity(1 + extra as usize);
    ranges.push((smallest, largest));
    for _ in 0..extra {
        let gap = r.u16()? as u64;
        let len = r.u16()? as u64;
        let high = smallest.checked_sub(gap + 2).ok_or(FrameError::AckRange)?;
        smallest = high.checked_sub(len).ok_or(FrameError::AckRange)?;
        ranges.push((smallest, high));
    }
    Ok(AckFrame { ranges, ack_delay_us })
}

/// Writes frames into a payload buffer, front to back; the rest stays zero (PADDING).
pub struct FrameWriter<'a> {
    buf: &'a mut [u8; PAYLOAD_LEN],
    pos: usize,
}

impl<'a> FrameWriter<'a> {
    /// Zeroes `buf` and starts writing at its beginning.
    pub fn new(buf: &'a mut [u8; PAYLOAD_LEN]) -> Self {
        buf.fill(0);
        FrameWriter { buf, pos: 0 }
    }

    /// Bytes still free.
    pub fn remaining(&self) -> usize {
        PAYLOAD_LEN - self.pos
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.pos
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.pos == 0
    }

    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
    }

    fn put_key(&mut self, stream: StreamKey) {
        self.put(&stream.id.to_be_bytes());
        self.put(&[stream.generation]);
    }

    /// Writes PING; false if there is no room.
    pub fn ping(&mut self) -> bool {
        self.fixed(1, |w| w.put(&[ty::PING]))
    }

    fn fixed(&mut self, len: usize, f: impl FnOnce(&mut Self)) -> bool {
        if self.remaining() < len {
            return false;
        }
        f(self);
        true
    }

    /// Writes an ACK for `ranges` (inclusive, highest first, disjoint and
    /// not adjacent, each first range spanning at most 65536 seqs), keeping
    /// as many extra ranges as fit. Returns the lowest seq described, or
    /// `None` if not even the first range fits.
    pub fn ack(&mut self, ranges: &[(u64, u64)], ack_delay_us: u32) -> Option<u64> {
        self.ack_limited(ranges, ack_delay_us, MAX_ACK_EXTRA_RANGES).map(|(smallest, _)| smallest)
    }

    /// [`FrameWriter::ack`] with at most `max_extra` extra ranges; also returns how many were written.
    fn ack_limited(&mut self, ranges: &[(u64, u64)], ack_delay_us: u32, max_extra: usize) -> Option<(u64, usize)> {
        let (&(lo, hi), rest) = ranges.split_first()?;
        if self.remaining() < ACK_BASE_LEN {
            return None;
        }
        let lo = lo.max(hi.saturating_sub(u16::MAX as u64));
        let room = (self.remaining() - ACK_BASE_LEN) / ACK_RANGE_LEN;
        let mut extras: Vec<(u16, u16)> = Vec::new();
        let mut smallest = lo;
        for &(l, h) in rest.iter().take(room.min(max_extra).min(u8::MAX as usize)) {
            let gap = smallest.saturating_sub(h).saturating_sub(2);
            if h + 2 > smallest || gap > u16::MAX as u64 {
                break;
            }
            let l = l.max(h.saturating_sub(u16::MAX as u64));
            extras.push((gap as u16, (h - l) as u16));
            smallest = l;
        }
        self.put(&[ty::ACK]);
        self.put(&hi.to_be_bytes());
        self.put(&ack_delay_us.to_be_bytes());
        self.put(&((hi - lo) as u16).to_be_bytes());
        self.put(&[extras.len() as u8]);
        let count = extras.len();
        for (gap, len) in extras {
            self.put(&gap.to_be_bytes());
            self.put(&len.to_be_bytes());
        }
        Some((smallest, count))
    }

    /// Writes BEGIN; false if there is no room or the target is too long.
    pub fn begin(&mut self, stream: StreamKey, window: u32, target: &str) -> bool {
        if target.len() > MAX_TARGET_LEN {
            return false;
        }
        self.fixed(BEGIN_BASE_LEN + target.len(), |w| {
            w.put(&[ty::BEGIN]);
            w.put_key(stream);
            w.put(&window.to_be_bytes());
            w.put(&[target.len() as u8]);
            w.put(target.as_bytes());
        })
    }

    /// Writes CONNECTED; false if there is no room.
    pub fn connected(&mut self, stream: StreamKey, window: u32) -> bool {
        self.fixed(CONNECTED_LEN, |w| {
            w.put(&[ty::CONNECTED]);
            w.put_key(stream);
            w.put(&window.to_be_bytes());
        })
    }

    /// Writes END; false if there is no room.
    pub fn end(&mut self, stream: StreamKey, reason: u8) -> bool {
        self.fixed(END_LEN, |w| {
            w.put(&[ty::END]);
            w.put_key(stream);
            w.put(&[reason]);
        })
    }

    /// Writes MAX_STREAM_DATA; false if there is no room.
    pub fn max_stream_data(&mut self, stream: StreamKey, max: u64) -> bool {
        self.fixed(MAX_STREAM_DATA_LEN, |w| {
            w.put(&[ty::MAX_STREAM_DATA]);
            w.put_key(stream);
            w.put(&max.to_be_bytes());
        })
    }

    /// Stream bytes a STREAM frame offered `want` bytes can carry here, or
    /// `None` if no STREAM frame fits. A frame that reaches the end of the
    /// payload is written without LEN.
    pub fn stream_room(&self, want: usize) -> Option<usize> {
        let rem = self.remaining();
        if rem >= STREAM_HEADER_LEN && want >= rem - STREAM_HEADER_LEN {
            Some(rem - STREAM_HEADER_LEN)
        } else if rem >= STREAM_HEADER_LEN_WITH_LEN {
            Some(want.min(rem - STREAM_HEADER_LEN_WITH_LEN))
        } else {
            None
        }
    }

    /// Writes a STREAM frame whose data is produced by `fill` into a slice of
    /// exactly `len` bytes, where `len` was returned by
    /// [`FrameWriter::stream_room`] just before. The frame omits LEN when it
    /// reaches the end of the payload.
    pub fn stream(&mut self, stream: StreamKey, offset: u64, len: usize, fin: bool, fill: impl FnOnce(&mut [u8])) {
        let to_end = self.remaining() == STREAM_HEADER_LEN + len;
        let mut t = ty::STREAM;
        if fin {
            t |= ty::STREAM_FIN;
        }
        if !to_end {
            t |= ty::STREAM_LEN;
        }
        self.put(&[t]);
        self.put_key(stream);
        self.put(&offset.to_be_bytes());
        if !to_end {
            self.put(&(len as u16).to_be_bytes());
        }
        fill(&mut self.buf[self.pos..self.pos + len]);
        self.pos += len;
    }

    /// Writes any decoded frame (used by tests and the fuzz target to re-encode); false if it does not fit.
    pub fn frame(&mut self, frame: &Frame<'_>) -> bool {
        match frame {
            Frame::Ping => self.ping(),
            Frame::Ack(ack) => {
                // All ranges must fit for a faithful re-encoding.
                let before = self.pos;
                match self.ack_limited(&ack.ranges, ack.ack_delay_us, u8::MAX as usize) {
                    Some((_, extra)) if extra + 1 == ack.ranges.len() => true,
                    _ => {
                        self.buf[before..self.pos].fill(0);
                        self.pos = before;
                        false
                    }
                }
            }
            Frame::Begin { stream, window, target } => self.begin(*stream, *window, target),
            Frame::Connected { stream, window } => self.connected(*stream, *window),
            Frame::End { stream, reason } => self.end(*stream, *reason),
            Frame::MaxStreamData { stream, max } => self.max_stream_data(*stream, *max),
            Frame::Stream { stream, offset, data, fin } => {
                if self.stream_room(data.len()) != Some(data.len()) {
                    return false;
                }
                self.stream(*stream, *offset, data.len(), *fin, |out| out.copy_from_slice(data));
                true
            }
        }
    }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
