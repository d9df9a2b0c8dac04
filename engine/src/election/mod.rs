//! Leader election with leases (issue 7): a group of nodes, defined by a
//! signed membership list, elects at most one holder of a role at a time.
//!
//! * [`membership`]: founder- and leader-signed membership lists, join tokens.
//! * [`messages`]: the signed datagrams (requests, grants, refusals,
//!   preemption, membership updates, joins, leaves).
//! * [`api`]: configuration, commands, events, status.
//! * `params.rs`: [`ElectionParams`] (`[election]`).
//!
//! A lease is valid only once a majority of the current membership has
//! granted it; a member grants unless it has promised another candidate,
//! and its promise outlasts, in true time, whatever the candidate believes
//! (drift up to `max_drift`). `README.md` in this folder states the
//! protocol and argues that two leases never overlap.

pub mod api;
pub mod membership;
pub mod messages;
mod params;

pub use api::*;
pub use membership::{JoinToken, Member, Membership, MembershipError};
pub use messages::ElectionMessage;
pub use params::{ElectionParams, PROMISE_MARGIN_NANOS};

use crate::crypto::ct_eq;
use crate::identity::{Identity, NodeId};
use crate::metrics::Metrics;
use crate::node::{Addr, Event, Output};
use crate::persist::PersistOp;
use crate::rng::{EngineRng, below};
use crate::time::Instant;
use crate::timers::Timers;
use crate::wire::WireError;
use core::time::Duration;
use messages::{Join, Leave, Preempt, Reply, Request};
use rand_core::Rng;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// What a deadline of one group is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Timer {
    /// Stand for election (if still no leader).
    Campaign,
    /// The current attempt's answers are overdue.
    Attempt,
    /// Send the next renewal (heartbeat).
    Renew,
    /// The lease this node believes in ends.
    LeaseEnd,
    /// The promise this node made ends.
    PromiseEnd,
    /// Send the join request again.
    Join,
}

/// A candidacy or renewal in flight.
#[derive(Debug)]
struct Attempt {
    ballot: u64,
    nonce: [u8; 16],
    /// When the request left, on this node's clock.
    sent: Instant,
    duration: Duration,
    version: u64,
    grants: BTreeSet<NodeId>,
    refusals: BTreeSet<NodeId>,
}

/// A promise not to grant any other candidate until `until` (own clock).
#[derive(Clone, Copy, Debug)]
struct Promise {
    candidate: NodeId,
    until: Instant,
}

/// A membership change queued at the leader.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Change {
    Add(Member),
    Remove(NodeId),
}

/// The state of one group at this node.
#[derive(Debug)]
struct Group {
    name: String,
    founder: [u8; 32],
    membership: Membership,
    digest: [u8; 32],
    /// No grants before this instant (a restart may have forgotten promises).
    quiet_until: Instant,
    promise: Option<Promise>,
    leader: Option<NodeId>,
    leader_ballot: u64,
    /// The last leader this node knew of (kept after its lease lapses, so
    /// that the members who stand to replace it rank without it).
    last_leader: Option<NodeId>,
    /// When this node last granted a renewal of the leader (or started).
    last_seen: Instant,
    max_ballot: u64,
    attempt: Option<Attempt>,
    /// The end of the lease this node holds, if it holds one (own clock).
    lease_until: Option<Instant>,
    /// The membership version of the last acquisition or renewal.
    lease_version: u64,
    /// The first ballot of the current tenure.
    tenure_ballot: u64,
    /// Asked by a higher-priority member to let the lease lapse.
    yielding: bool,
    failures: u32,
    changes: VecDeque<Change>,
    /// Membership versions members reported in their replies.
    known_versions: BTreeMap<NodeId, u64>,
    joining: Option<JoinToken>,
    /// When this node last asked the leader to yield.
    preempt_sent: Option<Instant>,
}

/// The election machine of one node: every group it belongs to.
pub struct Election {
    identity: Identity,
    id: NodeId,
    params: ElectionParams,
    rng: EngineRng,
    groups: Vec<Group>,
    by_name: BTreeMap<String, usize>,
    timers: Timers<(usize, Timer)>,
    outputs: VecDeque<Output>,
    metrics: Metrics,
}

impl core::fmt::Debug for Election {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Election").field("groups", &self.by_name.keys()).finish_non_exhaustive()
    }
}

impl Election {
    /// The machine of node `identity`, started (or restarted) at `now`.
    /// Groups whose membership does not verify against their founder key
    /// are skipped and counted (`election.config.invalid`). `persisted`
    /// holds the lists this node adopted before a restart
    /// ([`crate::PersistOp::PutMembership`], by group name): a valid one
    /// later than the configured list replaces it, so a restarted node never
    /// votes under an older list than one it has granted leases under.
    pub fn new(
        now: Instant,
        identity: &Identity,
        params: ElectionParams,
        config: ElectionConfig,
        persisted: &BTreeMap<String, Vec<u8>>,
        rng: EngineRng,
    ) -> Self {
        let mut election = Election {
            identity: Identity::from_secret(&identity.secret_bytes(), identity.suite()),
            id: identity.id(),
            params,
            rng,
            groups: Vec::new(),
            by_name: BTreeMap::new(),
            timers: Timers::default(),
            outputs: VecDeque::new(),
            metrics: Metrics::default(),
        };
        for group in config.groups {
            let m = &group.membership;
            let signed_by_founder = ct_eq(&m.signer, &group.founder_key);
            if m.verify().is_err()
                || !signed_by_founder
                || m.group != group.name
                || election.by_name.contains_key(&group.name)
            {
                election.metrics.incr("election.config.invalid");
                continue;
            }
            let mut membership = group.membership;
            if let Some(bytes) = persisted.get(&group.name) {
                match Membership::decode(bytes) {
                    Ok(list) if list.group == group.name && list.verify().is_ok() => {
                        if list.version > membership.version {
                            election.metrics.incr("election.memberships.restored");
                            membership = list;
                        }
                    }
                    _ => election.metrics.incr("election.memberships.corrupt"),
                }
            }
            let g = election.groups.len();
            election.by_name.insert(group.name.clone(), g);
            election.groups.push(Group {
                digest: membership.digest(),
                name: group.name,
                founder: group.founder_key,
                membership,
                quiet_until: now + election.params.quiet(),
                promise: None,
                leader: None,
                leader_ballot: 0,
                last_leader: None,
                last_seen: now,
                max_ballot: 0,
                attempt: None,
                lease_until: None,
                lease_version: 0,
                tenure_ballot: 0,
                yielding: false,
                failures: 0,
                changes: VecDeque::new(),
                known_versions: BTreeMap::new(),
                joining: None,
                preempt_sent: None,
            });
            election.arm_campaign(g, now);
            if let Some(token) = group.join_token {
                election.start_join(g, now, token);
            }
        }
        election
    }

    /// The parameters the machine runs with.
    pub fn params(&self) -> &ElectionParams {
        &self.params
    }

    /// Every group's summary, in configuration order.
    pub fn statuses(&self) -> Vec<GroupStatus> {
        (0..self.groups.len()).map(|g| self.group_status(g)).collect()
    }

    /// One group's summary.
    pub fn status(&self, group: &str) -> Option<GroupStatus> {
        self.by_name.get(group).map(|&g| self.group_status(g))
    }

    /// The membership list this node holds for `group`.
    pub fn membership(&self, group: &str) -> Option<&Membership> {
        self.by_name.get(group).map(|&g| &self.groups[g].membership)
    }

    fn group_status(&self, g: usize) -> GroupStatus {
        let group = &self.groups[g];
        GroupStatus {
            group: group.name.clone(),
            version: group.membership.version,
            members: group.membership.members.len(),
            is_member: group.membership.member(&self.id).is_some(),
            leader: group.leader,
            ballot: group.leader_ballot,
            lease_valid_until: group.lease_until,
            promised: group.promise.map(|p| (p.candidate, p.until)),
        }
    }

    /// Counters.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The next output.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The earliest instant the machine wants a timeout.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Carries out a local command.
    pub fn command(&mut self, now: Instant, command: ElectionCommand) -> Result<(), ElectionError> {
        match command {
            ElectionCommand::Join { group, token } => {
                let g = self.group_index(&group)?;
                let founder = self.groups[g].founder;
                token.verify(&group, &founder, token.expires_version.unwrap_or(0))?;
                if !ct_eq(&token.node, &self.identity.public().signing_key) {
                    return Err(ElectionError::BadToken(MembershipError::BadSignature));
                }
                self.start_join(g, now, token);
                Ok(())
            }
            ElectionCommand::RemoveMember { group, id } => {
                let g = self.group_index(&group)?;
                if !self.holds_lease(g, now) {
                    return Err(ElectionError::NotLeader);
                }
                if id == self.id {
                    return Err(ElectionError::RemoveSelf);
                }
                if self.groups[g].membership.member(&id).is_none() {
                    return Err(ElectionError::NoSuchMember);
                }
                self.queue_change(g, now, Change::Remove(id));
                Ok(())
            }
            ElectionCommand::Leave { group } => {
                let g = self.group_index(&group)?;
                if !self.is_member(g) {
                    return Err(ElectionError::NotMember);
                }
                let leave = Leave {
                    group: group.clone(),
                    member: [0; 32],
                    version: self.groups[g].membership.version,
                    signature: [0; 64],
                }
                .sign(&self.identity);
                let bytes = ElectionMessage::Leave(leave).encode();
                let targets: Vec<Addr> = match self.groups[g].leader {
                    Some(leader) => self.groups[g].membership.member(&leader).map(|m| m.addr).into_iter().collect(),
                    None => self.others(g),
                };
                for to in targets {
                    self.outputs.push_back(Output::Transmit { to, bytes: bytes.clone() });
                }
                Ok(())
            }
        }
    }

    fn group_index(&self, group: &str) -> Result<usize, ElectionError> {
        self.by_name.get(group).copied().ok_or_else(|| ElectionError::UnknownGroup(group.to_string()))
    }

    /// Handles an election datagram body (after the header) from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: Addr, body: &[u8]) -> Result<(), WireError> {
        let message = ElectionMessage::decode(body)?;
        let Some(&g) = self.by_name.get(message.group()) else {
            return Err(WireError::Protocol("unknown election group"));
        };
        self.metrics.incr("election.messages.received");
        match message {
            ElectionMessage::Request(request) => self.on_request(g, now, request),
            ElectionMessage::Grant(reply) => self.on_reply(g, now, reply, true),
            ElectionMessage::Refuse(reply) => self.on_reply(g, now, reply, false),
            ElectionMessage::Preempt(preempt) => self.on_preempt(g, now, preempt),
            ElectionMessage::Update(membership) => {
                if !self.adopt(g, now, membership) {
                    self.metrics.incr("election.memberships.ignored");
                }
                Ok(())
            }
            ElectionMessage::Join(join) => self.on_join(g, now, from, join),
            ElectionMessage::Leave(leave) => self.on_leave(g, now, leave),
        }
    }

    /// Handles every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some((g, timer)) = self.timers.pop_due(now) {
            match timer {
                Timer::Campaign => self.on_campaign(g, now),
                Timer::Attempt => self.attempt_failed(g, now),
                Timer::Renew => {
                    if self.holds_lease(g, now) && !self.groups[g].yielding && self.is_member(g) {
                        self.start_attempt(g, now, true);
                    }
                }
                Timer::LeaseEnd => self.on_lease_end(g, now),
                Timer::PromiseEnd => self.on_promise_end(g, now),
                Timer::Join => self.send_join(g, now),
            }
        }
    }

    // ----- helpers -----

    fn is_member(&self, g: usize) -> bool {
        self.groups[g].membership.member(&self.id).is_some()
    }

    fn holds_lease(&self, g: usize, now: Instant) -> bool {
        self.groups[g].lease_until.is_some_and(|until| now < until)
    }

    fn others(&self, g: usize) -> Vec<Addr> {
        self.groups[g].membership.members.iter().filter(|m| m.id != self.id).map(|m| m.addr).collect()
    }

    fn emit(&mut self, event: ElectionEvent) {
        self.outputs.push_back(Output::Event(Event::Election(event)));
    }

    fn set_leader(&mut self, g: usize, leader: Option<NodeId>, ballot: u64) {
        let group = &mut self.groups[g];
        group.leader_ballot = if leader.is_some() { ballot } else { group.leader_ballot };
        if leader.is_some() {
            group.last_leader = leader;
        }
        if group.leader != leader {
            group.leader = leader;
            let name = group.name.clone();
            self.metrics.incr("election.leader.changed");
            self.emit(ElectionEvent::LeaderChanged { group: name, leader, ballot });
        }
    }

    /// `rank × priority_step_ms` plus jitter, where `rank` is the number of
    /// members that outrank this node by `(priority, id)`, not counting the
    /// last leader (whose silence is why anyone stands): the best-placed
    /// survivor stands at once, the next one step later, and so on.
    fn stand_delay(&mut self, g: usize) -> Duration {
        let group = &self.groups[g];
        let rank = match group.membership.member(&self.id) {
            Some(me) => group
                .membership
                .members
                .iter()
                .filter(|m| m.id != self.id && Some(m.id) != group.last_leader)
                .filter(|m| (m.priority, m.id) > (me.priority, me.id))
                .count() as u64,
            None => group.membership.members.len() as u64,
        };
        let step = rank * self.params.priority_step_ms;
        let jitter = below(&mut self.rng, self.params.jitter_ms + 1);
        Duration::from_millis(step + jitter)
    }

    /// When this node may stand: once the promise it would have made to the
    /// leader at its last renewal has ended (`lease × (1 + max_drift)` after
    /// it, the earliest instant a majority can grant anyone else), plus the
    /// grace period, and never while quiet after a start.
    fn takeover_at(&self, g: usize) -> Instant {
        let group = &self.groups[g];
        let silent =
            group.last_seen + self.params.promise(self.params.lease()) + Duration::from_millis(self.params.grace_ms);
        silent.max(group.quiet_until)
    }

    fn arm_campaign(&mut self, g: usize, now: Instant) {
        let at = self.takeover_at(g).max(now) + self.stand_delay(g);
        self.timers.set((g, Timer::Campaign), Some(at));
    }

    /// Records a promise to `candidate` if none to another is unexpired;
    /// extends one to the same candidate. Refused while quiet after a start.
    fn try_promise(&mut self, g: usize, now: Instant, candidate: NodeId, duration: Duration) -> bool {
        let promise = self.params.promise(duration);
        let group = &mut self.groups[g];
        if now < group.quiet_until {
            return false;
        }
        let until = match group.promise {
            Some(p) if p.candidate != candidate && now < p.until => return false,
            Some(p) if p.candidate == candidate => p.until.max(now + promise),
            _ => now + promise,
        };
        group.promise = Some(Promise { candidate, until });
        self.timers.set((g, Timer::PromiseEnd), Some(until));
        true
    }

    // ----- candidate and leader -----

    fn on_campaign(&mut self, g: usize, now: Instant) {
        if !self.is_member(g) || self.holds_lease(g, now) || self.groups[g].attempt.is_some() {
            return;
        }
        let group = &self.groups[g];
        let preempting = group.preempt_sent.is_some_and(|at| now < at + self.params.lease() * 2);
        if !preempting && now < self.takeover_at(g) {
            self.arm_campaign(g, now);
            return;
        }
        if let Some(p) = group.promise.filter(|p| p.candidate != self.id && now < p.until) {
            let at = p.until + self.stand_delay(g);
            self.timers.set((g, Timer::Campaign), Some(at));
            return;
        }
        self.metrics.incr("election.campaigns");
        self.start_attempt(g, now, false);
    }

    fn start_attempt(&mut self, g: usize, now: Instant, renewal: bool) {
        let ballot = self.groups[g].max_ballot.saturating_add(1);
        self.groups[g].max_ballot = ballot;
        // The nonce mixes the seeded stream with the clock, so that a node
        // restarted with the same seed never repeats an earlier run's nonce.
        let mut hasher = blake3::Hasher::new_derive_key("allium 2026-11 election nonce v1");
        hasher.update(&self.rng.next_u64().to_le_bytes()).update(&now.as_nanos().to_le_bytes());
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
        let duration = self.params.lease();
        let group = &self.groups[g];
        let version = group.membership.version;
        let request = Request {
            group: group.name.clone(),
            ballot,
            nonce,
            candidate: [0; 32],
            duration_ms: u32::try_from(self.params.lease_ms).unwrap_or(u32::MAX),
            version,
            digest: group.digest,
            renewal,
            membership: None,
            signature: [0; 64],
        }
        .sign(&self.identity);
        let plain = ElectionMessage::Request(request.clone()).encode();
        let with_list =
            ElectionMessage::Request(Request { membership: Some(group.membership.clone()), ..request }).encode();
        let mut sends = Vec::new();
        for m in group.membership.members.iter().filter(|m| m.id != self.id) {
            let behind = group.known_versions.get(&m.id).is_none_or(|&v| v < version) && version > 1;
            sends.push((m.addr, if behind { with_list.clone() } else { plain.clone() }));
        }
        let attempt =
            Attempt { ballot, nonce, sent: now, duration, version, grants: BTreeSet::new(), refusals: BTreeSet::new() };
        self.groups[g].attempt = Some(attempt);
        if self.try_promise(g, now, self.id, duration)
            && let Some(a) = self.groups[g].attempt.as_mut()
        {
            a.grants.insert(self.id);
        }
        for (to, bytes) in sends {
            self.metrics.incr("election.requests.sent");
            self.outputs.push_back(Output::Transmit { to, bytes });
        }
        let deadline = now + Duration::from_millis(self.params.request_timeout_ms);
        self.timers.set((g, Timer::Attempt), Some(deadline));
        self.check_quorum(g, now);
    }

    fn check_quorum(&mut self, g: usize, now: Instant) {
        let quorum = self.groups[g].membership.quorum();
        let Some(attempt) = self.groups[g].attempt.as_ref() else { return };
        if attempt.grants.len() < quorum {
            let members = self.groups[g].membership.members.len();
            if attempt.refusals.len() > members - quorum {
                self.attempt_failed(g, now);
            }
            return;
        }
        let Some(attempt) = self.groups[g].attempt.take() else { return };
        self.timers.set((g, Timer::Attempt), None);
        let until = attempt.sent + self.params.belief(attempt.duration);
        if until <= now {
            self.metrics.incr("election.attempts.too_late");
            self.attempt_failed(g, now);
            return;
        }
        let was_leader = self.holds_lease(g, now);
        let group = &mut self.groups[g];
        group.failures = 0;
        group.lease_until = Some(group.lease_until.filter(|_| was_leader).map_or(until, |u| u.max(until)));
        group.lease_version = attempt.version;
        let lease_until = group.lease_until;
        self.timers.set((g, Timer::LeaseEnd), lease_until);
        if was_leader {
            self.metrics.incr("election.leases.renewed");
            let next = attempt.sent + self.params.lease() / 3;
            self.timers.set((g, Timer::Renew), Some(next.max(now)));
        } else {
            let group = &mut self.groups[g];
            group.tenure_ballot = attempt.ballot;
            group.yielding = false;
            group.preempt_sent = None;
            let name = group.name.clone();
            self.metrics.incr("election.leases.acquired");
            self.emit(ElectionEvent::LeaseAcquired { group: name, valid_until: until });
            // An immediate renewal tells the members who leads.
            self.timers.set((g, Timer::Renew), Some(now));
        }
        self.set_leader(g, Some(self.id), attempt.ballot);
        self.apply_changes(g, now);
    }

    fn attempt_failed(&mut self, g: usize, now: Instant) {
        self.timers.set((g, Timer::Attempt), None);
        if self.groups[g].attempt.take().is_none() {
            return;
        }
        self.metrics.incr("election.attempts.failed");
        if self.holds_lease(g, now) {
            if !self.groups[g].yielding {
                self.start_attempt(g, now, true);
            }
            return;
        }
        // The attempt is over and no lease can come of it (late grants
        // carry its nonce and are ignored), so the promise this node made
        // itself for it protects nothing: drop it, or it would refuse the
        // next candidate for a whole promise period.
        let id = self.id;
        let group = &mut self.groups[g];
        if group.promise.is_some_and(|p| p.candidate == id) {
            group.promise = None;
            self.timers.set((g, Timer::PromiseEnd), None);
        }
        let group = &mut self.groups[g];
        group.failures = group.failures.saturating_add(1);
        let backoff = Duration::from_millis(self.params.backoff_ms * u64::from(group.failures.min(8)));
        let at = now + backoff + self.stand_delay(g);
        self.timers.set((g, Timer::Campaign), Some(at));
    }

    fn on_lease_end(&mut self, g: usize, now: Instant) {
        let Some(until) = self.groups[g].lease_until else { return };
        if now < until {
            self.timers.set((g, Timer::LeaseEnd), Some(until));
            return;
        }
        self.step_down(g, now);
    }

    fn step_down(&mut self, g: usize, now: Instant) {
        let group = &mut self.groups[g];
        if group.lease_until.take().is_none() {
            return;
        }
        group.attempt = None;
        group.yielding = false;
        group.last_seen = now;
        let name = group.name.clone();
        for timer in [Timer::LeaseEnd, Timer::Renew, Timer::Attempt] {
            self.timers.set((g, timer), None);
        }
        self.metrics.incr("election.leases.lost");
        self.emit(ElectionEvent::LeaseLost { group: name });
        if self.groups[g].leader == Some(self.id) {
            self.set_leader(g, None, 0);
        }
        self.arm_campaign(g, now);
    }

    fn on_promise_end(&mut self, g: usize, now: Instant) {
        let Some(p) = self.groups[g].promise else { return };
        if now < p.until {
            self.timers.set((g, Timer::PromiseEnd), Some(p.until));
            return;
        }
        self.groups[g].promise = None;
        if self.groups[g].leader == Some(p.candidate) && p.candidate != self.id {
            self.set_leader(g, None, 0);
            if self.groups[g].preempt_sent.is_some() {
                // The leader we asked to yield let its lease lapse: stand
                // soon, after the other members' promises lapse too.
                let margin = Duration::from_millis(self.params.grace_ms);
                let at = now + margin + self.stand_delay(g);
                self.timers.set((g, Timer::Campaign), Some(at));
            }
        }
    }

    // ----- member -----

    fn reply(&mut self, g: usize, request: &Request, grant: bool) -> Vec<u8> {
        let group = &self.groups[g];
        let reply = Reply {
            group: group.name.clone(),
            ballot: request.ballot,
            nonce: request.nonce,
            candidate: NodeId::from_public_key(&request.candidate),
            member: [0; 32],
            version: group.membership.version,
            signature: [0; 64],
        }
        .sign(&self.identity, grant);
        if grant { ElectionMessage::Grant(reply) } else { ElectionMessage::Refuse(reply) }.encode()
    }

    fn on_request(&mut self, g: usize, now: Instant, request: Request) -> Result<(), WireError> {
        let candidate = NodeId::from_public_key(&request.candidate);
        if candidate == self.id {
            return Err(WireError::Protocol("election request in own name"));
        }
        if let Some(list) = request.membership.clone()
            && list.version > self.groups[g].membership.version
        {
            self.adopt(g, now, list);
        }
        let Some(addr) = self.groups[g].membership.member(&candidate).map(|m| m.addr) else {
            self.metrics.incr("election.requests.not_member");
            return Err(WireError::Protocol("election request from a non-member"));
        };
        if !request.verify() {
            return Err(WireError::Protocol("bad election request signature"));
        }
        if !self.is_member(g) {
            self.metrics.incr("election.requests.ignored");
            return Ok(());
        }
        let group = &mut self.groups[g];
        group.max_ballot = group.max_ballot.max(request.ballot);
        let same_list = request.version == group.membership.version && ct_eq(&request.digest, &group.digest);
        let duration = Duration::from_millis(u64::from(request.duration_ms));
        let sane = request.duration_ms > 0 && u64::from(request.duration_ms) <= self.params.lease_ms;
        let granted = same_list && sane && self.try_promise(g, now, candidate, duration);
        let bytes = self.reply(g, &request, granted);
        self.metrics.incr(if granted { "election.grants.sent" } else { "election.refusals.sent" });
        self.outputs.push_back(Output::Transmit { to: addr, bytes });
        if granted && request.renewal {
            self.groups[g].last_seen = now;
            self.set_leader(g, Some(candidate), request.ballot);
            self.arm_campaign(g, now);
            self.maybe_preempt(g, now, candidate, addr, request.ballot);
        } else if same_list && request.renewal && !self.holds_lease(g, now) {
            // A leader renews while this node's promise (to itself, from a
            // candidacy that failed in a partition) stands: stop standing,
            // so the promise lapses and the next renewal is granted.
            self.groups[g].last_seen = now;
            self.arm_campaign(g, now);
            self.maybe_preempt(g, now, candidate, addr, request.ballot);
        }
        Ok(())
    }

    fn maybe_preempt(&mut self, g: usize, now: Instant, leader: NodeId, addr: Addr, ballot: u64) {
        if !self.params.preempt {
            return;
        }
        let list = &self.groups[g].membership;
        let mine = list.member(&self.id).map_or(0, |m| m.priority);
        let theirs = list.member(&leader).map_or(255, |m| m.priority);
        if mine <= theirs {
            return;
        }
        let preempt =
            Preempt { group: self.groups[g].name.clone(), member: [0; 32], leader, ballot, signature: [0; 64] }
                .sign(&self.identity);
        self.groups[g].preempt_sent = Some(now);
        self.metrics.incr("election.preempts.sent");
        self.outputs.push_back(Output::Transmit { to: addr, bytes: ElectionMessage::Preempt(preempt).encode() });
    }

    fn on_reply(&mut self, g: usize, now: Instant, reply: Reply, grant: bool) -> Result<(), WireError> {
        let member = NodeId::from_public_key(&reply.member);
        if self.groups[g].membership.member(&member).is_none() {
            return Err(WireError::Protocol("election reply from a non-member"));
        }
        if !reply.verify(grant) {
            return Err(WireError::Protocol("bad election reply signature"));
        }
        let group = &mut self.groups[g];
        group.known_versions.insert(member, reply.version);
        let Some(attempt) = group.attempt.as_mut() else {
            self.metrics.incr("election.replies.stale");
            return Ok(());
        };
        if reply.candidate != self.id || reply.ballot != attempt.ballot || !ct_eq(&reply.nonce, &attempt.nonce) {
            self.metrics.incr("election.replies.stale");
            return Ok(());
        }
        if grant && reply.version == attempt.version {
            attempt.grants.insert(member);
        } else {
            attempt.refusals.insert(member);
        }
        self.check_quorum(g, now);
        Ok(())
    }

    fn on_preempt(&mut self, g: usize, now: Instant, preempt: Preempt) -> Result<(), WireError> {
        let member = NodeId::from_public_key(&preempt.member);
        let list = &self.groups[g].membership;
        let Some(priority) = list.member(&member).map(|m| m.priority) else {
            return Err(WireError::Protocol("preemption from a non-member"));
        };
        if !preempt.verify() {
            return Err(WireError::Protocol("bad preemption signature"));
        }
        let mine = list.member(&self.id).map_or(255, |m| m.priority);
        let group = &self.groups[g];
        let current = preempt.leader == self.id && preempt.ballot >= group.tenure_ballot;
        if self.params.preempt && current && priority > mine && self.holds_lease(g, now) && !group.yielding {
            self.groups[g].yielding = true;
            self.timers.set((g, Timer::Renew), None);
            self.metrics.incr("election.preempts.honoured");
        }
        Ok(())
    }

    // ----- membership -----

    /// Adopts `list` if it is a later, valid version this node may accept:
    /// founder-signed; or signed by the leader this node holds an unexpired
    /// promise to; or, for a node outside its own list (joining), listing
    /// both this node and its signer.
    fn adopt(&mut self, g: usize, now: Instant, list: Membership) -> bool {
        let group = &self.groups[g];
        if list.group != group.name || list.version <= group.membership.version || list.verify().is_err() {
            return false;
        }
        let signer = NodeId::from_public_key(&list.signer);
        let allowed = if ct_eq(&list.signer, &group.founder) {
            true
        } else if group.membership.member(&self.id).is_some() {
            let promised = group.promise.is_some_and(|p| p.candidate == signer && now < p.until);
            let step_ok = list.version > group.membership.version + 1 || group.membership.one_change_from(&list);
            promised && group.membership.member(&signer).is_some() && step_ok
        } else {
            list.member(&self.id).is_some() && list.member(&signer).is_some()
        };
        if !allowed {
            self.metrics.incr("election.memberships.refused");
            return false;
        }
        self.install(g, now, list);
        true
    }

    fn install(&mut self, g: usize, now: Instant, list: Membership) {
        // Persisted before anything this node sends under the new list.
        let op = PersistOp::PutMembership { group: list.group.clone(), list: list.encode() };
        self.outputs.push_back(Output::Persist(op));
        let group = &mut self.groups[g];
        group.digest = list.digest();
        group.membership = list;
        let version = group.membership.version;
        if group.attempt.as_ref().is_some_and(|a| a.version != version) {
            group.attempt = None;
            self.timers.set((g, Timer::Attempt), None);
        }
        let name = group.name.clone();
        self.metrics.incr("election.memberships.adopted");
        self.emit(ElectionEvent::MembershipChanged { group: name, version });
        if !self.is_member(g) {
            self.step_down(g, now);
            self.timers.set((g, Timer::Campaign), None);
        } else if self.groups[g].joining.take().is_some() {
            self.timers.set((g, Timer::Join), None);
            self.groups[g].last_seen = now;
            self.arm_campaign(g, now);
        }
    }

    fn start_join(&mut self, g: usize, now: Instant, token: JoinToken) {
        if self.is_member(g) {
            return;
        }
        self.groups[g].joining = Some(token);
        self.send_join(g, now);
    }

    fn send_join(&mut self, g: usize, now: Instant) {
        let Some(token) = self.groups[g].joining.clone() else { return };
        if self.is_member(g) {
            self.groups[g].joining = None;
            return;
        }
        let bytes = ElectionMessage::Join(Join::new(&self.identity, token)).encode();
        for to in self.others(g) {
            self.metrics.incr("election.joins.sent");
            self.outputs.push_back(Output::Transmit { to, bytes: bytes.clone() });
        }
        self.timers.set((g, Timer::Join), Some(now + self.params.lease() / 3));
    }

    fn on_join(&mut self, g: usize, now: Instant, from: Addr, join: Join) -> Result<(), WireError> {
        if !join.verify() {
            return Err(WireError::Protocol("bad join signature"));
        }
        let group = &self.groups[g];
        let next = group.membership.version + 1;
        if join.token.verify(&group.name, &group.founder, next).is_err() {
            return Err(WireError::Protocol("bad join token"));
        }
        if !self.holds_lease(g, now) {
            self.metrics.incr("election.joins.not_leader");
            return Ok(());
        }
        let member = Member {
            id: NodeId::from_public_key(&join.token.node),
            signing_key: join.token.node,
            addr: from,
            priority: join.token.priority,
        };
        if self.groups[g].membership.member(&member.id).is_some() {
            // Already in: it missed the update, so send the list again.
            let bytes = ElectionMessage::Update(self.groups[g].membership.clone()).encode();
            self.outputs.push_back(Output::Transmit { to: from, bytes });
            return Ok(());
        }
        self.metrics.incr("election.joins.accepted");
        self.queue_change(g, now, Change::Add(member));
        Ok(())
    }

    fn on_leave(&mut self, g: usize, now: Instant, leave: Leave) -> Result<(), WireError> {
        let member = NodeId::from_public_key(&leave.member);
        if self.groups[g].membership.member(&member).is_none() {
            return Ok(());
        }
        if !leave.verify() {
            return Err(WireError::Protocol("bad leave signature"));
        }
        if self.holds_lease(g, now) && member != self.id {
            self.queue_change(g, now, Change::Remove(member));
        }
        Ok(())
    }

    fn queue_change(&mut self, g: usize, now: Instant, change: Change) {
        if !self.groups[g].changes.contains(&change) {
            self.groups[g].changes.push_back(change);
        }
        self.apply_changes(g, now);
    }

    /// At the leader: makes the next queued change into a new version, one
    /// per lease renewed at the current version (so that majorities of
    /// consecutive versions always intersect), pushes it, and renews at it.
    fn apply_changes(&mut self, g: usize, now: Instant) {
        if !self.holds_lease(g, now) || self.groups[g].yielding {
            return;
        }
        let group = &mut self.groups[g];
        if group.lease_version != group.membership.version {
            return;
        }
        while let Some(change) = group.changes.pop_front() {
            let mut members = group.membership.members.clone();
            let removed = match &change {
                Change::Add(m)
                    if group.membership.member(&m.id).is_none() && members.len() < membership::MAX_MEMBERS =>
                {
                    members.push(m.clone());
                    None
                }
                Change::Remove(id) if *id != self.id && group.membership.member(id).is_some() => {
                    let addr = group.membership.member(id).map(|m| m.addr);
                    members.retain(|m| m.id != *id);
                    addr
                }
                _ => continue,
            };
            let list = Membership::sign(&self.identity, &group.name, group.membership.version + 1, members);
            let bytes = ElectionMessage::Update(list.clone()).encode();
            let mut targets: Vec<Addr> = list.members.iter().filter(|m| m.id != self.id).map(|m| m.addr).collect();
            targets.extend(removed);
            self.install(g, now, list);
            for to in targets {
                self.metrics.incr("election.updates.sent");
                self.outputs.push_back(Output::Transmit { to, bytes: bytes.clone() });
            }
            self.start_attempt(g, now, true);
            return;
        }
    }
}

#[cfg(test)]
mod tests;
