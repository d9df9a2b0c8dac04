//! Mixing strategies: how long a mix holds each packet before sending it on.
//!
//! * [`Strategy::Poisson`] (Loopix's stop-and-go mix): the sender picks an
//!   exponentially distributed delay for every hop and the mix holds each
//!   packet exactly that long. Held packets sit in a `BTreeMap` keyed by
//!   (due time, arrival number), so a push and each release cost O(log n)
//!   and equal due times leave in arrival order.
//! * [`Strategy::Pool`] (a timed dynamic pool mix): the mix ignores the
//!   sender's delay and, at fixed instants `anchor + k * interval`, sends a
//!   uniformly random subset of what it holds in random order. The flush
//!   instants are fixed when the queue is made, so they depend on nothing an
//!   observer (or a sender) controls.
//!
//! The queue is deterministic: the same calls with the same random stream
//! give the same releases in the same order.

use crate::Instant;
use crate::rng::{EngineRng, below};
use core::time::Duration;
use std::collections::BTreeMap;

/// How a mix holds packets before sending them on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// Each packet waits its own sender-chosen delay (exponential with mean
    /// mu: a Poisson / stop-and-go mix).
    Poisson,
    /// Timed dynamic pool: every `interval`, if at least `threshold` packets
    /// are held and more than `keep`, send all but `keep` of them, chosen
    /// uniformly at random, in random order.
    Pool {
        /// Time between flushes; zero counts as one nanosecond.
        interval: Duration,
        /// Fewest held packets (counting those kept) for a flush to send anything.
        threshold: usize,
        /// Packets that stay in the pool after a flush.
        keep: usize,
    },
}

/// A mix's queue of held packets (generic over what is held).
#[derive(Debug)]
pub struct MixQueue<T> {
    /// Most items held at once.
    capacity: usize,
    /// The strategy's state.
    held: Held<T>,
}

/// The held items, by strategy.
#[derive(Debug)]
enum Held<T> {
    Poisson {
        /// Items by (due time, arrival number).
        queue: BTreeMap<(Instant, u64), T>,
        /// The next arrival number.
        seq: u64,
    },
    Pool {
        /// Flush interval, in nanoseconds (at least 1).
        interval_nanos: u64,
        /// See [`Strategy::Pool`].
        threshold: usize,
        /// See [`Strategy::Pool`].
        keep: usize,
        /// The flush grid's origin: flushes at `anchor + k * interval`, k >= 1.
        anchor: Instant,
        /// The first grid instant not yet flushed.
        next_flush: Instant,
        /// The held items, in no meaningful order.
        items: Vec<T>,
    },
}

impl<T> MixQueue<T> {
    /// A queue mixing by `strategy`. `capacity`: most packets held (over it,
    /// push refuses); `now`: anchors the pool's flush grid (flushes at
    /// now + k*interval, k >= 1, whatever the arrivals, so flush times leak
    /// nothing); unused by [`Strategy::Poisson`].
    pub fn new(strategy: Strategy, capacity: usize, now: Instant) -> Self {
        let held = match strategy {
            Strategy::Poisson => Held::Poisson { queue: BTreeMap::new(), seq: 0 },
            Strategy::Pool { interval, threshold, keep } => {
                let interval_nanos = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX).max(1);
                Held::Pool {
                    interval_nanos,
                    threshold,
                    keep,
                    anchor: now,
                    next_flush: now + Duration::from_nanos(interval_nanos),
                    items: Vec::new(),
                }
            }
        };
        MixQueue { capacity, held }
    }

    /// Holds `item`, arriving at `now`: Poisson releases it at `now + delay`
    /// (saturating); Pool ignores `delay`. `Err(item)` when `capacity`
    /// items are already held.
    pub fn push(&mut self, now: Instant, delay: Duration, item: T) -> Result<(), T> {
        if self.len() >= self.capacity {
            return Err(item);
        }
        match &mut self.held {
            Held::Poisson { queue, seq } => {
                queue.insert((now + delay, *seq), item);
                *seq = seq.wrapping_add(1);
            }
            Held::Pool { items, .. } => items.push(item),
        }
        Ok(())
    }

    /// Appends to `out` every item released at or before `now`, in release
    /// order (Poisson: by due time, ties by arrival; Pool: a flush's items in
    /// random order drawn from `rng`, which Poisson never uses). A pool whose
    /// flush instants passed without a call flushes once (not once per
    /// missed instant), and its next flush is the first grid instant after `now`.
    pub fn pop_due(&mut self, now: Instant, rng: &mut EngineRng, out: &mut Vec<T>) {
        match &mut self.held {
            Held::Poisson { queue, .. } => {
                while let Some(entry) = queue.first_entry() {
                    if entry.key().0 > now {
                        break;
                    }
                    out.push(entry.remove());
                }
            }
            Held::Pool { interval_nanos, threshold, keep, anchor, next_flush, items } => {
                if now < *next_flush {
                    return;
                }
                let n = items.len();
                if n >= *threshold && n > *keep {
                    // A partial Fisher–Yates shuffle: the first `send` slots
                    // end up a uniformly random ordered sample of the items.
                    let send = n - *keep;
                    for i in 0..send {
                        let j = i + below(rng, (n - i) as u64) as usize;
                        items.swap(i, j);
                    }
                    out.extend(items.drain(..send));
                }
                let steps = now.saturating_duration_since(*anchor).as_nanos() as u64 / *interval_nanos + 1;
                *next_flush = *anchor + Duration::from_nanos(steps.saturating_mul(*interval_nanos));
            }
        }
    }

    /// When pop_due next has work: Poisson's earliest due time; Pool's next
    /// flush instant while any packet is held (even below the threshold);
    /// `None` when empty.
    pub fn next_deadline(&self) -> Option<Instant> {
        match &self.held {
            Held::Poisson { queue, .. } => queue.first_key_value().map(|(&(due, _), _)| due),
            Held::Pool { next_flush, items, .. } => (!items.is_empty()).then_some(*next_flush),
        }
    }

    /// Number of items held.
    pub fn len(&self) -> usize {
        match &self.held {
            Held::Poisson { queue, .. } => queue.len(),
            Held::Pool { items, .. } => items.len(),
        }
    }

    /// Whether no item is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::{Duration, EngineRng, Instant, MixQueue, Strategy};
    use crate::rng::NodeSeed;
    use proptest::prelude::{Just, ProptestConfig, prop_assert, prop_assert_eq, prop_oneof, proptest};
    use proptest::strategy::Strategy as _;
    use std::collections::BTreeSet;

    fn rng(label: &str) -> EngineRng {
        NodeSeed::derive(0x5747, 0).stream(label)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn pool(interval_ms: u64, threshold: usize, keep: usize) -> Strategy {
        Strategy::Pool { interval: ms(interval_ms), threshold, keep }
    }

    fn pop(q: &mut MixQueue<u32>, now: Instant, rng: &mut EngineRng) -> Vec<u32> {
        let mut out = Vec::new();
        q.pop_due(now, rng, &mut out);
        out
    }

    #[test]
    fn poisson_releases_in_due_order_at_exact_times() {
        let mut r = rng("poisson");
        let mut q = MixQueue::new(Strategy::Poisson, 100, Instant::ZERO);
        assert_eq!(q.next_deadline(), None);
        let t0 = Instant::from_millis(10);
        // item, arrival, delay: due at 10+50, 12+30, 12+48, 15+0, 15+45 (ties at 60 by arrival).
        for (item, at, delay) in [(0, 10, 50), (1, 12, 30), (2, 12, 48), (3, 15, 0), (4, 15, 45)] {
            q.push(Instant::from_millis(at), ms(delay), item).unwrap();
        }
        assert_eq!(q.len(), 5);
        assert_eq!(q.next_deadline(), Some(Instant::from_millis(15)));
        assert_eq!(pop(&mut q, t0, &mut r), Vec::<u32>::new());
        assert_eq!(pop(&mut q, Instant::from_millis(15), &mut r), vec![3]);
        assert_eq!(q.next_deadline(), Some(Instant::from_millis(42)));
        assert_eq!(
            pop(&mut q, Instant::from_millis(42).saturating_sub(Duration::from_nanos(1)), &mut r),
            Vec::<u32>::new()
        );
        assert_eq!(pop(&mut q, Instant::from_millis(42), &mut r), vec![1]);
        assert_eq!(q.next_deadline(), Some(Instant::from_millis(60)));
        assert_eq!(pop(&mut q, Instant::from_millis(60), &mut r), vec![0, 2, 4]);
        assert!(q.is_empty());
        assert_eq!(q.next_deadline(), None);
        // A huge delay saturates instead of panicking.
        q.push(Instant::from_secs(1), Duration::MAX, 9).unwrap();
        assert_eq!(q.next_deadline(), Some(Instant::MAX));
        assert_eq!(pop(&mut q, Instant::MAX, &mut r), vec![9]);
    }

    #[test]
    fn capacity_refuses_and_frees() {
        let mut r = rng("capacity");
        for strategy in [Strategy::Poisson, pool(100, 1, 0)] {
            let mut q = MixQueue::new(strategy, 3, Instant::ZERO);
            for i in 0..3 {
                q.push(Instant::ZERO, ms(1), i).unwrap();
            }
            assert_eq!(q.push(Instant::ZERO, ms(1), 7), Err(7));
            assert_eq!(q.len(), 3);
            assert_eq!(pop(&mut q, Instant::from_secs(1), &mut r).len(), 3);
            assert!(q.is_empty());
            q.push(Instant::from_secs(1), ms(1), 8).unwrap();
            assert_eq!(q.len(), 1);
        }
        let mut none = MixQueue::new(Strategy::Poisson, 0, Instant::ZERO);
        assert_eq!(none.push(Instant::ZERO, ms(0), 1u32), Err(1));
    }

    #[test]
    fn pool_threshold_and_keep() {
        let mut r = rng("threshold");
        let mut q = MixQueue::new(pool(1_000, 5, 2), 100, Instant::ZERO);
        for i in 0..4 {
            // Pool ignores the delay.
            q.push(Instant::ZERO, Duration::from_secs(3600), i).unwrap();
        }
        // Below the threshold: a flush sends nothing, but the grid moves on.
        assert_eq!(q.next_deadline(), Some(Instant::from_secs(1)));
        assert!(pop(&mut q, Instant::from_secs(1), &mut r).is_empty());
        assert_eq!(q.len(), 4);
        assert_eq!(q.next_deadline(), Some(Instant::from_secs(2)));
        q.push(Instant::from_secs(1), ms(0), 4).unwrap();
        // Between flushes nothing leaves.
        assert!(pop(&mut q, Instant::from_millis(1_999), &mut r).is_empty());
        // At the threshold: all but `keep` leave, distinct items.
        let sent = pop(&mut q, Instant::from_secs(2), &mut r);
        assert_eq!(sent.len(), 3);
        assert_eq!(q.len(), 2);
        let unique: BTreeSet<u32> = sent.iter().copied().collect();
        assert_eq!(unique.len(), 3);
        assert!(unique.iter().all(|&i| i < 5));

        // keep at or above what is held: nothing leaves even over the threshold.
        let mut q = MixQueue::new(pool(1_000, 1, 3), 100, Instant::ZERO);
        for i in 0..3 {
            q.push(Instant::ZERO, ms(0), i).unwrap();
        }
        assert!(pop(&mut q, Instant::from_secs(1), &mut r).is_empty());
        q.push(Instant::ZERO, ms(0), 3).unwrap();
        assert_eq!(pop(&mut q, Instant::from_secs(2), &mut r).len(), 1);
        assert_eq!(q.len(), 3);

        // keep 0, threshold 0: a plain timed mix sends everything.
        let mut q = MixQueue::new(pool(1_000, 0, 0), 100, Instant::ZERO);
        for i in 0..6 {
            q.push(Instant::ZERO, ms(0), i).unwrap();
        }
        let mut sent = pop(&mut q, Instant::from_secs(1), &mut r);
        sent.sort();
        assert_eq!(sent, (0..6).collect::<Vec<_>>());
        assert!(q.is_empty());
        assert_eq!(q.next_deadline(), None);
    }

    #[test]
    fn pool_flush_grid_is_anchored_at_creation() {
        let mut r = rng("grid");
        let anchor = Instant::from_millis(100);
        let mut q = MixQueue::new(pool(1_000, 1, 0), 100, anchor);
        // Empty: no deadline, however the clock moves.
        assert_eq!(q.next_deadline(), None);
        // Arrivals at odd times do not move the grid.
        q.push(Instant::from_millis(777), ms(5), 1).unwrap();
        assert_eq!(q.next_deadline(), Some(Instant::from_millis(1_100)));
        assert!(pop(&mut q, Instant::from_millis(1_099), &mut r).is_empty());
        assert_eq!(pop(&mut q, Instant::from_millis(1_100), &mut r), vec![1]);
        q.push(Instant::from_millis(1_100), ms(0), 2).unwrap();
        assert_eq!(q.next_deadline(), Some(Instant::from_millis(2_100)));
        // A late call flushes once, and the next flush stays on the grid.
        assert_eq!(pop(&mut q, Instant::from_millis(2_350), &mut r), vec![2]);
        q.push(Instant::from_millis(2_400), ms(0), 3).unwrap();
        assert_eq!(q.next_deadline(), Some(Instant::from_millis(3_100)));

        // A zero interval counts as one nanosecond: the deadline moves forward.
        let mut z = MixQueue::new(pool(0, 1, 1), 10, Instant::ZERO);
        z.push(Instant::ZERO, ms(0), 1).unwrap();
        assert_eq!(z.next_deadline(), Some(Instant::from_nanos(1)));
        assert!(pop(&mut z, Instant::from_nanos(5), &mut r).is_empty());
        assert_eq!(z.next_deadline(), Some(Instant::from_nanos(6)));
    }

    #[test]
    fn missed_flushes_flush_once() {
        let mut r = rng("missed");
        let mut q = MixQueue::new(pool(1_000, 2, 2), 100, Instant::ZERO);
        for i in 0..10 {
            q.push(Instant::ZERO, ms(0), i).unwrap();
        }
        // Five flush instants passed; one flush sends 8 and keeps 2 (five
        // flushes would have sent the same, so check with a threshold that
        // the second flush could meet: push two more and see they wait).
        assert_eq!(pop(&mut q, Instant::from_millis(5_500), &mut r).len(), 8);
        assert_eq!(q.next_deadline(), Some(Instant::from_secs(6)));
        q.push(Instant::from_millis(5_500), ms(0), 10).unwrap();
        q.push(Instant::from_millis(5_500), ms(0), 11).unwrap();
        assert!(pop(&mut q, Instant::from_millis(5_999), &mut r).is_empty());
        assert_eq!(pop(&mut q, Instant::from_secs(6), &mut r).len(), 2);

        // With keep 0 a second flush would send a packet that arrived after
        // the first; with one call per late wake-up it does not happen twice.
        let mut q = MixQueue::new(pool(1_000, 1, 1), 100, Instant::ZERO);
        for i in 0..3 {
            q.push(Instant::ZERO, ms(0), i).unwrap();
        }
        assert_eq!(pop(&mut q, Instant::from_secs(10), &mut r).len(), 2, "one flush, not ten");
        assert_eq!(q.len(), 1);
        assert_eq!(q.next_deadline(), Some(Instant::from_secs(11)));
    }

    /// Chi-square statistic of `counts` against a uniform expectation.
    fn chi_square(counts: &[u64], expected: f64) -> f64 {
        counts.iter().map(|&c| (c as f64 - expected).powi(2) / expected).sum()
    }

    #[test]
    fn pool_sends_every_held_packet_with_equal_probability() {
        // 10 held, keep 4: each packet leaves with probability 6/10, and each
        // is first out with probability 1/10. Fixed seed, so not flaky; the
        // bound is the chi-square 0.999 quantile for 9 degrees of freedom.
        const N: usize = 10;
        const TRIALS: u64 = 5_000;
        const CRITICAL: f64 = 27.88;
        let mut r = rng("uniform");
        let mut sent = [0u64; N];
        let mut first = [0u64; N];
        let mut last = [0u64; N];
        let mut out = Vec::new();
        for t in 0..TRIALS {
            let mut q = MixQueue::new(pool(1_000, N, 4), N, Instant::from_secs(t));
            for i in 0..N {
                q.push(Instant::from_secs(t), ms(0), i).unwrap();
            }
            out.clear();
            q.pop_due(Instant::from_secs(t + 1), &mut r, &mut out);
            assert_eq!(out.len(), N - 4);
            for &i in &out {
                sent[i] += 1;
            }
            first[out[0]] += 1;
            last[out[out.len() - 1]] += 1;
        }
        let sent_chi = chi_square(&sent, TRIALS as f64 * 0.6);
        let first_chi = chi_square(&first, TRIALS as f64 / N as f64);
        let last_chi = chi_square(&last, TRIALS as f64 / N as f64);
        assert!(sent_chi < CRITICAL, "sent {sent:?} chi2 {sent_chi}");
        assert!(first_chi < CRITICAL, "first {first:?} chi2 {first_chi}");
        assert!(last_chi < CRITICAL, "last {last:?} chi2 {last_chi}");
    }

    #[test]
    fn same_inputs_same_outputs() {
        let run = || {
            let mut r = rng("determinism");
            let mut q = MixQueue::new(pool(100, 3, 2), 50, Instant::ZERO);
            let mut out = Vec::new();
            for i in 0..200u32 {
                let _ = q.push(Instant::from_millis(u64::from(i) * 7), ms(0), i);
                q.pop_due(Instant::from_millis(u64::from(i) * 7), &mut r, &mut out);
            }
            out
        };
        assert_eq!(run(), run());
        assert!(run().len() > 100);
    }

    /// One step of a queue script.
    #[derive(Clone, Debug)]
    enum Op {
        Push { delay_ms: u64 },
        Advance { ms: u64 },
        Pop,
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..3_000).prop_map(|delay_ms| Op::Push { delay_ms }),
            2 => (0u64..2_500).prop_map(|ms| Op::Advance { ms }),
            2 => Just(Op::Pop),
        ]
    }

    fn mixing() -> impl proptest::strategy::Strategy<Value = Strategy> {
        prop_oneof![
            Just(Strategy::Poisson),
            (1u64..2_000, 0usize..8, 0usize..6).prop_map(|(i, threshold, keep)| Strategy::Pool {
                interval: Duration::from_millis(i),
                threshold,
                keep
            }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Nothing is lost or duplicated: pushed = released + held; Poisson
        /// releases each item at the first pop at or after its due time.
        #[test]
        fn nothing_lost_or_duplicated(
            strategy in mixing(),
            capacity in 0usize..20,
            ops in proptest::collection::vec(op(), 0..120),
        ) {
            let mut r = rng("proptest");
            let mut q = MixQueue::new(strategy, capacity, Instant::ZERO);
            let mut now = Instant::ZERO;
            let mut next = 0u32;
            let mut due = std::collections::BTreeMap::new();
            let mut released = BTreeSet::new();
            let mut out = Vec::new();
            for op in ops {
                match op {
                    Op::Push { delay_ms } => {
                        let full = q.len() >= capacity;
                        match q.push(now, ms(delay_ms), next) {
                            Ok(()) => {
                                prop_assert!(!full);
                                due.insert(next, now + ms(delay_ms));
                            }
                            Err(item) => {
                                prop_assert!(full);
                                prop_assert_eq!(item, next);
                            }
                        }
                        next += 1;
                    }
                    Op::Advance { ms: step } => now += ms(step),
                    Op::Pop => {
                        out.clear();
                        q.pop_due(now, &mut r, &mut out);
                        for &item in &out {
                            prop_assert!(released.insert(item), "released twice");
                            let at = due.remove(&item).expect("released only what was pushed");
                            if strategy == Strategy::Poisson {
                                prop_assert!(at <= now);
                            }
                        }
                        if strategy == Strategy::Poisson {
                            prop_assert!(due.values().all(|&at| at > now), "a due item was held back");
                        }
                    }
                }
                prop_assert_eq!(q.len(), due.len());
                prop_assert_eq!(q.is_empty(), due.is_empty());
                prop_assert_eq!(q.next_deadline().is_none(), due.is_empty());
                if strategy == Strategy::Poisson {
                    prop_assert_eq!(q.next_deadline(), due.values().min().copied());
                }
            }
        }
    }
}
