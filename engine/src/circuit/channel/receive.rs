//! The receive path: applying a peer's frames, and what acknowledgements,
//! losses and probe timeouts do to streams and the congestion window.

use super::frame::{self, AckFrame, Frame, FrameError, PAYLOAD_LEN, StreamKey};
use super::recovery::{SentCell, SentFrame, TimeoutOutcome};
use super::{Channel, ChannelEvent, Phase, Role, Stream, newer};
use crate::circuit::StreamEnd;
use crate::time::Instant;

/// Probe cells a probe timeout allows beyond the congestion window (RFC 9002 §6.2.4).
const PROBES_PER_PTO: u32 = 2;

impl Channel {
    /// An authenticated, replay-checked channel payload arrived in the cell with sequence `seq`.
    ///
    /// A duplicated seq is ignored. On `Err` the payload was malformed and
    /// the circuit should be torn down; the channel may have applied some
    /// of its frames.
    pub fn on_payload(&mut self, now: Instant, seq: u64, payload: &[u8; PAYLOAD_LEN]) -> Result<(), FrameError> {
        self.last_now = self.last_now.max(now);
        if self.acks.is_duplicate(seq) {
            return Ok(());
        }
        let frames = frame::decode(payload)?;
        let eliciting = frames.iter().any(Frame::is_ack_eliciting);
        for frame in frames {
            self.apply(now, frame)?;
        }
        self.acks.on_cell(now, seq, eliciting);
        Ok(())
    }

    fn apply(&mut self, now: Instant, frame: Frame<'_>) -> Result<(), FrameError> {
        match frame {
            Frame::Ping => {}
            Frame::Ack(ack) => self.on_ack_frame(now, &ack)?,
            Frame::Begin { stream, window, target } => self.on_begin(stream, window, target)?,
            Frame::Connected { stream, window } => {
                if self.role == Role::Exit {
                    return Err(FrameError::Unexpected("CONNECTED"));
                }
                if let Some(s) = self.stream_mut(stream) {
                    s.send.max_data = s.send.max_data.max(u64::from(window));
                    self.mark_connected(stream);
                }
            }
            Frame::End { stream, reason } => self.on_end(stream, reason),
            Frame::MaxStreamData { stream, max } => {
                if let Some(s) = self.stream_mut(stream) {
                    s.send.max_data = s.send.max_data.max(max);
                }
            }
            Frame::Stream { stream, offset, data, fin } => {
                if self.role == Role::Client {
                    // Data from the exit implies it connected.
                    self.mark_connected(stream);
                }
                let Some(s) = self.stream_mut(stream) else { return Ok(()) };
                let bytes = s.recv.on_data(stream.id, offset, data, fin)?;
                let complete = !s.recv.finished && s.recv.is_complete();
                if complete {
                    s.recv.finished = true;
                }
                if !bytes.is_empty() {
                    self.push_event(ChannelEvent::Data { stream: stream.id, data: bytes }, stream.generation);
                }
                if complete {
                    self.push_event(ChannelEvent::Finished { stream: stream.id }, stream.generation);
                    self.check_finished(stream.id);
                }
            }
        }
        Ok(())
    }

    fn mark_connected(&mut self, key: StreamKey) {
        if let Some(s) = self.stream_mut(key)
            && matches!(s.phase, Phase::Connecting { .. })
        {
            s.phase = Phase::Open;
            s.need_begin = false;
            self.push_event(ChannelEvent::Connected { stream: key.id }, key.generation);
        }
    }

    /// Exit: whether a frame for `key` names a newer incarnation than any
    /// seen; if so the older incarnation (which the client has closed) is
    /// closed here too and the new generation recorded.
    fn admit_generation(&mut self, key: StreamKey) -> bool {
        if let Some(old) = self.streams.get(&key.id) {
            if !newer(key.generation, old.generation) {
                return false;
            }
            let reason =
                if old.recv.finished && old.send.is_finishing() { StreamEnd::Finished } else { StreamEnd::Reset };
            let generation = old.generation;
            self.streams.remove(&key.id);
            self.push_event(ChannelEvent::Closed { stream: key.id, reason }, generation);
        } else if let Some(&last) = self.generations.get(&key.id)
            && !newer(key.generation, last)
        {
            return false;
        }
        self.generations.insert(key.id, key.generation);
        true
    }

    fn on_begin(&mut self, key: StreamKey, window: u32, target: &str) -> Result<(), FrameError> {
        if self.role == Role::Client {
            return Err(FrameError::Unexpected("BEGIN"));
        }
        if !self.admit_generation(key) {
            return Ok(()); // a retransmission, or a stale incarnation
        }
        if self.streams.len() >= self.max_streams {
            self.ends.insert(key, StreamEnd::Refused.code());
            return Ok(());
        }
        let mut stream = Stream::new(key.generation, Phase::Accepting, String::new(), self.window);
        stream.send.max_data = u64::from(window);
        self.streams.insert(key.id, stream);
        self.push_event(ChannelEvent::Begin { stream: key.id, target: target.to_string() }, key.generation);
        Ok(())
    }

    fn on_end(&mut self, key: StreamKey, reason: u8) {
        if self.stream_mut(key).is_some() {
            self.streams.remove(&key.id);
            self.push_event(
                ChannelEvent::Closed { stream: key.id, reason: StreamEnd::from_code(reason) },
                key.generation,
            );
        } else if self.role == Role::Exit {
            // An END that overtook its BEGIN: remember the generation so the
            // late BEGIN is ignored (and close an older incarnation).
            self.admit_generation(key);
        }
    }

    fn on_ack_frame(&mut self, now: Instant, ack: &AckFrame) -> Result<(), FrameError> {
        if ack.largest() >= self.next_seq {
            return Err(FrameError::AckOfUnsent(ack.largest()));
        }
        let outcome = self.recovery.on_ack(now, ack);
        if !outcome.acked.is_empty() {
            self.unresponsive = false;
        }
        for cell in outcome.acked {
            self.cc.on_ack(cell.time, cell.cwnd_limited);
            for f in &cell.frames {
                self.on_frame_acked(f);
            }
        }
        for declared_at in outcome.spurious {
            self.cells_spurious += 1;
            self.cc.on_spurious_loss(declared_at);
        }
        self.on_lost_cells(now, outcome.lost);
        if outcome.persistent_congestion {
            self.cc.on_persistent_congestion(now);
        }
        Ok(())
    }

    fn on_frame_acked(&mut self, frame: &SentFrame) {
        match *frame {
            SentFrame::Stream(key, chunk) => {
                let send_buffer = self.send_buffer;
                let Some(s) = self.stream_mut(key) else { return };
                let before = s.send.buffered();
                s.send.on_ack(chunk);
                let after = s.send.buffered();
                let writable = s.send.blocked && after < send_buffer / 2;
                if writable {
                    s.send.blocked = false;
                }
                self.bytes_acked += (before - after) as u64;
                if writable {
                    self.push_event(ChannelEvent::Writable { stream: key.id }, key.generation);
                }
                // The FIN may be acknowledged before the bytes preceding it.
                self.check_finished(key.id);
            }
            SentFrame::End(key, _) => {
                // Acknowledged: stop re-sending (unless a newer END replaced it).
                self.ends.remove(&key);
            }
            SentFrame::Ack(largest) => self.acks.on_ack_acked(largest),
            SentFrame::Begin(_) | SentFrame::Connected(_) | SentFrame::MaxData(_) | SentFrame::Ping => {}
        }
    }

    /// Re-queues what a lost (or probed) frame carried.
    fn on_frame_lost(&mut self, frame: &SentFrame) {
        match *frame {
            SentFrame::Stream(key, chunk) => {
                if let Some(s) = self.stream_mut(key) {
                    s.send.on_lost(chunk);
                }
            }
            SentFrame::Begin(key) => {
                if let Some(s) = self.stream_mut(key)
                    && matches!(s.phase, Phase::Connecting { .. })
                {
                    s.need_begin = true;
                }
            }
            SentFrame::Connected(key) => {
                if let Some(s) = self.stream_mut(key) {
                    s.need_connected = true;
                }
            }
            SentFrame::End(key, code) => {
                self.ends.entry(key).or_insert(code);
            }
            SentFrame::MaxData(key) => {
                if let Some(s) = self.stream_mut(key)
                    && !s.recv.finished
                {
                    s.recv.need_grant = true;
                }
            }
            SentFrame::Ack(_) | SentFrame::Ping => {}
        }
    }

    fn on_lost_cells(&mut self, now: Instant, lost: Vec<SentCell>) {
        let Some(newest) = lost.iter().map(|c| c.time).max() else { return };
        self.cc.on_loss(now, newest, u32::try_from(lost.len()).unwrap_or(u32::MAX));
        for cell in lost {
            self.cells_retransmitted += 1;
            for f in &cell.frames {
                self.on_frame_lost(f);
            }
        }
    }

    /// Loss-detection timer: time-threshold losses, or a probe timeout.
    pub(super) fn on_recovery_timeout(&mut self, now: Instant) {
        match self.recovery.on_timeout(now) {
            TimeoutOutcome::Nothing => {}
            TimeoutOutcome::Lost(cells) => self.on_lost_cells(now, cells),
            TimeoutOutcome::Probe => {
                self.probes = PROBES_PER_PTO;
                // Probe with a copy of the oldest unacknowledged frames.
                let frames = self.recovery.oldest_frames().map(<[SentFrame]>::to_vec).unwrap_or_default();
                if !frames.is_empty() {
                    self.cells_retransmitted += 1;
                }
                for f in &frames {
                    self.on_frame_lost(f);
                }
                if self.recovery.pto_count >= self.max_rto_backoffs && !self.unresponsive {
                    self.unresponsive = true;
                    self.push_event(ChannelEvent::Unresponsive, 0);
                }
            }
        }
    }
}
