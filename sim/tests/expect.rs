//! `[expect]` bounds: a run that misses one fails (and the CLI exits
//! non-zero with a replay command); a bad bound is refused at load time.

mod common;

use allium_sim::Scenario;
use std::process::Command;

/// quickstart.toml with its own `[expect]` table replaced by `extra`.
fn with_expect(extra: &str) -> String {
    let text = std::fs::read_to_string(common::scenario_path("quickstart.toml")).unwrap();
    let base = text.split("\n[expect]").next().unwrap();
    format!("{base}\n[expect]\n{extra}\n")
}

#[test]
fn met_and_unmet_expectations_decide_the_verdict() {
    let sets = common::SMALL;
    let mut met = Scenario::from_toml(&with_expect("\"dht.lookup.success_rate\" = \">= 0.5\"")).unwrap();
    met.apply_sets(sets).unwrap();
    let report = common::run(&met, 3);
    assert!(report.passed(), "{:?}", report.expectations);
    assert_eq!(report.expectations.len(), 1);

    let mut unmet =
        Scenario::from_toml(&with_expect("\"dht.lookup.hops.p50\" = \"> 1000\"\n\"no.such.metric\" = \">= 0\""))
            .unwrap();
    unmet.apply_sets(sets).unwrap();
    let report = common::run(&unmet, 3);
    assert!(!report.passed());
    assert_eq!(report.unmet_expectations().count(), 2);
    assert_eq!(report.checkers.violations, 0, "expectations are not checker violations");
}

#[test]
fn a_malformed_bound_is_refused_when_loading() {
    let err = Scenario::from_toml(&with_expect("\"dht.lookup.hops.p50\" = \"about four\"")).unwrap_err();
    assert!(err.to_string().contains("expect.dht.lookup.hops.p50"), "{err}");
}

#[test]
fn the_cli_exits_non_zero_and_prints_the_replay_command() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("strict.toml");
    std::fs::write(&file, with_expect("\"dht.lookup.hops.p50\" = \"> 1000\"")).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_allium-sim"));
    command.args(["run", file.to_str().unwrap(), "--seed", "5"]);
    for set in common::SMALL {
        command.args(["--set", set]);
    }
    let out = command.output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NOT MET"), "{stderr}");
    assert!(stderr.contains("--seed 5"), "{stderr}");
}
