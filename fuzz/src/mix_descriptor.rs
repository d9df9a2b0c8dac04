//! Targets for the mixnet's descriptors and mixing queue: mix descriptors
//! decoded from arbitrary and damaged bytes, and a [`MixQueue`] driven by a
//! script of pushes, clock moves and pops. Each function panics if a
//! property is broken.

use crate::pool;
use allium_engine::Instant;
use allium_engine::crypto::KxPublic;
use allium_engine::mix::descriptor::{EpochKey, MAX_DESCRIPTOR_BYTES, MAX_KEYS, MAX_LAYERS, MixDescriptor, MixRole};
use allium_engine::mix::strategy::{MixQueue, Strategy};
use allium_engine::rng::NodeSeed;
use allium_engine::wire::WireError;
use bolero::TypeGenerator;
use core::time::Duration;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::LazyLock;

/// Labels a mix descriptor error may map to.
const DECODE_LABELS: [&str; 5] = ["truncated", "limit", "invalid", "trailing", "protocol"];

/// Valid signed descriptors (mixes of every layer and a provider, one and
/// two keys, IPv4 and IPv6) the decode target damages.
static VALID: LazyLock<Vec<Vec<u8>>> = LazyLock::new(|| {
    let v4 = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 4000));
    let v6 = SocketAddr::from((Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1), 65_000));
    let one = vec![EpochKey { epoch: 41, key: KxPublic([7; 32]) }];
    let two = vec![EpochKey { epoch: 41, key: KxPublic([7; 32]) }, EpochKey { epoch: 1 << 40, key: KxPublic([8; 32]) }];
    let mut out = Vec::new();
    for (i, role) in (0..MAX_LAYERS).map(|layer| MixRole::Mix { layer }).chain([MixRole::Provider]).enumerate() {
        let identity = &pool::peer(i as u8).identity;
        out.push(MixDescriptor::sign(identity, v4, role, one.clone(), 1).encode());
        out.push(MixDescriptor::sign(identity, v6, role, two.clone(), u64::MAX).encode());
    }
    out
});

/// `mix_descriptor_decode`: [`MixDescriptor::decode`] never panics; what
/// decodes is within the size limit, re-encodes to exactly the same bytes,
/// decodes again to itself (so its signature verifies) and meets every
/// field rule; an error maps to a typed body error. The first byte then
/// picks a valid descriptor: with one byte flipped (the next three bytes
/// choose where and how) it never decodes, and with the rest of the input
/// XORed onto it, it decodes only when the XOR changed nothing.
pub fn mix_descriptor_decode(bytes: &[u8]) {
    check_decode(bytes);
    let [pick, hi, lo, mask, rest @ ..] = bytes else { return };
    let valid = &VALID[usize::from(*pick) % VALID.len()];
    assert!(MixDescriptor::decode(valid).is_ok());

    let mut flipped = valid.clone();
    let at = usize::from(u16::from_be_bytes([*hi, *lo])) % flipped.len();
    flipped[at] ^= if *mask == 0 { 0x80 } else { *mask };
    check_decode(&flipped);
    assert!(MixDescriptor::decode(&flipped).is_err(), "a flipped byte at {at} still decodes");

    let mut xored = valid.clone();
    for (v, b) in xored.iter_mut().zip(rest) {
        *v ^= b;
    }
    check_decode(&xored);
    assert_eq!(MixDescriptor::decode(&xored).is_ok(), xored == *valid, "only the signed bytes verify");
}

fn check_decode(bytes: &[u8]) {
    match MixDescriptor::decode(bytes) {
        Ok(descriptor) => {
            assert!(bytes.len() <= MAX_DESCRIPTOR_BYTES);
            assert_eq!(descriptor.encode(), bytes, "the encoding is canonical");
            assert_eq!(MixDescriptor::decode(bytes).as_ref(), Ok(&descriptor));
            assert!((1..=MAX_KEYS).contains(&descriptor.keys.len()));
            assert!(descriptor.keys.windows(2).all(|w| w[0].epoch < w[1].epoch));
            assert!(descriptor.keys.iter().all(|k| k.key.0 != [0; 32]));
            if let MixRole::Mix { layer } = descriptor.role {
                assert!(layer < MAX_LAYERS);
            }
            let newest = descriptor.newest_key();
            assert_eq!(Some(newest), descriptor.keys.last().copied());
            assert_eq!(descriptor.key_for(newest.epoch), Some(newest.key));
        }
        Err(error) => {
            let wire = WireError::from(error);
            assert!(DECODE_LABELS.contains(&wire.label()), "unexpected error {wire:?}");
        }
    }
}

/// A fuzzer-chosen pool strategy.
#[derive(Clone, Copy, Debug, TypeGenerator)]
pub struct PoolInput {
    /// Flush interval, in milliseconds (0 counts as one nanosecond).
    pub interval_ms: u16,
    /// [`Strategy::Pool`]'s threshold, taken modulo 8 (so that flushes send something).
    pub threshold: u8,
    /// [`Strategy::Pool`]'s keep, taken modulo 4.
    pub keep: u8,
}

/// One step of a queue script.
#[derive(Clone, Copy, Debug, TypeGenerator)]
pub enum QueueStep {
    /// Push the next item with this delay, in microseconds (a Sphinx hop's
    /// delay field).
    Push {
        /// The delay, in microseconds.
        delay_us: u32,
    },
    /// Move the clock forward by this many microseconds.
    Advance {
        /// Microseconds.
        us: u32,
    },
    /// Move the clock to the queue's next deadline (if later than now).
    ToDeadline,
    /// Call `pop_due` at the current time.
    Pop,
}

/// A queue script: the strategy, the capacity, the random stream and the steps.
#[derive(Clone, Debug, TypeGenerator)]
pub struct QueueInput {
    /// `None`: [`Strategy::Poisson`].
    pub pool: Option<PoolInput>,
    /// The queue's capacity.
    pub capacity: u8,
    /// Seeds the queue's random stream.
    pub seed: u64,
    /// Where the clock (and the pool's flush grid) starts, in milliseconds.
    pub start_ms: u32,
    /// The script.
    pub steps: Vec<QueueStep>,
}

/// `mix_queue`: a [`MixQueue`] under either strategy driven by a script
/// never panics; a push is refused exactly when `capacity` items are held;
/// every pushed item is released at most once and `len()` always equals
/// pushed minus released; Poisson releases each item at the first pop at or
/// after its due time, in (due time, arrival) order, and its deadline is the
/// earliest due time held; a pool releases only at or after its deadline,
/// exactly all but `keep` when at least `threshold` (and more than `keep`)
/// are held, and nothing otherwise; after a pop the next deadline is later
/// than now; the same script and seed release the same items in the same order.
pub fn mix_queue(input: &QueueInput) {
    let first = run_queue(input);
    assert_eq!(run_queue(input), first, "deterministic");
}

fn run_queue(input: &QueueInput) -> Vec<u32> {
    let strategy = match input.pool {
        None => Strategy::Poisson,
        Some(p) => Strategy::Pool {
            interval: Duration::from_millis(u64::from(p.interval_ms)),
            threshold: usize::from(p.threshold % 8),
            keep: usize::from(p.keep % 4),
        },
    };
    let capacity = usize::from(input.capacity);
    let mut now = Instant::from_millis(u64::from(input.start_ms));
    let mut queue = MixQueue::new(strategy, capacity, now);
    let mut rng = NodeSeed::from_bytes([0x6d; 32]).stream(&format!("fuzz mix queue {}", input.seed));
    // Held items by id: their due time (Poisson's; the pool ignores it).
    let mut held: BTreeMap<u32, Instant> = BTreeMap::new();
    let mut released_all = Vec::new();
    let mut released = std::collections::BTreeSet::new();
    let mut next = 0u32;
    let mut out = Vec::new();
    for step in &input.steps {
        match *step {
            QueueStep::Push { delay_us } => {
                let due = now + Duration::from_micros(u64::from(delay_us));
                let full = queue.len() >= capacity;
                match queue.push(now, Duration::from_micros(u64::from(delay_us)), next) {
                    Ok(()) => {
                        assert!(!full, "pushed over capacity");
                        held.insert(next, due);
                    }
                    Err(item) => {
                        assert!(full, "refused below capacity");
                        assert_eq!(item, next, "a refused push returns the item");
                    }
                }
                next += 1;
            }
            QueueStep::Advance { us } => now += Duration::from_micros(u64::from(us)),
            QueueStep::ToDeadline => now = now.max(queue.next_deadline().unwrap_or(now)),
            QueueStep::Pop => {
                let deadline = queue.next_deadline();
                let before = held.len();
                out.clear();
                queue.pop_due(now, &mut rng, &mut out);
                let mut dues = Vec::with_capacity(out.len());
                for &item in &out {
                    assert!(released.insert(item), "item {item} released twice");
                    let due = held.remove(&item).expect("released only what was pushed");
                    dues.push((due, item));
                }
                match strategy {
                    Strategy::Poisson => {
                        assert!(dues.iter().all(|&(due, _)| due <= now), "released before its due time");
                        assert!(held.values().all(|&due| due > now), "a due item was held back");
                        assert!(dues.windows(2).all(|w| w[0] < w[1]), "released out of (due, arrival) order");
                    }
                    Strategy::Pool { threshold, keep, .. } => {
                        let flush = deadline.is_some_and(|d| now >= d);
                        let expected = if flush && before >= threshold && before > keep { before - keep } else { 0 };
                        assert_eq!(out.len(), expected, "a flush sends all but keep, or nothing");
                    }
                }
                if let Some(d) = queue.next_deadline() {
                    assert!(d > now || d == Instant::MAX, "a driver would spin");
                }
                released_all.extend_from_slice(&out);
            }
        }
        assert_eq!(queue.len(), held.len());
        assert_eq!(queue.is_empty(), held.is_empty());
        assert_eq!(queue.next_deadline().is_none(), held.is_empty());
        if strategy == Strategy::Poisson {
            assert_eq!(queue.next_deadline(), held.values().min().copied());
        }
    }
    released_all
}
