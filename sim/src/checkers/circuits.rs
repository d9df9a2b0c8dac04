//! Circuit checkers: uniform cells, intact streams, and relays that never
//! see both ends of a stream.

use super::{Checker, Violation};
use crate::destinations::response_bytes;
use crate::trace::TraceEvent;
use allium_engine::circuit::cell::CELL_LEN;
use allium_engine::wire::{self, MessageKind};
use std::collections::{BTreeMap, BTreeSet};

/// Whether a datagram claims to be a circuit cell (version and kind bytes).
pub fn is_circuit_datagram(bytes: &[u8]) -> bool {
    bytes.len() >= 2 && bytes[0] == wire::VERSION && bytes[1] == MessageKind::Circuit as u8
}

/// `cell_size`: every circuit datagram delivered on any link is exactly one
/// cell of [`CELL_LEN`] bytes, whatever it carries.
#[derive(Default)]
pub struct CellSize {
    checked: u64,
    violations: Vec<Violation>,
}

impl Checker for CellSize {
    fn name(&self) -> &'static str {
        "cell_size"
    }

    fn on_event(&mut self, event: &TraceEvent<'_>) {
        if let TraceEvent::Deliver { at, from, to, bytes } = event
            && is_circuit_datagram(bytes)
        {
            self.checked += 1;
            if bytes.len() != CELL_LEN {
                let message = format!("a {}-byte circuit datagram went from node {from} to node {to}", bytes.len());
                self.violations.push(Violation { checker: "cell_size", at: *at, message });
            }
        }
    }

    fn finish(&mut self, _end: u64) -> Vec<Violation> {
        std::mem::take(&mut self.violations)
    }

    fn checked(&self) -> u64 {
        self.checked
    }
}

/// What a stream's delivered bytes were, against the destination's ground truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DataVerdict {
    /// Bytes that differ from the response at their offset, or lie past its end.
    pub corrupted: u64,
    /// Whether the bytes did not start where the previous ones ended.
    pub out_of_order: bool,
}

/// The simulator's ground truth of every open stream: what each response
/// is (`nonce`, `len`) and how far delivery got.
#[derive(Default)]
pub struct StreamTruth {
    /// Command id → (nonce, len, bytes delivered so far).
    open: BTreeMap<u64, (u64, u64, u64)>,
    scratch: Vec<u8>,
}

impl StreamTruth {
    /// Consumes an event; for delivered bytes, returns their verdict.
    pub fn on_event(&mut self, event: &TraceEvent<'_>) -> Option<DataVerdict> {
        match event {
            TraceEvent::StreamStart { id, nonce, len, .. } => {
                self.open.insert(*id, (*nonce, *len, 0));
                None
            }
            TraceEvent::StreamData { id, offset, bytes, .. } => {
                let (nonce, len, delivered) = self.open.get_mut(id)?;
                let out_of_order = *offset != *delivered;
                *delivered = offset.saturating_add(bytes.len() as u64);
                let inside = len.saturating_sub(*offset).min(bytes.len() as u64) as usize;
                self.scratch.resize(inside, 0);
                response_bytes(*nonce, *offset, &mut self.scratch);
                let wrong = bytes[..inside].iter().zip(&self.scratch).filter(|(a, b)| a != b).count();
                let corrupted = (wrong + (bytes.len() - inside)) as u64;
                Some(DataVerdict { corrupted, out_of_order })
            }
            _ => None,
        }
    }

    /// Forgets a stream that ended; returns its (len, bytes delivered).
    pub fn end(&mut self, id: u64) -> Option<(u64, u64)> {
        self.open.remove(&id).map(|(_, len, delivered)| (len, delivered))
    }
}

/// `stream_integrity`: the bytes a client's stream delivers are the
/// destination's response, in order, and a stream that finished cleanly
/// delivered all of it.
#[derive(Default)]
pub struct StreamIntegrity {
    truth: StreamTruth,
    checked: u64,
    violations: Vec<Violation>,
}

impl Checker for StreamIntegrity {
    fn name(&self) -> &'static str {
        "stream_integrity"
    }

    fn on_event(&mut self, event: &TraceEvent<'_>) {
        let mut fail = |at: u64, message: String| {
            self.violations.push(Violation { checker: "stream_integrity", at, message });
        };
        if let Some(verdict) = self.truth.on_event(event) {
            self.checked += 1;
            let TraceEvent::StreamData { at, node, id, offset, .. } = event else { return };
            if verdict.corrupted > 0 {
                fail(
                    *at,
                    format!("stream {id} at node {node} delivered {} wrong bytes at {offset}", verdict.corrupted),
                );
            }
            if verdict.out_of_order {
                fail(*at, format!("stream {id} at node {node} delivered bytes out of order at {offset}"));
            }
            return;
        }
        if let TraceEvent::StreamEnd { at, node, id, reason, received } = event
            && let Some((len, delivered)) = self.truth.end(*id)
        {
            self.checked += 1;
            if delivered != *received {
                fail(*at, format!("stream {id} at node {node} reports {received} bytes but delivered {delivered}"));
            }
            if *reason == "finished" && delivered != len {
                fail(*at, format!("stream {id} at node {node} finished cleanly after {delivered} of {len} bytes"));
            }
        }
    }

    fn finish(&mut self, _end: u64) -> Vec<Violation> {
        std::mem::take(&mut self.violations)
    }

    fn checked(&self) -> u64 {
        self.checked
    }
}

/// `relay_anonymity`: no relay learns both who a stream's client is and
/// where the stream goes. From the relays' own observations (a CREATE from
/// a previous hop, an EXTEND to a next hop, a stream request at an exit),
/// the checker walks each exit stream's circuit back hop by hop to the node
/// that started it; the exit must not be adjacent to that origin, and no
/// relay may appear twice on the circuit.
#[derive(Default)]
pub struct RelayAnonymity {
    /// (relay, next hop, next circ id) → (previous hop, previous circ id), from EXTENDs.
    extended: BTreeMap<(u32, u32, u32), (u32, u32)>,
    checked: u64,
    violations: Vec<Violation>,
}

/// Longest circuit the walk follows (a loop guard).
const MAX_WALK: usize = 16;

impl RelayAnonymity {
    /// The relays of the circuit ending at `exit` (exit first) and its origin.
    fn walk(&self, exit: u32, prev: u32, prev_circ: u32) -> (Vec<u32>, u32) {
        let mut relays = vec![exit];
        let (mut hop, mut link) = (prev, (exit, prev_circ));
        // `hop` sent the cell on `link`; if `hop` extended a circuit to it, it is a relay.
        while relays.len() < MAX_WALK {
            match self.extended.get(&(hop, link.0, link.1)) {
                Some(&(before, before_circ)) => {
                    relays.push(hop);
                    link = (hop, before_circ);
                    hop = before;
                }
                None => break,
            }
        }
        (relays, hop)
    }
}

impl Checker for RelayAnonymity {
    fn name(&self) -> &'static str {
        "relay_anonymity"
    }

    fn on_event(&mut self, event: &TraceEvent<'_>) {
        match event {
            TraceEvent::RelayExtended { node, prev, prev_circ, next, next_circ, .. } => {
                self.extended.insert((*node, *next, *next_circ), (*prev, *prev_circ));
            }
            TraceEvent::RelayExit { at, node, prev, prev_circ, host, port } => {
                self.checked += 1;
                let (relays, origin) = self.walk(*node, *prev, *prev_circ);
                let distinct: BTreeSet<u32> = relays.iter().copied().collect();
                let message = if relays.len() == 1 {
                    Some(format!("exit {node} saw client {origin} and destination {host}:{port}"))
                } else if distinct.len() != relays.len() || distinct.contains(&origin) {
                    Some(format!("circuit to {host}:{port} from client {origin} passes a relay twice: {relays:?}"))
                } else {
                    None
                };
                if let Some(message) = message {
                    self.violations.push(Violation { checker: "relay_anonymity", at: *at, message });
                }
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
