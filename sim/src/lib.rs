//! # allium-sim
//!
//! The deterministic discrete-event simulator of Allium: it drives many
//! [`allium_engine::Node`]s over a simulated network, injects faults, runs
//! a workload, asserts invariants with checkers, and reports metrics. One
//! printed seed replays a whole run bit for bit.
//!
//! ```no_run
//! use allium_sim::{RunOptions, Scenario};
//! let mut scenario = Scenario::load("scenarios/quickstart.toml")?;
//! scenario.apply_set("nodes=50")?;
//! let report = allium_sim::run(&scenario, 7, RunOptions::default())?;
//! assert!(report.passed());
//! println!("{}", report.to_json());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## How a run works
//!
//! * [`queue`]: one event queue ordered by (time, sequence number); nodes
//!   live in a `slotmap`. Each node has one armed timer, tagged with a
//!   generation so that superseded timers are skipped without work.
//! * [`net`]: latency matrix between regions plus jitter, loss per IP
//!   fragment, per-node uplink bandwidth, MTU.
//! * [`faults`] and [`scenario`]: per-packet rules (`Pass | Delay | Drop |
//!   Duplicate`) and scheduled node actions (partitions, crashes and
//!   restarts, churn, loss bursts, clock offset and drift).
//! * [`world`]: a join phase, then a safety phase (faults on; checkers must
//!   hold), then a liveness phase (faults healed; lookups must succeed again).
//! * [`trace`]: every delivered, dropped and node-level event feeds a rolling
//!   BLAKE3 hash, the [`checkers`], the [`stats`], and optionally a JSON-lines file.
//! * [`report`]: the JSON report and the summary table; [`chaos`]: many
//!   seeds in parallel, each with its own fault mix; [`determinism`]: run twice
//!   and find the first divergence.
//!
//! Randomness comes only from the run seed ([`rng`]); there is no clock and
//! no hash-ordered iteration anywhere in this library.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod addr;
pub mod chaos;
pub mod checkers;
pub mod clock;
pub mod destinations;
pub mod determinism;
pub mod expect;
pub mod faults;
pub mod live;
pub mod net;
pub mod queue;
pub mod report;
pub mod rng;
pub mod scenario;
pub mod stats;
pub mod trace;
pub mod workload;
pub mod world;

pub use report::{Report, replay_command};
pub use scenario::{Scenario, ScenarioError};
pub use world::{Progress, RunOptions, World};

use trace::Fingerprints;

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// The scenario is invalid.
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// The JSON trace could not be written.
    #[error("cannot write the trace: {0}")]
    Trace(#[from] std::io::Error),
}

/// A finished run: the report plus the determinism fingerprints it collected.
pub struct RunOutput {
    /// The report (wall-clock fields are zero; the binary fills them in).
    pub report: Report,
    /// The fingerprints, as configured in [`RunOptions::fingerprints`].
    pub fingerprints: Fingerprints,
}

/// Runs `scenario` with `seed` to the end and returns the report.
pub fn run(scenario: &Scenario, seed: u64, options: RunOptions) -> Result<Report, SimError> {
    run_full(scenario, seed, options).map(|out| out.report)
}

/// Runs `scenario` with `seed` to the end and returns the report and fingerprints.
pub fn run_full(scenario: &Scenario, seed: u64, options: RunOptions) -> Result<RunOutput, SimError> {
    let swarm = options.swarm.then(|| scenario.draw_swarm_mix(seed));
    let world = World::new(scenario, seed, options)?;
    let (finished, summary) = world.run_to_end();
    if let Some(e) = finished.json_error {
        return Err(SimError::Trace(e));
    }
    let report = Report {
        scenario: summary.scenario.name.clone(),
        seed,
        nodes: summary.scenario.nodes,
        crypto_suite: summary.scenario.crypto_suite.name().to_string(),
        sim_seconds: summary.sim_nanos as f64 / 1e9,
        wall_seconds: 0.0,
        events: finished.events,
        events_per_wall_second: 0.0,
        peak_rss_bytes: 0,
        trace_hash: finished.hash,
        checkers: summary.checkers,
        // `[expect]` describes the scenario as written; a swarm run replaces
        // its faults, so only the checkers judge it.
        expectations: if swarm.is_some() {
            Vec::new()
        } else {
            expect::evaluate(&summary.scenario.expect, &summary.metrics)
        },
        metrics: summary.metrics,
        swarm,
        determinism: None,
    };
    Ok(RunOutput { report, fingerprints: finished.fingerprints })
}
