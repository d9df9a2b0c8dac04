//! The circuit report behind `ctl circuits` and `GET /v1/circuits`.

use super::NodeRuntime;
use allium_engine::circuit::CircuitHandle;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Stream bytes carried by one client circuit, as counted by the driver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Traffic {
    /// Bytes handed to the circuit's streams.
    pub sent: u64,
    /// Bytes the circuit's streams delivered.
    pub received: u64,
}

/// One hop of a circuit path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HopInfo {
    /// Hex node identifier.
    pub id: String,
    /// UDP address.
    pub addr: SocketAddr,
}

/// One of this node's own circuits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitInfo {
    /// The circuit's local handle.
    pub handle: u64,
    /// `open`, or `building` while hops are still being added.
    pub state: String,
    /// Guard, middles, exit.
    pub path: Vec<HopInfo>,
    /// Milliseconds since the circuit was built (0 while building).
    pub age_ms: u64,
    /// Open streams.
    pub streams: usize,
    /// Stream bytes sent through the circuit, in bytes.
    pub bytes_sent: u64,
    /// Stream bytes received through the circuit, in bytes.
    pub bytes_received: u64,
    /// Smoothed round trip to the exit, in milliseconds.
    pub srtt_ms: u64,
    /// Congestion window, in cells.
    pub cwnd_cells: u32,
}

/// The node's circuit state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CircuitsReport {
    /// This node's own (client) circuits.
    pub circuits: Vec<CircuitInfo>,
    /// Circuits this node carries for others as a relay.
    pub relayed_circuits: usize,
    /// Relay descriptors in the node's directory.
    pub directory_relays: usize,
    /// Exits among them.
    pub directory_exits: usize,
    /// Hex identifiers of the guards used as first hop.
    pub guards: Vec<String>,
    /// The current (learned or initial) circuit build timeout, in milliseconds.
    pub build_timeout_ms: u64,
}

impl NodeRuntime {
    pub(super) fn circuits_report(&self) -> CircuitsReport {
        let circuits = self.node.circuits();
        let traffic: &BTreeMap<CircuitHandle, Traffic> = &self.traffic;
        CircuitsReport {
            circuits: circuits
                .summaries(self.now())
                .into_iter()
                .map(|summary| {
                    let bytes = traffic.get(&summary.circuit).copied().unwrap_or_default();
                    CircuitInfo {
                        handle: summary.circuit.0,
                        state: if summary.open { "open" } else { "building" }.to_string(),
                        path: summary.path.iter().map(|p| HopInfo { id: p.id.to_hex(), addr: p.addr }).collect(),
                        age_ms: summary.age_ms,
                        streams: summary.streams,
                        bytes_sent: bytes.sent,
                        bytes_received: bytes.received,
                        srtt_ms: summary.srtt_ms,
                        cwnd_cells: summary.cwnd_cells,
                    }
                })
                .collect(),
            relayed_circuits: circuits.relayed_circuits(),
            directory_relays: circuits.directory().len(),
            directory_exits: circuits.directory().iter().filter(|d| d.is_exit()).count(),
            guards: circuits.guards().iter().map(|id| id.to_hex()).collect(),
            build_timeout_ms: circuits.build_timeout_ms(),
        }
    }
}
