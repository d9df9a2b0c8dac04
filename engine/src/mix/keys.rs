//! A mix's key epochs: a fresh X25519 key per epoch, the previous one
//! still accepted for one epoch, the replay tags of both remembered.
//!
//! Keys are drawn at random rather than derived from a long-term secret:
//! a mix that restarts starts a new key (and forgets its replay tags)
//! without ever accepting an old packet again, and a key that is
//! forgotten cannot decrypt recorded traffic (forward secrecy per epoch).

use super::descriptor::EpochKey;
use super::packet::{self, PacketError, Processed, ReplayFilter};
use crate::crypto::{CryptoSuite, KxSecret};
use crate::rng::EngineRng;
use rand_core::Rng;
use zeroize::Zeroizing;

/// The keys of the current and the previous epoch, and the replay filter.
pub(super) struct EpochKeys {
    epoch: u64,
    current: KxSecret,
    previous: Option<KxSecret>,
    replay: ReplayFilter,
}

impl core::fmt::Debug for EpochKeys {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("EpochKeys").field("epoch", &self.epoch).field("replay", &self.replay.len()).finish()
    }
}

fn fresh(rng: &mut EngineRng) -> KxSecret {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(bytes.as_mut());
    KxSecret::from_bytes(*bytes)
}

impl EpochKeys {
    /// Keys for epoch 0.
    pub(super) fn new(rng: &mut EngineRng) -> Self {
        EpochKeys { epoch: 0, current: fresh(rng), previous: None, replay: ReplayFilter::new(0) }
    }

    /// The current epoch.
    pub(super) fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Replay tags remembered.
    pub(super) fn remembered(&self) -> usize {
        self.replay.len()
    }

    /// The public key of the current epoch, for the descriptor.
    pub(super) fn public(&self) -> EpochKey {
        EpochKey { epoch: self.epoch, key: CryptoSuite::Real.kx_public(&self.current) }
    }

    /// Moves to `epoch` (later than the current one): the current key
    /// becomes the previous one when `epoch` is the next, and is dropped
    /// with everything older after a longer jump.
    pub(super) fn rotate(&mut self, epoch: u64, rng: &mut EngineRng) {
        if epoch <= self.epoch {
            return;
        }
        let old = core::mem::replace(&mut self.current, fresh(rng));
        self.previous = (epoch == self.epoch + 1).then_some(old);
        self.replay.new_epoch(epoch);
        self.epoch = epoch;
    }

    /// Processes a packet with the current key, or with the previous one
    /// when the current key's MAC check fails, recording the replay tag.
    pub(super) fn process(&mut self, bytes: &[u8]) -> Result<Processed, PacketError> {
        let packet = packet::Packet::from_bytes(bytes)?;
        let Some(previous) = &self.previous else {
            return packet::process_checked(&self.current, self.epoch, &mut self.replay, packet);
        };
        let spare = packet.clone();
        match packet::process_checked(&self.current, self.epoch, &mut self.replay, packet) {
            Err(PacketError::BadMac) => packet::process_checked(previous, self.epoch - 1, &mut self.replay, spare),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::NodeId;
    use crate::mix::packet::{Hop, Packet};
    use crate::rng::NodeSeed;

    fn one_hop(keys: &EpochKeys, rng: &mut EngineRng) -> Vec<u8> {
        let hop = Hop { id: NodeId([1; 32]), key: keys.public().key, delay_us: 0 };
        Packet::create(rng, &[hop], NodeId([2; 32]), b"hi").unwrap().0.to_bytes()
    }

    #[test]
    fn previous_key_is_accepted_for_one_epoch_and_replays_are_refused() {
        let mut rng = NodeSeed::derive(1, 1).stream("keys");
        let mut keys = EpochKeys::new(&mut rng);
        let old = one_hop(&keys, &mut rng);
        let older = one_hop(&keys, &mut rng);
        assert!(matches!(keys.process(&old), Ok(Processed::Deliver { .. })));
        assert_eq!(keys.process(&old), Err(PacketError::Replay));
        keys.rotate(1, &mut rng);
        assert_eq!(keys.process(&old), Err(PacketError::Replay), "tags of the previous epoch are kept");
        let new = one_hop(&keys, &mut rng);
        assert!(matches!(keys.process(&new), Ok(Processed::Deliver { .. })));
        keys.rotate(2, &mut rng);
        assert_eq!(keys.process(&older), Err(PacketError::BadMac), "a key two epochs old is gone");
        assert_eq!(keys.remembered(), 1);
    }
}
