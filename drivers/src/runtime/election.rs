//! The election machine's view for the control API (`GET /v1/leader`) and
//! its commands (join, remove, leave).

use super::NodeRuntime;
use allium_engine::election::{ElectionCommand, GroupStatus};
use allium_engine::{Command, CommandId, Instant};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// One election group as this node sees it, for `ctl leader`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaderInfo {
    /// The group's name.
    pub group: String,
    /// The membership version this node holds.
    pub version: u64,
    /// The number of members in that version.
    pub members: usize,
    /// Whether this node is one of them.
    pub is_member: bool,
    /// The leader this node knows of (node id, hex), or `None`.
    pub leader: Option<String>,
    /// That leader's last ballot (0 when none).
    pub ballot: u64,
    /// Whether this node holds the group's lease now.
    pub holds_lease: bool,
    /// When it holds the lease: how long it still believes it valid without
    /// a renewal, in milliseconds (own clock).
    pub lease_remaining_ms: Option<u64>,
    /// The candidate this node has an unexpired promise to (node id, hex), or `None`.
    pub promised_to: Option<String>,
}

impl LeaderInfo {
    /// The report of `status` at `now` (this node's clock).
    pub fn of(status: &GroupStatus, now: Instant) -> LeaderInfo {
        let holds_lease = status.holds_lease(now);
        let lease_remaining_ms = status
            .lease_valid_until
            .filter(|_| holds_lease)
            .map(|until| until.saturating_duration_since(now).as_millis() as u64);
        let promised_to = status.promised.filter(|(_, until)| now < *until).map(|(id, _)| id.to_hex());
        LeaderInfo {
            group: status.group.clone(),
            version: status.version,
            members: status.members,
            is_member: status.is_member,
            leader: status.leader.map(|id| id.to_hex()),
            ballot: status.ballot,
            holds_lease,
            lease_remaining_ms,
            promised_to,
        }
    }
}

/// Election commands waiting to learn whether the engine took them.
#[derive(Debug, Default)]
pub(super) struct ElectionBook {
    /// Issued this drain; answered `Ok` unless the engine rejects them.
    accepting: Vec<(CommandId, oneshot::Sender<Result<(), String>>)>,
}

impl NodeRuntime {
    pub(super) fn leader_report(&self) -> Vec<LeaderInfo> {
        let now = self.now();
        self.node.election().statuses().iter().map(|status| LeaderInfo::of(status, now)).collect()
    }

    pub(super) fn election_command(&mut self, command: ElectionCommand, reply: oneshot::Sender<Result<(), String>>) {
        let id = self.issue(Command::Election(command));
        self.election.accepting.push((id, reply));
    }

    /// A rejected election command: answers its caller. Returns whether it was one.
    pub(super) fn on_election_rejected(&mut self, id: CommandId, reason: &str) -> bool {
        match self.election.accepting.iter().position(|(pending, _)| *pending == id) {
            Some(at) => {
                let (_, reply) = self.election.accepting.swap_remove(at);
                let _ = reply.send(Err(reason.to_string()));
                true
            }
            None => false,
        }
    }

    /// Election commands the engine did not reject in the last drain were taken.
    pub(super) fn answer_election_accepted(&mut self) {
        for (_, reply) in std::mem::take(&mut self.election.accepting) {
            let _ = reply.send(Ok(()));
        }
    }
}
