//! Checkers: invariants asserted over the trace.
//!
//! A checker sees nothing but the stream of [`TraceEvent`]s, so it is
//! independent of the tests and of the engine's internals: the same
//! checkers judge every scenario, every chaos seed, and (in their own tests)
//! hand-crafted bad event streams.
//!
//! * [`RecordIntegrity`]: every record a get returns was put under that key, with that value, by that publisher.
//! * [`LookupSanity`]: lookup results are sorted by XOR distance, free of duplicates, at most k,
//!   never the requester, and only identifiers of nodes that existed.
//! * [`RoutingBound`]: no routing-table snapshot shows a bucket above k.
//! * [`Liveness`]: lookups started in the liveness window succeed at the required rate.
//! * [`OverlayIntegrity`] (`overlay-integrity`): every chunk delivered to the application equals
//!   the published chunk (by the simulator's own BLAKE3 hash), and a successful fetch delivered
//!   every chunk.
//! * [`OverlayLiveness`] (`overlay-liveness`): availability probes in the liveness window of
//!   objects that some live node holds as a replica (pinned or replica) succeed.
//! * [`CellSize`] (`cell_size`): every circuit datagram on every link is exactly one cell.
//! * [`StreamIntegrity`] (`stream_integrity`): the bytes a stream delivers are the destination's
//!   response, in order, and a cleanly finished stream delivered all of it.
//! * [`RelayAnonymity`] (`relay_anonymity`): no relay observes both a stream's client and its
//!   destination (the exit is never adjacent to the client, no relay appears twice on a circuit).
//! * [`MixPacketSize`] (`mix_packet_size`): every mix datagram (kinds `Mix` and `MixDelivery`) on
//!   every link is exactly 2 + 2,362 bytes.
//! * [`MixUnlinkable`] (`mix_unlinkable`): no mix datagram a node sends is byte-identical to one
//!   it received (within a bounded window).
//! * [`MixMessageIntegrity`] (`mix_message_integrity`): every message a mix client receives is
//!   byte for byte one the workload sent, at the node it was sent to.
//! * [`LeaseExclusive`] (`lease_exclusive`): at no instant of true time do two nodes hold a valid
//!   lease for the same election group (drifting clocks converted to true time).
//! * [`RewardsConservation`] (`rewards_conservation`): each settled epoch pays out exactly its
//!   emission plus carry, its rows add up, and no epoch is settled twice with different records.
//! * [`RewardsBacked`] (`rewards_backed`): nothing is paid without a valid receipt or proof,
//!   forged receipts earn nothing, and no bandwidth payout exceeds the probe-capped share.

mod circuits;
mod election;
mod integrity;
mod liveness;
mod lookup;
mod mix;
mod overlay;
mod rewards;
mod routing;

pub use circuits::{CellSize, DataVerdict, RelayAnonymity, StreamIntegrity, StreamTruth, is_circuit_datagram};
pub use election::LeaseExclusive;
pub use integrity::RecordIntegrity;
pub use liveness::{Liveness, lookup_succeeded};
pub use lookup::LookupSanity;
pub use mix::{
    MESSAGE_HEADER_LEN, MIX_DATAGRAM_LEN, MixMessageIntegrity, MixPacketSize, MixTruth, MixUnlinkable, Receipt,
    SentMessage, UNLINKABLE_WINDOW_NS, is_mix_datagram, message_bytes, message_nonce,
};
pub use overlay::{ChunkVerdict, Holders, OverlayIntegrity, OverlayLiveness, OverlayTruth};
pub use rewards::{RewardsBacked, RewardsConservation};
pub use routing::RoutingBound;

use crate::scenario::Scenario;
use crate::trace::TraceEvent;
use serde::Serialize;

/// One broken invariant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The checker that found it.
    pub checker: &'static str,
    /// Simulated time of the offending event (or of the end of the run), in nanoseconds.
    pub at: u64,
    /// What was wrong.
    pub message: String,
}

/// An invariant over the trace.
pub trait Checker: Send {
    /// Stable name, used in reports.
    fn name(&self) -> &'static str;
    /// Inspects one event.
    fn on_event(&mut self, event: &TraceEvent<'_>);
    /// Ends the run at `end` (nanoseconds) and returns every violation found, in order.
    fn finish(&mut self, end: u64) -> Vec<Violation>;
    /// How many individual checks were evaluated.
    fn checked(&self) -> u64;
}

/// The checkers every run uses, configured from the scenario.
pub fn standard(scenario: &Scenario) -> Vec<Box<dyn Checker>> {
    let k = scenario.params.dht.k;
    let (start, end) = scenario.liveness_window();
    vec![
        Box::new(RecordIntegrity::default()),
        Box::new(LookupSanity::new(k)),
        Box::new(RoutingBound::new(k)),
        Box::new(Liveness::new(
            start,
            end,
            scenario.checks.liveness_min_success_rate,
            scenario.checks.liveness_min_lookups,
        )),
        Box::new(OverlayIntegrity::default()),
        Box::new(OverlayLiveness::new(start, end)),
        Box::new(CellSize::default()),
        Box::new(StreamIntegrity::default()),
        Box::new(RelayAnonymity::default()),
        Box::new(MixPacketSize::default()),
        Box::new(MixUnlinkable::default()),
        Box::new(MixMessageIntegrity::default()),
        Box::new(LeaseExclusive::default()),
        Box::new(RewardsConservation::default()),
        Box::new(RewardsBacked::default()),
    ]
}

/// The checkers' verdict, as printed in the report.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CheckerSummary {
    /// Individual checks evaluated, over all checkers.
    pub checked: u64,
    /// Violations found, over all checkers.
    pub violations: u64,
    /// The earliest violation, if any.
    pub first: Option<Violation>,
    /// Violations per checker (only checkers with at least one).
    pub by_checker: std::collections::BTreeMap<String, u64>,
}

/// Finishes every checker and summarises their verdicts.
pub fn summarize(checkers: &mut [Box<dyn Checker>], end: u64) -> CheckerSummary {
    let mut summary = CheckerSummary::default();
    for checker in checkers.iter_mut() {
        let violations = checker.finish(end);
        summary.checked += checker.checked();
        summary.violations += violations.len() as u64;
        if !violations.is_empty() {
            summary.by_checker.insert(checker.name().to_string(), violations.len() as u64);
        }
        if let Some(first) = violations.into_iter().next()
            && summary.first.as_ref().is_none_or(|f| first.at < f.at)
        {
            summary.first = Some(first);
        }
    }
    summary
}
