//! The mixnet machine's public vocabulary: configuration, handles, events
//! and the packet observations the simulator builds its global view from.

use super::address::MixAddress;
use crate::identity::NodeId;
use crate::node::CommandId;

/// The part a node plays in the mixnet besides being a client. Per node,
/// so it lives in [`crate::NodeConfig`] rather than in [`crate::Params`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MixService {
    /// Neither mix nor provider. Default.
    #[default]
    None,
    /// A mix of one stratified layer: `Some(layer)` (0-based, below
    /// `mix.layers`), or `None` to take the layer from the node id, which
    /// spreads mixes evenly over the layers.
    Mix {
        /// The layer, if chosen by the operator.
        layer: Option<u8>,
    },
    /// A provider (gateway): every client's first and last hop; holds
    /// messages for clients that are away.
    Provider,
}

/// How this node takes part in the mixnet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MixConfig {
    /// Mix or provider service. Default none.
    pub service: MixService,
    /// Whether the node is a mixnet client: it subscribes to a provider,
    /// sends cover traffic at the `mix.*_rate_per_sec` rates, and can send
    /// and receive messages. Default false.
    pub client: bool,
    /// The provider the client uses; `None` picks the provider whose id is
    /// closest (XOR) to the node's own. Default none.
    pub provider: Option<NodeId>,
}

/// A received message's reply blocks, as named by the node that received
/// it: the key for [`crate::Command::MixReply`]. It does not identify the
/// sender, to the recipient or anyone else.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReplyHandle(pub u64);

/// A 128-bit digest of a mix datagram's bytes (header included), by which
/// [`MixObservation`]s name packets: the first 16 bytes of its BLAKE3 hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PacketDigest(pub u128);

impl PacketDigest {
    /// The digest of a whole datagram.
    pub fn of(datagram: &[u8]) -> PacketDigest {
        let hash = blake3::hash(datagram);
        let mut first = [0u8; 16];
        first.copy_from_slice(&hash.as_bytes()[..16]);
        PacketDigest(u128::from_le_bytes(first))
    }
}

/// What a packet carries, as its sender (or, on arrival, its recipient) knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PacketKind {
    /// A fragment of a message.
    Message,
    /// An acknowledgement, sent through the sender's reply block.
    Ack,
    /// A fragment of a reply, sent through a reply block.
    Reply,
    /// Client cover that loops back to the client.
    LoopCover,
    /// Client cover that a random provider drops.
    DropCover,
    /// A mix's own cover, looping through every layer back to it.
    MixLoop,
}

impl PacketKind {
    /// Whether the packet is cover traffic.
    pub fn is_cover(self) -> bool {
        matches!(self, PacketKind::LoopCover | PacketKind::DropCover | PacketKind::MixLoop)
    }

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            PacketKind::Message => "message",
            PacketKind::Ack => "ack",
            PacketKind::Reply => "reply",
            PacketKind::LoopCover => "loop",
            PacketKind::DropCover => "drop",
            PacketKind::MixLoop => "mix-loop",
        }
    }
}

/// One packet-level fact at one node, reported when `mix.observe` is set.
/// Together, every node's observations are the global view the
/// simulator measures latency and anonymity from; a real node leaves them off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MixObservation {
    /// This node made a packet and sent it to its first hop.
    Originated {
        /// The datagram sent.
        packet: PacketDigest,
        /// What it carries.
        kind: PacketKind,
    },
    /// A packet arrived, passed the MAC and replay checks, and is held
    /// (a mix's queue or pool; a provider holds it for no time).
    Accepted {
        /// The datagram received.
        packet: PacketDigest,
    },
    /// A held packet left for its next hop, re-encrypted.
    Released {
        /// The datagram that arrived.
        input: PacketDigest,
        /// The datagram that left.
        output: PacketDigest,
    },
    /// This node was the packet's last hop (a provider delivering or
    /// dropping, or a mix receiving its own loop).
    Consumed {
        /// The datagram that arrived.
        input: PacketDigest,
    },
    /// A provider pushed a consumed packet's content to its client.
    Pushed {
        /// The datagram that arrived at the provider.
        input: PacketDigest,
        /// The delivery datagram sent to the client.
        delivery: PacketDigest,
    },
    /// An accepted packet was dropped without leaving: its next hop is
    /// not in this node's topology, or the mix queue was full.
    Dropped {
        /// The datagram that arrived.
        input: PacketDigest,
    },
    /// A delivery from its provider reached this client.
    Arrived {
        /// The delivery datagram.
        delivery: PacketDigest,
        /// What it turned out to carry (`None`: nothing this client could read).
        kind: Option<PacketKind>,
    },
}

/// Why a message could not be sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MixSendError {
    /// The node is not a mixnet client (`mix.client` is off).
    #[error("this node is not a mixnet client")]
    NotClient,
    /// Longer than `mix.max_message_bytes`, or more reply blocks than a message carries.
    #[error("message too large: {0}")]
    TooLarge(String),
    /// The client's send queue (`mix.send_queue_packets`) is full.
    #[error("send queue full")]
    QueueFull,
    /// Fewer reply blocks are left under this handle than the answer has
    /// fragments (each fragment, and each retransmission, takes one).
    #[error("no reply block left")]
    NoReplyBlock,
    /// A fragment was not acknowledged after `mix.max_retransmits` retries.
    #[error("not acknowledged")]
    Unacknowledged,
    /// No route: the topology lacks a layer or a provider, or the
    /// recipient's provider is unknown.
    #[error("no route: {0}")]
    NoRoute(String),
}

/// Events of the mixnet machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MixEvent {
    /// The client has a provider and a topology; others reach it at `address`.
    Ready {
        /// The client's mix address.
        address: MixAddress,
    },
    /// Every fragment of a [`crate::Command::MixSend`] or
    /// [`crate::Command::MixReply`] was acknowledged.
    Delivered {
        /// The command.
        id: CommandId,
    },
    /// A message could not be sent, or was given up.
    Failed {
        /// The command.
        id: CommandId,
        /// Why.
        reason: MixSendError,
    },
    /// A message arrived for this client.
    Received {
        /// The message.
        data: Vec<u8>,
        /// Reply blocks came with it: answer with [`crate::Command::MixReply`].
        reply: Option<ReplyHandle>,
        /// It answers this node's [`crate::Command::MixSend`] with that id.
        in_reply_to: Option<CommandId>,
    },
    /// A packet-level fact (only with `mix.observe`).
    Observed(MixObservation),
}

/// A summary of the node's mixnet state, for `ctl mix status` and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MixStatus {
    /// The client's address, once it has a provider.
    pub address: Option<MixAddress>,
    /// Mixes known per layer.
    pub layers: Vec<usize>,
    /// Providers known.
    pub providers: usize,
    /// Packets held in this node's mix queue.
    pub queued: usize,
    /// Real packets waiting for the payload stream.
    pub send_queue: usize,
    /// Messages sent and not yet acknowledged.
    pub in_flight: usize,
    /// Clients subscribed to this provider.
    pub clients: usize,
    /// Messages this provider holds for absent clients.
    pub held: usize,
    /// Replay tags this mix or provider remembers (current and previous key epoch).
    pub replay_tags: usize,
}
