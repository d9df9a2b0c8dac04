//! `[expect]`: bounds on a run's final metrics, e.g.
//!
//! ```toml
//! [expect]
//! "dht.lookup.success_rate" = ">= 0.999"
//! "dht.lookup.hops.p50" = "<= 4"
//! ```
//!
//! Checkers watch invariants over the trace as it happens; expectations
//! judge the figures at the end. A run that misses one fails like a run with
//! a checker violation: non-zero exit and a replay command. Expectations
//! describe the scenario as written: a `--swarm` run (and so every seed of a
//! chaos sweep) replaces the scenario's faults and is judged by the checkers
//! alone.

use serde::Serialize;
use std::collections::BTreeMap;

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Ge,
    Le,
    Gt,
    Lt,
    Eq,
}

/// One parsed bound.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bound {
    op: Op,
    value: f64,
}

impl Bound {
    /// Parses `">= 0.999"`, `"<= 4"`, `"> 0"`, `"< 1e3"` or `"== 0"`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (op, rest) = [(">=", Op::Ge), ("<=", Op::Le), ("==", Op::Eq), (">", Op::Gt), ("<", Op::Lt)]
            .into_iter()
            .find_map(|(symbol, op)| text.strip_prefix(symbol).map(|rest| (op, rest)))
            .ok_or_else(|| format!("{text:?} should start with >=, <=, ==, > or <"))?;
        let value: f64 = rest.trim().parse().map_err(|_| format!("{:?} is not a number", rest.trim()))?;
        if !value.is_finite() {
            return Err(format!("{value} is not finite"));
        }
        Ok(Bound { op, value })
    }

    /// Whether `actual` lies within the bound.
    pub fn holds(&self, actual: f64) -> bool {
        match self.op {
            Op::Ge => actual >= self.value,
            Op::Le => actual <= self.value,
            Op::Gt => actual > self.value,
            Op::Lt => actual < self.value,
            Op::Eq => actual == self.value,
        }
    }
}

/// The verdict on one expectation, as printed in the report.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExpectationResult {
    /// The metric's dotted name.
    pub metric: String,
    /// The bound as written.
    pub bound: String,
    /// The metric's value, or `None` if the run did not report it.
    pub actual: Option<f64>,
    /// Whether the bound held (a missing metric never holds).
    pub met: bool,
}

/// Checks every expectation against `metrics`. Bounds were validated when
/// the scenario was loaded; an unparsable one here counts as not met.
pub fn evaluate(expect: &BTreeMap<String, String>, metrics: &BTreeMap<String, f64>) -> Vec<ExpectationResult> {
    expect
        .iter()
        .map(|(metric, bound)| {
            let actual = metrics.get(metric).copied();
            let met = match (Bound::parse(bound), actual) {
                (Ok(b), Some(value)) => b.holds(value),
                _ => false,
            };
            ExpectationResult { metric: metric.clone(), bound: bound.clone(), actual, met }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_parse_and_judge() {
        assert!(Bound::parse(">= 0.999").unwrap().holds(0.999));
        assert!(!Bound::parse(">= 0.999").unwrap().holds(0.998));
        assert!(Bound::parse("<=4").unwrap().holds(4.0));
        assert!(!Bound::parse("< 4").unwrap().holds(4.0));
        assert!(Bound::parse("== 0").unwrap().holds(0.0));
        assert!(Bound::parse("> 1e3").unwrap().holds(1001.0));
        assert!(Bound::parse("about 3").is_err());
        assert!(Bound::parse(">= lots").is_err());
        assert!(Bound::parse(">= inf").is_err());
    }

    #[test]
    fn missing_metrics_fail_and_results_keep_the_figures() {
        let expect: BTreeMap<String, String> =
            [("a".to_string(), ">= 1".to_string()), ("b".to_string(), "<= 2".to_string())].into_iter().collect();
        let metrics: BTreeMap<String, f64> = [("a".to_string(), 1.5)].into_iter().collect();
        let results = evaluate(&expect, &metrics);
        assert_eq!(
            results[0],
            ExpectationResult { metric: "a".into(), bound: ">= 1".into(), actual: Some(1.5), met: true }
        );
        assert!(!results[1].met && results[1].actual.is_none());
    }
}
