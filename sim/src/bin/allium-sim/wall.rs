//! The only wall-clock and process measurements of the simulator. They are
//! taken by the binary for the report's `wall_seconds`, `events_per_wall_second`
//! and `peak_rss_bytes`, and never enter the trace or any simulated decision.

/// A started wall-clock stopwatch.
pub struct Stopwatch(std::time::Instant);

impl Stopwatch {
    /// Starts timing.
    // The one sanctioned wall-clock read (clippy.toml bans it elsewhere):
    // report timing only, never simulated time.
    #[allow(clippy::disallowed_methods)]
    pub fn start() -> Self {
        Stopwatch(std::time::Instant::now())
    }

    /// Seconds since the start.
    pub fn seconds(&self) -> f64 {
        self.0.elapsed().as_secs_f64()
    }
}

/// Peak resident set size of this process (`VmHWM` in /proc/self/status), in bytes; 0 if unknown.
pub fn peak_rss_bytes() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return 0 };
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}
