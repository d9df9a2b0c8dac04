//! Trace events: everything that happens in a run, in order.
//!
//! The trace is the only thing checkers and the metrics see. Node-level
//! figures the simulator measures with its global view (for example the
//! true closest live node to a lookup's target) are carried in the events.

use super::rewards::{Cheat, PayoutFigures, SettledFigures};
use crate::net::DropCause;
use crate::scenario::MixRole;
use allium_engine::NodeId;
use allium_engine::mix::MixObservation;
use allium_engine::overlay::{Cid, Holding};

/// A phase boundary of the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Nodes join.
    Join,
    /// Workload and faults run; safety checkers must hold.
    Safety,
    /// Faults are healed; the system must converge.
    Liveness,
    /// No new commands; in-flight ones finish.
    Drain,
    /// The end of the run.
    End,
}

impl Phase {
    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Join => "join",
            Phase::Safety => "safety",
            Phase::Liveness => "liveness",
            Phase::Drain => "drain",
            Phase::End => "end",
        }
    }
}

/// A fault switching on or off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultEdge {
    /// Partition `i` starts.
    PartitionStart(u32),
    /// Partition `i` heals.
    PartitionHeal(u32),
    /// Loss burst `i` starts.
    BurstStart(u32),
    /// Loss burst `i` ends.
    BurstEnd(u32),
    /// Per-packet delay and duplication rules switch on.
    PacketRulesOn,
    /// Everything is healed (start of the liveness phase).
    HealAll,
}

/// Figures of a finished query, as the engine reported them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryFigures {
    /// Hops to the best answer.
    pub hops: u32,
    /// Requests sent for the query.
    pub requests: u32,
    /// Whether the lookup timeout cut it short.
    pub timed_out: bool,
}

/// Figures of a successful overlay fetch, as the engine reported them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FetchFigures {
    /// Object size, in bytes.
    pub size: u64,
    /// Chunks fetched from the network.
    pub chunks_fetched: u32,
    /// Block bytes received from providers.
    pub bytes_received: u64,
    /// Providers that delivered at least one verified block.
    pub providers_used: u32,
    /// Blocks the engine rejected because their hash did not match.
    pub corrupt_rejected: u32,
}

/// A record returned by a get, as seen by the checkers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordView<'a> {
    /// The key the record claims.
    pub key: NodeId,
    /// The publisher's identifier.
    pub publisher: NodeId,
    /// The value.
    pub value: &'a [u8],
}

/// One event of a run. `at` is simulated (true) time in nanoseconds; `node`,
/// `from` and `to` are node indices (stable for the whole run; a node that
/// restarts keeps its index, a node that joins through churn gets a fresh one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceEvent<'a> {
    /// A phase starts.
    Phase {
        /// When.
        at: u64,
        /// Which.
        phase: Phase,
    },
    /// A fault switches on or off.
    Fault {
        /// When.
        at: u64,
        /// What.
        edge: FaultEdge,
    },
    /// A node process starts (fresh, or restarted from what it persisted).
    NodeUp {
        /// When.
        at: u64,
        /// Its index.
        node: u32,
        /// Its identifier.
        id: NodeId,
        /// Whether it was restarted after a crash.
        restarted: bool,
    },
    /// A node process stops (crash, or leaving for good through churn).
    NodeDown {
        /// When.
        at: u64,
        /// Its index.
        node: u32,
        /// Whether it never comes back.
        permanent: bool,
    },
    /// A node finished joining (its bootstrap self-lookup).
    Joined {
        /// When.
        at: u64,
        /// Its index.
        node: u32,
        /// Routing-table size at that moment.
        peers: u32,
    },
    /// A node's bootstrap reached no one (it retries).
    BootstrapFailed {
        /// When.
        at: u64,
        /// Its index.
        node: u32,
    },
    /// A datagram was handed to its receiver.
    Deliver {
        /// When.
        at: u64,
        /// Sender index.
        from: u32,
        /// Receiver index.
        to: u32,
        /// The datagram.
        bytes: &'a [u8],
    },
    /// A datagram was dropped.
    Drop {
        /// When (at the sender for network and fault drops, at the receiver for `node_down`).
        at: u64,
        /// Sender index.
        from: u32,
        /// Receiver index (`u32::MAX` if the address named no node).
        to: u32,
        /// Why.
        cause: DropCause,
        /// Its size in bytes.
        len: u32,
    },
    /// A node's timer fired.
    Timeout {
        /// When.
        at: u64,
        /// Its index.
        node: u32,
    },
    /// The workload started a `FindNode` lookup.
    LookupStart {
        /// When.
        at: u64,
        /// Requester index.
        node: u32,
        /// Command id.
        id: u64,
        /// The target.
        target: NodeId,
        /// The live node closest to the target (requester excluded), by the simulator's global view.
        true_closest: Option<NodeId>,
    },
    /// A lookup finished.
    LookupDone {
        /// When.
        at: u64,
        /// Requester index.
        node: u32,
        /// Command id.
        id: u64,
        /// The target.
        target: NodeId,
        /// The identifiers returned, in the engine's order.
        closest: Vec<NodeId>,
        /// The live node closest to the target (requester excluded), now.
        true_closest: Option<NodeId>,
        /// Engine figures.
        figures: QueryFigures,
    },
    /// The workload started a put.
    PutStart {
        /// When.
        at: u64,
        /// Publisher index.
        node: u32,
        /// Command id.
        id: u64,
        /// The record key.
        key: NodeId,
        /// The publisher's identifier.
        publisher: NodeId,
        /// The value.
        value: &'a [u8],
    },
    /// A put finished.
    PutDone {
        /// When.
        at: u64,
        /// Publisher index.
        node: u32,
        /// Command id.
        id: u64,
        /// The record key.
        key: NodeId,
        /// How many peers accepted it.
        stored: u32,
        /// Engine figures.
        figures: QueryFigures,
    },
    /// The workload started a get.
    GetStart {
        /// When.
        at: u64,
        /// Requester index.
        node: u32,
        /// Command id.
        id: u64,
        /// The key.
        key: NodeId,
    },
    /// A get finished.
    GetDone {
        /// When.
        at: u64,
        /// Requester index.
        node: u32,
        /// Command id.
        id: u64,
        /// The key asked for.
        key: NodeId,
        /// The record returned, if any.
        record: Option<RecordView<'a>>,
        /// Engine figures.
        figures: QueryFigures,
    },
    /// A command's node went down before it finished; it never will.
    Abandoned {
        /// When.
        at: u64,
        /// Requester index.
        node: u32,
        /// Command id.
        id: u64,
    },
    /// A node rejected a datagram.
    Rejected {
        /// When.
        at: u64,
        /// Receiver index.
        node: u32,
        /// Sender index.
        from: u32,
        /// The engine's metric name for the reason.
        reason: &'static str,
    },
    /// A node refused a command.
    CommandRejected {
        /// When.
        at: u64,
        /// Node index.
        node: u32,
        /// Command id.
        id: u64,
    },
    /// The workload started publishing an object. `chunks` is the simulator's
    /// ground truth: the BLAKE3 hash of each `overlay.chunk_bytes` slice of
    /// the content it generated, computed without the engine.
    OverlayPublishStart {
        /// When.
        at: u64,
        /// Publisher index.
        node: u32,
        /// Command id.
        id: u64,
        /// Object size, in bytes.
        size: u64,
        /// BLAKE3 of each chunk of the content, in order.
        chunks: &'a [[u8; 32]],
    },
    /// A publication finished (`Published`).
    OverlayPublishDone {
        /// When.
        at: u64,
        /// Publisher index.
        node: u32,
        /// Command id.
        id: u64,
        /// The content ID the engine assigned.
        cid: Cid,
        /// Object size the engine reports, in bytes.
        size: u64,
        /// DHT nodes that accepted the provider record.
        providers_stored: u32,
    },
    /// The workload started a fetch (an app fetch, or an availability probe).
    OverlayFetchStart {
        /// When.
        at: u64,
        /// Requester index.
        node: u32,
        /// Command id.
        id: u64,
        /// The content ID.
        cid: Cid,
        /// Whether this is a liveness-phase availability probe.
        probe: bool,
    },
    /// A fetch finished.
    OverlayFetchDone {
        /// When.
        at: u64,
        /// Requester index.
        node: u32,
        /// Command id.
        id: u64,
        /// The content ID.
        cid: Cid,
        /// Engine figures, or the error's label.
        result: Result<FetchFigures, &'static str>,
    },
    /// A verified chunk was delivered to the application (`Data`).
    OverlayChunk {
        /// When.
        at: u64,
        /// Requester index.
        node: u32,
        /// Command id.
        id: u64,
        /// The content ID.
        cid: Cid,
        /// Chunk index.
        chunk: u32,
        /// Offset of the bytes in the object.
        offset: u64,
        /// Number of bytes delivered.
        len: u32,
        /// BLAKE3 of the delivered bytes, computed by the simulator.
        hash: [u8; 32],
    },
    /// An object became complete in a node's store, or changed holding.
    OverlayStored {
        /// When.
        at: u64,
        /// Node index.
        node: u32,
        /// The content ID.
        cid: Cid,
        /// Why it is kept.
        holding: Holding,
    },
    /// An object was evicted from a node's store.
    OverlayEvicted {
        /// When.
        at: u64,
        /// Node index.
        node: u32,
        /// The content ID.
        cid: Cid,
    },
    /// A client's circuit is built (`CircuitEvent::Built`).
    CircuitBuilt {
        /// When.
        at: u64,
        /// Client index.
        node: u32,
        /// The command that asked for it (a stream's, or the one of the circuit it replaces).
        id: u64,
        /// The client's handle for the circuit.
        circuit: u64,
        /// Relay indices, guard first, exit last.
        path: Vec<u32>,
        /// The circuit id on the client's link to the guard.
        first_circ: u32,
        /// Engine-measured build time over all attempts, in milliseconds.
        build_ms: u64,
        /// Paths tried.
        attempts: u32,
        /// Whether it replaces a circuit that failed while carrying streams.
        replacement: bool,
    },
    /// A circuit request failed after every attempt (`CircuitEvent::BuildFailed`).
    CircuitBuildFailed {
        /// When.
        at: u64,
        /// Client index.
        node: u32,
        /// The command.
        id: u64,
        /// Paths tried.
        attempts: u32,
        /// Why (`no_path` or `exhausted`).
        reason: &'static str,
    },
    /// A client's circuit ended (`CircuitEvent::Closed`).
    CircuitClosed {
        /// When.
        at: u64,
        /// Client index.
        node: u32,
        /// The client's handle.
        circuit: u64,
        /// Why (`requested`, `idle`, `destroyed`, `integrity`, `unresponsive`).
        reason: &'static str,
    },
    /// The workload opened a stream: the client asks `host:port` for a
    /// `len`-byte response whose content is [`crate::destinations::response_bytes`] for `nonce`.
    StreamStart {
        /// When.
        at: u64,
        /// Client index.
        node: u32,
        /// Command id (names the stream in later events).
        id: u64,
        /// Destination host.
        host: &'a str,
        /// Destination port.
        port: u16,
        /// Names the response content.
        nonce: u64,
        /// Response length, in bytes.
        len: u64,
    },
    /// The stream is connected end to end.
    StreamOpened {
        /// When.
        at: u64,
        /// Client index.
        node: u32,
        /// The stream's command id.
        id: u64,
        /// The circuit carrying it.
        circuit: u64,
    },
    /// In-order response bytes delivered to the client application.
    StreamData {
        /// When.
        at: u64,
        /// Client index.
        node: u32,
        /// The stream's command id.
        id: u64,
        /// Offset of the bytes in the response.
        offset: u64,
        /// The bytes.
        bytes: &'a [u8],
    },
    /// A stream ended at the client (or could not be opened).
    StreamEnd {
        /// When.
        at: u64,
        /// Client index.
        node: u32,
        /// The stream's command id.
        id: u64,
        /// Why (`finished`, `refused`, `unreachable`, `reset`, `timeout`, `circuit_closed`).
        reason: &'static str,
        /// Response bytes delivered in all.
        received: u64,
    },
    /// A relay accepted a CREATE: it learned its previous hop.
    RelayCreated {
        /// When.
        at: u64,
        /// Relay index.
        node: u32,
        /// Previous hop's index.
        prev: u32,
        /// Circuit id on the previous link.
        prev_circ: u32,
    },
    /// A relay extended a circuit: it learned its next hop.
    RelayExtended {
        /// When.
        at: u64,
        /// Relay index.
        node: u32,
        /// Previous hop's index.
        prev: u32,
        /// Circuit id on the previous link.
        prev_circ: u32,
        /// Next hop's index.
        next: u32,
        /// Circuit id on the next link.
        next_circ: u32,
    },
    /// An exit was asked to open a stream: it learned a destination.
    RelayExit {
        /// When.
        at: u64,
        /// Exit index.
        node: u32,
        /// Previous hop's index.
        prev: u32,
        /// Circuit id on the previous link.
        prev_circ: u32,
        /// Destination host.
        host: &'a str,
        /// Destination port.
        port: u16,
    },
    /// A node of a mixnet scenario took a mixnet role, when it was spawned.
    MixNode {
        /// When.
        at: u64,
        /// Its index.
        node: u32,
        /// Client, provider, or mix of a layer.
        role: MixRole,
        /// Its network region (for the latency model).
        region: u16,
    },
    /// A mix client's provider accepted it (`MixEvent::Ready`): it can send and receive.
    MixReady {
        /// When.
        at: u64,
        /// Client index.
        node: u32,
        /// Its provider's index (`u32::MAX` if unknown to the simulator).
        provider: u32,
    },
    /// The workload sent a mixnet message, or answered one through its reply
    /// block. The content is [`crate::checkers::message_bytes`] of `nonce`.
    MixSend {
        /// When.
        at: u64,
        /// Sender index.
        node: u32,
        /// Command id.
        id: u64,
        /// Recipient index (for an answer: the original sender, whom the replier does not know).
        to: u32,
        /// Length in bytes.
        len: u64,
        /// Names the content.
        nonce: u64,
        /// For an answer: the command id of the message it answers.
        reply_to: Option<u64>,
        /// Reply blocks the message carries.
        reply_blocks: u8,
    },
    /// A mix client received a whole message (`MixEvent::Received`).
    MixReceived {
        /// When.
        at: u64,
        /// Recipient index.
        node: u32,
        /// The nonce its first 8 bytes name (`None` if shorter).
        nonce: Option<u64>,
        /// Whether it came through a reply block of this node's.
        reply: bool,
        /// The message.
        data: &'a [u8],
    },
    /// Every fragment of a message was acknowledged to its sender (`MixEvent::Delivered`).
    MixDelivered {
        /// When.
        at: u64,
        /// Sender index.
        node: u32,
        /// Command id.
        id: u64,
    },
    /// The sender gave a message up, or could not send it (`MixEvent::Failed`).
    MixFailed {
        /// When.
        at: u64,
        /// Sender index.
        node: u32,
        /// Command id.
        id: u64,
        /// Why (`unacknowledged`, `no_route`, `no_reply_block`, `queue_full`, `too_large`, `not_client`).
        reason: &'static str,
    },
    /// A packet-level fact at a mixnet node (`MixEvent::Observed`): the global view.
    MixPacket {
        /// When.
        at: u64,
        /// The node that observed it.
        node: u32,
        /// What happened to which packet.
        observation: MixObservation,
    },
    /// Every member of an election group has been spawned (`[election]`).
    ElectionGroup {
        /// When.
        at: u64,
        /// Group number.
        group: u32,
        /// Members.
        members: u32,
        /// The failover budget of the group: `params.election.lease_ms` plus
        /// two of the group's longest round trips (base latency and largest
        /// jitter both ways, between any two members), in milliseconds.
        budget_ms: u64,
    },
    /// A group member holds the lease, in true time, from `at` until `until`
    /// (its own belief converted from its clock), as first observed after
    /// an input: at an acquisition, or when a renewal extended it.
    LeaseHeld {
        /// When (the acquisition, or the renewal that extended it).
        at: u64,
        /// Member index.
        node: u32,
        /// Group number.
        group: u32,
        /// True time at which the member's belief ends, in nanoseconds.
        until: u64,
        /// Whether the member did not hold the lease just before (an acquisition).
        acquired: bool,
    },
    /// A node's part in rewards accounting (`[accounting]`), at its spawn.
    RewardsNode {
        /// When.
        at: u64,
        /// Node index.
        node: u32,
        /// Honest, or how it cheats.
        cheat: Cheat,
        /// Whether it audits records.
        auditor: bool,
    },
    /// The simulator made a cheater cheat.
    Cheated {
        /// When.
        at: u64,
        /// The cheater.
        node: u32,
        /// The epoch cheated in.
        epoch: u64,
        /// How.
        cheat: Cheat,
        /// How much: bytes receipted falsely (inflater), receipts forged
        /// (forger), chunks discarded (dropper).
        amount: u64,
    },
    /// A coordinator settled an epoch (its signed record and inputs).
    EpochSettled {
        /// When.
        at: u64,
        /// The coordinator.
        node: u32,
        /// The epoch.
        epoch: u64,
        /// The record's figures.
        figures: SettledFigures,
    },
    /// One row of a settled record, with its evidence (follows its `EpochSettled`).
    Payout {
        /// When.
        at: u64,
        /// The node paid (`u32::MAX`: an id that is no node of the run).
        node: u32,
        /// The epoch.
        epoch: u64,
        /// Units and evidence.
        figures: PayoutFigures,
    },
    /// A periodic routing-table snapshot of one live node.
    Snapshot {
        /// When.
        at: u64,
        /// Node index.
        node: u32,
        /// Contacts in the table.
        peers: u32,
        /// Contacts in the fullest bucket.
        max_bucket: u32,
    },
}

impl TraceEvent<'_> {
    /// The simulated time of the event, in nanoseconds.
    pub fn at(&self) -> u64 {
        match self {
            TraceEvent::Phase { at, .. }
            | TraceEvent::Fault { at, .. }
            | TraceEvent::NodeUp { at, .. }
            | TraceEvent::NodeDown { at, .. }
            | TraceEvent::Joined { at, .. }
            | TraceEvent::BootstrapFailed { at, .. }
            | TraceEvent::Deliver { at, .. }
            | TraceEvent::Drop { at, .. }
            | TraceEvent::Timeout { at, .. }
            | TraceEvent::LookupStart { at, .. }
            | TraceEvent::LookupDone { at, .. }
            | TraceEvent::PutStart { at, .. }
            | TraceEvent::PutDone { at, .. }
            | TraceEvent::GetStart { at, .. }
            | TraceEvent::GetDone { at, .. }
            | TraceEvent::Abandoned { at, .. }
            | TraceEvent::Rejected { at, .. }
            | TraceEvent::CommandRejected { at, .. }
            | TraceEvent::Snapshot { at, .. }
            | TraceEvent::OverlayPublishStart { at, .. }
            | TraceEvent::OverlayPublishDone { at, .. }
            | TraceEvent::OverlayFetchStart { at, .. }
            | TraceEvent::OverlayFetchDone { at, .. }
            | TraceEvent::OverlayChunk { at, .. }
            | TraceEvent::OverlayStored { at, .. }
            | TraceEvent::OverlayEvicted { at, .. }
            | TraceEvent::CircuitBuilt { at, .. }
            | TraceEvent::CircuitBuildFailed { at, .. }
            | TraceEvent::CircuitClosed { at, .. }
            | TraceEvent::StreamStart { at, .. }
            | TraceEvent::StreamOpened { at, .. }
            | TraceEvent::StreamData { at, .. }
            | TraceEvent::StreamEnd { at, .. }
            | TraceEvent::RelayCreated { at, .. }
            | TraceEvent::RelayExtended { at, .. }
            | TraceEvent::RelayExit { at, .. }
            | TraceEvent::MixNode { at, .. }
            | TraceEvent::MixReady { at, .. }
            | TraceEvent::MixSend { at, .. }
            | TraceEvent::MixReceived { at, .. }
            | TraceEvent::MixDelivered { at, .. }
            | TraceEvent::MixFailed { at, .. }
            | TraceEvent::MixPacket { at, .. }
            | TraceEvent::ElectionGroup { at, .. }
            | TraceEvent::LeaseHeld { at, .. }
            | TraceEvent::RewardsNode { at, .. }
            | TraceEvent::Cheated { at, .. }
            | TraceEvent::EpochSettled { at, .. }
            | TraceEvent::Payout { at, .. } => *at,
        }
    }
}
