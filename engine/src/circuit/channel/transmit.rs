//! The transmit path: filling one cell payload with an ACK (when one is
//! wanted), control frames, and stream data taken round-robin from the
//! streams, within the congestion window and each stream's flow-control limit.

use super::frame::{FrameWriter, PAYLOAD_LEN, STREAM_HEADER_LEN_WITH_LEN, StreamKey};
use super::recovery::{SentCell, SentFrame};
use super::{Channel, Phase, Role};
use crate::time::Instant;

impl Channel {
    /// Fill `out` with the next cell payload if anything may be sent now (congestion window,
    /// flow-control windows, pending ACK, retransmissions, control frames), returning the seq it
    /// was assigned (from the same counter as alloc_seq). `None`: nothing to send now.
    /// The caller loops until None after every input.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut [u8; PAYLOAD_LEN]) -> Option<u64> {
        self.last_now = self.last_now.max(now);
        self.wake = None;
        let can_elicit = self.recovery.in_flight() < self.cc.window() || self.probes > 0;
        let work = can_elicit && (self.probes > 0 || self.has_eliciting_work());
        if !work && !self.acks.due(now) {
            return None;
        }
        let mut w = FrameWriter::new(out);
        let mut frames = Vec::new();
        let mut acked_largest = None;
        if self.acks.wanted() {
            let (ranges, delay) = self.acks.ranges(now);
            if w.ack(&ranges, delay).is_some() {
                acked_largest = ranges.first().map(|r| r.1);
                frames.push(SentFrame::Ack(acked_largest.unwrap_or(0)));
            }
        }
        let mut eliciting = false;
        if work {
            self.write_control(&mut w, &mut frames);
            self.write_data(&mut w, &mut frames);
            eliciting = frames.iter().any(|f| !matches!(f, SentFrame::Ack(_)));
            if !eliciting && self.probes > 0 && w.ping() {
                frames.push(SentFrame::Ping);
                eliciting = true;
            }
        }
        if w.is_empty() {
            return None;
        }
        let seq = self.alloc_seq();
        self.cells_sent += 1;
        if acked_largest.is_some() {
            self.acks.on_ack_sent();
        }
        if eliciting {
            self.probes = self.probes.saturating_sub(1);
            let after = self.recovery.in_flight() + 1;
            let cwnd = self.cc.window();
            let cwnd_limited = if self.cc.in_slow_start() { after * 2 >= cwnd } else { after >= cwnd };
            self.recovery.on_sent(seq, SentCell { time: now, cwnd_limited, frames });
        }
        Some(seq)
    }

    /// Whether an ack-eliciting frame is waiting to be sent.
    fn has_eliciting_work(&self) -> bool {
        !self.ends.is_empty()
            || self.streams.values().any(|s| {
                s.need_begin
                    || s.need_connected
                    || (s.recv.need_grant && s.phase != Phase::Accepting)
                    || (s.phase == Phase::Open && s.send.has_sendable())
            })
    }

    fn write_control(&mut self, w: &mut FrameWriter<'_>, frames: &mut Vec<SentFrame>) {
        while let Some((&key, &code)) = self.ends.first_key_value() {
            if !w.end(key, code) {
                return;
            }
            self.ends.remove(&key);
            frames.push(SentFrame::End(key, code));
        }
        let window = u32::try_from(self.window).unwrap_or(u32::MAX);
        for (&id, s) in self.streams.iter_mut() {
            let key = StreamKey { id, generation: s.generation };
            if s.need_begin {
                if !w.begin(key, window, &s.target) {
                    return;
                }
                s.need_begin = false;
                frames.push(SentFrame::Begin(key));
            }
            if s.need_connected && self.role == Role::Exit {
                if !w.connected(key, window) {
                    return;
                }
                s.need_connected = false;
                frames.push(SentFrame::Connected(key));
            }
            if s.recv.need_grant && s.phase != Phase::Accepting {
                if !w.max_stream_data(key, s.recv.granted) {
                    return;
                }
                s.recv.need_grant = false;
                frames.push(SentFrame::MaxData(key));
            }
        }
    }

    fn write_data(&mut self, w: &mut FrameWriter<'_>, frames: &mut Vec<SentFrame>) {
        let start = self.rr_next;
        let ids: Vec<u16> = self
            .streams
            .range(start..)
            .chain(self.streams.range(..start))
            .filter(|(_, s)| s.phase == Phase::Open && s.send.has_sendable())
            .map(|(&id, _)| id)
            .collect();
        for id in ids {
            if w.remaining() < STREAM_HEADER_LEN_WITH_LEN {
                break;
            }
            let Some(s) = self.streams.get_mut(&id) else { continue };
            let key = StreamKey { id, generation: s.generation };
            while let Some(chunk) = s.send.next_chunk(|want| w.stream_room(want)) {
                w.stream(key, chunk.offset, chunk.len, chunk.fin, |buf| s.send.copy_out(chunk.offset, buf));
                frames.push(SentFrame::Stream(key, chunk));
            }
            self.rr_next = id.checked_add(1).unwrap_or(1);
        }
    }
}
