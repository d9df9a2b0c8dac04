//! Per-node counters.
//!
//! Names are dotted and static (`dht.requests.sent`,
//! `wire.rejected.truncated`, …). The simulator sums them over nodes and the
//! real node exports them to Prometheus.

/// A set of monotonically increasing named counters.
///
/// A node has a few dozen counters, bumped several times per datagram, so
/// they live in a small vector searched by the name's address first (each
/// call site passes the same `&'static str`) and by its text second. Each
/// hit moves its counter one place forward, so the per-datagram counters
/// settle at the front.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metrics {
    counters: Vec<(&'static str, u64)>,
}

impl Metrics {
    fn slot(&mut self, name: &'static str) -> &mut u64 {
        let found = self
            .counters
            .iter()
            .position(|(n, _)| core::ptr::eq(*n, name))
            .or_else(|| self.counters.iter().position(|(n, _)| *n == name));
        let index = match found {
            Some(0) => 0,
            Some(index) => {
                self.counters.swap(index, index - 1);
                index - 1
            }
            None => {
                self.counters.push((name, 0));
                self.counters.len() - 1
            }
        };
        &mut self.counters[index].1
    }

    /// Adds `n` to the counter `name` (saturating at `u64::MAX`).
    pub fn add(&mut self, name: &'static str, n: u64) {
        let slot = self.slot(name);
        *slot = slot.saturating_add(n);
    }

    /// Adds one to the counter `name`.
    pub fn incr(&mut self, name: &'static str) {
        self.add(name, 1);
    }

    /// The value of `name` (0 if never counted).
    pub fn get(&self, name: &str) -> u64 {
        self.counters.iter().filter(|(n, _)| *n == name).map(|(_, v)| *v).sum()
    }

    /// Every counter, in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        let mut sorted = self.counters.clone();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        sorted.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_name_whatever_the_address() {
        let mut m = Metrics::default();
        m.incr("b.x");
        m.add("a.y", 5);
        let same_text = String::from("b.x").leak();
        m.incr(same_text);
        assert_eq!(m.get("b.x"), 2);
        assert_eq!(m.get("a.y"), 5);
        assert_eq!(m.get("missing"), 0);
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![("a.y", 5), ("b.x", 2)]);
        for _ in 0..10 {
            m.incr("c.z");
        }
        assert_eq!(m.counters[0].0, "c.z", "the hottest counter moves to the front");
        assert_eq!((m.get("a.y"), m.get("b.x"), m.get("c.z")), (5, 2, 10));
    }
}
