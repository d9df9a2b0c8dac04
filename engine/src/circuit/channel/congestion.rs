//! NewReno congestion control counted in cells (RFC 9002 §7 with one cell
//! as the unit): slow start from `initial_cwnd_cells`, halving once per
//! recovery period on a loss, then one cell more per window of cells
//! acknowledged; clamped to `min_cwnd_cells..=max_cwnd_cells`. A recovery
//! period whose every loss turns out spurious (the cells were only
//! reordered, see `recovery.rs`) is undone: the window and threshold go back
//! to what they were before it, as Linux TCP's undo does.

use crate::time::Instant;

/// The congestion controller.
#[derive(Clone, Debug)]
pub(crate) struct NewReno {
    cwnd: u32,
    ssthresh: u32,
    min: u32,
    max: u32,
    /// Cells acknowledged in congestion avoidance since the window last grew.
    acked_in_ca: u32,
    /// Cells sent at or before this instant belong to the current recovery period.
    recovery_start: Option<Instant>,
    /// Window and threshold before the current recovery period.
    undo: Option<(u32, u32)>,
    /// Cells declared lost in the current recovery period.
    period_lost: u32,
    /// Of those, cells acknowledged after all.
    period_spurious: u32,
}

impl NewReno {
    /// A controller in slow start.
    pub(crate) fn new(initial: u32, min: u32, max: u32) -> Self {
        let min = min.max(1);
        let max = max.max(min);
        NewReno {
            cwnd: initial.clamp(min, max),
            ssthresh: u32::MAX,
            min,
            max,
            acked_in_ca: 0,
            recovery_start: None,
            undo: None,
            period_lost: 0,
            period_spurious: 0,
        }
    }

    /// The congestion window, in cells.
    pub(crate) fn window(&self) -> u32 {
        self.cwnd
    }

    /// Whether the controller is in slow start.
    pub(crate) fn in_slow_start(&self) -> bool {
        self.cwnd < self.ssthresh
    }

    fn in_recovery(&self, sent: Instant) -> bool {
        self.recovery_start.is_some_and(|start| sent <= start)
    }

    /// An in-flight cell sent at `sent` was acknowledged. `cwnd_limited`:
    /// the sender was using the window when it sent the cell (an
    /// application-limited sender does not grow the window, RFC 9002 §7.8).
    pub(crate) fn on_ack(&mut self, sent: Instant, cwnd_limited: bool) {
        if self.in_recovery(sent) || !cwnd_limited {
            return;
        }
        if self.in_slow_start() {
            self.cwnd = (self.cwnd + 1).min(self.max);
        } else {
            self.acked_in_ca += 1;
            if self.acked_in_ca >= self.cwnd {
                self.acked_in_ca -= self.cwnd;
                self.cwnd = (self.cwnd + 1).min(self.max);
            }
        }
    }

    /// `count` cells were declared lost, the newest sent at
    /// `largest_lost_sent`: a congestion event unless it belongs to the
    /// current recovery period.
    pub(crate) fn on_loss(&mut self, now: Instant, largest_lost_sent: Instant, count: u32) {
        if self.in_recovery(largest_lost_sent) {
            self.period_lost = self.period_lost.saturating_add(count);
            return;
        }
        self.undo = Some((self.cwnd, self.ssthresh));
        self.period_lost = count;
        self.period_spurious = 0;
        self.recovery_start = Some(now);
        self.cwnd = (self.cwnd / 2).clamp(self.min, self.max);
        self.ssthresh = self.cwnd;
        self.acked_in_ca = 0;
    }

    /// A cell declared lost at `declared_at` was acknowledged after all. Once
    /// every loss of the current recovery period proved spurious, the period
    /// is undone.
    pub(crate) fn on_spurious_loss(&mut self, declared_at: Instant) {
        if self.recovery_start.is_none_or(|start| declared_at < start) {
            return;
        }
        self.period_spurious = self.period_spurious.saturating_add(1);
        if self.period_spurious >= self.period_lost
            && let Some((cwnd, ssthresh)) = self.undo.take()
        {
            self.cwnd = self.cwnd.max(cwnd);
            self.ssthresh = ssthresh;
            self.recovery_start = None;
        }
    }

    /// Persistent congestion (RFC 9002 §7.6): collapse to the minimum window.
    pub(crate) fn on_persistent_congestion(&mut self, now: Instant) {
        self.undo = None;
        self.recovery_start = Some(now);
        self.cwnd = self.min;
        self.acked_in_ca = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn slow_start_then_halving_once_per_recovery_period() {
        let mut cc = NewReno::new(32, 4, 4096);
        for _ in 0..32 {
            cc.on_ack(t(1), true);
        }
        assert_eq!(cc.window(), 64);
        cc.on_loss(t(10), t(5), 1);
        assert_eq!(cc.window(), 32);
        // Another loss of a cell sent before recovery started: no second cut.
        cc.on_loss(t(11), t(9), 1);
        assert_eq!(cc.window(), 32);
        // Acks of cells from the recovery period do not grow the window.
        cc.on_ack(t(9), true);
        assert_eq!(cc.window(), 32);
        // Congestion avoidance: one cell per window acknowledged.
        for _ in 0..32 {
            cc.on_ack(t(20), true);
        }
        assert_eq!(cc.window(), 33);
        // A loss of a cell sent after recovery started cuts again.
        cc.on_loss(t(30), t(20), 1);
        assert_eq!(cc.window(), 16);
    }

    #[test]
    fn a_recovery_period_of_spurious_losses_is_undone() {
        let mut cc = NewReno::new(32, 4, 4096);
        for _ in 0..32 {
            cc.on_ack(t(1), true);
        }
        cc.on_loss(t(10), t(5), 2);
        assert_eq!(cc.window(), 32);
        // A spurious loss from before the period changes nothing.
        cc.on_spurious_loss(t(9));
        assert_eq!(cc.window(), 32);
        cc.on_spurious_loss(t(10));
        assert_eq!(cc.window(), 32, "one of two losses was real so far");
        cc.on_spurious_loss(t(12));
        assert_eq!(cc.window(), 64, "both were reordering: undone");
        assert!(cc.in_slow_start());
        // A real loss that is never acknowledged stays a cut.
        cc.on_loss(t(20), t(15), 1);
        assert_eq!(cc.window(), 32);
    }

    #[test]
    fn clamped_and_application_limited() {
        let mut cc = NewReno::new(4, 4, 5);
        cc.on_ack(t(1), false);
        assert_eq!(cc.window(), 4);
        for _ in 0..10 {
            cc.on_ack(t(1), true);
        }
        assert_eq!(cc.window(), 5);
        cc.on_loss(t(2), t(2), 1);
        assert_eq!(cc.window(), 4);
        cc.on_persistent_congestion(t(3));
        assert_eq!(cc.window(), 4);
    }
}
