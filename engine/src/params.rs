//! Every tunable protocol parameter, with its documented default.
//!
//! Parameters are plain serde structs. A scenario file or config file
//! overrides any subset of them, and [`Params::set`] applies a single
//! `section.name=value` override (the `--set` flag of `allium-sim` and
//! `allium-node`). Unknown keys and ill-typed values are errors, never
//! silently ignored.

use core::time::Duration;
use serde::{Deserialize, Serialize};

pub use crate::circuit::CircuitParams;
pub use crate::dht::DhtParams;
pub use crate::election::ElectionParams;
pub use crate::mix::MixParams;
pub use crate::overlay::OverlayParams;
pub use crate::rewards::RewardsParams;

/// All engine parameters, one section per protocol.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Params {
    /// Kademlia DHT parameters (`[dht]`).
    pub dht: DhtParams,
    /// Content-overlay parameters (`[overlay]`).
    pub overlay: OverlayParams,
    /// Onion-circuit and stream parameters (`[circuit]`).
    pub circuit: CircuitParams,
    /// Mixnet parameters (`[mix]`).
    pub mix: MixParams,
    /// Lease-election parameters (`[election]`).
    pub election: ElectionParams,
    /// Rewards parameters (`[rewards]`).
    pub rewards: RewardsParams,
}

/// Why a parameter override was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    /// The override was not of the form `section.name=value`.
    #[error("expected KEY=VALUE, got {0:?}")]
    Syntax(String),
    /// No parameter has that name.
    #[error("unknown parameter {0:?}")]
    UnknownKey(String),
    /// The value does not fit the parameter's type or range.
    #[error("invalid value for {key}: {reason}")]
    InvalidValue {
        /// The dotted parameter name.
        key: String,
        /// What was wrong.
        reason: String,
    },
}

impl Params {
    /// Applies one `section.name=value` override, e.g. `dht.k=16`.
    pub fn set(&mut self, assignment: &str) -> Result<(), ParamError> {
        let (key, value) = assignment.split_once('=').ok_or_else(|| ParamError::Syntax(assignment.to_string()))?;
        let mut tree = toml::Value::try_from(&*self)
            .map_err(|e| ParamError::InvalidValue { key: key.to_string(), reason: e.to_string() })?;
        set_path(&mut tree, key.trim(), parse_value(value.trim()))?;
        let updated: Params = tree.try_into().map_err(|e: toml::de::Error| ParamError::InvalidValue {
            key: key.to_string(),
            reason: e.message().to_string(),
        })?;
        updated.validate()?;
        *self = updated;
        Ok(())
    }

    /// Checks cross-field constraints and ranges.
    pub fn validate(&self) -> Result<(), ParamError> {
        self.dht.validate()?;
        self.overlay.validate()?;
        self.circuit.validate()?;
        self.mix.validate()?;
        self.election.validate()?;
        self.rewards.validate()
    }
}

/// Parses an override value as a TOML value (integer, float, boolean,
/// array, quoted string); anything else is taken as a bare string.
pub fn parse_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut table) => table.remove("v").unwrap_or_else(|| toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.to_string()),
    }
}

/// Replaces the existing leaf at `dotted` in `tree` with `value`. Table keys
/// and array indices (`faults.partitions.0.heal_secs`) are both path
/// segments; a path that does not name an existing leaf is an error. An
/// integer written where a float is expected becomes that float.
pub fn set_path(tree: &mut toml::Value, dotted: &str, value: toml::Value) -> Result<(), ParamError> {
    let unknown = || ParamError::UnknownKey(dotted.to_string());
    let mut node = tree;
    for part in dotted.split('.') {
        node = match node {
            toml::Value::Table(table) => table.get_mut(part).ok_or_else(unknown)?,
            toml::Value::Array(items) => {
                let index: usize = part.parse().map_err(|_| unknown())?;
                items.get_mut(index).ok_or_else(unknown)?
            }
            _ => return Err(unknown()),
        };
    }
    if node.is_table() {
        return Err(unknown());
    }
    *node = match (&*node, value) {
        (toml::Value::Float(_), toml::Value::Integer(i)) => toml::Value::Float(i as f64),
        (_, v) => v,
    };
    Ok(())
}

/// A span given in milliseconds.
pub(crate) fn millis(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

/// A span given in seconds.
pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_overrides_known_keys_and_refuses_others() {
        let mut p = Params::default();
        p.set("dht.k=16").unwrap();
        assert_eq!(p.dht.k, 16);
        assert!(matches!(p.set("dht.kk=16"), Err(ParamError::UnknownKey(_))));
        assert!(matches!(p.set("dht.k=banana"), Err(ParamError::InvalidValue { .. })));
        assert!(matches!(p.set("dht.k=0"), Err(ParamError::InvalidValue { .. })));
        assert!(matches!(p.set("dht"), Err(ParamError::Syntax(_))));
        assert!(matches!(p.set("dht=3"), Err(ParamError::UnknownKey(_))));
        assert_eq!(p.dht.k, 16, "a refused override leaves the value alone");
    }
}
