//! `--set key=value` overrides.
//!
//! The scenario is serialised to a TOML tree, the leaf named by the dotted
//! key is replaced (array elements are addressed by index, e.g.
//! `faults.partitions.0.heal_secs`), and the tree is deserialised and
//! validated again, so an override is checked exactly like a file.

use super::{Scenario, ScenarioError};
use allium_engine::Params;
use allium_engine::params::parse_value;

/// Whether `section` names a section of the engine's [`Params`] (e.g. `dht`).
fn is_engine_section(section: &str) -> bool {
    match toml::Value::try_from(Params::default()) {
        Ok(toml::Value::Table(table)) => table.contains_key(section),
        _ => false,
    }
}

/// Applies every override to `scenario`, then validates once, so that the
/// order of overrides does not matter. The scenario is unchanged on error.
pub(super) fn apply(scenario: &mut Scenario, assignments: &[&str]) -> Result<(), ScenarioError> {
    let mut tree = toml::Value::try_from(&*scenario).map_err(|e| ScenarioError::Parse(e.to_string()))?;
    let mut last_key = String::new();
    for assignment in assignments {
        let (key, raw) = assignment.split_once('=').ok_or_else(|| ScenarioError::Syntax((*assignment).to_string()))?;
        let (key, raw) = (key.trim(), raw.trim());
        if key.is_empty() {
            return Err(ScenarioError::Syntax((*assignment).to_string()));
        }
        let first = key.split('.').next().unwrap_or_default();
        let path = if is_engine_section(first) { format!("params.{key}") } else { key.to_string() };
        set_path(&mut tree, &path, parse_value(raw))?;
        last_key = key.to_string();
    }
    let updated: Scenario = tree
        .try_into()
        .map_err(|e: toml::de::Error| ScenarioError::Invalid { key: last_key, reason: e.message().to_string() })?;
    updated.validate()?;
    *scenario = updated;
    Ok(())
}

/// Replaces the existing leaf at `dotted` (the engine's path rules: table
/// keys and array indices).
fn set_path(tree: &mut toml::Value, dotted: &str, value: toml::Value) -> Result<(), ScenarioError> {
    allium_engine::params::set_path(tree, dotted, value).map_err(|_| ScenarioError::UnknownKey(dotted.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_scenario_options_and_engine_parameters() {
        let mut s = Scenario::default();
        s.apply_set("nodes=500").unwrap();
        s.apply_set("network.loss=0.01").unwrap();
        s.apply_set("workload.lookups_per_sec=3").unwrap();
        s.apply_set("dht.k=16").unwrap();
        s.apply_set("params.dht.alpha=4").unwrap();
        s.apply_set("crypto_suite=sim-fast").unwrap();
        assert_eq!(s.nodes, 500);
        assert_eq!(s.network.loss, 0.01);
        assert_eq!(s.workload.lookups_per_sec, 3.0);
        assert_eq!((s.params.dht.k, s.params.dht.alpha), (16, 4));
        assert_eq!(s.crypto_suite, allium_engine::CryptoSuite::SimFast);
    }

    #[test]
    fn refuses_unknown_keys_bad_values_and_syntax() {
        let mut s = Scenario::default();
        let before = s.clone();
        assert!(matches!(s.apply_set("nodez=5"), Err(ScenarioError::UnknownKey(_))));
        assert!(matches!(s.apply_set("dht.kk=5"), Err(ScenarioError::UnknownKey(_))));
        assert!(matches!(s.apply_set("network=5"), Err(ScenarioError::UnknownKey(_))));
        assert!(matches!(s.apply_set("nodes=banana"), Err(ScenarioError::Invalid { .. })));
        assert!(matches!(s.apply_set("nodes=0"), Err(ScenarioError::Invalid { .. })));
        assert!(matches!(s.apply_set("nodes"), Err(ScenarioError::Syntax(_))));
        assert!(matches!(s.apply_set("faults.partitions.0.heal_secs=3"), Err(ScenarioError::UnknownKey(_))));
        assert_eq!(s, before);
    }

    #[test]
    fn array_elements_are_addressed_by_index() {
        let mut s = Scenario::from_toml("[[faults.partitions]]\nstart_secs = 5\nheal_secs = 50").unwrap();
        s.apply_set("faults.partitions.0.heal_secs=90").unwrap();
        assert_eq!(s.faults.partitions[0].heal_secs, 90);
    }
}
