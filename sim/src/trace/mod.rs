//! The trace: every delivered, dropped and node-level event of a run, in
//! order. Each event is encoded compactly ([`encode`]) and fed to a rolling
//! BLAKE3 hash (the report's `trace_hash`), to the checkers and metrics, and
//! optionally to a JSON-lines file and to the determinism check.

mod encode;
mod event;
mod json;
mod rewards;

pub use encode::{encode, holding_code, packet_kind_code};
pub use event::{FaultEdge, FetchFigures, Phase, QueryFigures, RecordView, TraceEvent};
pub use json::to_json;
pub use rewards::{Cheat, PayoutFigures, SettledFigures};

use crate::checkers::Checker;
use crate::stats::Stats;
use std::io::Write;
use std::sync::Arc;

/// How often the buffered encodings are fed to the hasher, in bytes.
const HASH_CHUNK: usize = 1 << 16;

/// The per-event fingerprints used by `--check-determinism`.
#[derive(Default)]
pub enum Fingerprints {
    /// Not checking.
    #[default]
    Off,
    /// First run: remember one fingerprint per event.
    Record(Vec<u64>),
    /// Second run: compare against the first; stop at the first difference.
    Compare {
        /// The first run's fingerprints.
        expected: Arc<Vec<u64>>,
        /// The first difference found.
        divergence: Option<Divergence>,
    },
    /// Third run: capture event `index` as JSON, then stop.
    Capture {
        /// The index to capture.
        index: u64,
        /// The captured event.
        captured: Option<String>,
    },
}

/// Where two runs of the same seed first differ.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// Index of the first differing event.
    pub index: u64,
    /// That event in this run, as JSON (or `<end of trace>`).
    pub this_run: String,
}

/// A 64-bit fingerprint of one encoded event.
fn fingerprint(encoded: &[u8]) -> u64 {
    let digest = blake3::hash(encoded);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.as_bytes()[..8]);
    u64::from_le_bytes(first)
}

/// Records the trace of one run.
pub struct Recorder {
    hasher: blake3::Hasher,
    pending: Vec<u8>,
    events: u64,
    json: Option<Box<dyn Write + Send>>,
    json_error: Option<std::io::Error>,
    fingerprints: Fingerprints,
    checkers: Vec<Box<dyn Checker>>,
    stats: Stats,
    stop: bool,
}

impl Recorder {
    /// A recorder feeding `checkers` and `stats`, optionally writing JSON lines to `json`.
    pub fn new(
        checkers: Vec<Box<dyn Checker>>,
        stats: Stats,
        json: Option<Box<dyn Write + Send>>,
        fingerprints: Fingerprints,
    ) -> Self {
        Recorder {
            hasher: blake3::Hasher::new_derive_key("allium-sim 2026-11 trace v1"),
            pending: Vec::with_capacity(HASH_CHUNK + 4096),
            events: 0,
            json,
            json_error: None,
            fingerprints,
            checkers,
            stats,
            stop: false,
        }
    }

    /// Records one event.
    pub fn record(&mut self, event: &TraceEvent<'_>) {
        let start = self.pending.len();
        encode(event, &mut self.pending);
        match &mut self.fingerprints {
            Fingerprints::Off => {}
            Fingerprints::Record(all) => all.push(fingerprint(&self.pending[start..])),
            Fingerprints::Compare { expected, divergence } => {
                let fp = fingerprint(&self.pending[start..]);
                if divergence.is_none() && expected.get(self.events as usize) != Some(&fp) {
                    *divergence = Some(Divergence { index: self.events, this_run: to_json(event).to_string() });
                    self.stop = true;
                }
            }
            Fingerprints::Capture { index, captured } => {
                if *index == self.events {
                    *captured = Some(to_json(event).to_string());
                    self.stop = true;
                }
            }
        }
        if let Some(out) = &mut self.json
            && self.json_error.is_none()
            && let Err(e) = writeln!(out, "{}", to_json(event))
        {
            self.json_error = Some(e);
        }
        for checker in &mut self.checkers {
            checker.on_event(event);
        }
        self.stats.on_event(event);
        self.events += 1;
        if self.pending.len() >= HASH_CHUNK {
            self.hasher.update(&self.pending);
            self.pending.clear();
        }
    }

    /// Adds a checker that sees every later event (for tests and tools).
    pub fn add_checker(&mut self, checker: Box<dyn Checker>) {
        self.checkers.push(checker);
    }

    /// Whether the determinism check has seen enough and the run may stop.
    pub fn should_stop(&self) -> bool {
        self.stop
    }

    /// Events recorded so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The metrics observer.
    pub fn stats_mut(&mut self) -> &mut Stats {
        &mut self.stats
    }

    /// Ends the trace: the hash (hex), the checkers, the metrics, the fingerprints,
    /// and any error writing the JSON trace.
    pub fn finish(mut self) -> Finished {
        self.hasher.update(&self.pending);
        self.pending.clear();
        let json_error = match self.json.as_mut().map(|out| out.flush()) {
            Some(Err(e)) => Some(e),
            _ => self.json_error.take(),
        };
        if let Fingerprints::Compare { expected, divergence } = &mut self.fingerprints
            && divergence.is_none()
            && self.events != expected.len() as u64
        {
            *divergence = Some(Divergence { index: self.events, this_run: "<end of trace>".to_string() });
        }
        Finished {
            hash: self.hasher.finalize().to_hex().to_string(),
            events: self.events,
            checkers: self.checkers,
            stats: self.stats,
            fingerprints: self.fingerprints,
            json_error,
        }
    }
}

/// What a finished trace leaves behind.
pub struct Finished {
    /// The trace hash, hex.
    pub hash: String,
    /// Number of events.
    pub events: u64,
    /// The checkers, ready for `finish`.
    pub checkers: Vec<Box<dyn Checker>>,
    /// The metrics observer.
    pub stats: Stats,
    /// The determinism fingerprints.
    pub fingerprints: Fingerprints,
    /// An error that occurred while writing the JSON trace.
    pub json_error: Option<std::io::Error>,
}
