//! Mixnet parameters (`[mix]` in scenario and config files).

use crate::params::ParamError;
use serde::{Deserialize, Serialize};

/// How mixes hold packets; see [`super::strategy::Strategy`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StrategyKind {
    /// Every packet waits its own sender-chosen exponential delay (Loopix). Default.
    #[default]
    Poisson,
    /// Timed dynamic pool: see `pool_interval_ms`, `pool_threshold`, `pool_keep`.
    Pool,
}

/// Mixnet parameters. Every field has a documented default and unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MixParams {
    /// Stratified mix layers a packet crosses between the two providers
    /// (1 ..= 3: a packet has at most 5 hops). Default 3.
    pub layers: u8,
    /// How mixes hold packets. Default `poisson`.
    pub strategy: StrategyKind,
    /// Mean per-hop delay μ a sender draws for each mix layer (exponential),
    /// in milliseconds; providers add none. Used by Poisson mixing; a pool
    /// mix ignores it and senders draw 0. Default 50.
    pub mean_delay_ms: f64,
    /// Pool mixing: time between flushes, in milliseconds. Default 500.
    pub pool_interval_ms: u64,
    /// Pool mixing: fewest packets held for a flush to send anything. Default 4.
    pub pool_threshold: u32,
    /// Pool mixing: packets kept back at every flush. Default 2.
    pub pool_keep: u32,
    /// Packets a mix or provider holds at most; over it, arrivals are
    /// dropped and counted. Default 65536.
    pub queue_capacity: u32,
    /// Rate of a client's payload stream (λ_P), in packets per second: each
    /// slot sends the next queued real packet, or drop cover when none is
    /// queued, so the send pattern is the same whether or not the user
    /// sends. 0 sends real packets at once and no cover in their place
    /// (no sender anonymity against a global observer). Default 2.
    pub payload_rate_per_sec: f64,
    /// Rate of a client's loop cover stream (λ_L), in packets per second. Default 1.
    pub loop_rate_per_sec: f64,
    /// Rate of a client's drop cover stream (λ_D), in packets per second. Default 1.
    pub drop_rate_per_sec: f64,
    /// Rate of a mix's own loop cover (λ_M), in packets per second. Default 1.
    pub mix_loop_rate_per_sec: f64,
    /// Length of a mix key epoch, in seconds: keys rotate and replay tags
    /// are forgotten with them; a key stays usable for one epoch after its
    /// own. Default 3600.
    pub key_epoch_secs: u64,
    /// How often a client or mix refreshes its view of the topology, in seconds. Default 300.
    pub topology_refresh_secs: u64,
    /// Mixes and providers fetched per layer at most. Default 20 (the DHT's
    /// provider records per key).
    pub topology_max_per_layer: u32,
    /// How long a provider pushes to a client after its last subscription,
    /// in seconds; clients renew at a third of it. Default 60.
    pub subscription_secs: u64,
    /// Messages a provider holds for one absent client at most. Default 1024.
    pub inbox_max_messages: u32,
    /// How long a provider holds a message for an absent client, in seconds. Default 86400.
    pub inbox_ttl_secs: u64,
    /// Clients a provider serves at most. Default 65536.
    pub provider_max_clients: u32,
    /// How long a sender waits for a fragment's acknowledgement before
    /// sending it again (doubling with every retry), in milliseconds,
    /// counted from the fragment leaving. Default 6000.
    pub ack_timeout_ms: u64,
    /// Retransmissions of one fragment before the message fails. Default 4.
    pub max_retransmits: u32,
    /// Largest message a client sends, in bytes. Default 262144.
    pub max_message_bytes: u32,
    /// Real packets queued at a client for the payload stream at most. Default 4096.
    pub send_queue_packets: u32,
    /// Partial incoming messages a client reassembles at once; the oldest
    /// is dropped for a new one. Each may claim up to 256 fragments of
    /// 2 KiB, so this bounds reassembly memory (16 MiB at the default). Default 32.
    pub reassembly_max_partial: u32,
    /// How long an incomplete incoming message is kept, in seconds. Default 600.
    pub reassembly_ttl_secs: u64,
    /// Reply blocks received with messages that a client keeps at most. Default 1024.
    pub max_reply_handles: u32,
    /// Whether the node reports every packet it accepts, releases and
    /// consumes as [`super::MixObservation`] events (the simulator's global
    /// view; costs an event per packet). Default false.
    pub observe: bool,
}

impl Default for MixParams {
    fn default() -> Self {
        MixParams {
            layers: 3,
            strategy: StrategyKind::Poisson,
            mean_delay_ms: 50.0,
            pool_interval_ms: 500,
            pool_threshold: 4,
            pool_keep: 2,
            queue_capacity: 65_536,
            payload_rate_per_sec: 2.0,
            loop_rate_per_sec: 1.0,
            drop_rate_per_sec: 1.0,
            mix_loop_rate_per_sec: 1.0,
            key_epoch_secs: 3600,
            topology_refresh_secs: 300,
            topology_max_per_layer: 20,
            subscription_secs: 60,
            inbox_max_messages: 1024,
            inbox_ttl_secs: 86_400,
            provider_max_clients: 65_536,
            ack_timeout_ms: 6000,
            max_retransmits: 4,
            max_message_bytes: 256 * 1024,
            send_queue_packets: 4096,
            reassembly_max_partial: 32,
            reassembly_ttl_secs: 600,
            max_reply_handles: 1024,
            observe: false,
        }
    }
}

impl MixParams {
    /// Checks ranges and cross-field constraints.
    pub fn validate(&self) -> Result<(), ParamError> {
        let bad = |key: &str, reason: &str| {
            Err(ParamError::InvalidValue { key: format!("mix.{key}"), reason: reason.into() })
        };
        if !(1..=super::descriptor::MAX_LAYERS).contains(&self.layers) {
            return bad("layers", "must be 1 ..= 3");
        }
        let rate_ok = |r: f64| r.is_finite() && (0.0..=10_000.0).contains(&r);
        if !(self.mean_delay_ms.is_finite() && (0.0..=3_600_000.0).contains(&self.mean_delay_ms)) {
            return bad("mean_delay_ms", "must be in 0 ..= 3600000");
        }
        for (key, rate) in [
            ("payload_rate_per_sec", self.payload_rate_per_sec),
            ("loop_rate_per_sec", self.loop_rate_per_sec),
            ("drop_rate_per_sec", self.drop_rate_per_sec),
            ("mix_loop_rate_per_sec", self.mix_loop_rate_per_sec),
        ] {
            if !rate_ok(rate) {
                return bad(key, "must be in 0 ..= 10000");
            }
        }
        if self.pool_interval_ms == 0 || self.pool_threshold == 0 || self.pool_keep >= self.pool_threshold {
            return bad("pool_interval_ms", "need pool_interval_ms > 0 and 0 <= pool_keep < pool_threshold");
        }
        if self.key_epoch_secs < 60 || self.topology_refresh_secs == 0 || self.subscription_secs < 3 {
            return bad(
                "key_epoch_secs",
                "need key_epoch_secs >= 60, topology_refresh_secs > 0, subscription_secs >= 3",
            );
        }
        if self.queue_capacity == 0
            || self.send_queue_packets == 0
            || self.reassembly_max_partial == 0
            || self.topology_max_per_layer == 0
            || self.provider_max_clients == 0
        {
            return bad("queue_capacity", "capacities must be positive");
        }
        if self.ack_timeout_ms == 0 {
            return bad("ack_timeout_ms", "must be positive");
        }
        Ok(())
    }
}
