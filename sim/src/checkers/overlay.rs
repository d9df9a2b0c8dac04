//! Content-overlay checkers: what the application receives is exactly what
//! was published, and what is held somewhere live can be fetched.
//!
//! Both read only trace events. The ground truth is the chunk hashes the
//! simulator computed itself, with BLAKE3, from the content it generated
//! (carried by [`TraceEvent::OverlayPublishStart`]), never anything the
//! engine computed.

use super::{Checker, Violation};
use crate::trace::TraceEvent;
use allium_engine::overlay::{Cid, Holding};
use std::collections::{BTreeMap, BTreeSet};

/// The ground truth of published objects, keyed by content ID (shared by the
/// integrity checker and the metrics).
#[derive(Default)]
pub struct OverlayTruth {
    by_command: BTreeMap<u64, (u64, Vec<[u8; 32]>)>,
    by_cid: BTreeMap<Cid, (u64, Vec<[u8; 32]>)>,
}

/// What a delivered chunk is, judged against the truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkVerdict {
    /// It matches the chunk the simulator generated.
    Genuine,
    /// Its hash differs from the truth, or the index is outside the object.
    Corrupt,
    /// The content ID was never published (no truth to compare with).
    Unknown,
}

impl OverlayTruth {
    /// Learns from publish events; returns the verdict for chunk deliveries.
    pub fn on_event(&mut self, event: &TraceEvent<'_>) -> Option<ChunkVerdict> {
        match event {
            TraceEvent::OverlayPublishStart { id, size, chunks, .. } => {
                self.by_command.insert(*id, (*size, chunks.to_vec()));
                None
            }
            TraceEvent::OverlayPublishDone { id, cid, .. } => {
                if let Some(truth) = self.by_command.remove(id) {
                    self.by_cid.insert(*cid, truth);
                }
                None
            }
            TraceEvent::Abandoned { id, .. } => {
                self.by_command.remove(id);
                None
            }
            TraceEvent::OverlayChunk { cid, chunk, hash, .. } => Some(match self.by_cid.get(cid) {
                None => ChunkVerdict::Unknown,
                Some((_, chunks)) if chunks.get(*chunk as usize) == Some(hash) => ChunkVerdict::Genuine,
                Some(_) => ChunkVerdict::Corrupt,
            }),
            _ => None,
        }
    }

    /// Size and chunk count of a published object.
    pub fn object(&self, cid: &Cid) -> Option<(u64, usize)> {
        self.by_cid.get(cid).map(|(size, chunks)| (*size, chunks.len()))
    }
}

struct OpenFetch {
    cid: Cid,
    good: BTreeSet<u32>,
    bad: bool,
}

/// No chunk reaches the application unless it equals the published chunk
/// (by the simulator's own hash), and a fetch that reports success has
/// delivered every chunk of the object, each matching.
#[derive(Default)]
pub struct OverlayIntegrity {
    truth: OverlayTruth,
    fetches: BTreeMap<u64, OpenFetch>,
    checked: u64,
    violations: Vec<Violation>,
}

impl OverlayIntegrity {
    fn fail(&mut self, at: u64, message: String) {
        self.violations.push(Violation { checker: "overlay-integrity", at, message });
    }
}

impl Checker for OverlayIntegrity {
    fn name(&self) -> &'static str {
        "overlay-integrity"
    }

    fn on_event(&mut self, event: &TraceEvent<'_>) {
        let verdict = self.truth.on_event(event);
        match event {
            TraceEvent::OverlayFetchStart { id, cid, .. } => {
                self.fetches.insert(*id, OpenFetch { cid: *cid, good: BTreeSet::new(), bad: false });
            }
            TraceEvent::OverlayChunk { at, node, id, cid, chunk, .. } => {
                self.checked += 1;
                let verdict = verdict.unwrap_or(ChunkVerdict::Unknown);
                if let Some(open) = self.fetches.get_mut(id) {
                    match verdict {
                        ChunkVerdict::Genuine if open.cid == *cid => {
                            open.good.insert(*chunk);
                        }
                        _ => open.bad = true,
                    }
                }
                match verdict {
                    ChunkVerdict::Genuine => {}
                    ChunkVerdict::Corrupt => self.fail(
                        *at,
                        format!("fetch {id} on node {node} delivered chunk {chunk} of {cid} that differs from the published chunk"),
                    ),
                    ChunkVerdict::Unknown => {
                        self.fail(*at, format!("fetch {id} on node {node} delivered a chunk of unpublished {cid}"))
                    }
                }
            }
            TraceEvent::OverlayFetchDone { at, node, id, cid, result } => {
                let Some(open) = self.fetches.remove(id) else { return };
                let Ok(figures) = result else { return };
                self.checked += 1;
                let Some((size, chunks)) = self.truth.object(cid) else {
                    return self.fail(*at, format!("fetch {id} on node {node} reported success for unpublished {cid}"));
                };
                if open.bad || open.cid != *cid {
                    self.fail(*at, format!("fetch {id} on node {node} reported success after a bad chunk of {cid}"));
                } else if open.good.len() != chunks {
                    self.fail(
                        *at,
                        format!(
                            "fetch {id} on node {node} reported success for {cid} after delivering {} of {chunks} chunks",
                            open.good.len()
                        ),
                    );
                } else if figures.size != size {
                    self.fail(
                        *at,
                        format!("fetch {id} on node {node} reported size {} for {cid} of {size} bytes", figures.size),
                    );
                }
            }
            TraceEvent::Abandoned { id, .. } => {
                self.fetches.remove(id);
            }
            _ => {}
        }
    }

    fn finish(&mut self, _end: u64) -> Vec<Violation> {
        std::mem::take(&mut self.violations)
    }

    fn checked(&self) -> u64 {
        self.checked
    }
}

/// Who holds what, and who is up, from the trace (shared with the metrics).
#[derive(Default)]
pub struct Holders {
    by_cid: BTreeMap<Cid, BTreeMap<u32, Holding>>,
    by_node: BTreeMap<u32, BTreeSet<Cid>>,
    up: BTreeSet<u32>,
}

impl Holders {
    /// Follows node and store events.
    pub fn on_event(&mut self, event: &TraceEvent<'_>) {
        match event {
            TraceEvent::NodeUp { node, .. } => {
                self.up.insert(*node);
            }
            TraceEvent::NodeDown { node, permanent, .. } => {
                self.up.remove(node);
                if *permanent {
                    // Its store is gone with it.
                    for cid in self.by_node.remove(node).unwrap_or_default() {
                        if let Some(holders) = self.by_cid.get_mut(&cid) {
                            holders.remove(node);
                        }
                    }
                }
            }
            TraceEvent::OverlayStored { node, cid, holding, .. } => {
                self.by_cid.entry(*cid).or_default().insert(*node, *holding);
                self.by_node.entry(*node).or_default().insert(*cid);
            }
            TraceEvent::OverlayEvicted { node, cid, .. } => {
                if let Some(holders) = self.by_cid.get_mut(cid) {
                    holders.remove(node);
                }
                if let Some(cids) = self.by_node.get_mut(node) {
                    cids.remove(cid);
                }
            }
            _ => {}
        }
    }

    /// Nodes that are up and hold `cid` complete and announced (pinned or replica).
    pub fn live_holders(&self, cid: &Cid) -> usize {
        self.count_live(cid, |h| h != Holding::Cached)
    }

    /// Nodes that are up and keep `cid` complete as an unannounced cached copy.
    pub fn live_cached(&self, cid: &Cid) -> usize {
        self.count_live(cid, |h| h == Holding::Cached)
    }

    fn count_live(&self, cid: &Cid, counts: impl Fn(Holding) -> bool) -> usize {
        self.by_cid.get(cid).map_or(0, |h| h.iter().filter(|(n, h)| counts(**h) && self.up.contains(n)).count())
    }
}

/// In the liveness window, every availability probe of an object that at
/// least one live node holds as a replica (pinned by its publisher, or a
/// replica) must succeed; a probe that never finishes fails; a probe whose
/// requester went down is not judged.
///
/// Cached copies (kept by a node after an app fetch) are followed too but do
/// not oblige: the overlay deliberately never announces them, so an object
/// whose only live copies are cached is lost to the network, and is counted
/// as such by `overlay.availability`, not as a broken invariant.
pub struct OverlayLiveness {
    start: u64,
    end: u64,
    holders: Holders,
    /// Probes being judged: command id → (content ID, live replica holders, live cached copies), at the start.
    open: BTreeMap<u64, (Cid, usize, usize)>,
    checked: u64,
    violations: Vec<Violation>,
}

impl OverlayLiveness {
    /// A checker for probes started in the window `[start, end)` (nanoseconds).
    pub fn new(start: u64, end: u64) -> Self {
        OverlayLiveness {
            start,
            end,
            holders: Holders::default(),
            open: BTreeMap::new(),
            checked: 0,
            violations: Vec::new(),
        }
    }
}

impl Checker for OverlayLiveness {
    fn name(&self) -> &'static str {
        "overlay-liveness"
    }

    fn on_event(&mut self, event: &TraceEvent<'_>) {
        self.holders.on_event(event);
        match event {
            TraceEvent::OverlayFetchStart { at, id, cid, probe: true, .. } if (self.start..self.end).contains(at) => {
                let live = self.holders.live_holders(cid);
                if live > 0 {
                    self.open.insert(*id, (*cid, live, self.holders.live_cached(cid)));
                }
            }
            TraceEvent::OverlayFetchDone { at, node, id, cid, result } => {
                let Some((_, live, cached)) = self.open.remove(id) else { return };
                self.checked += 1;
                if let Err(error) = result {
                    let message = format!(
                        "availability probe {id} on node {node} of {cid} failed ({error}) while {live} live node(s) held it as a replica ({cached} more cached)"
                    );
                    self.violations.push(Violation { checker: "overlay-liveness", at: *at, message });
                }
            }
            TraceEvent::Abandoned { id, .. } => {
                self.open.remove(id);
            }
            _ => {}
        }
    }

    fn finish(&mut self, end: u64) -> Vec<Violation> {
        for (id, (cid, live, _)) in std::mem::take(&mut self.open) {
            self.checked += 1;
            let message = format!(
                "availability probe {id} of {cid} never finished while {live} live node(s) held it as a replica"
            );
            self.violations.push(Violation { checker: "overlay-liveness", at: end, message });
        }
        std::mem::take(&mut self.violations)
    }

    fn checked(&self) -> u64 {
        self.checked
    }
}
