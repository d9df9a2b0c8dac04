//! One deadline per timer key, ordered by instant: the timer wheel every
//! machine with keyed deadlines shares.

use crate::time::Instant;
use std::collections::{BTreeMap, BTreeSet};

/// Deadlines by key; setting a key replaces its earlier deadline. Ties are
/// broken by the key's order, so popping is deterministic.
#[derive(Debug)]
pub struct Timers<K> {
    queue: BTreeSet<(Instant, K)>,
    armed: BTreeMap<K, Instant>,
}

impl<K> Default for Timers<K> {
    fn default() -> Self {
        Timers { queue: BTreeSet::new(), armed: BTreeMap::new() }
    }
}

impl<K: Ord + Copy> Timers<K> {
    /// Arms `key` for `at`, or disarms it when `at` is `None`.
    pub fn set(&mut self, key: K, at: Option<Instant>) {
        if let Some(old) = self.armed.remove(&key) {
            self.queue.remove(&(old, key));
        }
        if let Some(at) = at {
            self.armed.insert(key, at);
            self.queue.insert((at, key));
        }
    }

    /// Whether `key` has a deadline.
    pub fn is_armed(&self, key: K) -> bool {
        self.armed.contains_key(&key)
    }

    /// `key`'s deadline, if armed.
    pub fn deadline(&self, key: K) -> Option<Instant> {
        self.armed.get(&key).copied()
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// Removes and returns a key whose deadline is at or before `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<K> {
        let (at, key) = *self.queue.first()?;
        if at > now {
            return None;
        }
        self.queue.remove(&(at, key));
        self.armed.remove(&key);
        Some(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    #[test]
    fn rearming_replaces_and_pops_in_deadline_order() {
        let t0 = Instant::ZERO;
        let at = |ms| t0.saturating_add(Duration::from_millis(ms));
        let mut timers = Timers::default();
        timers.set(1u8, Some(at(30)));
        timers.set(2u8, Some(at(10)));
        timers.set(1u8, Some(at(5)));
        assert_eq!(timers.next(), Some(at(5)));
        assert_eq!(timers.pop_due(at(20)), Some(1));
        assert_eq!(timers.pop_due(at(20)), Some(2));
        assert_eq!(timers.pop_due(at(20)), None);
        timers.set(3u8, Some(at(40)));
        timers.set(3u8, None);
        assert!(!timers.is_armed(3));
        assert_eq!(timers.next(), None);
    }
}
