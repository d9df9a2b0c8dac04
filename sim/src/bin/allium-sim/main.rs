//! `allium-sim`: run a scenario, check determinism, or sweep chaos seeds.
//!
//! ```text
//! allium-sim run FILE --seed N [--json] [--set k=v]... [--trace FILE] [--check-determinism] [--swarm]
//! allium-sim chaos FILE --seeds A..B [--jobs N] [--set k=v]...
//! ```
//!
//! Exit status: 0 when every checker held, 1 on a checker violation, a
//! determinism divergence or a failing chaos seed, 2 on bad input.

mod wall;

use allium_sim::chaos::{ChaosOutcome, parse_seed_range, run_seeds};
use allium_sim::determinism::check_determinism;
use allium_sim::{Progress, Report, RunOptions, Scenario, replay_command};
use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// Deterministic discrete-event simulator of the Allium protocol engine.
#[derive(Parser)]
#[command(name = "allium-sim", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one scenario with one seed.
    Run(RunArgs),
    /// Run many seeds in parallel, each with its own fault mix (swarm testing).
    Chaos(ChaosArgs),
}

#[derive(Args)]
struct RunArgs {
    /// The scenario file (TOML).
    file: PathBuf,
    /// The run seed; it decides everything.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Override a scenario option or engine parameter, e.g. `nodes=500` or `dht.k=16`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
    /// Write the full trace as JSON lines to this file.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Run twice and report the first event where the runs diverge.
    #[arg(long, conflicts_with = "trace")]
    check_determinism: bool,
    /// Replace the scenario's faults with the mix this seed draws.
    #[arg(long)]
    swarm: bool,
}

#[derive(Args)]
struct ChaosArgs {
    /// The scenario file (TOML).
    file: PathBuf,
    /// Seeds to run: `A..B` (B excluded), `A..=B`, or `N`.
    #[arg(long)]
    seeds: String,
    /// Worker threads (default: all cores).
    #[arg(long)]
    jobs: Option<usize>,
    /// Override a scenario option or engine parameter.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    sets: Vec<String>,
}

fn load(file: &PathBuf, sets: &[String]) -> Result<Scenario> {
    let mut scenario = Scenario::load(file)?;
    scenario.apply_sets(sets).context("applying --set overrides")?;
    Ok(scenario)
}

fn progress_bar(end_secs: u64) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(end_secs);
    let style = ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} sim s {msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    Some(bar)
}

fn run_command(args: RunArgs) -> Result<ExitCode> {
    let scenario = load(&args.file, &args.sets)?;
    let stopwatch = wall::Stopwatch::start();
    let mut report: Report = if args.check_determinism {
        check_determinism(&scenario, args.seed, args.swarm)?
    } else {
        let bar = progress_bar(scenario.end_nanos() / 1_000_000_000);
        let trace: Option<Box<dyn Write + Send>> = match &args.trace {
            Some(path) => {
                let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
                Some(Box::new(std::io::BufWriter::new(file)))
            }
            None => None,
        };
        let progress: Option<Box<dyn FnMut(Progress) + Send>> = bar.clone().map(|bar| {
            Box::new(move |p: Progress| {
                bar.set_position(p.now / 1_000_000_000);
                bar.set_message(format!("{} events", p.events));
            }) as Box<dyn FnMut(Progress) + Send>
        });
        let options = RunOptions { swarm: args.swarm, trace, progress, ..RunOptions::default() };
        let report = allium_sim::run(&scenario, args.seed, options)?;
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        report
    };
    // With --check-determinism the wall time covers both runs (and a third on divergence).
    report.set_wall_clock(stopwatch.seconds(), wall::peak_rss_bytes());
    eprint!("{}", report.summary_table());
    if args.json {
        println!("{}", report.to_json());
    }
    let file = args.file.display().to_string();
    if let Some(d) = report.determinism.as_ref().filter(|d| !d.runs_agree) {
        eprintln!("determinism: runs diverge at event {}", d.diverged_at.unwrap_or(0));
        eprintln!("  first run:  {}", d.first_run.as_deref().unwrap_or("?"));
        eprintln!("  second run: {}", d.second_run.as_deref().unwrap_or("?"));
    }
    if !report.passed() {
        eprintln!("FAILED; replay with:\n  {}", replay_command(&file, args.seed, args.swarm, &args.sets));
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn chaos_command(args: ChaosArgs) -> Result<ExitCode> {
    let scenario = load(&args.file, &args.sets)?;
    let seeds = parse_seed_range(&args.seeds).map_err(anyhow::Error::msg)?;
    let jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let bar = progress_bar(seeds.end - seeds.start);
    let on_done = |_: &ChaosOutcome| {
        if let Some(bar) = &bar {
            bar.inc(1);
        }
    };
    let outcomes = run_seeds(&scenario, seeds, jobs, &on_done);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let file = args.file.display().to_string();
    let mut failed = 0;
    for outcome in &outcomes {
        if let Some(why) = outcome.failure() {
            failed += 1;
            let replay = replay_command(&file, outcome.seed, true, &args.sets);
            println!("FAILED seed {}: {replay}   # {}", outcome.seed, why.replace('\n', " "));
        }
    }
    println!("chaos: {} passed, {failed} failed", outcomes.len() - failed);
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run(args) => run_command(args),
        Cmd::Chaos(args) => chaos_command(args),
    };
    result.unwrap_or_else(|e| {
        eprintln!("allium-sim: {e:#}");
        ExitCode::from(2)
    })
}
