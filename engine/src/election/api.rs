//! The election machine's public vocabulary: configuration, commands,
//! events and status.

use super::membership::{JoinToken, Membership};
use crate::identity::NodeId;
use crate::time::Instant;

/// One group this node belongs to (or is joining).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    /// The group's name (1 ..= 64 bytes); must match the membership's.
    pub name: String,
    /// The founder's Ed25519 public key, trusted to sign memberships and tokens.
    pub founder_key: [u8; 32],
    /// The initial membership, signed by the founder (normally version 1).
    pub membership: Membership,
    /// This node's priority when it joins with a token (its priority as a
    /// member is the one in the membership list). 0 ..= 255.
    pub priority: u8,
    /// A founder-signed token: the node asks the leader to add it at start.
    /// Default none.
    pub join_token: Option<JoinToken>,
}

/// The groups a node takes part in. Per node, so it lives in
/// [`crate::NodeConfig`]. Default: none (the machine is idle).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ElectionConfig {
    /// The groups.
    pub groups: Vec<GroupConfig>,
}

/// A request from the local application to the election machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElectionCommand {
    /// Ask the group's leader to add this node, with a founder-signed token.
    Join {
        /// The group (must be configured).
        group: String,
        /// The token.
        token: JoinToken,
    },
    /// At the leader: remove member `id` in a new membership version.
    RemoveMember {
        /// The group.
        group: String,
        /// The member to remove (not the leader itself).
        id: NodeId,
    },
    /// Ask the leader to remove this node.
    Leave {
        /// The group.
        group: String,
    },
}

/// What the election machine tells the application.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ElectionEvent {
    /// The leader this node knows of changed (`None`: no valid leader known).
    LeaderChanged {
        /// The group.
        group: String,
        /// The new leader.
        leader: Option<NodeId>,
        /// The ballot it was last seen with (0 when none).
        ballot: u64,
    },
    /// This node now holds the lease.
    LeaseAcquired {
        /// The group.
        group: String,
        /// Until when it believes the lease valid, on this node's clock
        /// (renewals extend it: see [`GroupStatus::lease_valid_until`]).
        valid_until: Instant,
    },
    /// This node no longer holds the lease (it expired unrenewed, or the
    /// node was removed).
    LeaseLost {
        /// The group.
        group: String,
    },
    /// This node adopted a new membership version.
    MembershipChanged {
        /// The group.
        group: String,
        /// The new version.
        version: u64,
    },
}

/// A summary of one group, for `ctl leader` and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupStatus {
    /// The group.
    pub group: String,
    /// The membership version this node holds.
    pub version: u64,
    /// Its number of members.
    pub members: usize,
    /// Whether this node is in it.
    pub is_member: bool,
    /// The leader this node knows of.
    pub leader: Option<NodeId>,
    /// That leader's last ballot.
    pub ballot: u64,
    /// When this node is the leader: until when its lease is valid (own clock).
    pub lease_valid_until: Option<Instant>,
    /// The candidate this node has promised not to vote against, and until when (own clock).
    pub promised: Option<(NodeId, Instant)>,
}

impl GroupStatus {
    /// Whether this node holds a valid lease at `now` (own clock).
    pub fn holds_lease(&self, now: Instant) -> bool {
        self.lease_valid_until.is_some_and(|until| now < until)
    }
}

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ElectionError {
    /// No group of that name is configured.
    #[error("unknown election group {0:?}")]
    UnknownGroup(String),
    /// The command must be given at the leader.
    #[error("this node does not hold the lease")]
    NotLeader,
    /// No member has that id.
    #[error("no such member")]
    NoSuchMember,
    /// The leader cannot remove itself.
    #[error("the leader cannot remove itself")]
    RemoveSelf,
    /// The token does not verify.
    #[error("bad join token: {0}")]
    BadToken(#[from] super::membership::MembershipError),
    /// This node is not a member.
    #[error("not a member")]
    NotMember,
}
