//! The end-to-end channel between a circuit's client and its exit: reliable,
//! in-order, flow- and congestion-controlled streams over cells that relays
//! forward without any reliability of their own (links drop, duplicate and
//! reorder them).
//!
//! Every cell a side sends has a fresh sequence number (`seq`, the cell's
//! nonce, never reused). The cell's payload carries [`frame`]s: stream data
//! at byte offsets, acknowledgements of received seqs, stream control. Lost
//! frames are re-sent in new cells with new seqs, as in QUIC. Loss
//! detection, RTT and the probe timeout follow RFC 9002 ([`recovery`]);
//! congestion control is NewReno counted in cells ([`congestion`]).
//!
//! [`Channel`] is a pure sans-IO value. Its method groups, in the manner of
//! quinn-proto's `Connection`:
//!
//! 1. **Input**: [`Channel::on_payload`] for an authenticated channel
//!    payload, [`Channel::handle_timeout`] when [`Channel::poll_timeout`]
//!    is reached, and the local stream API ([`Channel::open_stream`],
//!    [`Channel::accept_stream`], [`Channel::send`], [`Channel::finish`],
//!    [`Channel::end_stream`]).
//! 2. **Output**, after every input: drain [`Channel::poll_event`] until
//!    `None`, then [`Channel::poll_transmit`] until `None`. (Taking a
//!    `Data` event is what opens the flow-control window, so events first
//!    lets the new grant ride in the same round; in the other order the
//!    channel asks to be woken at once through `poll_timeout`.)
//! 3. **Timers**: [`Channel::poll_timeout`], then
//!    [`Channel::handle_timeout`] no earlier than the instant it returned.

mod ack;
pub(crate) mod congestion;
pub mod frame;
mod ranges;
mod receive;
pub(crate) mod recovery;
mod stream;
mod transmit;

#[cfg(test)]
mod harness;
#[cfg(test)]
mod tests;

pub use frame::{FrameError, PAYLOAD_LEN};

use super::{CircuitParams, StreamEnd};
use crate::time::Instant;
use ack::AckState;
use congestion::NewReno;
use core::time::Duration;
use frame::{MAX_TARGET_LEN, StreamKey};
use recovery::Recovery;
use std::collections::{BTreeMap, VecDeque};
use stream::{RecvStream, SendStream};

/// Which end of the circuit this channel is. Only the client opens streams (sends BEGIN).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The circuit's builder.
    Client,
    /// The circuit's last relay, connecting streams to destinations.
    Exit,
}

/// What the channel reports to the machine driving it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelEvent {
    /// Exit side: the client asked for a stream to `target` ("host:port", as the client wrote it).
    Begin {
        /// The stream.
        stream: u16,
        /// The destination.
        target: String,
    },
    /// Client side: the exit connected the stream.
    Connected {
        /// The stream.
        stream: u16,
    },
    /// In-order bytes of a stream (never duplicated, never out of order, nothing skipped).
    Data {
        /// The stream.
        stream: u16,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The peer finished sending (FIN) and every byte before it has been delivered.
    Finished {
        /// The stream.
        stream: u16,
    },
    /// The stream is fully closed on both sides (both FINs delivered and
    /// acknowledged, or an END sent or received); its id may be reused by
    /// the client after this. Every stream gets exactly one.
    Closed {
        /// The stream.
        stream: u16,
        /// Why.
        reason: StreamEnd,
    },
    /// The stream's send buffer, after reaching `stream_send_buffer_bytes`, fell below half of it.
    Writable {
        /// The stream.
        stream: u16,
    },
    /// `max_rto_backoffs` retransmission timeouts in a row without any acknowledgement: the far end is gone.
    Unresponsive,
}

/// Counters and estimates of one channel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelStats {
    /// Smoothed round-trip time, in milliseconds.
    pub srtt_ms: u64,
    /// Congestion window, in cells.
    pub cwnd_cells: u32,
    /// Ack-eliciting cells sent and not yet acknowledged or declared lost.
    pub cells_in_flight: u32,
    /// Cells sent (every seq `poll_transmit` returned).
    pub cells_sent: u64,
    /// Cells whose frames were re-sent (declared lost, or copied into a probe).
    pub cells_retransmitted: u64,
    /// Cells declared lost and then acknowledged after all (reordered, not lost).
    pub cells_spurious: u64,
    /// Current loss-detection packet threshold, in cells (3, grown by reordering).
    pub packet_threshold: u64,
    /// Stream bytes the peer acknowledged (in order, each byte once).
    pub bytes_acked: u64,
    /// Streams not yet closed.
    pub open_streams: u32,
}

/// Misuse of the local channel API.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// `max_streams_per_circuit` streams are open.
    #[error("too many streams")]
    TooManyStreams,
    /// No open stream has this id.
    #[error("unknown stream")]
    UnknownStream,
    /// The stream was already finished (FIN queued) for sending.
    #[error("stream closed for sending")]
    StreamClosed,
    /// A BEGIN target longer than 255 bytes.
    #[error("target longer than 255 bytes")]
    TargetTooLong,
    /// The call belongs to the other role (`open_stream` on an exit, `accept_stream` on a client).
    #[error("not allowed in this role")]
    WrongRole,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Client: BEGIN sent, waiting for CONNECTED until the deadline.
    Connecting { deadline: Instant },
    /// Exit: BEGIN received, waiting for the application's `accept_stream`.
    Accepting,
    /// Connected: data flows.
    Open,
}

#[derive(Debug)]
struct Stream {
    generation: u8,
    phase: Phase,
    /// BEGIN target (client side, kept for retransmission).
    target: String,
    send: SendStream,
    recv: RecvStream,
    need_begin: bool,
    need_connected: bool,
}

impl Stream {
    fn new(generation: u8, phase: Phase, target: String, window: u64) -> Self {
        Stream {
            generation,
            phase,
            target,
            send: SendStream::new(),
            recv: RecvStream::new(window),
            need_begin: false,
            need_connected: false,
        }
    }
}

/// Whether generation `a` is newer than `b` (serial-number arithmetic on a byte).
fn newer(a: u8, b: u8) -> bool {
    (a.wrapping_sub(b) as i8) > 0
}

/// One end of the reliable channel of a circuit. See the [module documentation](self).
#[derive(Debug)]
pub struct Channel {
    role: Role,
    window: u64,
    send_buffer: usize,
    max_streams: usize,
    connect_timeout: Duration,
    max_rto_backoffs: u32,
    next_seq: u64,
    streams: BTreeMap<u16, Stream>,
    /// Client: last generation used per id. Exit: last generation seen per id.
    generations: BTreeMap<u16, u8>,
    /// END frames to send (and re-send until acknowledged).
    ends: BTreeMap<StreamKey, u8>,
    /// Events with the generation of the stream they concern.
    events: VecDeque<(ChannelEvent, u8)>,
    acks: AckState,
    recovery: Recovery,
    cc: NewReno,
    /// First stream id the next cell's data round starts at.
    rr_next: u16,
    /// Ack-eliciting cells that may be sent beyond the congestion window (probes).
    probes: u32,
    /// Wake-up asked for by `poll_event` (a flow-control grant became due).
    wake: Option<Instant>,
    last_now: Instant,
    unresponsive: bool,
    cells_sent: u64,
    cells_retransmitted: u64,
    pub(super) cells_spurious: u64,
    bytes_acked: u64,
}

impl Channel {
    /// A channel with no streams, taking its parameters from `params`.
    pub fn new(now: Instant, params: &CircuitParams, role: Role) -> Channel {
        Channel {
            role,
            window: u64::from(params.stream_window_bytes),
            send_buffer: params.stream_send_buffer_bytes as usize,
            max_streams: params.max_streams_per_circuit as usize,
            connect_timeout: Duration::from_secs(params.stream_connect_timeout_secs),
            max_rto_backoffs: params.max_rto_backoffs.max(1),
            next_seq: 0,
            streams: BTreeMap::new(),
            generations: BTreeMap::new(),
            ends: BTreeMap::new(),
            events: VecDeque::new(),
            acks: AckState::new(Duration::from_millis(params.max_ack_delay_ms)),
            recovery: Recovery::new(
                Duration::from_millis(params.initial_rtt_ms),
                Duration::from_millis(params.max_ack_delay_ms),
                Duration::from_millis(params.min_rto_ms),
                Duration::from_millis(params.max_rto_ms),
            ),
            cc: NewReno::new(params.initial_cwnd_cells, params.min_cwnd_cells, params.max_cwnd_cells),
            rr_next: 1,
            probes: 0,
            wake: None,
            last_now: now,
            unresponsive: false,
            cells_sent: 0,
            cells_retransmitted: 0,
            cells_spurious: 0,
            bytes_acked: 0,
        }
    }

    /// Client: allocate a stream id (lowest free, 1..) and queue a reliable BEGIN for `target` (<= 255 bytes).
    pub fn open_stream(&mut self, now: Instant, target: &str) -> Result<u16, ChannelError> {
        self.last_now = self.last_now.max(now);
        if self.role != Role::Client {
            return Err(ChannelError::WrongRole);
        }
        if target.len() > MAX_TARGET_LEN {
            return Err(ChannelError::TargetTooLong);
        }
        if self.streams.len() >= self.max_streams {
            return Err(ChannelError::TooManyStreams);
        }
        let mut id: u16 = 1;
        for &used in self.streams.keys() {
            if used != id {
                break;
            }
            id = id.checked_add(1).ok_or(ChannelError::TooManyStreams)?;
        }
        let generation = self.generations.get(&id).map_or(0, |g| g.wrapping_add(1));
        self.generations.insert(id, generation);
        let deadline = now + self.connect_timeout;
        let mut stream = Stream::new(generation, Phase::Connecting { deadline }, target.to_string(), self.window);
        stream.need_begin = true;
        self.streams.insert(id, stream);
        Ok(id)
    }

    /// Exit: the destination is connected; queue CONNECTED.
    pub fn accept_stream(&mut self, stream: u16) -> Result<(), ChannelError> {
        if self.role != Role::Exit {
            return Err(ChannelError::WrongRole);
        }
        let s = self.streams.get_mut(&stream).ok_or(ChannelError::UnknownStream)?;
        if s.phase == Phase::Accepting {
            s.phase = Phase::Open;
            s.need_connected = true;
        }
        Ok(())
    }

    /// Either side: abort the stream with `reason` (discard unsent data;
    /// queue a reliable END). The stream is `Closed` with `reason` at once.
    pub fn end_stream(&mut self, stream: u16, reason: StreamEnd) -> Result<(), ChannelError> {
        let s = self.streams.remove(&stream).ok_or(ChannelError::UnknownStream)?;
        let key = StreamKey { id: stream, generation: s.generation };
        self.ends.insert(key, reason.code());
        self.events.push_back((ChannelEvent::Closed { stream, reason }, s.generation));
        Ok(())
    }

    /// Queue bytes on a stream. Always takes all of `data` (the buffer may exceed the limit by one
    /// call); returns the bytes now buffered. The application should stop reading its source while
    /// `buffered(stream) >= stream_send_buffer_bytes` and resume on `Writable`.
    pub fn send(&mut self, stream: u16, data: &[u8]) -> Result<usize, ChannelError> {
        let s = self.streams.get_mut(&stream).ok_or(ChannelError::UnknownStream)?;
        if s.send.is_finishing() {
            return Err(ChannelError::StreamClosed);
        }
        let buffered = s.send.write(data);
        if buffered >= self.send_buffer {
            s.send.blocked = true;
        }
        Ok(buffered)
    }

    /// Queue FIN after the buffered bytes (half-close). Idempotent.
    pub fn finish(&mut self, stream: u16) -> Result<(), ChannelError> {
        let s = self.streams.get_mut(&stream).ok_or(ChannelError::UnknownStream)?;
        s.send.finish();
        Ok(())
    }

    /// Bytes queued on the stream and not yet acknowledged (0 for an unknown stream).
    pub fn buffered(&self, stream: u16) -> usize {
        self.streams.get(&stream).map_or(0, |s| s.send.buffered())
    }

    /// Take the next outgoing cell sequence number for a cell that is not a channel cell
    /// (the machine's EXTEND cells share the counter). Channel cells get theirs from poll_transmit.
    pub fn alloc_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    /// The next application event, if any. Taking a `Data` event opens the
    /// stream's flow-control window by its length.
    pub fn poll_event(&mut self) -> Option<ChannelEvent> {
        let (event, generation) = self.events.pop_front()?;
        if let ChannelEvent::Data { stream, data } = &event
            && let Some(s) = self.streams.get_mut(stream)
            && s.generation == generation
            && s.recv.on_consumed(data.len())
        {
            self.wake = Some(self.last_now);
        }
        Some(event)
    }

    /// Earliest instant handle_timeout must run (loss detection / PTO, delayed ACK, connect timeout).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let connect = self
            .streams
            .values()
            .filter_map(|s| match s.phase {
                Phase::Connecting { deadline } => Some(deadline),
                _ => None,
            })
            .min();
        [self.recovery.timeout(), self.acks.timeout(), connect, self.wake].into_iter().flatten().min()
    }

    /// Runs whatever timer is due at `now`: loss detection or a probe
    /// timeout, connect timeouts, a wake-up. (A due delayed ACK is sent by
    /// the next `poll_transmit`.)
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = self.last_now.max(now);
        self.wake = None;
        // A time-threshold loss may leave a probe timeout already due: run both.
        for _ in 0..2 {
            if self.recovery.timeout().is_none_or(|at| at > now) {
                break;
            }
            self.on_recovery_timeout(now);
        }
        let expired: Vec<u16> = self
            .streams
            .iter()
            .filter(|(_, s)| matches!(s.phase, Phase::Connecting { deadline } if deadline <= now))
            .map(|(&id, _)| id)
            .collect();
        for id in expired {
            // Cannot fail: the id was just listed.
            let _ = self.end_stream(id, StreamEnd::Timeout);
        }
    }

    /// Counters and estimates.
    pub fn stats(&self) -> ChannelStats {
        ChannelStats {
            srtt_ms: self.recovery.rtt.smoothed.as_millis() as u64,
            cwnd_cells: self.cc.window(),
            cells_in_flight: self.recovery.in_flight(),
            cells_sent: self.cells_sent,
            cells_retransmitted: self.cells_retransmitted,
            cells_spurious: self.cells_spurious,
            packet_threshold: self.recovery.packet_threshold(),
            bytes_acked: self.bytes_acked,
            open_streams: self.streams.len() as u32,
        }
    }

    /// Streams not yet Closed.
    pub fn open_streams(&self) -> usize {
        self.streams.len()
    }

    /// The stream's key if it is open with this generation.
    fn stream_mut(&mut self, key: StreamKey) -> Option<&mut Stream> {
        self.streams.get_mut(&key.id).filter(|s| s.generation == key.generation)
    }

    fn push_event(&mut self, event: ChannelEvent, generation: u8) {
        self.events.push_back((event, generation));
    }

    /// Closes the stream cleanly if both directions are done.
    fn check_finished(&mut self, id: u16) {
        if let Some(s) = self.streams.get(&id)
            && s.recv.finished
            && s.send.is_done()
        {
            let generation = s.generation;
            self.streams.remove(&id);
            self.push_event(ChannelEvent::Closed { stream: id, reason: StreamEnd::Finished }, generation);
        }
    }
}
