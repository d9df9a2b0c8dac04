//! The application workload: Poisson arrivals of lookups, puts, gets,
//! overlay publications and fetches, and the choice of who issues them and
//! what they ask for.

use crate::live::LiveSet;
use crate::rng::{SimRng, below, exponential_nanos, uniform};
use crate::scenario::WorkloadConfig;
use allium_engine::NodeId;
use allium_engine::overlay::Cid;
use rand_core::Rng;
use slotmap::Key;

/// A kind of workload command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkKind {
    /// A random-target `FindNode` lookup.
    Lookup,
    /// A put of a fresh name and value.
    Put,
    /// A get of a previously put key.
    Get,
    /// A publication of a fresh content object (until `objects` were issued).
    Publish,
    /// An app fetch of a published object.
    Fetch,
    /// A stream through an onion circuit to a simulated destination.
    Stream,
    /// A message through the mixnet between two ready mix clients.
    MixMessage,
}

/// A freshly generated object: its bytes and the simulator's own BLAKE3 hash of each chunk.
pub struct FreshObject {
    /// The content.
    pub data: Vec<u8>,
    /// BLAKE3 of each `chunk_bytes` slice, in order.
    pub chunks: Vec<[u8; 32]>,
}

/// How many random picks a get makes before giving up on finding a key whose publisher is live.
const GET_PICKS: usize = 8;

/// The workload generator, with its own random stream.
pub struct Workload<K: Key> {
    rng: SimRng,
    config: WorkloadConfig,
    run_seed: u64,
    puts: u64,
    /// Keys whose put was accepted by at least one peer, with their publisher.
    gettable: Vec<(NodeId, K)>,
    /// Publications issued so far.
    objects_issued: u64,
    /// Content IDs of published objects, in the order their publication finished.
    published: Vec<Cid>,
}

impl<K: Key> Workload<K> {
    /// A generator for `config`.
    pub fn new(config: WorkloadConfig, run_seed: u64, rng: SimRng) -> Self {
        Workload { rng, config, run_seed, puts: 0, gettable: Vec::new(), objects_issued: 0, published: Vec::new() }
    }

    /// The gap to the next arrival of `kind`, or `None` if its rate is zero (nanoseconds).
    pub fn next_gap(&mut self, kind: WorkKind) -> Option<u64> {
        let rate = match kind {
            WorkKind::Lookup => self.config.lookups_per_sec,
            WorkKind::Put => self.config.puts_per_sec,
            WorkKind::Get => self.config.gets_per_sec,
            WorkKind::Publish if self.objects_issued >= self.config.objects => 0.0,
            WorkKind::Publish => self.config.publish_per_sec,
            WorkKind::Fetch => self.config.fetches_per_sec,
            WorkKind::Stream => self.config.streams_per_sec,
            WorkKind::MixMessage => self.config.mix_messages_per_sec,
        };
        (rate > 0.0).then(|| exponential_nanos(&mut self.rng, 1.0 / rate).max(1))
    }

    /// The workload's random stream, for choices made elsewhere.
    pub fn rng(&mut self) -> &mut SimRng {
        &mut self.rng
    }

    /// A uniformly random live node.
    pub fn pick_node(&mut self, live: &LiveSet<K>) -> Option<K> {
        if live.is_empty() {
            return None;
        }
        live.get(below(&mut self.rng, live.len() as u64) as usize)
    }

    /// A uniformly random lookup target.
    pub fn random_target(&mut self) -> NodeId {
        let mut id = [0u8; 32];
        self.rng.fill_bytes(&mut id);
        NodeId(id)
    }

    /// A fresh record name and a random value.
    pub fn fresh_record(&mut self) -> (Vec<u8>, Vec<u8>) {
        self.puts += 1;
        let name = format!("allium-sim/{}/{}", self.run_seed, self.puts).into_bytes();
        let mut value = vec![0u8; self.config.value_bytes as usize];
        self.rng.fill_bytes(&mut value);
        (name, value)
    }

    /// Remembers that `key`, published by `publisher`, can now be fetched.
    pub fn add_gettable(&mut self, key: NodeId, publisher: K) {
        self.gettable.push((key, publisher));
    }

    /// A random gettable key whose publisher is live. Keys of publishers that
    /// are gone for good are forgotten on the way.
    pub fn pick_gettable(&mut self, is_live: impl Fn(K) -> bool, is_gone: impl Fn(K) -> bool) -> Option<NodeId> {
        for _ in 0..GET_PICKS {
            if self.gettable.is_empty() {
                return None;
            }
            let i = below(&mut self.rng, self.gettable.len() as u64) as usize;
            let (key, publisher) = self.gettable[i];
            if is_live(publisher) {
                return Some(key);
            }
            if is_gone(publisher) {
                self.gettable.swap_remove(i);
            }
        }
        None
    }

    /// A fresh object: a log-uniform size between `object_bytes_min` and
    /// `object_bytes_max`, random bytes, and the hash of each `chunk_bytes`
    /// slice. Counts as one issued publication.
    pub fn fresh_object(&mut self, chunk_bytes: u32) -> FreshObject {
        self.objects_issued += 1;
        let (min, max) = (self.config.object_bytes_min, self.config.object_bytes_max);
        let log = uniform(&mut self.rng, libm::log(min as f64), libm::log(max as f64));
        let size = (libm::exp(log) as u64).clamp(min, max);
        let mut data = vec![0u8; size as usize];
        self.rng.fill_bytes(&mut data);
        let chunks = data.chunks(chunk_bytes.max(1) as usize).map(|c| *blake3::hash(c).as_bytes()).collect();
        FreshObject { data, chunks }
    }

    /// Publications issued so far.
    pub fn objects_issued(&self) -> u64 {
        self.objects_issued
    }

    /// Remembers a published object.
    pub fn add_published(&mut self, cid: Cid) {
        self.published.push(cid);
    }

    /// Content IDs of every published object, in the order they were published.
    pub fn published(&self) -> &[Cid] {
        &self.published
    }

    /// A uniformly random published object.
    pub fn pick_published(&mut self) -> Option<Cid> {
        if self.published.is_empty() {
            return None;
        }
        Some(self.published[below(&mut self.rng, self.published.len() as u64) as usize])
    }
}
