//! Replay tags and the per-epoch filter a mix keeps of them.
//!
//! Processing a packet yields the hop's [`ReplayTag`], `H(s_i)` under its
//! own BLAKE3 context. The same packet (the same alpha) gives the same tag
//! at the same mix under the same key, however its other bytes are changed,
//! so a mix that remembers tags refuses replays. Mix keys rotate per epoch:
//! a tag only needs remembering while the key that produced it is
//! accepted, which is the current epoch and, during the overlap, the
//! previous one. [`ReplayFilter::new_epoch`] drops everything older.

use super::PacketError;
use std::collections::BTreeSet;

/// A hop's replay tag: 32 bytes derived from its shared secret. Not secret
/// (it reveals nothing about the shared secret), but unique per packet and hop.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplayTag(pub [u8; 32]);

/// The replay tags a mix has seen, per key epoch: the current epoch and the
/// previous one (the overlap while the previous key is still accepted).
/// Memory: about 48 bytes per remembered packet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayFilter {
    /// The current key epoch (any counter the caller uses; default 0).
    epoch: u64,
    /// Tags seen under the current epoch's key.
    current: BTreeSet<ReplayTag>,
    /// Tags seen under the previous epoch's key.
    previous: BTreeSet<ReplayTag>,
}

impl ReplayFilter {
    /// An empty filter whose current key epoch is `epoch`.
    pub fn new(epoch: u64) -> Self {
        ReplayFilter { epoch, ..Self::default() }
    }

    /// The current key epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Moves to key epoch `epoch`. When it is the next one, the current
    /// tags become the previous epoch's and the older ones are dropped;
    /// after a longer jump all tags are dropped. An `epoch` at or before the
    /// current one changes nothing.
    pub fn new_epoch(&mut self, epoch: u64) {
        if epoch <= self.epoch {
            return;
        }
        if epoch == self.epoch + 1 {
            self.previous = core::mem::take(&mut self.current);
        } else {
            self.previous.clear();
            self.current.clear();
        }
        self.epoch = epoch;
    }

    /// Records `tag` for a packet processed with the key of epoch `epoch`.
    /// [`PacketError::Replay`] when it was seen before;
    /// [`PacketError::StaleEpoch`] when `epoch` is neither the current nor
    /// the previous one (its key should no longer be in use).
    pub fn insert(&mut self, epoch: u64, tag: ReplayTag) -> Result<(), PacketError> {
        let set = if epoch == self.epoch {
            &mut self.current
        } else if epoch.checked_add(1) == Some(self.epoch) {
            &mut self.previous
        } else {
            return Err(PacketError::StaleEpoch { epoch, current: self.epoch });
        };
        if set.insert(tag) { Ok(()) } else { Err(PacketError::Replay) }
    }

    /// How many tags are remembered, over both epochs.
    pub fn len(&self) -> usize {
        self.current.len() + self.previous.len()
    }

    /// Whether no tag is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_refused_twice_and_forgotten_after_two_epochs() {
        let mut f = ReplayFilter::new(5);
        let t = ReplayTag([1; 32]);
        assert_eq!(f.insert(5, t), Ok(()));
        assert_eq!(f.insert(5, t), Err(PacketError::Replay));
        f.new_epoch(6);
        assert_eq!(f.insert(5, t), Err(PacketError::Replay));
        assert_eq!(f.insert(6, t), Ok(()));
        f.new_epoch(7);
        assert_eq!(f.len(), 1);
        assert_eq!(f.insert(5, t), Err(PacketError::StaleEpoch { epoch: 5, current: 7 }));
        assert_eq!(f.insert(8, t), Err(PacketError::StaleEpoch { epoch: 8, current: 7 }));
        f.new_epoch(20);
        assert!(f.is_empty());
    }
}
