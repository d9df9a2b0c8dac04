//! Fragmenting a message body into packet-sized pieces, and bounded
//! reassembly at the recipient.
//!
//! [`Reassembly`] holds at most `max_partial` partial messages (the oldest
//! is evicted to make room for a new one) and remembers the ids of
//! completed messages for `ttl` (at most `4 × max_partial` of them, oldest
//! forgotten first), so a fragment retransmitted after a lost ack is not
//! delivered twice. Everything is ordered (`BTreeMap`), and time is the
//! caller's [`Instant`], so the same inputs give the same outputs.

use crate::mix::message::{MAX_FRAGMENTS, MessageId};
use crate::time::Instant;
use core::time::Duration;
use std::collections::BTreeMap;

/// Completed-message ids remembered per partial message allowed.
const COMPLETED_PER_PARTIAL: usize = 4;

/// Splits a message body into fragment payloads of at most `max` bytes (at
/// least one, even when empty).
///
/// * `body`: the encoded message body.
/// * `max`: the most bytes per fragment, at least 1 (0 is taken as 1); e.g.
///   [`crate::mix::message::MAX_FRAGMENT_DATA`].
///
/// A body needing more than [`MAX_FRAGMENTS`] fragments cannot be sent;
/// the caller checks the returned length.
pub fn split(body: &[u8], max: usize) -> Vec<&[u8]> {
    if body.is_empty() {
        return vec![body];
    }
    body.chunks(max.max(1)).collect()
}

/// Why [`Reassembly::insert`] refused a fragment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReassemblyError {
    /// The index and count break the rules: `1 <= count <= MAX_FRAGMENTS`, `index < count`.
    #[error("fragment {index} of {count} is out of range")]
    BadFragment {
        /// The fragment's index.
        index: u16,
        /// The fragment's count.
        count: u16,
    },
    /// The fragment's count differs from that of earlier fragments of the same message.
    #[error("fragment claims {got} parts, earlier fragments {expected}")]
    CountMismatch {
        /// The count of the fragments held.
        expected: u16,
        /// The count this fragment claims.
        got: u16,
    },
}

impl ReassemblyError {
    /// Name of the per-reason counter, `mix.reassembly.rejected.<label>`.
    pub fn metric(&self) -> &'static str {
        match self {
            ReassemblyError::BadFragment { .. } => "mix.reassembly.rejected.fragment",
            ReassemblyError::CountMismatch { .. } => "mix.reassembly.rejected.count",
        }
    }
}

/// Order key of a partial or completed message: when it arrived, then a
/// sequence number (so equal instants keep insertion order).
type Since = (Instant, u64);

/// A message of which some fragments arrived.
#[derive(Debug)]
struct Partial {
    /// The fragment count every fragment must agree on.
    count: u16,
    /// When its first fragment arrived (its key in `partial_order`).
    since: Since,
    /// The fragments received, by index.
    parts: BTreeMap<u16, Vec<u8>>,
}

/// Bounded reassembly of fragmented messages.
#[derive(Debug)]
pub struct Reassembly {
    /// Most partial messages held at once (at least 1).
    max_partial: usize,
    /// How long a partial message, and the memory of a completed one, is kept.
    ttl: Duration,
    partials: BTreeMap<MessageId, Partial>,
    /// Partial messages, oldest first.
    partial_order: BTreeMap<Since, MessageId>,
    /// Completed message ids and when they completed.
    completed: BTreeMap<MessageId, Since>,
    /// Completed message ids, oldest first.
    completed_order: BTreeMap<Since, MessageId>,
    /// Next order sequence number.
    seq: u64,
    /// Partial messages evicted to make room.
    evicted: u64,
}

impl Reassembly {
    /// An empty reassembly.
    ///
    /// * `max_partial`: partial messages held at once (the caller's default,
    ///   e.g. 256; 0 is taken as 1). Completed ids are remembered up to
    ///   4 × this.
    /// * `ttl`: how long a partial message (and the memory of a completed
    ///   one) is kept, counted from its first fragment (from completion).
    pub fn new(max_partial: usize, ttl: Duration) -> Self {
        Reassembly {
            max_partial: max_partial.max(1),
            ttl,
            partials: BTreeMap::new(),
            partial_order: BTreeMap::new(),
            completed: BTreeMap::new(),
            completed_order: BTreeMap::new(),
            seq: 0,
            evicted: 0,
        }
    }

    fn next_since(&mut self, now: Instant) -> Since {
        self.seq = self.seq.wrapping_add(1);
        (now, self.seq)
    }

    /// Remembers `message` as completed, forgetting the oldest completed
    /// ids beyond the bound.
    fn remember(&mut self, now: Instant, message: MessageId) {
        let since = self.next_since(now);
        if let Some(old) = self.completed.insert(message, since) {
            self.completed_order.remove(&old);
        }
        self.completed_order.insert(since, message);
        let bound = self.max_partial.saturating_mul(COMPLETED_PER_PARTIAL);
        while self.completed.len() > bound {
            let Some((_, oldest)) = self.completed_order.pop_first() else { break };
            self.completed.remove(&oldest);
        }
    }

    /// Adds one fragment.
    ///
    /// * `now`: the caller's current time.
    /// * `message`, `index`, `count`: the fragment's message id, index (from
    ///   0, below `count`) and count (1 to [`MAX_FRAGMENTS`]).
    /// * `data`: the fragment's bytes.
    ///
    /// Returns `Ok(Some(body))` when this fragment completes the message
    /// (the fragments' data concatenated in index order), `Ok(None)` when
    /// more are needed or it is a duplicate (of a partial message, or of a
    /// message completed less than `ttl` ago: a retransmission after a lost
    /// ack is not delivered twice). Err on a fragment out of range or
    /// inconsistent with earlier ones (different count). When full, the
    /// oldest partial message is evicted to make room and the new fragment
    /// is accepted ([`Reassembly::evicted`] counts evictions).
    pub fn insert(
        &mut self,
        now: Instant,
        message: MessageId,
        index: u16,
        count: u16,
        data: &[u8],
    ) -> Result<Option<Vec<u8>>, ReassemblyError> {
        if count == 0 || usize::from(count) > MAX_FRAGMENTS || index >= count {
            return Err(ReassemblyError::BadFragment { index, count });
        }
        if self.completed.contains_key(&message) {
            return Ok(None);
        }
        if let Some(partial) = self.partials.get_mut(&message) {
            if partial.count != count {
                return Err(ReassemblyError::CountMismatch { expected: partial.count, got: count });
            }
            if partial.parts.contains_key(&index) {
                return Ok(None);
            }
            partial.parts.insert(index, data.to_vec());
            if partial.parts.len() < usize::from(count) {
                return Ok(None);
            }
            let Some(done) = self.partials.remove(&message) else { return Ok(None) };
            self.partial_order.remove(&done.since);
            let mut body = Vec::with_capacity(done.parts.values().map(Vec::len).sum());
            for part in done.parts.into_values() {
                body.extend_from_slice(&part);
            }
            self.remember(now, message);
            return Ok(Some(body));
        }
        if count == 1 {
            self.remember(now, message);
            return Ok(Some(data.to_vec()));
        }
        while self.partials.len() >= self.max_partial {
            let Some((_, oldest)) = self.partial_order.pop_first() else { break };
            self.partials.remove(&oldest);
            self.evicted = self.evicted.saturating_add(1);
        }
        let since = self.next_since(now);
        self.partial_order.insert(since, message);
        self.partials.insert(message, Partial { count, since, parts: BTreeMap::from([(index, data.to_vec())]) });
        Ok(None)
    }

    /// Drops partial messages and completed-id memories older than `ttl`
    /// (at `now`: the caller's current time); returns the number of partial
    /// messages dropped.
    pub fn expire(&mut self, now: Instant) -> usize {
        let ttl = self.ttl;
        let due = |since: &Since| since.0.saturating_add(ttl) <= now;
        let mut dropped = 0;
        while let Some(entry) = self.partial_order.first_entry() {
            if !due(entry.key()) {
                break;
            }
            let id = entry.remove();
            self.partials.remove(&id);
            dropped += 1;
        }
        while let Some(entry) = self.completed_order.first_entry() {
            if !due(entry.key()) {
                break;
            }
            let id = entry.remove();
            self.completed.remove(&id);
        }
        dropped
    }

    /// When [`Reassembly::expire`] next has something to do (None when
    /// nothing is held).
    pub fn next_expiry(&self) -> Option<Instant> {
        let partial = self.partial_order.keys().next();
        let completed = self.completed_order.keys().next();
        partial.into_iter().chain(completed).map(|s| s.0.saturating_add(self.ttl)).min()
    }

    /// Partial messages held.
    pub fn partial(&self) -> usize {
        self.partials.len()
    }

    /// Completed message ids remembered (at most 4 × `max_partial`).
    pub fn remembered(&self) -> usize {
        self.completed.len()
    }

    /// Partial messages evicted so far to make room for new ones.
    pub fn evicted(&self) -> u64 {
        self.evicted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TTL: Duration = Duration::from_secs(60);

    fn id(n: u8) -> MessageId {
        MessageId([n; 16])
    }

    fn t(secs: u64) -> Instant {
        Instant::from_secs(secs)
    }

    #[test]
    fn split_cuts_into_bounded_pieces() {
        assert_eq!(split(b"", 5), vec![&b""[..]]);
        assert_eq!(split(b"abc", 5), vec![&b"abc"[..]]);
        assert_eq!(split(b"abcde", 5), vec![&b"abcde"[..]]);
        assert_eq!(split(b"abcdef", 5), vec![&b"abcde"[..], &b"f"[..]]);
        assert_eq!(split(b"ab", 0), vec![&b"a"[..], &b"b"[..]]);
    }

    #[test]
    fn single_fragment_messages_complete_at_once_and_only_once() {
        let mut r = Reassembly::new(4, TTL);
        assert_eq!(r.insert(t(0), id(1), 0, 1, b"hi"), Ok(Some(b"hi".to_vec())));
        assert_eq!(r.insert(t(1), id(1), 0, 1, b"hi"), Ok(None));
        assert_eq!((r.partial(), r.remembered()), (0, 1));
        assert_eq!(r.next_expiry(), Some(t(60)));
        assert_eq!(r.expire(t(59)), 0);
        assert_eq!(r.remembered(), 1);
        assert_eq!(r.expire(t(60)), 0);
        assert_eq!((r.remembered(), r.next_expiry()), (0, None));
        // Forgotten: delivered again.
        assert_eq!(r.insert(t(61), id(1), 0, 1, b"hi"), Ok(Some(b"hi".to_vec())));
    }

    #[test]
    fn fragments_in_any_order_with_duplicates() {
        let mut r = Reassembly::new(4, TTL);
        assert_eq!(r.insert(t(0), id(1), 2, 3, b"c"), Ok(None));
        assert_eq!(r.insert(t(0), id(1), 2, 3, b"X"), Ok(None));
        assert_eq!(r.insert(t(1), id(1), 0, 3, b"a"), Ok(None));
        assert_eq!(r.partial(), 1);
        assert_eq!(r.insert(t(2), id(1), 1, 3, b"b"), Ok(Some(b"abc".to_vec())));
        assert_eq!((r.partial(), r.remembered()), (0, 1));
        // A retransmission after a lost ack is not delivered twice.
        for i in 0..3 {
            assert_eq!(r.insert(t(3), id(1), i, 3, b"?"), Ok(None));
        }
        assert_eq!(r.partial(), 0);
    }

    #[test]
    fn rejections() {
        let mut r = Reassembly::new(4, TTL);
        for (index, count) in [(0, 0), (1, 1), (3, 2), (0, 257), (0, u16::MAX)] {
            assert_eq!(r.insert(t(0), id(1), index, count, b""), Err(ReassemblyError::BadFragment { index, count }));
        }
        assert_eq!(r.partial(), 0);
        assert_eq!(r.insert(t(0), id(1), 0, 3, b"a"), Ok(None));
        assert_eq!(r.insert(t(0), id(1), 1, 4, b"b"), Err(ReassemblyError::CountMismatch { expected: 3, got: 4 }));
        assert_eq!(r.insert(t(0), id(1), 0, 1, b"b"), Err(ReassemblyError::CountMismatch { expected: 3, got: 1 }));
        assert_eq!(r.insert(t(0), id(1), 1, 3, b"b"), Ok(None));
        assert_eq!(r.insert(t(0), id(1), 2, 3, b"c"), Ok(Some(b"abc".to_vec())));
        assert_eq!(ReassemblyError::BadFragment { index: 0, count: 0 }.metric(), "mix.reassembly.rejected.fragment");
        assert_eq!(ReassemblyError::CountMismatch { expected: 1, got: 2 }.metric(), "mix.reassembly.rejected.count");
    }

    #[test]
    fn full_evicts_the_oldest_partial() {
        let mut r = Reassembly::new(2, TTL);
        assert_eq!(r.insert(t(5), id(1), 0, 2, b"a"), Ok(None));
        assert_eq!(r.insert(t(6), id(2), 0, 2, b"a"), Ok(None));
        // A fragment of a held message does not evict.
        assert_eq!(r.insert(t(7), id(1), 0, 2, b"a"), Ok(None));
        assert_eq!(r.evicted(), 0);
        assert_eq!(r.insert(t(8), id(3), 0, 2, b"a"), Ok(None));
        assert_eq!((r.partial(), r.evicted()), (2, 1));
        // Message 1 was evicted: its second fragment starts it afresh.
        assert_eq!(r.insert(t(9), id(1), 1, 2, b"b"), Ok(None));
        assert_eq!((r.partial(), r.evicted()), (2, 2));
        assert_eq!(r.insert(t(9), id(3), 1, 2, b"b"), Ok(Some(b"ab".to_vec())));
        assert_eq!(r.insert(t(9), id(1), 0, 2, b"a"), Ok(Some(b"ab".to_vec())));
        assert_eq!((r.partial(), r.evicted()), (0, 2));
    }

    #[test]
    fn zero_max_partial_holds_one() {
        let mut r = Reassembly::new(0, TTL);
        assert_eq!(r.insert(t(0), id(1), 0, 2, b"a"), Ok(None));
        assert_eq!(r.insert(t(0), id(1), 1, 2, b"b"), Ok(Some(b"ab".to_vec())));
        assert_eq!(r.insert(t(0), id(2), 0, 2, b"a"), Ok(None));
        assert_eq!(r.insert(t(0), id(3), 0, 2, b"a"), Ok(None));
        assert_eq!((r.partial(), r.evicted()), (1, 1));
    }

    #[test]
    fn completed_memory_is_bounded_oldest_first() {
        let mut r = Reassembly::new(2, TTL);
        for n in 0..9 {
            assert!(r.insert(t(0), id(n), 0, 1, b"x").unwrap().is_some());
        }
        assert_eq!(r.remembered(), 8);
        // The oldest (0) was forgotten; 1 is still remembered.
        assert!(r.insert(t(0), id(0), 0, 1, b"x").unwrap().is_some());
        assert_eq!(r.insert(t(0), id(2), 0, 1, b"x"), Ok(None));
        assert_eq!(r.remembered(), 8);
    }

    #[test]
    fn expiry_drops_old_partials_and_memories() {
        let mut r = Reassembly::new(8, TTL);
        assert_eq!(r.next_expiry(), None);
        r.insert(t(10), id(1), 0, 2, b"a").unwrap();
        r.insert(t(20), id(2), 0, 2, b"a").unwrap();
        r.insert(t(15), id(3), 0, 1, b"a").unwrap();
        assert_eq!(r.next_expiry(), Some(t(70)));
        // A later fragment does not extend a partial message's life.
        r.insert(t(69), id(1), 0, 2, b"a").unwrap();
        assert_eq!(r.expire(t(69)), 0);
        assert_eq!(r.expire(t(70)), 1);
        assert_eq!((r.partial(), r.remembered(), r.next_expiry()), (1, 1, Some(t(75))));
        assert_eq!(r.expire(t(75)), 0);
        assert_eq!((r.partial(), r.remembered(), r.next_expiry()), (1, 0, Some(t(80))));
        assert_eq!(r.expire(t(1000)), 1);
        assert_eq!((r.partial(), r.remembered(), r.next_expiry()), (0, 0, None));
        // Message 1 expired: its fragment starts it afresh.
        assert_eq!(r.insert(t(1000), id(1), 1, 2, b"b"), Ok(None));
        assert_eq!(r.evicted(), 0);
    }

    /// A body, a fragment size, and an order of fragment indices holding
    /// every index at least once and some duplicates.
    fn scenario() -> impl Strategy<Value = (Vec<u8>, usize, Vec<usize>)> {
        (prop::collection::vec(any::<u8>(), 0..2000), 8usize..300).prop_flat_map(|(body, max)| {
            let n = split(&body, max).len();
            prop::collection::vec(0..n, 0..8).prop_flat_map(move |dups| {
                let order: Vec<usize> = (0..n).chain(dups).collect();
                (Just(body.clone()), Just(max), Just(order).prop_shuffle())
            })
        })
    }

    proptest! {
        #[test]
        fn split_then_reassemble_in_any_order((body, max, order) in scenario()) {
            let pieces = split(&body, max);
            prop_assert!(pieces.iter().all(|p| p.len() <= max));
            prop_assert_eq!(pieces.concat(), body.clone());
            let count = pieces.len() as u16;
            let mut r = Reassembly::new(4, TTL);
            let mut seen = std::collections::BTreeSet::new();
            let mut delivered = Vec::new();
            for (step, &i) in order.iter().enumerate() {
                seen.insert(i);
                let got = r.insert(Instant::from_millis(step as u64), id(7), i as u16, count, pieces[i]).unwrap();
                // Delivered exactly when the last distinct fragment arrives.
                prop_assert_eq!(got.is_some(), seen.len() == pieces.len() && delivered.is_empty());
                delivered.extend(got);
            }
            prop_assert_eq!(delivered, vec![body]);
            prop_assert_eq!(r.partial(), 0);
        }
    }
}
