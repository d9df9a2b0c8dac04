//! The circuit machine's public vocabulary: handles, configuration, events
//! and errors.

use super::policy::ExitPolicy;
use crate::dht::PeerInfo;
use crate::node::{Addr, CommandId};

/// A client circuit, as named by the node that built it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CircuitHandle(pub u64);

/// A stream, client side or exit side, as named by the local node (unique per node).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamHandle(pub u64);

/// One end of a circuit on one link: the peer's address and the link-local
/// circuit id. What a relay or an observer of the link can see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkCircuit {
    /// The neighbour's transport address.
    pub peer: Addr,
    /// The circuit id on that link (chosen by the side that sent CREATE).
    pub circ_id: u32,
}

/// Bit of [`RelayConfig::flags`]: the relay is willing to be a first hop.
pub const FLAG_GUARD: u8 = 1;
/// Bit of [`RelayConfig::flags`]: the relay expects long uptime.
pub const FLAG_STABLE: u8 = 2;

/// How this node serves others' circuits. Per node, not per network, so it
/// lives in [`crate::NodeConfig`] rather than in [`crate::Params`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayConfig {
    /// Whether the node relays circuits and publishes a descriptor. Default
    /// false: relaying is opt-in, as in Tor (a client-only node still builds
    /// circuits through others).
    pub enabled: bool,
    /// The node's region (an operator-declared network location; path
    /// selection keeps hops in different regions). Default 0.
    pub region: u16,
    /// Bandwidth the relay offers, in bytes per second; path selection
    /// weights relays by it. Default 1000000.
    pub bandwidth_bytes_per_sec: u64,
    /// [`FLAG_GUARD`] | [`FLAG_STABLE`]. Default both.
    pub flags: u8,
    /// Where streams may leave through this relay. Default: nowhere (not an exit).
    pub exit_policy: ExitPolicy,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            enabled: false,
            region: 0,
            bandwidth_bytes_per_sec: 1_000_000,
            flags: FLAG_GUARD | FLAG_STABLE,
            exit_policy: ExitPolicy::reject_all(),
        }
    }
}

/// Why a circuit could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The directory has too few relays (or no exit allowing the port).
    #[error("no usable path: {0}")]
    NoPath(String),
    /// Every attempt timed out or was refused.
    #[error("every attempt failed")]
    Exhausted,
}

/// Why a circuit ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The local application asked.
    Requested,
    /// No stream for `circuit.idle_timeout_secs`.
    Idle,
    /// A relay on the path sent DESTROY (it failed, or a neighbour did).
    Destroyed,
    /// A cell failed authentication: altered in transit.
    Integrity,
    /// The far end stopped acknowledging (`circuit.max_rto_backoffs`).
    Unresponsive,
}

/// Why a stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// The peer finished sending and everything was delivered (clean close).
    Finished,
    /// The exit refused the destination (exit policy).
    Refused,
    /// The exit could not connect or resolve the destination.
    Unreachable,
    /// The peer or the local application aborted the stream.
    Reset,
    /// No CONNECTED within `circuit.stream_connect_timeout_secs`.
    Timeout,
    /// The circuit carrying it ended; see [`CircuitEvent::Closed`].
    CircuitClosed,
}

impl StreamEnd {
    /// The wire code carried in an END frame.
    pub fn code(self) -> u8 {
        match self {
            StreamEnd::Finished => 0,
            StreamEnd::Refused => 1,
            StreamEnd::Unreachable => 2,
            StreamEnd::Reset => 3,
            StreamEnd::Timeout => 4,
            StreamEnd::CircuitClosed => 5,
        }
    }

    /// The reason for a wire code; unknown codes read as `Reset`.
    pub fn from_code(code: u8) -> Self {
        match code {
            0 => StreamEnd::Finished,
            1 => StreamEnd::Refused,
            2 => StreamEnd::Unreachable,
            4 => StreamEnd::Timeout,
            5 => StreamEnd::CircuitClosed,
            _ => StreamEnd::Reset,
        }
    }
}

/// What a relay learns about one circuit it carries. Reported so that
/// simulator checkers can prove that no relay sees both ends; a real node
/// only logs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelayObservation {
    /// A CREATE arrived: the relay now knows its previous hop.
    Created {
        /// The previous hop's side of the circuit.
        prev: LinkCircuit,
    },
    /// The relay extended the circuit: it now knows its next hop too.
    Extended {
        /// The previous hop's side.
        prev: LinkCircuit,
        /// The next hop's side.
        next: LinkCircuit,
    },
    /// The relay, as exit, was asked to open a stream to a destination.
    ExitStream {
        /// The previous hop's side.
        prev: LinkCircuit,
        /// The destination host name as the client gave it.
        host: String,
        /// The destination port.
        port: u16,
    },
}

/// Events of the circuit machine, for the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CircuitEvent {
    /// A [`crate::Command::BuildCircuit`] (or the circuit an
    /// [`crate::Command::OpenStream`] needed, or a replacement) is ready.
    Built {
        /// The command that asked for it.
        id: CommandId,
        /// The new circuit.
        circuit: CircuitHandle,
        /// Guard, middles, exit.
        path: Vec<PeerInfo>,
        /// The circuit on the client's link to the guard.
        first_link: LinkCircuit,
        /// From the command to the last EXTENDED, in milliseconds, over all attempts.
        build_ms: u64,
        /// Paths tried (1 when the first worked).
        attempts: u32,
        /// Set when this circuit replaces one that failed while carrying
        /// streams (then `id` is the command that built the failed one).
        replaces: Option<CircuitHandle>,
    },
    /// A circuit request failed after `circuit.build_attempts` paths.
    BuildFailed {
        /// The command.
        id: CommandId,
        /// Why.
        error: BuildError,
        /// Paths tried.
        attempts: u32,
    },
    /// One build attempt ended without a circuit (timeout or DESTROY); the
    /// request goes on with a new path if attempts remain.
    AttemptFailed {
        /// The command.
        id: CommandId,
        /// Milliseconds the attempt ran.
        elapsed_ms: u64,
        /// Whether the adaptive build timeout ended it.
        timed_out: bool,
    },
    /// A circuit ended; its open streams get [`CircuitEvent::StreamClosed`] too.
    Closed {
        /// The circuit.
        circuit: CircuitHandle,
        /// Why.
        reason: CloseReason,
    },
    /// A stream is connected end to end.
    StreamOpened {
        /// The [`crate::Command::OpenStream`].
        id: CommandId,
        /// The new stream.
        stream: StreamHandle,
        /// The circuit carrying it.
        circuit: CircuitHandle,
    },
    /// A [`crate::Command::OpenStream`] failed.
    StreamFailed {
        /// The command.
        id: CommandId,
        /// Why.
        reason: StreamEnd,
    },
    /// In-order bytes from the stream's peer.
    StreamData {
        /// The stream.
        stream: StreamHandle,
        /// The bytes.
        data: Vec<u8>,
    },
    /// The peer finished sending (half-close): every byte it sent has been
    /// delivered and no more will come. The local side may still send.
    StreamFinished {
        /// The stream.
        stream: StreamHandle,
    },
    /// The stream's send buffer, after reaching `circuit.stream_send_buffer_bytes`,
    /// fell below half of it: the driver may read from the stream's source again.
    StreamWritable {
        /// The stream.
        stream: StreamHandle,
    },
    /// The stream ended; no more data will arrive.
    StreamClosed {
        /// The stream.
        stream: StreamHandle,
        /// Why.
        reason: StreamEnd,
    },
    /// Exit side: a client asked for `host:port` and the exit policy allows
    /// it. The driver resolves and connects, then answers with
    /// [`crate::Command::ExitConnected`] or [`crate::Command::StreamAbort`].
    ExitConnect {
        /// The exit-side stream.
        stream: StreamHandle,
        /// Host name or address as the client gave it (resolved here, never at the client).
        host: String,
        /// Destination port.
        port: u16,
    },
    /// Relay side: what this relay learned about a circuit it carries.
    Relay(RelayObservation),
}
