//! One deadline per timer key, ordered by instant.

use std::collections::{BTreeMap, BTreeSet};

use crate::time::Instant;

use super::CircuitHandle;

/// What a deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TimerKey {
    /// A client circuit's build attempt deadline.
    Build(CircuitHandle),
    /// A client circuit's channel (retransmission, delayed ack, connect timeout).
    ClientChannel(CircuitHandle),
    /// An exit-side channel, by relayed-circuit key.
    ExitChannel(u64),
    /// A relay's wait for CREATED from the next hop.
    Extend(u64),
    /// A circuit request waiting for the directory gives up.
    Request(u64),
    /// Idle expiry, rotation, descriptor publication, directory refresh.
    Housekeeping,
}

/// Deadlines by key; setting a key replaces its earlier deadline.
#[derive(Debug, Default)]
pub(super) struct Timers {
    queue: BTreeSet<(Instant, TimerKey)>,
    armed: BTreeMap<TimerKey, Instant>,
}

impl Timers {
    /// Arms `key` for `at`, or disarms it when `at` is `None`.
    pub(super) fn set(&mut self, key: TimerKey, at: Option<Instant>) {
        if let Some(old) = self.armed.remove(&key) {
            self.queue.remove(&(old, key));
        }
        if let Some(at) = at {
            self.armed.insert(key, at);
            self.queue.insert((at, key));
        }
    }

    /// Whether `key` has a deadline.
    pub(super) fn is_armed(&self, key: TimerKey) -> bool {
        self.armed.contains_key(&key)
    }

    /// The earliest deadline.
    pub(super) fn next(&self) -> Option<Instant> {
        self.queue.first().map(|(at, _)| *at)
    }

    /// Removes and returns a key whose deadline is at or before `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<TimerKey> {
        let (at, key) = *self.queue.first()?;
        if at > now {
            return None;
        }
        self.queue.remove(&(at, key));
        self.armed.remove(&key);
        Some(key)
    }
}
