//! Loss detection and RTT estimation as in RFC 9002 (QUIC): RTT samples
//! from the newly acknowledged largest seq minus the peer's ack delay,
//! smoothed RTT and RTT variance, packet threshold 3, time threshold 9/8,
//! and a probe timeout (PTO) with exponential backoff clamped to
//! `min_rto_ms..=max_rto_ms`. Only ack-eliciting cells are tracked; pure-ACK
//! cells are neither in flight nor ever acknowledged.
//!
//! Reordering is learned, as RACK (RFC 8985) and QUIC stacks do: a cell
//! declared lost is remembered for a while, and if an ACK for it arrives
//! after all, the loss was spurious. The packet threshold then grows to the
//! reordering distance that fooled it (up to [`MAX_PACKET_THRESHOLD`]), and
//! the ACK outcome reports the spurious loss so that congestion control can
//! undo its reaction. Without this, paths whose datagrams overtake each
//! other collapse the window to its minimum.

use super::frame::{AckFrame, StreamKey};
use super::stream::Chunk;
use crate::time::Instant;
use core::time::Duration;
use std::collections::BTreeMap;

/// Initial packet threshold: a cell is lost once a cell sent this many seqs later is acknowledged.
const PACKET_THRESHOLD: u64 = 3;
/// The packet threshold never grows past this many cells.
pub(crate) const MAX_PACKET_THRESHOLD: u64 = 256;
/// Cells declared lost that are remembered to recognise a spurious loss.
const REMEMBERED_LOSSES: usize = 1024;
/// Timer granularity (RFC 9002 kGranularity).
const GRANULARITY: Duration = Duration::from_millis(1);

/// A frame as remembered in a sent cell, enough to re-send it if lost.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum SentFrame {
    /// Stream bytes (and maybe FIN).
    Stream(StreamKey, Chunk),
    /// BEGIN.
    Begin(StreamKey),
    /// CONNECTED.
    Connected(StreamKey),
    /// END with its reason code.
    End(StreamKey, u8),
    /// MAX_STREAM_DATA (the current limit is re-sent, not the old value).
    MaxData(StreamKey),
    /// ACK whose largest acknowledged seq was this.
    Ack(u64),
    /// PING.
    Ping,
}

/// An ack-eliciting cell awaiting acknowledgement.
#[derive(Clone, Debug)]
pub(crate) struct SentCell {
    /// When it was sent.
    pub(crate) time: Instant,
    /// Whether the congestion window was in use when it was sent.
    pub(crate) cwnd_limited: bool,
    /// What it carried.
    pub(crate) frames: Vec<SentFrame>,
}

/// RTT estimator (RFC 9002 §5).
#[derive(Clone, Debug)]
pub(crate) struct Rtt {
    pub(crate) latest: Duration,
    pub(crate) smoothed: Duration,
    pub(crate) var: Duration,
    pub(crate) min: Duration,
    pub(crate) has_sample: bool,
}

impl Rtt {
    fn new(initial: Duration) -> Self {
        Rtt { latest: initial, smoothed: initial, var: initial / 2, min: initial, has_sample: false }
    }

    fn update(&mut self, latest: Duration, ack_delay: Duration, max_ack_delay: Duration) {
        self.latest = latest;
        if !self.has_sample {
            self.has_sample = true;
            self.min = latest;
            self.smoothed = latest;
            self.var = latest / 2;
            return;
        }
        self.min = self.min.min(latest);
        let ack_delay = ack_delay.min(max_ack_delay);
        let adjusted = if latest >= self.min + ack_delay { latest - ack_delay } else { latest };
        let diff = self.smoothed.abs_diff(adjusted);
        self.var = (self.var * 3 + diff) / 4;
        self.smoothed = (self.smoothed * 7 + adjusted) / 8;
    }
}

/// What an ACK frame did.
#[derive(Debug, Default)]
pub(crate) struct AckOutcome {
    /// Newly acknowledged cells.
    pub(crate) acked: Vec<SentCell>,
    /// Cells now declared lost.
    pub(crate) lost: Vec<SentCell>,
    /// The lost cells establish persistent congestion (RFC 9002 §7.6).
    pub(crate) persistent_congestion: bool,
    /// For each cell declared lost earlier and acknowledged now: when it was declared lost.
    pub(crate) spurious: Vec<Instant>,
}

/// What a timeout did.
#[derive(Debug)]
pub(crate) enum TimeoutOutcome {
    /// The time threshold declared these cells lost.
    Lost(Vec<SentCell>),
    /// The probe timeout fired (`pto_count` was raised): send probes.
    Probe,
    /// Nothing was due.
    Nothing,
}

/// Sent-cell bookkeeping, RTT and timers.
#[derive(Debug)]
pub(crate) struct Recovery {
    sent: BTreeMap<u64, SentCell>,
    largest_acked: Option<u64>,
    pub(crate) rtt: Rtt,
    loss_time: Option<Instant>,
    /// Probe timeouts in a row without an acknowledgement.
    pub(crate) pto_count: u32,
    last_eliciting: Option<Instant>,
    max_ack_delay: Duration,
    min_rto: Duration,
    max_rto: Duration,
    /// Current packet threshold (grows on spurious losses).
    packet_threshold: u64,
    /// Recently declared-lost seqs: the largest acknowledged seq then, and when.
    declared_lost: BTreeMap<u64, (u64, Instant)>,
}

impl Recovery {
    pub(crate) fn new(initial_rtt: Duration, max_ack_delay: Duration, min_rto: Duration, max_rto: Duration) -> Self {
        Recovery {
            sent: BTreeMap::new(),
            largest_acked: None,
            rtt: Rtt::new(initial_rtt),
            loss_time: None,
            pto_count: 0,
            last_eliciting: None,
            max_ack_delay,
            min_rto,
            max_rto: max_rto.max(min_rto),
            packet_threshold: PACKET_THRESHOLD,
            declared_lost: BTreeMap::new(),
        }
    }

    /// The current packet threshold, in cells.
    pub(crate) fn packet_threshold(&self) -> u64 {
        self.packet_threshold
    }

    /// Ack-eliciting cells in flight.
    pub(crate) fn in_flight(&self) -> u32 {
        self.sent.len() as u32
    }

    /// Records an ack-eliciting cell.
    pub(crate) fn on_sent(&mut self, seq: u64, cell: SentCell) {
        self.last_eliciting = Some(cell.time);
        self.sent.insert(seq, cell);
    }

    /// Frames of the oldest cell in flight (to copy into a probe).
    pub(crate) fn oldest_frames(&self) -> Option<&[SentFrame]> {
        self.sent.values().next().map(|c| &c.frames[..])
    }

    /// Processes an ACK frame (already checked against seqs never sent).
    pub(crate) fn on_ack(&mut self, now: Instant, ack: &AckFrame) -> AckOutcome {
        let mut out = AckOutcome::default();
        let largest = ack.largest();
        let mut acked_seqs = Vec::new();
        let mut spurious = Vec::new();
        for &(lo, hi) in &ack.ranges {
            acked_seqs.extend(self.sent.range(lo..=hi).map(|(&s, _)| s));
            spurious.extend(self.declared_lost.range(lo..=hi).map(|(&s, &(largest, at))| (s, largest, at)));
        }
        for (seq, largest_then, declared_at) in spurious {
            self.declared_lost.remove(&seq);
            let distance = largest_then.saturating_sub(seq) + 1;
            self.packet_threshold = self.packet_threshold.max(distance).min(MAX_PACKET_THRESHOLD);
            out.spurious.push(declared_at);
        }
        if acked_seqs.is_empty() {
            return out;
        }
        self.largest_acked = Some(self.largest_acked.map_or(largest, |l| l.max(largest)));
        let acked_range = (acked_seqs.iter().min().copied(), acked_seqs.iter().max().copied());
        for seq in &acked_seqs {
            if let Some(cell) = self.sent.remove(seq) {
                if *seq == largest {
                    let delay = Duration::from_micros(u64::from(ack.ack_delay_us));
                    self.rtt.update(now - cell.time, delay, self.max_ack_delay);
                }
                out.acked.push(cell);
            }
        }
        self.pto_count = 0;
        let lost = self.detect_lost(now);
        out.persistent_congestion = self.is_persistent(&lost, acked_range);
        out.lost = lost.into_iter().map(|(_, c)| c).collect();
        out
    }

    fn loss_delay(&self) -> Duration {
        (self.rtt.latest.max(self.rtt.smoothed) * 9 / 8).max(GRANULARITY)
    }

    fn detect_lost(&mut self, now: Instant) -> Vec<(u64, SentCell)> {
        self.loss_time = None;
        let Some(largest) = self.largest_acked else { return Vec::new() };
        let delay = self.loss_delay();
        let lost_before = now.saturating_sub(delay);
        let mut lost_seqs = Vec::new();
        for (&seq, cell) in self.sent.range(..largest) {
            if cell.time <= lost_before || largest >= seq + self.packet_threshold {
                lost_seqs.push(seq);
            } else {
                let at = cell.time + delay;
                self.loss_time = Some(self.loss_time.map_or(at, |t| t.min(at)));
            }
        }
        for &seq in &lost_seqs {
            self.declared_lost.insert(seq, (largest, now));
        }
        while self.declared_lost.len() > REMEMBERED_LOSSES {
            self.declared_lost.pop_first();
        }
        lost_seqs.into_iter().filter_map(|s| self.sent.remove(&s).map(|c| (s, c))).collect()
    }

    /// Lost cells spanning more than three PTOs with nothing acknowledged in between.
    fn is_persistent(&self, lost: &[(u64, SentCell)], acked: (Option<u64>, Option<u64>)) -> bool {
        let (Some((first_seq, first)), Some((last_seq, last))) = (lost.first(), lost.last()) else { return false };
        if !self.rtt.has_sample {
            return false;
        }
        let acked_between = match acked {
            (Some(lo), Some(hi)) => lo < *last_seq && hi > *first_seq,
            _ => false,
        };
        let span = last.time - first.time;
        !acked_between && span > self.pto_base() * 3
    }

    fn pto_base(&self) -> Duration {
        self.rtt.smoothed + (self.rtt.var * 4).max(GRANULARITY) + self.max_ack_delay
    }

    /// The current probe timeout span, backed off and clamped.
    pub(crate) fn pto_span(&self) -> Duration {
        let factor = 1u32.checked_shl(self.pto_count.min(31)).unwrap_or(u32::MAX);
        self.pto_base().saturating_mul(factor).clamp(self.min_rto, self.max_rto)
    }

    /// When [`Recovery::on_timeout`] must run: the loss time, else the PTO.
    pub(crate) fn timeout(&self) -> Option<Instant> {
        if self.loss_time.is_some() {
            return self.loss_time;
        }
        if self.sent.is_empty() {
            return None;
        }
        self.last_eliciting.map(|t| t + self.pto_span())
    }

    /// Runs the loss-detection timer.
    pub(crate) fn on_timeout(&mut self, now: Instant) -> TimeoutOutcome {
        match self.timeout() {
            Some(at) if at <= now => {}
            _ => return TimeoutOutcome::Nothing,
        }
        if self.loss_time.is_some() {
            let lost = self.detect_lost(now);
            return TimeoutOutcome::Lost(lost.into_iter().map(|(_, c)| c).collect());
        }
        self.pto_count += 1;
        // Restart the PTO from now, as a probe is about to be sent.
        self.last_eliciting = Some(now);
        TimeoutOutcome::Probe
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn recovery() -> Recovery {
        Recovery::new(ms(500), ms(20), ms(200), ms(10_000))
    }

    fn cell(at_ms: u64) -> SentCell {
        SentCell { time: Instant::from_millis(at_ms), cwnd_limited: true, frames: vec![SentFrame::Ping] }
    }

    fn ack(ranges: Vec<(u64, u64)>, delay_us: u32) -> AckFrame {
        AckFrame { ranges, ack_delay_us: delay_us }
    }

    #[test]
    fn rtt_follows_rfc_9002() {
        let mut r = recovery();
        r.on_sent(0, cell(0));
        r.on_ack(Instant::from_millis(100), &ack(vec![(0, 0)], 0));
        assert_eq!((r.rtt.smoothed, r.rtt.var, r.rtt.min), (ms(100), ms(50), ms(100)));
        r.on_sent(1, cell(200));
        // 140 ms latest, 20 ms of ack delay: adjusted 120.
        r.on_ack(Instant::from_millis(340), &ack(vec![(0, 1)], 20_000));
        assert_eq!(r.rtt.smoothed, (ms(100) * 7 + ms(120)) / 8);
        assert_eq!(r.rtt.var, (ms(50) * 3 + ms(20)) / 4);
    }

    #[test]
    fn packet_and_time_thresholds() {
        let mut r = recovery();
        for seq in 0..6 {
            r.on_sent(seq, cell(seq));
        }
        // Acking 4 declares 0 and 1 lost (4 >= seq + 3); 2 and 3 wait for the time threshold.
        let out = r.on_ack(Instant::from_millis(100), &ack(vec![(4, 4)], 0));
        assert_eq!(out.lost.len(), 2);
        let at = r.timeout().unwrap();
        // 9/8 of max(latest 96, smoothed 96) = 108 ms after cell 2's send time.
        assert_eq!(at, Instant::from_millis(2) + ms(96) * 9 / 8);
        match r.on_timeout(at) {
            TimeoutOutcome::Lost(cells) => assert_eq!(cells.len(), 1),
            other => panic!("{other:?}"),
        }
        assert_eq!(r.in_flight(), 2);
    }

    #[test]
    fn a_reordered_cell_is_a_spurious_loss_and_raises_the_packet_threshold() {
        let mut r = recovery();
        for seq in 0..20 {
            r.on_sent(seq, cell(seq));
        }
        // Cell 10 arrives first: 0..=7 are declared lost by the packet threshold.
        let out = r.on_ack(Instant::from_millis(50), &ack(vec![(10, 10)], 0));
        assert_eq!(out.lost.len(), 8);
        assert!(out.spurious.is_empty());
        // Then 0..=9 arrive after all: 8 spurious losses, the furthest 10 seqs behind.
        let out = r.on_ack(Instant::from_millis(52), &ack(vec![(0, 10)], 0));
        assert_eq!(out.spurious.len(), 8);
        assert_eq!(out.spurious[0], Instant::from_millis(50), "when each was declared lost");
        assert_eq!(r.packet_threshold(), 11);
        // The same reordering no longer fools it.
        let out = r.on_ack(Instant::from_millis(54), &ack(vec![(0, 10), (19, 19)], 0));
        assert!(out.lost.is_empty(), "{:?}", out.lost.len());
        // It never grows past its cap.
        for seq in 20..2000 {
            r.on_sent(seq, cell(60));
        }
        r.on_ack(Instant::from_millis(70), &ack(vec![(1999, 1999)], 0));
        r.on_ack(Instant::from_millis(71), &ack(vec![(11, 1999)], 0));
        assert_eq!(r.packet_threshold(), MAX_PACKET_THRESHOLD);
    }

    #[test]
    fn pto_backs_off_within_bounds() {
        let mut r = recovery();
        r.on_sent(0, cell(0));
        // 500 + 4 * 250 + 20 = 1520 ms.
        assert_eq!(r.timeout(), Some(Instant::from_millis(1520)));
        let mut now = Instant::from_millis(1520);
        let mut spans = Vec::new();
        for _ in 0..5 {
            assert!(matches!(r.on_timeout(now), TimeoutOutcome::Probe));
            let next = r.timeout().unwrap();
            spans.push((next - now).as_millis());
            now = next;
        }
        assert_eq!(spans, vec![3040, 6080, 10_000, 10_000, 10_000]);
        r.on_ack(now, &ack(vec![(0, 0)], 0));
        assert_eq!(r.pto_count, 0);
    }

    #[test]
    fn persistent_congestion_needs_a_long_span() {
        let mut r = recovery();
        r.on_sent(0, cell(0));
        r.on_ack(Instant::from_millis(10), &ack(vec![(0, 0)], 0));
        for seq in 1..5 {
            r.on_sent(seq, cell(seq * 100));
        }
        r.on_sent(5, cell(1000));
        let out = r.on_ack(Instant::from_millis(1010), &ack(vec![(5, 5)], 0));
        assert_eq!(out.lost.len(), 4);
        assert!(out.persistent_congestion);
    }
}
