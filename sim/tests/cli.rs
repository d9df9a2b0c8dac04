//! The `allium-sim` binary: the JSON report on stdout, exit statuses, the
//! replay command on failure, `--set` errors, and the chaos summary line.

mod common;

use std::process::Command;

fn sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_allium-sim"))
}

fn quickstart() -> String {
    common::scenario_path("quickstart.toml").display().to_string()
}

fn small_sets(cmd: &mut Command) -> &mut Command {
    for set in common::SMALL.iter().chain(&["nodes=24", "phases.safety_secs=30"]) {
        cmd.arg("--set").arg(set);
    }
    cmd
}

#[test]
fn run_prints_a_json_report_and_exits_zero() {
    let out = small_sets(sim().args(["run", &quickstart(), "--seed", "4", "--json"])).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON object");
    assert_eq!(report["seed"], 4);
    assert_eq!(report["nodes"], 24);
    assert!(report["wall_seconds"].as_f64().unwrap() > 0.0);
    assert!(report["peak_rss_bytes"].as_u64().unwrap() > 0);
    assert_eq!(report["checkers"]["violations"], 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("trace hash"), "summary table on stderr");
}

#[test]
fn violation_exits_nonzero_with_the_replay_command() {
    let mut cmd = sim();
    small_sets(cmd.args(["run", &quickstart(), "--seed", "4"])).args(["--set", "checks.liveness_min_lookups=100000"]);
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("allium-sim run "), "{stderr}");
    assert!(stderr.contains("--seed 4 --set nodes=40"), "{stderr}");
    assert!(stderr.contains("--set checks.liveness_min_lookups=100000"), "{stderr}");
}

#[test]
fn unknown_set_keys_are_errors() {
    let out = sim().args(["run", &quickstart(), "--set", "network.los=0.1"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown option"));
    let out = sim().args(["run", &quickstart(), "--set", "dht.kk=3"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn chaos_prints_a_summary_line() {
    let mut cmd = sim();
    small_sets(cmd.args(["chaos", &quickstart(), "--seeds", "0..2", "--jobs", "2"]));
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("chaos: 2 passed, 0 failed"), "{stdout}");
}
