//! The run report (see DESIGN.md, "Report contract"): one JSON object, plus
//! a human-readable summary table.

use crate::checkers::CheckerSummary;
use crate::scenario::SwarmMix;
use crate::stats::MetricMap;
use serde::Serialize;
use std::fmt::Write as _;

/// The verdict of `--check-determinism`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DeterminismVerdict {
    /// Whether both runs produced the same trace.
    pub runs_agree: bool,
    /// Index of the first differing event.
    pub diverged_at: Option<u64>,
    /// That event in the first run, as JSON.
    pub first_run: Option<String>,
    /// That event in the second run, as JSON.
    pub second_run: Option<String>,
}

/// Everything a run reports.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The scenario's name.
    pub scenario: String,
    /// The run seed.
    pub seed: u64,
    /// Nodes that join in the join phase.
    pub nodes: u32,
    /// The crypto suite of every node.
    pub crypto_suite: String,
    /// Simulated time covered, in seconds.
    pub sim_seconds: f64,
    /// Wall-clock time, in seconds (filled in by the binary; 0 from the library; with
    /// `--check-determinism` it covers every run).
    pub wall_seconds: f64,
    /// Trace events recorded.
    pub events: u64,
    /// `events / wall_seconds` (0 when wall time is unknown).
    pub events_per_wall_second: f64,
    /// Peak resident set size (VmHWM), in bytes (filled in by the binary; 0 from the library).
    pub peak_rss_bytes: u64,
    /// The rolling BLAKE3 hash of the trace, hex.
    pub trace_hash: String,
    /// The checkers' verdict.
    pub checkers: CheckerSummary,
    /// The verdict on each `[expect]` bound of the scenario.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expectations: Vec<crate::expect::ExpectationResult>,
    /// Metrics: dotted names to numbers.
    pub metrics: MetricMap,
    /// The fault mix drawn by `--swarm`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swarm: Option<SwarmMix>,
    /// The verdict of `--check-determinism`, if asked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub determinism: Option<DeterminismVerdict>,
}

impl Report {
    /// Whether no checker was violated, every expectation was met and (if
    /// checked) the run was deterministic.
    pub fn passed(&self) -> bool {
        self.checkers.violations == 0
            && self.expectations.iter().all(|e| e.met)
            && self.determinism.as_ref().is_none_or(|d| d.runs_agree)
    }

    /// The expectations that were not met.
    pub fn unmet_expectations(&self) -> impl Iterator<Item = &crate::expect::ExpectationResult> {
        self.expectations.iter().filter(|e| !e.met)
    }

    /// A metric's value (0 if absent).
    pub fn metric(&self, name: &str) -> f64 {
        self.metrics.get(name).copied().unwrap_or(0.0)
    }

    /// Records the wall-clock figures measured by the caller.
    pub fn set_wall_clock(&mut self, wall_seconds: f64, peak_rss_bytes: u64) {
        self.wall_seconds = wall_seconds;
        self.peak_rss_bytes = peak_rss_bytes;
        self.events_per_wall_second = if wall_seconds > 0.0 { self.events as f64 / wall_seconds } else { 0.0 };
    }

    /// The report as one JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }

    /// A human-readable summary table.
    pub fn summary_table(&self) -> String {
        let mut out = String::new();
        let mib = self.peak_rss_bytes as f64 / (1024.0 * 1024.0);
        let _ = writeln!(
            out,
            "allium-sim: scenario {}  seed {}  nodes {}  crypto {}",
            self.scenario, self.seed, self.nodes, self.crypto_suite
        );
        let _ = writeln!(out, "  {:<38} {:>14.1}", "sim seconds", self.sim_seconds);
        let _ = writeln!(out, "  {:<38} {:>14.2}", "wall seconds", self.wall_seconds);
        let _ = writeln!(out, "  {:<38} {:>14}", "events", self.events);
        let _ = writeln!(out, "  {:<38} {:>14.0}", "events per wall second", self.events_per_wall_second);
        let _ = writeln!(out, "  {:<38} {:>14.1}", "peak RSS (MiB)", mib);
        let _ = writeln!(out, "  {:<38} {}", "trace hash", self.trace_hash);
        let _ = writeln!(
            out,
            "  {:<38} {:>14}",
            "checks / violations",
            format!("{} / {}", self.checkers.checked, self.checkers.violations)
        );
        if let Some(first) = &self.checkers.first {
            let _ = writeln!(out, "  first violation [{}] at {} ns: {}", first.checker, first.at, first.message);
        }
        for e in &self.expectations {
            let actual = e.actual.map_or("missing".to_string(), |v| format!("{v:.4}"));
            let verdict = if e.met { "met" } else { "NOT MET" };
            let _ = writeln!(out, "  expect {:<31} {:>14}  {} ({verdict})", e.metric, actual, e.bound);
        }
        if let Some(d) = &self.determinism {
            let verdict =
                if d.runs_agree { "identical".to_string() } else { format!("DIVERGED at {:?}", d.diverged_at) };
            let _ = writeln!(out, "  {:<38} {:>14}", "determinism (2 runs)", verdict);
        }
        const HEADLINE: [&str; 16] = [
            "dht.lookup.count",
            "dht.lookup.success_rate",
            "dht.lookup.success_rate.liveness_window",
            "dht.lookup.hops.p50",
            "dht.lookup.hops.p99",
            "dht.lookup.latency_ms.p50",
            "dht.lookup.latency_ms.p99",
            "dht.messages_per_lookup",
            "dht.put.success_rate",
            "dht.record.get_success_rate",
            "dht.routing_table.size.mean",
            "net.sent",
            "net.delivered",
            "net.dropped",
            "sim.nodes.total",
            "wire.rejected",
        ];
        for name in HEADLINE {
            let value = self.metric(name);
            if value.fract() == 0.0 && value.abs() < 1e15 {
                let _ = writeln!(out, "  {name:<38} {:>14}", value as i64);
            } else {
                let _ = writeln!(out, "  {name:<38} {value:>14.4}");
            }
        }
        out
    }
}

fn shell_quote(arg: &str) -> String {
    let plain = arg.chars().all(|c| c.is_ascii_alphanumeric() || "._-=/:,+@".contains(c));
    if plain && !arg.is_empty() { arg.to_string() } else { format!("'{}'", arg.replace('\'', "'\\''")) }
}

/// The exact command line that replays a run.
pub fn replay_command(file: &str, seed: u64, swarm: bool, sets: &[String]) -> String {
    let mut cmd = format!("allium-sim run {} --seed {seed}", shell_quote(file));
    if swarm {
        cmd.push_str(" --swarm");
    }
    for set in sets {
        cmd.push_str(" --set ");
        cmd.push_str(&shell_quote(set));
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_commands_are_quoted_for_the_shell() {
        let sets = vec!["nodes=50".to_string(), "name=a b".to_string()];
        assert_eq!(
            replay_command("scenarios/quickstart.toml", 7, true, &sets),
            "allium-sim run scenarios/quickstart.toml --seed 7 --swarm --set nodes=50 --set 'name=a b'"
        );
    }
}
