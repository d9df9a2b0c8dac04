//! Scenario files: TOML documents that describe one experiment.
//!
//! Every option has a default (so a scenario names only what it changes),
//! unknown keys are errors, and ranges are named with `_min`/`_max`
//! suffixes. Times in `[faults]` are seconds from the start of the safety
//! phase. The engine's protocol parameters live under `[params.<section>]`
//! (for example `[params.dht]`), with the engine's own defaults.
//!
//! A run is laid out as:
//!
//! ```text
//! 0 ── join ──> J ── safety (faults on) ──> J+S ── liveness (healed) ──> J+S+L
//!                                                         └ drain: no new commands ┘
//! ```

mod accounting;
mod election;
mod faults;
mod mixnet;
mod overrides;
mod relays;
mod swarm;

pub use accounting::AccountingScenario;
pub use election::ElectionScenario;
pub use faults::{
    ChurnFault, ClockFault, CorruptFault, CrashFault, FaultsConfig, LossBurst, PacketFaults, PartitionFault,
};
pub use mixnet::{MixRole, MixnetConfig};
pub use relays::RelaysConfig;
pub use swarm::{SwarmBounds, SwarmMix};

use allium_engine::{CryptoSuite, Params};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Why a scenario could not be loaded, overridden or validated.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The document is not valid TOML or does not match the schema.
    #[error("invalid scenario: {0}")]
    Parse(String),
    /// An option is out of range or inconsistent with another.
    #[error("invalid value for {key}: {reason}")]
    Invalid {
        /// The dotted option name.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// A `--set` override names no option.
    #[error("unknown option {0:?}")]
    UnknownKey(String),
    /// A `--set` override is not of the form `key=value`.
    #[error("expected KEY=VALUE, got {0:?}")]
    Syntax(String),
}

fn invalid(key: &str, reason: impl Into<String>) -> ScenarioError {
    ScenarioError::Invalid { key: key.to_string(), reason: reason.into() }
}

/// One experiment. See the module documentation for the layout of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Scenario {
    /// Name printed in reports. Default: the file stem when loaded from a file, else "scenario".
    pub name: String,
    /// Nodes that join during the join phase. Default 100.
    pub nodes: u32,
    /// Crypto suite of every node: "real" or "sim-fast". Default "real".
    pub crypto_suite: CryptoSuite,
    /// Phase lengths (`[phases]`).
    pub phases: Phases,
    /// How nodes join (`[join]`).
    pub join: JoinConfig,
    /// The network model (`[network]`).
    pub network: NetworkConfig,
    /// Application load (`[workload]`).
    pub workload: WorkloadConfig,
    /// Faults of the safety phase (`[faults]`).
    pub faults: FaultsConfig,
    /// Which nodes relay onion circuits (`[relays]`).
    pub relays: RelaysConfig,
    /// Which nodes are mixes, providers and mix clients (`[mixnet]`).
    pub mixnet: MixnetConfig,
    /// Lease-election groups and leader kills (`[groups]`).
    pub groups: ElectionScenario,
    /// Rewards accounting and cheaters (`[accounting]`).
    pub accounting: AccountingScenario,
    /// Checker settings (`[checks]`).
    pub checks: ChecksConfig,
    /// Bounds of the fault mix drawn by `--swarm` and `chaos` (`[swarm]`).
    pub swarm: SwarmBounds,
    /// Engine parameters, one table per engine section (`[params.dht]`). Default: the engine's defaults.
    pub params: Params,
    /// Bounds the run's final metrics must meet (`[expect]`, metric name to `">= 0.999"`,
    /// `"<= 4"`, …; see [`crate::expect`]). Default: none.
    pub expect: std::collections::BTreeMap<String, String>,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: "scenario".to_string(),
            nodes: 100,
            crypto_suite: CryptoSuite::Real,
            phases: Phases::default(),
            join: JoinConfig::default(),
            network: NetworkConfig::default(),
            workload: WorkloadConfig::default(),
            faults: FaultsConfig::default(),
            relays: RelaysConfig::default(),
            mixnet: MixnetConfig::default(),
            groups: ElectionScenario::default(),
            accounting: AccountingScenario::default(),
            checks: ChecksConfig::default(),
            swarm: SwarmBounds::default(),
            params: Params::default(),
            expect: std::collections::BTreeMap::new(),
        }
    }
}

/// Phase lengths, in seconds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Phases {
    /// Join phase: the initial nodes join, spread evenly over it, in seconds. Default 60.
    pub join_secs: u64,
    /// Safety phase: workload runs and faults are active; safety checkers must hold, in seconds. Default 300.
    pub safety_secs: u64,
    /// Liveness phase: every fault is healed and the system must converge, in seconds. Default 120.
    pub liveness_secs: u64,
    /// Final part of the liveness phase in which no new command starts, so that every
    /// command can finish; at least `params.dht.lookup_timeout_ms`, in seconds. Default 30.
    pub drain_secs: u64,
}

impl Default for Phases {
    fn default() -> Self {
        Phases { join_secs: 60, safety_secs: 300, liveness_secs: 120, drain_secs: 30 }
    }
}

/// How nodes join.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JoinConfig {
    /// Number of random already-joined nodes each new node bootstraps from. Default 3.
    pub bootstrap_peers: u32,
}

impl Default for JoinConfig {
    fn default() -> Self {
        JoinConfig { bootstrap_peers: 3 }
    }
}

/// The network model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkConfig {
    /// Region names. Default `["global"]`.
    pub regions: Vec<String>,
    /// Relative share of nodes placed in each region; empty means equal shares. Default `[]`.
    pub region_weights: Vec<u32>,
    /// One-way base latency between regions in milliseconds; row = sender's region,
    /// column = receiver's region. Default `[[40]]`.
    pub latency_ms: Vec<Vec<u64>>,
    /// Largest extra random delay added to each datagram (uniform in `0..=max`), in microseconds. Default 5000.
    pub jitter_us_max: u64,
    /// Probability that one IP fragment is lost (a datagram of n fragments arrives with
    /// probability `(1 - loss)^n`). Default 0.0.
    pub loss: f64,
    /// Slowest per-node uplink; each node draws its uplink uniformly in `min..=max`, in Mbit/s. Default 20.
    pub uplink_mbps_min: u64,
    /// Fastest per-node uplink, in Mbit/s. Default 100.
    pub uplink_mbps_max: u64,
    /// IP MTU; larger datagrams are fragmented, in bytes. Default 1500.
    pub mtu_bytes: u32,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        NetworkConfig {
            regions: vec!["global".to_string()],
            region_weights: Vec::new(),
            latency_ms: vec![vec![40]],
            jitter_us_max: 5_000,
            loss: 0.0,
            uplink_mbps_min: 20,
            uplink_mbps_max: 100,
            mtu_bytes: 1500,
        }
    }
}

/// Application load, as network-wide Poisson arrival rates. Commands start
/// from the safety phase until the drain.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkloadConfig {
    /// Random-target `FindNode` lookups started by random live nodes, per second. Default 2.0.
    pub lookups_per_sec: f64,
    /// Puts of a fresh name and value by random live nodes, per second. Default 0.5.
    pub puts_per_sec: f64,
    /// Gets of a previously put key whose publisher is live, by random live nodes, per second. Default 1.0.
    pub gets_per_sec: f64,
    /// Size of each put value, in bytes. Default 64.
    pub value_bytes: u32,
    /// Content objects published through the overlay in all (by random live honest nodes,
    /// from the start of the safety phase at `publish_per_sec` until this many were issued);
    /// each published object is also probed once in the liveness window
    /// (`overlay.availability`), a count. Default 0.
    pub objects: u64,
    /// Object publications per second (Poisson arrivals). Default 10.0.
    pub publish_per_sec: f64,
    /// Smallest object; sizes are log-uniform between `object_bytes_min` and
    /// `object_bytes_max`, in bytes. Default 1024.
    pub object_bytes_min: u64,
    /// Largest object, in bytes. Default 262144.
    pub object_bytes_max: u64,
    /// App fetches of a random already-published object by random live nodes, per second. Default 0.0.
    pub fetches_per_sec: f64,
    /// Streams opened through onion circuits by random live clients (nodes
    /// that do not relay, or any node if every node relays), per second; each
    /// downloads a random-size response from a simulated destination
    /// `svc-N.sim:80` behind an exit. Needs `relays.fraction > 0`. Default 0.0.
    pub streams_per_sec: f64,
    /// Smallest stream download; sizes are log-uniform between
    /// `stream_bytes_min` and `stream_bytes_max`, in bytes. Default 16384.
    pub stream_bytes_min: u64,
    /// Largest stream download, in bytes. Default 262144.
    pub stream_bytes_max: u64,
    /// Distinct simulated destinations (`svc-0.sim` …), a count. Default 16.
    pub destinations: u32,
    /// Time a simulated destination takes to accept a connection, and again
    /// to start answering a request, in milliseconds. Default 20.
    pub destination_ms: u64,
    /// Messages sent through the mixnet, network-wide, per second (Poisson
    /// arrivals): a random ready mix client sends a message to another
    /// random ready client. Needs `mixnet.mix_fraction > 0`. Default 0.0.
    pub mix_messages_per_sec: f64,
    /// Smallest mixnet message; sizes are log-uniform between
    /// `mix_bytes_min` and `mix_bytes_max` (at least 8: the first 8 bytes
    /// are the nonce that names the content), in bytes. Default 256.
    pub mix_bytes_min: u64,
    /// Largest mixnet message, in bytes (at most `params.mix.max_message_bytes`). Default 4096.
    pub mix_bytes_max: u64,
    /// Share of mixnet messages that carry one reply block and are answered
    /// once by their recipient through it, a probability. An answer's size
    /// is drawn like a message's but at most 2,005 bytes: one reply block
    /// carries one fragment. Default 0.0.
    pub mix_reply_fraction: f64,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            lookups_per_sec: 2.0,
            puts_per_sec: 0.5,
            gets_per_sec: 1.0,
            value_bytes: 64,
            objects: 0,
            publish_per_sec: 10.0,
            object_bytes_min: 1024,
            object_bytes_max: 256 * 1024,
            fetches_per_sec: 0.0,
            streams_per_sec: 0.0,
            stream_bytes_min: 16 * 1024,
            stream_bytes_max: 256 * 1024,
            destinations: 16,
            destination_ms: 20,
            mix_messages_per_sec: 0.0,
            mix_bytes_min: 256,
            mix_bytes_max: 4096,
            mix_reply_fraction: 0.0,
        }
    }
}

/// Checker settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChecksConfig {
    /// Lowest acceptable success rate of lookups started in the liveness window (a fraction). Default 0.95.
    pub liveness_min_success_rate: f64,
    /// Length of the liveness window: the last part of the liveness phase before the drain, in seconds. Default 60.
    pub liveness_window_secs: u64,
    /// Fewest lookups the liveness window must contain for the rate to be judged; fewer is a
    /// violation (set 0 for a workload without lookups). Default 10.
    pub liveness_min_lookups: u64,
    /// Interval between routing-table snapshots (one event per live node), in seconds. Default 60.
    pub snapshot_interval_secs: u64,
}

impl Default for ChecksConfig {
    fn default() -> Self {
        ChecksConfig {
            liveness_min_success_rate: 0.95,
            liveness_window_secs: 60,
            liveness_min_lookups: 10,
            snapshot_interval_secs: 60,
        }
    }
}

impl std::str::FromStr for Scenario {
    type Err = ScenarioError;

    fn from_str(text: &str) -> Result<Self, ScenarioError> {
        Scenario::from_toml(text)
    }
}

/// Nanoseconds in one second.
pub const NANOS: u64 = 1_000_000_000;

impl Scenario {
    /// Parses a scenario document and validates it (also available as
    /// [`std::str::FromStr`], i.e. `text.parse::<Scenario>()`).
    pub fn from_toml(text: &str) -> Result<Self, ScenarioError> {
        let scenario: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse(e.to_string()))?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Reads, parses and validates a scenario file; the name defaults to the file stem.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, ScenarioError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ScenarioError::Io { path: path.display().to_string(), source })?;
        let mut value: toml::Table = toml::from_str(&text).map_err(|e| ScenarioError::Parse(e.to_string()))?;
        if !value.contains_key("name") {
            let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            value.insert("name".to_string(), toml::Value::String(stem));
        }
        let scenario: Scenario =
            toml::Value::Table(value).try_into().map_err(|e: toml::de::Error| ScenarioError::Parse(e.to_string()))?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Applies one `key=value` override (the `--set` flag). A key whose first
    /// segment names an engine parameter section (`dht.k=16`) overrides that
    /// engine parameter; any other key names a scenario option
    /// (`nodes=500`, `network.loss=0.01`, `faults.partitions.0.heal_secs=90`).
    /// Unknown keys and ill-typed values are errors; the scenario is
    /// unchanged when an override fails.
    pub fn apply_set(&mut self, assignment: &str) -> Result<(), ScenarioError> {
        overrides::apply(self, &[assignment])
    }

    /// Applies several overrides at once and validates the result once, so
    /// that their order does not matter (`--set a=1 --set b=2`).
    pub fn apply_sets<S: AsRef<str>>(&mut self, assignments: &[S]) -> Result<(), ScenarioError> {
        let all: Vec<&str> = assignments.iter().map(AsRef::as_ref).collect();
        overrides::apply(self, &all)
    }

    /// Total simulated time, in nanoseconds.
    pub fn end_nanos(&self) -> u64 {
        let p = &self.phases;
        p.join_secs.saturating_add(p.safety_secs).saturating_add(p.liveness_secs).saturating_mul(NANOS)
    }

    /// Start of the safety phase, in nanoseconds.
    pub fn safety_start(&self) -> u64 {
        self.phases.join_secs.saturating_mul(NANOS)
    }

    /// Start of the liveness phase, in nanoseconds.
    pub fn liveness_start(&self) -> u64 {
        self.phases.join_secs.saturating_add(self.phases.safety_secs).saturating_mul(NANOS)
    }

    /// Start of the drain (no new commands), in nanoseconds.
    pub fn drain_start(&self) -> u64 {
        self.end_nanos().saturating_sub(self.phases.drain_secs.saturating_mul(NANOS))
    }

    /// The liveness window `[start, end)` in nanoseconds: lookups started in it must succeed.
    pub fn liveness_window(&self) -> (u64, u64) {
        let end = self.drain_start();
        (end.saturating_sub(self.checks.liveness_window_secs.saturating_mul(NANOS)), end)
    }

    /// Checks ranges and cross-field constraints.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        self.params.validate().map_err(|e| ScenarioError::Invalid { key: "params".into(), reason: e.to_string() })?;
        if self.nodes == 0 || self.nodes > 10_000_000 {
            return Err(invalid("nodes", "must be between 1 and 10000000"));
        }
        let p = &self.phases;
        if p.safety_secs + p.liveness_secs + p.join_secs > 100 * 24 * 3600 {
            return Err(invalid("phases", "a run may last at most 100 simulated days"));
        }
        if p.drain_secs >= p.liveness_secs {
            return Err(invalid("phases.drain_secs", "must be shorter than phases.liveness_secs"));
        }
        if p.drain_secs * 1000 < self.params.dht.lookup_timeout_ms {
            return Err(invalid("phases.drain_secs", "must be at least params.dht.lookup_timeout_ms"));
        }
        if self.checks.liveness_window_secs + p.drain_secs > p.liveness_secs {
            return Err(invalid("checks.liveness_window_secs", "must fit in the liveness phase before the drain"));
        }
        if !(0.0..=1.0).contains(&self.checks.liveness_min_success_rate) {
            return Err(invalid("checks.liveness_min_success_rate", "must be in [0, 1]"));
        }
        if self.checks.snapshot_interval_secs == 0 {
            return Err(invalid("checks.snapshot_interval_secs", "must be positive"));
        }
        if self.join.bootstrap_peers == 0 {
            return Err(invalid("join.bootstrap_peers", "must be at least 1"));
        }
        for (metric, bound) in &self.expect {
            crate::expect::Bound::parse(bound).map_err(|reason| invalid(&format!("expect.{metric}"), reason))?;
        }
        self.validate_network()?;
        self.validate_workload()?;
        self.faults.validate(&self.network.regions)?;
        self.relays.validate()?;
        self.mixnet.validate(self.nodes, self.params.mix.layers)?;
        self.groups.validate(self.nodes)?;
        let epoch_secs = self.params.rewards.epoch_secs;
        self.accounting.validate(self.nodes, self.groups.count, self.groups.members(), epoch_secs)?;
        // Lease safety holds for clock rates within the engine's drift bound.
        let bound_ppm = (self.params.election.max_drift * 1e6) as u64;
        if self.groups.enabled()
            && (self.faults.clock.drift_ppm_max > bound_ppm || self.swarm.clock_drift_ppm_max > bound_ppm)
        {
            return Err(invalid(
                "faults.clock.drift_ppm_max",
                "clock drift (and swarm.clock_drift_ppm_max) must be within params.election.max_drift",
            ));
        }
        self.swarm.validate()
    }

    fn validate_network(&self) -> Result<(), ScenarioError> {
        let n = &self.network;
        let regions = n.regions.len();
        if regions == 0 || regions > 64 {
            return Err(invalid("network.regions", "must name between 1 and 64 regions"));
        }
        if !n.region_weights.is_empty() && n.region_weights.len() != regions {
            return Err(invalid("network.region_weights", "must be empty or have one weight per region"));
        }
        if !n.region_weights.is_empty() && n.region_weights.iter().all(|&w| w == 0) {
            return Err(invalid("network.region_weights", "at least one weight must be positive"));
        }
        if n.latency_ms.len() != regions || n.latency_ms.iter().any(|row| row.len() != regions) {
            return Err(invalid("network.latency_ms", "must be a square matrix with one row and column per region"));
        }
        if n.latency_ms.iter().flatten().any(|&ms| ms > 60_000) {
            return Err(invalid("network.latency_ms", "latencies must be at most 60000 ms"));
        }
        if n.jitter_us_max > 60_000_000 {
            return Err(invalid("network.jitter_us_max", "must be at most 60 s"));
        }
        if !(0.0..1.0).contains(&n.loss) {
            return Err(invalid("network.loss", "must be in [0, 1)"));
        }
        if n.uplink_mbps_min == 0 || n.uplink_mbps_max < n.uplink_mbps_min || n.uplink_mbps_max > 1_000_000 {
            return Err(invalid("network.uplink_mbps_min", "need 1 <= uplink_mbps_min <= uplink_mbps_max <= 1000000"));
        }
        if !(576..=65_535).contains(&n.mtu_bytes) {
            return Err(invalid("network.mtu_bytes", "must be between 576 and 65535"));
        }
        Ok(())
    }

    fn validate_workload(&self) -> Result<(), ScenarioError> {
        let w = &self.workload;
        for (key, rate) in [
            ("lookups_per_sec", w.lookups_per_sec),
            ("puts_per_sec", w.puts_per_sec),
            ("gets_per_sec", w.gets_per_sec),
            ("publish_per_sec", w.publish_per_sec),
            ("fetches_per_sec", w.fetches_per_sec),
            ("streams_per_sec", w.streams_per_sec),
            ("mix_messages_per_sec", w.mix_messages_per_sec),
        ] {
            if !(0.0..=100_000.0).contains(&rate) {
                return Err(invalid(&format!("workload.{key}"), "must be between 0 and 100000"));
            }
        }
        if w.value_bytes as usize > self.params.dht.max_value_bytes {
            return Err(invalid("workload.value_bytes", "must be at most params.dht.max_value_bytes"));
        }
        if w.objects > 10_000_000 {
            return Err(invalid("workload.objects", "must be at most 10000000"));
        }
        if w.objects > 0 && w.publish_per_sec <= 0.0 {
            return Err(invalid("workload.publish_per_sec", "must be positive when workload.objects > 0"));
        }
        if w.object_bytes_min == 0 || w.object_bytes_max < w.object_bytes_min {
            return Err(invalid("workload.object_bytes_min", "need 1 <= object_bytes_min <= object_bytes_max"));
        }
        if w.object_bytes_max > self.params.overlay.max_object_bytes {
            return Err(invalid("workload.object_bytes_max", "must be at most params.overlay.max_object_bytes"));
        }
        if w.stream_bytes_min == 0 || w.stream_bytes_max < w.stream_bytes_min || w.stream_bytes_max > 1 << 30 {
            return Err(invalid("workload.stream_bytes_min", "need 1 <= stream_bytes_min <= stream_bytes_max <= 2^30"));
        }
        if w.destinations == 0 {
            return Err(invalid("workload.destinations", "must be at least 1"));
        }
        if w.destination_ms > 60_000 {
            return Err(invalid("workload.destination_ms", "must be at most 60000"));
        }
        if w.streams_per_sec > 0.0 && self.relays.fraction <= 0.0 {
            return Err(invalid("workload.streams_per_sec", "streams need relays (relays.fraction > 0)"));
        }
        let min_bytes = crate::checkers::MESSAGE_HEADER_LEN as u64;
        if w.mix_bytes_min < min_bytes || w.mix_bytes_max < w.mix_bytes_min {
            return Err(invalid("workload.mix_bytes_min", "need 8 <= mix_bytes_min <= mix_bytes_max"));
        }
        if w.mix_bytes_max > u64::from(self.params.mix.max_message_bytes) {
            return Err(invalid("workload.mix_bytes_max", "must be at most params.mix.max_message_bytes"));
        }
        if !(0.0..=1.0).contains(&w.mix_reply_fraction) {
            return Err(invalid("workload.mix_reply_fraction", "must be in [0, 1]"));
        }
        if w.mix_messages_per_sec > 0.0 && !self.mixnet.enabled() {
            return Err(invalid("workload.mix_messages_per_sec", "messages need a mixnet (mixnet.mix_fraction > 0)"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_document_is_the_default_scenario() {
        assert_eq!(Scenario::from_toml("").unwrap(), Scenario::default());
    }

    #[test]
    fn unknown_keys_and_bad_ranges_are_errors() {
        assert!(matches!(Scenario::from_toml("nodez = 3"), Err(ScenarioError::Parse(_))));
        assert!(matches!(Scenario::from_toml("[network]\nlos = 0.1"), Err(ScenarioError::Parse(_))));
        assert!(matches!(Scenario::from_toml("nodes = 0"), Err(ScenarioError::Invalid { .. })));
        assert!(matches!(Scenario::from_toml("[network]\nloss = 1.5"), Err(ScenarioError::Invalid { .. })));
        assert!(matches!(Scenario::from_toml("[params.dht]\nk = 0"), Err(ScenarioError::Invalid { .. })));
        assert!(matches!(Scenario::from_toml("[params.dht]\nkk = 1"), Err(ScenarioError::Parse(_))));
        let bad_matrix = "[network]\nregions = [\"a\", \"b\"]\nlatency_ms = [[1, 2]]";
        assert!(matches!(Scenario::from_toml(bad_matrix), Err(ScenarioError::Invalid { .. })));
    }

    #[test]
    fn sim_fast_suite_parses() {
        let s = Scenario::from_toml("crypto_suite = \"sim-fast\"").unwrap();
        assert_eq!(s.crypto_suite, CryptoSuite::SimFast);
    }
}
