//! Circuit parameters (`[circuit]` in scenario and config files).

use crate::params::ParamError;
use serde::{Deserialize, Serialize};

/// Onion-circuit and stream parameters. Every field has a documented default and unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CircuitParams {
    /// Relays in a circuit: guard, middles, exit (2 ..= 8). Default 3.
    pub hops: u32,
    /// Build timeout used until enough builds have been observed, in
    /// milliseconds. Default 10000.
    pub build_timeout_initial_ms: u64,
    /// Lower bound of the learned build timeout, in milliseconds. Default 1500.
    pub build_timeout_min_ms: u64,
    /// Upper bound of the learned build timeout, in milliseconds. Default 60000.
    pub build_timeout_max_ms: u64,
    /// Fraction of builds the learned timeout should let finish (the Pareto
    /// quantile, as in Tor's circuit-build-timeout estimator). Default 0.8.
    pub build_timeout_quantile: f64,
    /// Completed builds observed before the timeout is learned rather than
    /// `build_timeout_initial_ms`. Default 20.
    pub build_timeout_min_samples: u32,
    /// Most recent build times the estimator keeps. Default 1000.
    pub build_timeout_history: u32,
    /// Paths tried for one circuit request before it fails (each retry picks
    /// a new path). Default 4.
    pub build_attempts: u32,
    /// Primary guards a client keeps and uses as first hop, in order. Default 1.
    pub guards: u32,
    /// How long a client keeps a guard before choosing a new one, in seconds.
    /// Default 2592000 (30 days).
    pub guard_lifetime_secs: u64,
    /// Consecutive failed builds through a guard after which it is
    /// replaced (a dead guard is replaced at once). Default 3.
    pub guard_failures_max: u32,
    /// Relay descriptors a client tries to keep in its directory. Default 64.
    pub directory_target: u32,
    /// Descriptor lookups a client runs at once while filling its directory. Default 8.
    pub directory_fetches_in_flight: u32,
    /// How often a relay republishes its descriptor, in seconds. Default 1800.
    pub descriptor_republish_secs: u64,
    /// How often a client refreshes its directory, in seconds. Default 600.
    pub directory_refresh_secs: u64,
    /// Whether the node fills its relay directory as soon as it joins the
    /// network, as a Tor client fetches the consensus when it starts, so that
    /// its first circuit does not wait for it. Otherwise the directory is
    /// filled on the first circuit request. Set it on nodes that will build
    /// circuits (a SOCKS entry). Default false.
    pub prefetch_directory: bool,
    /// Whether path selection keeps every hop in a different region when the
    /// directory allows it. Default true.
    pub distinct_regions: bool,
    /// Age after which a circuit takes no new streams and is replaced
    /// (rotation, Tor's MaxCircuitDirtiness), in seconds. Default 600.
    pub max_dirtiness_secs: u64,
    /// How long a circuit with no open stream lives, in seconds. Default 300.
    pub idle_timeout_secs: u64,
    /// How long a stream waits for CONNECTED, in seconds. Default 30.
    pub stream_connect_timeout_secs: u64,
    /// Stream bytes a receiver lets the sender have outstanding beyond what
    /// it has delivered (per-stream flow-control window), in bytes. Default 524288.
    pub stream_window_bytes: u32,
    /// Bytes the application may queue on one stream before
    /// `StreamSend` is refused and it must wait for `StreamWritable`, in bytes. Default 524288.
    pub stream_send_buffer_bytes: u32,
    /// Open streams one circuit carries at most. Default 256.
    pub max_streams_per_circuit: u32,
    /// Congestion window a circuit starts with, in cells. Default 32.
    pub initial_cwnd_cells: u32,
    /// Smallest congestion window, in cells. Default 4.
    pub min_cwnd_cells: u32,
    /// Largest congestion window, in cells. Default 4096.
    pub max_cwnd_cells: u32,
    /// Round-trip estimate before the first sample, in milliseconds. Default 500.
    pub initial_rtt_ms: u64,
    /// Smallest retransmission timeout, in milliseconds. Default 200.
    pub min_rto_ms: u64,
    /// Largest retransmission timeout, in milliseconds. Default 10000.
    pub max_rto_ms: u64,
    /// Longest an end of a circuit waits before acknowledging received
    /// cells when it has nothing to send, in milliseconds. Default 20.
    pub max_ack_delay_ms: u64,
    /// Consecutive retransmission timeouts after which the far end counts as
    /// gone and the circuit is torn down. Default 6.
    pub max_rto_backoffs: u32,
    /// Circuits a relay carries at most. Default 8192.
    pub relay_max_circuits: u32,
    /// How long a relay waits for CREATED from the next hop, in
    /// milliseconds. Default 10000.
    pub relay_extend_timeout_ms: u64,
    /// How long a relay keeps a circuit with no traffic, in seconds. Default 900.
    pub relay_idle_timeout_secs: u64,
}

impl Default for CircuitParams {
    fn default() -> Self {
        CircuitParams {
            hops: 3,
            build_timeout_initial_ms: 10_000,
            build_timeout_min_ms: 1_500,
            build_timeout_max_ms: 60_000,
            build_timeout_quantile: 0.8,
            build_timeout_min_samples: 20,
            build_timeout_history: 1000,
            build_attempts: 4,
            guards: 1,
            guard_lifetime_secs: 30 * 24 * 3600,
            guard_failures_max: 3,
            directory_target: 64,
            directory_fetches_in_flight: 8,
            descriptor_republish_secs: 1800,
            directory_refresh_secs: 600,
            prefetch_directory: false,
            distinct_regions: true,
            max_dirtiness_secs: 600,
            idle_timeout_secs: 300,
            stream_connect_timeout_secs: 30,
            stream_window_bytes: 512 * 1024,
            stream_send_buffer_bytes: 512 * 1024,
            max_streams_per_circuit: 256,
            initial_cwnd_cells: 32,
            min_cwnd_cells: 4,
            max_cwnd_cells: 4096,
            initial_rtt_ms: 500,
            min_rto_ms: 200,
            max_rto_ms: 10_000,
            max_ack_delay_ms: 20,
            max_rto_backoffs: 6,
            relay_max_circuits: 8192,
            relay_extend_timeout_ms: 10_000,
            relay_idle_timeout_secs: 900,
        }
    }
}

impl CircuitParams {
    /// Checks ranges and cross-field constraints.
    pub fn validate(&self) -> Result<(), ParamError> {
        let bad = |key: &str, reason: &str| {
            Err(ParamError::InvalidValue { key: format!("circuit.{key}"), reason: reason.to_string() })
        };
        if !(2..=8).contains(&self.hops) {
            return bad("hops", "must be 2 ..= 8");
        }
        if !(self.build_timeout_quantile > 0.0 && self.build_timeout_quantile < 1.0) {
            return bad("build_timeout_quantile", "must be in (0, 1)");
        }
        if self.build_timeout_min_ms == 0 || self.build_timeout_min_ms > self.build_timeout_max_ms {
            return bad("build_timeout_min_ms", "must be in 1 ..= build_timeout_max_ms");
        }
        if self.build_timeout_history < self.build_timeout_min_samples.max(2) {
            return bad("build_timeout_history", "must be at least build_timeout_min_samples and 2");
        }
        if self.build_attempts == 0 || self.guards == 0 || self.directory_fetches_in_flight == 0 {
            return bad("build_attempts", "build_attempts, guards and directory_fetches_in_flight must be positive");
        }
        if self.min_cwnd_cells == 0
            || self.min_cwnd_cells > self.initial_cwnd_cells
            || self.initial_cwnd_cells > self.max_cwnd_cells
        {
            return bad(
                "initial_cwnd_cells",
                "must satisfy 0 < min_cwnd_cells <= initial_cwnd_cells <= max_cwnd_cells",
            );
        }
        if self.min_rto_ms == 0 || self.min_rto_ms > self.max_rto_ms {
            return bad("min_rto_ms", "must be in 1 ..= max_rto_ms");
        }
        if self.stream_window_bytes < 4096 || self.stream_send_buffer_bytes < 4096 {
            return bad(
                "stream_window_bytes",
                "stream_window_bytes and stream_send_buffer_bytes must be at least 4096",
            );
        }
        if self.max_streams_per_circuit == 0 || self.max_streams_per_circuit > u16::MAX as u32 {
            return bad("max_streams_per_circuit", "must be 1 ..= 65535");
        }
        Ok(())
    }
}
