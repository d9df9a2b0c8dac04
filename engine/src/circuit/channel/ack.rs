//! Receive-side acknowledgement state: which seqs arrived, and when an ACK
//! is due. An ack-eliciting cell is acknowledged within `max_ack_delay_ms`,
//! at once on every second one, and at once when it arrives out of order.
//! Ranges the peer is known to have seen (an ACK of ours was itself
//! acknowledged) are forgotten, as in RFC 9000 §13.2.4.

use super::ranges::RangeSet;
use crate::time::Instant;
use core::time::Duration;

/// Most received ranges remembered; older ones are forgotten first.
const MAX_RANGES: usize = 64;

/// Receive-side ACK bookkeeping.
#[derive(Debug)]
pub(crate) struct AckState {
    received: RangeSet,
    largest: Option<u64>,
    largest_at: Instant,
    /// Ack-eliciting cells received since the last ACK sent.
    unacked_eliciting: u32,
    /// Send an ACK now.
    immediate: bool,
    /// Send an ACK no later than this.
    deadline: Option<Instant>,
    max_delay: Duration,
}

impl AckState {
    pub(crate) fn new(max_delay: Duration) -> Self {
        AckState {
            received: RangeSet::new(),
            largest: None,
            largest_at: Instant::ZERO,
            unacked_eliciting: 0,
            immediate: false,
            deadline: None,
            max_delay,
        }
    }

    /// Whether `seq` was already received (and is still remembered).
    pub(crate) fn is_duplicate(&self, seq: u64) -> bool {
        self.received.contains(seq)
    }

    /// Records a received cell.
    pub(crate) fn on_cell(&mut self, now: Instant, seq: u64, eliciting: bool) {
        let in_order = self.largest.is_none_or(|l| seq == l.saturating_add(1));
        self.received.insert(seq..seq.saturating_add(1));
        while self.received.len() > MAX_RANGES {
            self.received.pop_first();
        }
        if self.largest.is_none_or(|l| seq > l) {
            self.largest = Some(seq);
            self.largest_at = now;
        }
        if !eliciting {
            return;
        }
        self.unacked_eliciting += 1;
        if self.unacked_eliciting >= 2 || !in_order {
            self.immediate = true;
        } else if self.deadline.is_none() {
            self.deadline = Some(now + self.max_delay);
        }
    }

    /// Whether an ACK should ride along in the next cell.
    pub(crate) fn wanted(&self) -> bool {
        self.unacked_eliciting > 0
    }

    /// Whether an ACK must go out now, even alone.
    pub(crate) fn due(&self, now: Instant) -> bool {
        self.wanted() && (self.immediate || self.deadline.is_some_and(|d| d <= now))
    }

    /// When a delayed ACK falls due.
    pub(crate) fn timeout(&self) -> Option<Instant> {
        if self.wanted() && !self.immediate { self.deadline } else { None }
    }

    /// Ranges to acknowledge, highest first, inclusive; and the ack delay in microseconds.
    pub(crate) fn ranges(&self, now: Instant) -> (Vec<(u64, u64)>, u32) {
        let ranges = self.received.iter_rev().map(|r| (r.start, r.end - 1)).collect();
        let delay = u32::try_from((now - self.largest_at).as_micros()).unwrap_or(u32::MAX);
        (ranges, delay)
    }

    /// An ACK was sent.
    pub(crate) fn on_ack_sent(&mut self) {
        self.unacked_eliciting = 0;
        self.immediate = false;
        self.deadline = None;
    }

    /// An ACK of ours whose largest was `largest` was acknowledged: stop
    /// reporting everything below it.
    pub(crate) fn on_ack_acked(&mut self, largest: u64) {
        self.received.remove_below(largest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn delayed_then_every_second_cell() {
        let mut a = AckState::new(Duration::from_millis(20));
        a.on_cell(t(0), 0, true);
        assert!(a.wanted() && !a.due(t(0)));
        assert_eq!(a.timeout(), Some(t(20)));
        assert!(a.due(t(20)));
        a.on_cell(t(1), 1, true);
        assert!(a.due(t(1)));
        a.on_ack_sent();
        assert!(!a.wanted());
        // Pure ACKs are not acknowledged.
        a.on_cell(t(2), 2, false);
        assert!(!a.wanted());
    }

    #[test]
    fn out_of_order_is_acknowledged_at_once() {
        let mut a = AckState::new(Duration::from_millis(20));
        a.on_cell(t(0), 0, true);
        a.on_ack_sent();
        a.on_cell(t(1), 2, true);
        assert!(a.due(t(1)));
        a.on_ack_sent();
        // Filling the gap is out of order too.
        a.on_cell(t(2), 1, true);
        assert!(a.due(t(2)));
        let (ranges, delay) = a.ranges(t(3));
        assert_eq!(ranges, vec![(0, 2)]);
        assert_eq!(delay, 2000);
        a.on_cell(t(4), 5, false);
        assert_eq!(a.ranges(t(4)).0, vec![(5, 5), (0, 2)]);
        a.on_ack_acked(5);
        assert_eq!(a.ranges(t(4)).0, vec![(5, 5)]);
        assert!(a.is_duplicate(5) && !a.is_duplicate(1));
    }

    #[test]
    fn remembers_a_bounded_number_of_ranges() {
        let mut a = AckState::new(Duration::from_millis(20));
        for seq in 0..500 {
            a.on_cell(t(0), seq * 2, false);
        }
        assert_eq!(a.ranges(t(0)).0.len(), MAX_RANGES);
        assert_eq!(a.ranges(t(0)).0[0], (998, 998));
    }
}
