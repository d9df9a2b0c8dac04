//! Which nodes relay onion circuits (`[relays]`), and the simulated
//! destinations that streams leaving through exits reach.

use super::{ScenarioError, invalid};
use allium_engine::circuit::ExitPolicy;
use serde::{Deserialize, Serialize};

/// Relay roles. Each node draws its role from its own property stream when
/// it is spawned; a relay advertises its uplink as its bandwidth and its
/// network region as its region (so path selection's region rule is
/// exercised by the simulator's regions).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelaysConfig {
    /// Share of nodes that relay circuits, a probability. Default 0.0 (no
    /// relays: circuits are off and existing scenarios are unchanged).
    pub fraction: f64,
    /// Share of relays that are also exits, a probability. Default 0.3.
    pub exit_fraction: f64,
    /// The exits' policy, `accept|reject HOST:PORTS` rules, first match wins.
    /// Default `["accept *.sim:80", "reject *:*"]`.
    pub exit_policy: Vec<String>,
    /// Relay churn during the safety phase: relays replaced per simulated
    /// hour, as a share of the relays (a departing relay leaves for good and
    /// a fresh relay joins). 1.2 replaces 10% of the relays in a 300 s
    /// safety phase. Default 0.0.
    pub churn_per_hour: f64,
}

impl Default for RelaysConfig {
    fn default() -> Self {
        RelaysConfig {
            fraction: 0.0,
            exit_fraction: 0.3,
            exit_policy: vec!["accept *.sim:80".to_string(), "reject *:*".to_string()],
            churn_per_hour: 0.0,
        }
    }
}

impl RelaysConfig {
    /// The parsed exit policy (validated by [`RelaysConfig::validate`]).
    pub fn policy(&self) -> ExitPolicy {
        ExitPolicy::parse(&self.exit_policy).unwrap_or_else(|_| ExitPolicy::reject_all())
    }

    /// Checks ranges and the policy's syntax.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        if !(0.0..=1.0).contains(&self.fraction) {
            return Err(invalid("relays.fraction", "must be in [0, 1]"));
        }
        if !(0.0..=1.0).contains(&self.exit_fraction) {
            return Err(invalid("relays.exit_fraction", "must be in [0, 1]"));
        }
        if !(0.0..=100.0).contains(&self.churn_per_hour) {
            return Err(invalid("relays.churn_per_hour", "must be between 0 and 100"));
        }
        ExitPolicy::parse(&self.exit_policy).map_err(|e| invalid("relays.exit_policy", e.to_string()))?;
        Ok(())
    }
}
