//! A set of disjoint, non-adjacent half-open `u64` ranges, used for received
//! cell sequence numbers, acknowledged stream bytes and stream bytes awaiting
//! retransmission. Every operation is `O(log n + k)` in the number of ranges
//! touched; nothing is per element.

use std::collections::BTreeMap;
use std::ops::Range;

/// Disjoint ranges keyed by start, merged on insert.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RangeSet {
    /// start -> end (exclusive); ranges never overlap or touch.
    map: BTreeMap<u64, u64>,
}

impl RangeSet {
    /// An empty set.
    pub(crate) fn new() -> Self {
        RangeSet { map: BTreeMap::new() }
    }

    /// Number of disjoint ranges.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the set holds nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Whether `value` is in the set.
    pub(crate) fn contains(&self, value: u64) -> bool {
        self.map.range(..=value).next_back().is_some_and(|(_, &end)| end > value)
    }

    /// Adds `range`, merging with overlapping or adjacent ranges.
    pub(crate) fn insert(&mut self, range: Range<u64>) {
        if range.start >= range.end {
            return;
        }
        let (mut start, mut end) = (range.start, range.end);
        // A range starting before us that reaches us.
        if let Some((&s, &e)) = self.map.range(..=start).next_back()
            && e >= start
        {
            start = s;
            end = end.max(e);
            self.map.remove(&s);
        }
        // Ranges starting inside (or adjacent to) us.
        while let Some((&s, &e)) = self.map.range(start..=end).next() {
            end = end.max(e);
            self.map.remove(&s);
        }
        self.map.insert(start, end);
    }

    /// Removes `range` from the set, splitting ranges as needed.
    pub(crate) fn remove(&mut self, range: Range<u64>) {
        if range.start >= range.end {
            return;
        }
        if let Some((&s, &e)) = self.map.range(..range.start).next_back()
            && e > range.start
        {
            self.map.insert(s, range.start);
            if e > range.end {
                self.map.insert(range.end, e);
                return;
            }
        }
        while let Some((&s, &e)) = self.map.range(range.start..range.end).next() {
            self.map.remove(&s);
            if e > range.end {
                self.map.insert(range.end, e);
                break;
            }
        }
    }

    /// Removes every value below `floor`.
    pub(crate) fn remove_below(&mut self, floor: u64) {
        self.remove(0..floor);
    }

    /// The lowest range.
    pub(crate) fn first(&self) -> Option<Range<u64>> {
        self.map.first_key_value().map(|(&s, &e)| s..e)
    }

    /// Removes the lowest range.
    pub(crate) fn pop_first(&mut self) -> Option<Range<u64>> {
        self.map.pop_first().map(|(s, e)| s..e)
    }

    /// Ranges from the highest down.
    pub(crate) fn iter_rev(&self) -> impl Iterator<Item = Range<u64>> + '_ {
        self.map.iter().rev().map(|(&s, &e)| s..e)
    }

    /// The parts of `range` not in the set, in ascending order.
    pub(crate) fn gaps_in(&self, range: Range<u64>) -> Vec<Range<u64>> {
        let mut gaps = Vec::new();
        let mut pos = range.start;
        if let Some((_, &e)) = self.map.range(..=pos).next_back()
            && e > pos
        {
            pos = e;
        }
        if pos >= range.end {
            return gaps;
        }
        for (&s, &e) in self.map.range(pos..range.end) {
            if s > pos {
                gaps.push(pos..s);
            }
            pos = pos.max(e);
        }
        if pos < range.end {
            gaps.push(pos..range.end);
        }
        gaps
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    fn model(set: &RangeSet) -> BTreeSet<u64> {
        set.map.iter().flat_map(|(&s, &e)| s..e).collect()
    }

    #[test]
    fn merges_adjacent_and_splits() {
        let mut set = RangeSet::new();
        set.insert(5..10);
        set.insert(10..12);
        set.insert(0..2);
        assert_eq!(set.len(), 2);
        set.remove(6..8);
        assert_eq!(set.iter_rev().collect::<Vec<_>>(), vec![8..12, 5..6, 0..2]);
        assert_eq!(set.gaps_in(0..14), vec![2..5, 6..8, 12..14]);
        assert_eq!(set.gaps_in(9..11), vec![]);
        assert!(set.contains(9) && !set.contains(7));
    }

    proptest! {
        #[test]
        fn behaves_like_a_set(ops in proptest::collection::vec((any::<bool>(), 0u64..200, 0u64..30), 0..60)) {
            let mut set = RangeSet::new();
            let mut reference = BTreeSet::new();
            for (add, start, len) in ops {
                if add {
                    set.insert(start..start + len);
                    reference.extend(start..start + len);
                } else {
                    set.remove(start..start + len);
                    for v in start..start + len { reference.remove(&v); }
                }
                prop_assert_eq!(model(&set), reference.clone());
                // Disjoint and non-adjacent.
                let ranges: Vec<_> = set.iter_rev().collect();
                for pair in ranges.windows(2) { prop_assert!(pair[1].end < pair[0].start); }
                let gaps: BTreeSet<u64> = set.gaps_in(50..150).into_iter().flatten().collect();
                let expected: BTreeSet<u64> = (50..150).filter(|v| !reference.contains(v)).collect();
                prop_assert_eq!(gaps, expected);
            }
        }
    }
}
