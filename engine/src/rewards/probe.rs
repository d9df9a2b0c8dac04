//! Bandwidth probes: the coordinator asks a node for a burst of
//! `probe_bytes` and measures how fast it arrives.
//!
//! Estimator (a packet train): with datagrams arriving at `t_0 ≤ t_1 ≤ … ≤
//! t_k` carrying `b_0 … b_k` bytes, the rate is `(b_1 + … + b_k) / (t_k −
//! t_0)`. The first datagram only marks when the train started arriving;
//! its bytes were sent before `t_0`, so counting them would overstate the
//! rate (for a two-datagram train, by up to a factor of two). Time from the
//! request to the first arrival (round trip, the node's reaction) is left
//! out for the same reason: it measures latency, not capacity. A train of
//! fewer than two datagrams, or one that arrives within a single instant,
//! measures nothing and yields capacity 0.
//!
//! The measured capacity caps what the node can claim for an epoch (see
//! `README.md`): it cannot have delivered more than `capacity ×
//! epoch_secs` bytes. A node can burst faster than it sustains, so the cap
//! errs in the node's favour; it only bounds claims, and receipts remain
//! the measure of the work done.

use crate::identity::NodeId;
use crate::time::Instant;

/// Microseconds per second.
const MICROS_PER_SEC: u128 = 1_000_000;

/// What one probe measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, bincode::Encode, bincode::Decode)]
pub struct ProbeResult {
    /// The probed node.
    pub node: NodeId,
    /// Bytes that arrived after the first datagram of the train.
    pub bytes: u64,
    /// Time from the first to the last arrival, in microseconds.
    pub elapsed_micros: u64,
}

impl ProbeResult {
    /// The measured rate, in bytes per second: `bytes × 10^6 /
    /// elapsed_micros`, rounded down, saturating at `u64::MAX`; 0 when
    /// `elapsed_micros` is 0.
    pub fn capacity_bytes_per_sec(&self) -> u64 {
        if self.elapsed_micros == 0 {
            return 0;
        }
        let rate = u128::from(self.bytes) * MICROS_PER_SEC / u128::from(self.elapsed_micros);
        u64::try_from(rate).unwrap_or(u64::MAX)
    }
}

/// Measures one probe of one node. The coordinator creates it when it
/// sends the request, feeds it every probe datagram from that node with
/// its arrival time, and calls [`ProbeMeter::finish`] when the burst is
/// complete or `probe_timeout_ms` has passed.
#[derive(Clone, Debug)]
pub struct ProbeMeter {
    node: NodeId,
    started: Instant,
    ended: Option<Instant>,
    /// Earliest arrival and its size.
    first: Option<(Instant, u64)>,
    /// Latest arrival.
    last: Instant,
    total: u64,
    datagrams: u64,
}

impl ProbeMeter {
    /// A meter for a probe of `node` requested at `started`.
    pub fn new(node: NodeId, started: Instant) -> Self {
        ProbeMeter { node, started, ended: None, first: None, last: started, total: 0, datagrams: 0 }
    }

    /// The probed node.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// When the probe was requested.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// Records a probe datagram of `len` bytes that arrived at `at`.
    /// Arrivals before the request or after [`ProbeMeter::finish`] are
    /// ignored; arrivals out of order are fine.
    pub fn on_datagram(&mut self, at: Instant, len: usize) {
        if at < self.started || self.ended.is_some_and(|end| at > end) {
            return;
        }
        let len = u64::try_from(len).unwrap_or(u64::MAX);
        self.total = self.total.saturating_add(len);
        self.datagrams += 1;
        match self.first {
            Some((first, _)) if first <= at => {}
            _ => self.first = Some((at, len)),
        }
        self.last = self.last.max(at);
    }

    /// Datagrams recorded so far.
    pub fn datagrams(&self) -> u64 {
        self.datagrams
    }

    /// Bytes recorded so far (all datagrams, the first included).
    pub fn total_bytes(&self) -> u64 {
        self.total
    }

    /// Ends the probe at `at` (later arrivals are ignored) and returns what
    /// it measured (see the module documentation for the estimator).
    pub fn finish(&mut self, at: Instant) -> ProbeResult {
        self.ended = Some(self.ended.map_or(at, |end| end.min(at)));
        self.result()
    }

    /// What the probe has measured so far.
    pub fn result(&self) -> ProbeResult {
        let (bytes, elapsed_micros) = match self.first {
            Some((first, first_len)) if self.datagrams >= 2 => {
                let micros = self.last.saturating_duration_since(first).as_micros();
                (self.total.saturating_sub(first_len), u64::try_from(micros).unwrap_or(u64::MAX))
            }
            _ => (0, 0),
        };
        ProbeResult { node: self.node, bytes, elapsed_micros }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    const NODE: NodeId = NodeId([7; 32]);

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn the_rate_counts_bytes_after_the_first_arrival() {
        let mut meter = ProbeMeter::new(NODE, at(1000));
        // 1 + 10 datagrams of 1000 bytes, 10 ms apart, after a 50 ms round trip.
        for i in 0..=10 {
            meter.on_datagram(at(1050 + 10 * i), 1000);
        }
        let result = meter.finish(at(2000));
        assert_eq!(result, ProbeResult { node: NODE, bytes: 10_000, elapsed_micros: 100_000 });
        assert_eq!(result.capacity_bytes_per_sec(), 100_000);
        assert_eq!(meter.total_bytes(), 11_000);
        // Arrivals after the end and before the start are ignored.
        meter.on_datagram(at(2001), 1_000_000);
        meter.on_datagram(at(999), 1_000_000);
        assert_eq!(meter.result(), result);
        assert_eq!(meter.datagrams(), 11);
    }

    #[test]
    fn degenerate_trains_measure_nothing() {
        let mut none = ProbeMeter::new(NODE, at(0));
        assert_eq!(none.finish(at(10)).capacity_bytes_per_sec(), 0);
        let mut one = ProbeMeter::new(NODE, at(0));
        one.on_datagram(at(5), 60_000);
        assert_eq!(one.finish(at(10)).capacity_bytes_per_sec(), 0);
        let mut same_instant = ProbeMeter::new(NODE, at(0));
        for _ in 0..5 {
            same_instant.on_datagram(at(5), 1000);
        }
        let result = same_instant.finish(at(10));
        assert_eq!((result.bytes, result.elapsed_micros, result.capacity_bytes_per_sec()), (4000, 0, 0));
    }

    #[test]
    fn out_of_order_arrivals_and_extremes() {
        let mut meter = ProbeMeter::new(NODE, at(0));
        meter.on_datagram(at(30), 100);
        meter.on_datagram(at(10), 500); // the true first arrival
        meter.on_datagram(at(20), 100);
        let result = meter.finish(at(100));
        assert_eq!((result.bytes, result.elapsed_micros), (200, 20_000));
        assert_eq!(result.capacity_bytes_per_sec(), 10_000);
        let huge = ProbeResult { node: NODE, bytes: u64::MAX, elapsed_micros: 1 };
        assert_eq!(huge.capacity_bytes_per_sec(), u64::MAX);
        let slow = ProbeResult { node: NODE, bytes: 1, elapsed_micros: u64::MAX };
        assert_eq!(slow.capacity_bytes_per_sec(), 0);
        let mut late = ProbeMeter::new(NODE, Instant::MAX.saturating_sub(Duration::from_secs(1)));
        late.on_datagram(Instant::MAX, usize::MAX);
        late.on_datagram(Instant::MAX, usize::MAX);
        assert_eq!(late.finish(Instant::MAX).capacity_bytes_per_sec(), 0);
    }
}
