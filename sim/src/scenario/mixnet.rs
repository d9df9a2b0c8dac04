//! Which nodes take part in the mixnet (`[mixnet]`): mixes, providers and
//! mix clients. The engine's own mixnet parameters (layers, μ, cover
//! rates, mixing strategy) are `[params.mix]`.

use super::{ScenarioError, invalid};
use serde::{Deserialize, Serialize};

/// Mixnet roles. Each node draws its role from its own property stream when
/// it is spawned (after its relay role, so that no earlier per-node
/// property changes), or, with `infrastructure_first`, the first nodes to
/// join are the mixes and providers. Mixes get their layer round-robin by
/// the order in which they are spawned, so the layers are balanced (sizes
/// differ by at most one). Every mixnet node reports packet observations
/// (`params.mix.observe` is switched on by the simulator), from which the
/// latency and anonymity metrics are measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MixnetConfig {
    /// Share of nodes that are mixes, a probability. Default 0.0 (no
    /// mixnet: no node takes part, and existing scenarios are unchanged).
    pub mix_fraction: f64,
    /// Share of nodes that are providers (gateways), a probability. Default 0.0.
    pub provider_fraction: f64,
    /// Share of the remaining nodes (neither mix nor provider) that are mix
    /// clients, a probability. Default 1.0.
    pub client_fraction: f64,
    /// Whether the mixnet's infrastructure is deployed before its users: the
    /// first `round(mix_fraction × nodes)` nodes to join are mixes and the
    /// next `round(provider_fraction × nodes)` are providers (exact counts,
    /// no draw); every later node is a client with probability
    /// `client_fraction`. Otherwise every node draws its role. Default false.
    pub infrastructure_first: bool,
}

impl Default for MixnetConfig {
    fn default() -> Self {
        MixnetConfig { mix_fraction: 0.0, provider_fraction: 0.0, client_fraction: 1.0, infrastructure_first: false }
    }
}

/// The mixnet role a node drew.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MixRole {
    /// Takes no part.
    None,
    /// A mix client: sends cover traffic and messages through its provider.
    Client,
    /// A provider.
    Provider,
    /// A mix of a layer (0-based).
    Mix {
        /// Its layer.
        layer: u8,
    },
}

impl MixRole {
    /// Whether the node takes any part in the mixnet.
    pub fn active(self) -> bool {
        self != MixRole::None
    }

    /// Stable one-byte code (trace encoding): 0 none, 1 client, 2 provider, 3 mix.
    pub fn code(self) -> u8 {
        match self {
            MixRole::None => 0,
            MixRole::Client => 1,
            MixRole::Provider => 2,
            MixRole::Mix { .. } => 3,
        }
    }

    /// Stable name (JSON traces).
    pub fn name(self) -> &'static str {
        match self {
            MixRole::None => "none",
            MixRole::Client => "client",
            MixRole::Provider => "provider",
            MixRole::Mix { .. } => "mix",
        }
    }
}

impl MixnetConfig {
    /// Whether the mixnet is on (some node is a mix).
    pub fn enabled(&self) -> bool {
        self.mix_fraction > 0.0
    }

    /// With `infrastructure_first`, how many of `nodes` are mixes and providers.
    pub fn infrastructure(&self, nodes: u32) -> (u32, u32) {
        let count = |fraction: f64| libm::round(fraction * f64::from(nodes)) as u32;
        (count(self.mix_fraction), count(self.provider_fraction))
    }

    /// Checks ranges: fractions in `[0, 1]`, mixes and providers together
    /// at most every node, and providers whenever there are mixes; with
    /// `infrastructure_first`, a mix per layer and a provider among `nodes`.
    pub fn validate(&self, nodes: u32, layers: u8) -> Result<(), ScenarioError> {
        for (key, value) in [
            ("mix_fraction", self.mix_fraction),
            ("provider_fraction", self.provider_fraction),
            ("client_fraction", self.client_fraction),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(invalid(&format!("mixnet.{key}"), "must be in [0, 1]"));
            }
        }
        if self.mix_fraction + self.provider_fraction > 1.0 {
            return Err(invalid("mixnet.provider_fraction", "mix_fraction + provider_fraction must be at most 1"));
        }
        if self.enabled() && self.provider_fraction <= 0.0 {
            return Err(invalid("mixnet.provider_fraction", "a mixnet needs providers (provider_fraction > 0)"));
        }
        let (mixes, providers) = self.infrastructure(nodes);
        if self.enabled() && self.infrastructure_first && (mixes < u32::from(layers) || providers == 0) {
            return Err(invalid(
                "mixnet.infrastructure_first",
                "needs at least one mix per layer and one provider among the nodes",
            ));
        }
        Ok(())
    }
}
