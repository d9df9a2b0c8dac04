//! Circuit and stream measurements.
//!
//! * `circuit.build.count`, `circuit.build.success_rate`: circuit requests that ended (built,
//!   or failed after every attempt), and the share built; `circuit.build.replacements` built
//!   circuits replaced one that failed while carrying streams.
//! * `circuit.build.ms.p50|p99`: engine-measured build time of built circuits, over all
//!   attempts, in milliseconds; `circuit.build.attempts.mean`.
//! * `circuit.closed.<reason>`: client circuits that ended, by reason.
//! * `stream.count`, `stream.success_rate`: workload streams started (those whose client went
//!   down are not counted) and the share that delivered the whole response and finished
//!   cleanly; a stream still open at the end counts as failed. `stream.failed.<reason>`.
//! * `stream.ttfb_ms.p50|p99`: from the command (circuit build included, if one was needed)
//!   to the first response byte, in milliseconds.
//! * `stream.throughput_kbps.p50|p10`: response bits per second over the stream's life, from
//!   `StreamOpened` to its clean end, in kbit/s (finished streams only).
//! * `stream.bytes_delivered`, `stream.bytes_corrupted`: response bytes delivered to clients,
//!   and those differing from the destination's ground truth (must be 0).

use super::{Rate, percentile};
use crate::checkers::StreamTruth;
use crate::trace::TraceEvent;
use std::collections::BTreeMap;

/// Timing of one open stream.
struct Timing {
    start: u64,
    opened: Option<u64>,
    first_byte: bool,
}

/// Circuit and stream measurements, accumulated from trace events.
#[derive(Default)]
pub(super) struct CircuitStats {
    truth: StreamTruth,
    builds: Rate,
    build_ms: Vec<u64>,
    attempts: u64,
    replacements: u64,
    closed: BTreeMap<&'static str, u64>,
    streams: BTreeMap<u64, Timing>,
    stream_rate: Rate,
    failed: BTreeMap<&'static str, u64>,
    ttfb_ns: Vec<u64>,
    throughput_bps: Vec<u64>,
    bytes_delivered: u64,
    bytes_corrupted: u64,
}

impl CircuitStats {
    pub(super) fn on_event(&mut self, event: &TraceEvent<'_>) {
        if let Some(verdict) = self.truth.on_event(event) {
            self.bytes_corrupted += verdict.corrupted;
        }
        match event {
            TraceEvent::CircuitBuilt { build_ms, attempts, replacement, .. } => {
                self.builds.add(true);
                self.build_ms.push(*build_ms);
                self.attempts += u64::from(*attempts);
                self.replacements += u64::from(*replacement);
            }
            TraceEvent::CircuitBuildFailed { attempts, .. } => {
                self.builds.add(false);
                self.attempts += u64::from(*attempts);
            }
            TraceEvent::CircuitClosed { reason, .. } => *self.closed.entry(reason).or_insert(0) += 1,
            TraceEvent::StreamStart { at, id, .. } => {
                self.streams.insert(*id, Timing { start: *at, opened: None, first_byte: false });
            }
            TraceEvent::StreamOpened { at, id, .. } => {
                if let Some(t) = self.streams.get_mut(id) {
                    t.opened = Some(*at);
                }
            }
            TraceEvent::StreamData { at, id, bytes, .. } => {
                self.bytes_delivered += bytes.len() as u64;
                if let Some(t) = self.streams.get_mut(id)
                    && !t.first_byte
                {
                    t.first_byte = true;
                    self.ttfb_ns.push(at - t.start);
                }
            }
            TraceEvent::StreamEnd { at, id, reason, received, .. } => {
                let Some(t) = self.streams.remove(id) else { return };
                let whole = self.truth.end(*id).is_some_and(|(len, delivered)| delivered == len);
                let ok = *reason == "finished" && whole;
                self.stream_rate.add(ok);
                if !ok {
                    *self.failed.entry(reason).or_insert(0) += 1;
                }
                if let Some(opened) = t.opened.filter(|_| ok) {
                    let nanos = (at - opened).max(1);
                    self.throughput_bps.push((u128::from(*received) * 8 * 1_000_000_000 / u128::from(nanos)) as u64);
                }
            }
            TraceEvent::Abandoned { id, .. } => {
                self.streams.remove(id);
                self.truth.end(*id);
            }
            _ => {}
        }
    }

    pub(super) fn metrics(&self, put: &mut dyn FnMut(&str, f64)) {
        let sorted = |v: &[u64]| {
            let mut v = v.to_vec();
            v.sort_unstable();
            v
        };
        put("circuit.build.count", self.builds.total as f64);
        put("circuit.build.success_rate", self.builds.value());
        put("circuit.build.replacements", self.replacements as f64);
        let build_ms = sorted(&self.build_ms);
        put("circuit.build.ms.p50", percentile(&build_ms, 50) as f64);
        put("circuit.build.ms.p99", percentile(&build_ms, 99) as f64);
        let mean = if self.builds.total == 0 { 0.0 } else { self.attempts as f64 / self.builds.total as f64 };
        put("circuit.build.attempts.mean", mean);
        for (reason, n) in &self.closed {
            put(&format!("circuit.closed.{reason}"), *n as f64);
        }
        // Streams still open at the end failed.
        let mut streams = self.stream_rate;
        let mut failed = self.failed.clone();
        for _ in self.streams.values() {
            streams.add(false);
            *failed.entry("unfinished").or_insert(0) += 1;
        }
        put("stream.count", streams.total as f64);
        put("stream.success_rate", streams.value());
        for (reason, n) in &failed {
            put(&format!("stream.failed.{reason}"), *n as f64);
        }
        let ttfb = sorted(&self.ttfb_ns);
        put("stream.ttfb_ms.p50", percentile(&ttfb, 50) as f64 / 1e6);
        put("stream.ttfb_ms.p99", percentile(&ttfb, 99) as f64 / 1e6);
        let throughput = sorted(&self.throughput_bps);
        put("stream.throughput_kbps.p50", percentile(&throughput, 50) as f64 / 1e3);
        put("stream.throughput_kbps.p10", percentile(&throughput, 10) as f64 / 1e3);
        put("stream.bytes_delivered", self.bytes_delivered as f64);
        put("stream.bytes_corrupted", self.bytes_corrupted as f64);
    }
}
