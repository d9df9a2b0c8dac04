//! A per-direction sliding replay window over cell sequence numbers.
//!
//! The receiver of FORWARD (or BACKWARD) cells on a circuit remembers the
//! highest seq it accepted and, in a 1024-bit bitmap, which of the
//! [`WINDOW`] seqs ending at it it has seen. A seq is accepted once at most:
//! a repeat is a [`ReplayError::Duplicate`], a seq at or below the window's
//! bottom is [`ReplayError::TooOld`] (it might be a repeat the window has
//! forgotten), and a jump of more than [`MAX_AHEAD`] past the highest is
//! [`ReplayError::TooFarAhead`] (no honest sender loses that many cells in a row).
//!
//! Check before decrypting, commit after the cell authenticated, so a forged
//! cell cannot move the window.

/// How many seqs the window remembers, counting the highest seen: seq `s`
/// is still judged when `highest - s < WINDOW`, and refused as too old
/// otherwise. Fixed by the bitmap size.
pub const WINDOW: u64 = 1024;

/// How far past the highest seen a new seq may jump: `seq - highest <= MAX_AHEAD`.
/// Before anything is seen the highest counts as -1, so the first seq must be
/// below `MAX_AHEAD` (counters start at 0).
pub const MAX_AHEAD: u64 = 65_536;

const WORDS: usize = (WINDOW / 64) as usize;

/// Why a seq was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// The seq was already accepted.
    #[error("duplicate sequence number")]
    Duplicate,
    /// The seq is [`WINDOW`] or more below the highest seen.
    #[error("sequence number below the replay window")]
    TooOld,
    /// The seq is more than [`MAX_AHEAD`] past the highest seen.
    #[error("sequence number too far ahead")]
    TooFarAhead,
}

/// The replay state of one direction of one circuit. `Default` has seen nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayWindow {
    /// Highest seq committed, if any.
    highest: Option<u64>,
    /// Bit `i` (word `i / 64`, bit `i % 64`) is set when `highest - i` was committed.
    seen: [u64; WORDS],
}

impl ReplayWindow {
    /// Whether `seq` would be accepted. Does not change the window.
    pub fn check(&self, seq: u64) -> Result<(), ReplayError> {
        let Some(highest) = self.highest else {
            return if seq < MAX_AHEAD { Ok(()) } else { Err(ReplayError::TooFarAhead) };
        };
        if seq > highest {
            return if seq - highest <= MAX_AHEAD { Ok(()) } else { Err(ReplayError::TooFarAhead) };
        }
        let behind = highest - seq;
        if behind >= WINDOW {
            return Err(ReplayError::TooOld);
        }
        if self.is_set(behind) { Err(ReplayError::Duplicate) } else { Ok(()) }
    }

    /// Records `seq` as seen. Call it after [`ReplayWindow::check`] accepted
    /// `seq` (and the cell authenticated). A seq below the window cannot be
    /// recorded and is ignored.
    pub fn commit(&mut self, seq: u64) {
        match self.highest {
            None => {
                self.highest = Some(seq);
                self.seen = [0; WORDS];
                self.seen[0] = 1;
            }
            Some(highest) if seq > highest => {
                self.shift(seq - highest);
                self.seen[0] |= 1;
                self.highest = Some(seq);
            }
            Some(highest) => {
                let behind = highest - seq;
                if behind < WINDOW {
                    self.seen[(behind / 64) as usize] |= 1 << (behind % 64);
                }
            }
        }
    }

    /// [`ReplayWindow::check`], then [`ReplayWindow::commit`] when it passed.
    pub fn accept(&mut self, seq: u64) -> Result<(), ReplayError> {
        self.check(seq)?;
        self.commit(seq);
        Ok(())
    }

    /// The highest seq accepted so far.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    fn is_set(&self, behind: u64) -> bool {
        self.seen[(behind / 64) as usize] & (1 << (behind % 64)) != 0
    }

    /// Ages every remembered seq by `by` positions (the highest moved up by `by`).
    fn shift(&mut self, by: u64) {
        if by >= WINDOW {
            self.seen = [0; WORDS];
            return;
        }
        let words = (by / 64) as usize;
        let bits = (by % 64) as u32;
        for i in (0..WORDS).rev() {
            let word = match i.checked_sub(words) {
                None => 0,
                Some(src) => {
                    let low = self.seen[src] << bits;
                    let carry = match (bits, src.checked_sub(1)) {
                        (0, _) | (_, None) => 0,
                        (_, Some(below)) => self.seen[below] >> (64 - bits),
                    };
                    low | carry
                }
            };
            self.seen[i] = word;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    /// The rules spelled out over a set of every accepted seq.
    #[derive(Default)]
    struct Model {
        accepted: BTreeSet<u64>,
    }

    impl Model {
        fn accept(&mut self, seq: u64) -> Result<(), ReplayError> {
            let highest = self.accepted.last().copied();
            let verdict = match highest {
                None if seq >= MAX_AHEAD => Err(ReplayError::TooFarAhead),
                None => Ok(()),
                Some(h) if seq > h && seq - h > MAX_AHEAD => Err(ReplayError::TooFarAhead),
                Some(h) if seq > h => Ok(()),
                Some(h) if h - seq >= WINDOW => Err(ReplayError::TooOld),
                Some(_) if self.accepted.contains(&seq) => Err(ReplayError::Duplicate),
                Some(_) => Ok(()),
            };
            if verdict.is_ok() {
                self.accepted.insert(seq);
            }
            verdict
        }
    }

    /// Seqs that cluster, so duplicates, near misses, window edges and big jumps all occur.
    fn seqs() -> impl Strategy<Value = Vec<u64>> {
        let step = prop_oneof![
            4 => 0u64..8,
            2 => 0u64..2100,
            1 => Just(WINDOW - 1),
            1 => Just(WINDOW),
            1 => Just(MAX_AHEAD),
            1 => Just(MAX_AHEAD + 1),
        ];
        prop::collection::vec((step, any::<bool>()), 0..300).prop_map(|steps| {
            let mut at = 0u64;
            steps
                .into_iter()
                .map(|(step, up)| {
                    at = if up { at.saturating_add(step) } else { at.saturating_sub(step) };
                    at
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn matches_the_model_and_never_accepts_twice(seqs in seqs()) {
            let mut window = ReplayWindow::default();
            let mut model = Model::default();
            let mut accepted = BTreeSet::new();
            for seq in seqs {
                let checked = window.check(seq);
                let got = window.accept(seq);
                prop_assert_eq!(checked, got);
                prop_assert_eq!(got, model.accept(seq), "seq {}", seq);
                if got.is_ok() {
                    prop_assert!(accepted.insert(seq), "seq {} accepted twice", seq);
                }
                prop_assert_eq!(window.highest(), accepted.last().copied());
            }
        }

        #[test]
        fn unseen_seqs_within_the_window_are_accepted(seen in prop::collection::btree_set(0u64..3000, 1..200), probe in 0u64..3000) {
            let mut window = ReplayWindow::default();
            for &seq in &seen {
                window.accept(seq).unwrap();
            }
            let highest = *seen.last().unwrap();
            let expected = if probe <= highest && highest - probe >= WINDOW {
                Err(ReplayError::TooOld)
            } else if seen.contains(&probe) {
                Err(ReplayError::Duplicate)
            } else {
                Ok(())
            };
            prop_assert_eq!(window.check(probe), expected);
        }

        #[test]
        fn in_order_streams_are_always_accepted(start in 0u64..MAX_AHEAD, len in 1usize..3000, gap in 1u64..=MAX_AHEAD) {
            let mut window = ReplayWindow::default();
            for seq in start..start + len as u64 {
                prop_assert_eq!(window.accept(seq), Ok(()));
            }
            let next = start + len as u64 - 1 + gap;
            prop_assert_eq!(window.accept(next), Ok(()));
        }
    }

    #[test]
    fn edges() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.check(MAX_AHEAD), Err(ReplayError::TooFarAhead));
        assert_eq!(w.accept(MAX_AHEAD - 1), Ok(()));
        assert_eq!(w.accept(MAX_AHEAD - 1), Err(ReplayError::Duplicate));
        let h = MAX_AHEAD - 1;
        assert_eq!(w.check(h + MAX_AHEAD + 1), Err(ReplayError::TooFarAhead));
        assert_eq!(w.check(h - WINDOW), Err(ReplayError::TooOld));
        assert_eq!(w.accept(h - (WINDOW - 1)), Ok(()));
        assert_eq!(w.accept(h - (WINDOW - 1)), Err(ReplayError::Duplicate));
        // Moving up by 1 pushes that seq out of the window.
        assert_eq!(w.accept(h + 1), Ok(()));
        assert_eq!(w.check(h - (WINDOW - 1)), Err(ReplayError::TooOld));
        assert_eq!(w.check(h), Err(ReplayError::Duplicate));
        // A jump of exactly MAX_AHEAD is allowed and forgets everything below the new window.
        assert_eq!(w.accept(h + 1 + MAX_AHEAD), Ok(()));
        assert_eq!(w.check(h + 1), Err(ReplayError::TooOld));
        assert_eq!(w.check(h + MAX_AHEAD), Ok(()));
        // Near u64::MAX nothing overflows.
        let mut top = ReplayWindow { highest: Some(u64::MAX - 5), seen: [1; WORDS] };
        assert_eq!(top.accept(u64::MAX), Ok(()));
        assert_eq!(top.accept(u64::MAX), Err(ReplayError::Duplicate));
        assert_eq!(top.check(u64::MAX - 5), Err(ReplayError::Duplicate));
    }

    #[test]
    fn commit_below_the_window_is_ignored() {
        let mut w = ReplayWindow::default();
        w.accept(5000).unwrap();
        let before = w.clone();
        w.commit(10);
        assert_eq!(w, before);
    }
}
