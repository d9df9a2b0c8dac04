//! Lease election over a small simulated network of whole [`Node`]s, with
//! its own harness: every node has a drifting local clock
//! (`offset + true × (1 + drift)`), links have random latency, loss,
//! duplication and rare long delays, nodes crash and restart, and the
//! network partitions. After every input the harness converts each
//! leader's `lease_valid_until` to true time and records the interval of
//! true time in which that node believed it held the lease; no two
//! nodes' intervals may overlap.

use allium_engine::election::{
    ElectionCommand, ElectionConfig, ElectionEvent, GroupConfig, JoinToken, Member, Membership,
};
use allium_engine::overlay::MemoryStore;
use allium_engine::rng::{EngineRng, below, unit_f64};
use allium_engine::{
    Addr, Command, CryptoSuite, Event, Identity, Input, Instant, Node, NodeConfig, NodeSeed, Output, Params,
    PersistedState,
};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

const GROUP: &str = "role";

/// A node's belief in true time: (node, start, end) in nanoseconds.
type Interval = (usize, u64, u64);
const NANOS_PER_MS: u64 = 1_000_000;

fn addr(i: usize) -> Addr {
    SocketAddr::from((Ipv4Addr::new(10, 7, 0, i as u8), 4000))
}

fn index_of(a: &Addr) -> usize {
    match a {
        SocketAddr::V4(v4) => usize::from(v4.ip().octets()[3]),
        SocketAddr::V6(_) => usize::MAX,
    }
}

/// A local clock: `offset + true × (1 + ppb / 10⁹)`, in nanoseconds.
#[derive(Clone, Copy, Debug)]
struct Clock {
    offset: u64,
    ppb: i64,
}

impl Clock {
    fn local(&self, t: u64) -> u64 {
        let drift = i128::from(t) * i128::from(self.ppb) / 1_000_000_000;
        (i128::from(self.offset) + i128::from(t) + drift) as u64
    }

    /// The first true instant at which the local clock reads at least `l`.
    fn true_at(&self, l: u64) -> u64 {
        if l <= self.offset {
            return 0;
        }
        let rate = 1.0 + self.ppb as f64 / 1e9;
        let mut t = ((l - self.offset) as f64 / rate) as u64;
        t = t.saturating_sub(4);
        while self.local(t) < l {
            t += 1;
        }
        t
    }
}

/// Link behaviour.
#[derive(Clone, Copy, Debug)]
struct Links {
    min_ms: u64,
    max_ms: u64,
    loss: f64,
    duplicate: f64,
    /// Probability of a long delay (up to `long_ms`).
    long: f64,
    long_ms: u64,
}

impl Default for Links {
    fn default() -> Self {
        Links { min_ms: 2, max_ms: 15, loss: 0.0, duplicate: 0.0, long: 0.0, long_ms: 0 }
    }
}

struct World {
    params: Params,
    founder: Identity,
    identities: Vec<Identity>,
    priorities: Vec<u8>,
    membership: Membership,
    nodes: Vec<Option<Node>>,
    clocks: Vec<Clock>,
    /// Per node: the group config it (re)starts with.
    configs: Vec<ElectionConfig>,
    /// What each node persisted (membership lists), kept across restarts.
    persisted: Vec<PersistedState>,
    now: u64,
    in_flight: BTreeMap<(u64, u64), (usize, usize, Vec<u8>)>,
    seq: u64,
    rng: EngineRng,
    links: Links,
    /// Side of each node when partitioned (messages cross only within a side).
    sides: Option<Vec<u8>>,
    /// Cut links (both directions).
    cuts: std::collections::BTreeSet<(usize, usize)>,
    /// Belief intervals in true time: (node, start, end).
    intervals: Vec<(usize, u64, u64)>,
    /// The open interval of each node.
    open: Vec<Option<(u64, u64)>>,
    /// Events with their true time.
    events: Vec<(u64, usize, ElectionEvent)>,
    next_command: u64,
    seed: u64,
}

fn params(lease_ms: u64, grace_ms: u64, drift: f64, preempt: bool) -> Params {
    let mut p = Params::default();
    p.election.lease_ms = lease_ms;
    p.election.grace_ms = grace_ms;
    p.election.max_drift = drift;
    p.election.preempt = preempt;
    p.election.request_timeout_ms = (lease_ms / 6).max(50);
    p.election.backoff_ms = (lease_ms / 10).max(20);
    p
}

impl World {
    /// `priorities.len()` members; clocks drift by `drifts` (fractions).
    fn new(seed: u64, params: Params, priorities: &[u8], drifts: &[f64]) -> World {
        let founder = Identity::from_seed(&NodeSeed::derive(seed, 1000), CryptoSuite::Real);
        let identities: Vec<Identity> = (0..priorities.len())
            .map(|i| Identity::from_seed(&NodeSeed::derive(seed, i as u64), CryptoSuite::Real))
            .collect();
        let members =
            identities.iter().zip(priorities).enumerate().map(|(i, (id, &p))| Member::of(id, addr(i), p)).collect();
        let membership = Membership::founder(&founder, GROUP, members);
        let mut rng = NodeSeed::derive(seed, 2000).stream("harness");
        let n = priorities.len();
        let clocks = drifts
            .iter()
            .map(|d| Clock { offset: below(&mut rng, 10_000) * NANOS_PER_MS, ppb: (d * 1e9) as i64 })
            .collect();
        let config = ElectionConfig {
            groups: vec![GroupConfig {
                name: GROUP.into(),
                founder_key: founder.public().signing_key,
                membership: membership.clone(),
                priority: 0,
                join_token: None,
            }],
        };
        let mut world = World {
            params,
            founder,
            identities,
            priorities: priorities.to_vec(),
            membership,
            nodes: (0..n).map(|_| None).collect(),
            clocks,
            configs: vec![config; n],
            persisted: vec![PersistedState::default(); n],
            now: 0,
            in_flight: BTreeMap::new(),
            seq: 0,
            rng,
            links: Links::default(),
            sides: None,
            cuts: Default::default(),
            intervals: Vec::new(),
            open: vec![None; n],
            events: Vec::new(),
            next_command: 1,
            seed,
        };
        for i in 0..n {
            world.start(i);
        }
        world
    }

    fn local(&self, i: usize) -> Instant {
        Instant::from_nanos(self.clocks[i].local(self.now))
    }

    /// Starts (or restarts, with only what it persisted) node `i`.
    fn start(&mut self, i: usize) {
        let seed = NodeSeed::derive(self.seed, i as u64);
        let config = NodeConfig {
            identity: Identity::from_seed(&seed, CryptoSuite::Real),
            seed,
            params: self.params.clone(),
            local_addr: addr(i),
            bootstrap: Vec::new(),
            content: Box::<MemoryStore>::default(),
            relay: Default::default(),
            mix: Default::default(),
            election: self.configs[i].clone(),
            rewards: Default::default(),
        };
        let now = self.local(i);
        self.nodes[i] = Some(Node::restore(now, config, self.persisted[i].clone()));
        self.drain(i);
    }

    fn crash(&mut self, i: usize) {
        self.nodes[i] = None;
        self.close(i);
    }

    /// Adds a node (not a member) that joins with a founder token.
    fn add_joiner(&mut self, priority: u8, drift: f64) -> usize {
        let i = self.nodes.len();
        let identity = Identity::from_seed(&NodeSeed::derive(self.seed, i as u64), CryptoSuite::Real);
        let token = JoinToken::sign(&self.founder, GROUP, identity.public().signing_key, priority, None);
        let mut config = self.configs[0].clone();
        config.groups[0].join_token = Some(token);
        config.groups[0].priority = priority;
        self.identities.push(identity);
        self.priorities.push(priority);
        self.configs.push(config);
        self.persisted.push(PersistedState::default());
        self.clocks.push(Clock { offset: below(&mut self.rng, 10_000) * NANOS_PER_MS, ppb: (drift * 1e9) as i64 });
        self.nodes.push(None);
        self.open.push(None);
        self.start(i);
        i
    }

    fn command(&mut self, i: usize, command: ElectionCommand) {
        let id = self.next_command;
        self.next_command += 1;
        self.input(i, Input::Command { id, command: Command::Election(command) });
    }

    fn input(&mut self, i: usize, input: Input) {
        let now = self.local(i);
        let Some(node) = self.nodes[i].as_mut() else { return };
        node.handle_input(now, input);
        self.drain(i);
    }

    fn drain(&mut self, i: usize) {
        let Some(node) = self.nodes[i].as_mut() else { return };
        let mut outputs = Vec::new();
        while let Some(o) = node.poll_output() {
            outputs.push(o);
        }
        for output in outputs {
            match output {
                Output::Transmit { to, bytes } => self.send(i, index_of(&to), bytes),
                Output::Event(Event::Election(e)) => self.events.push((self.now, i, e)),
                Output::Persist(op) => self.persisted[i].apply(op),
                Output::Event(Event::Rejected { error, .. }) => panic!("node {i} rejected a datagram: {error}"),
                _ => {}
            }
        }
        self.observe(i);
    }

    fn send(&mut self, from: usize, to: usize, bytes: Vec<u8>) {
        if to >= self.nodes.len() {
            return;
        }
        let l = self.links;
        if unit_f64(&mut self.rng) < l.loss {
            return;
        }
        if self.sides.as_ref().is_some_and(|sides| sides[from] != sides[to]) {
            return;
        }
        if self.cuts.contains(&(from.min(to), from.max(to))) {
            return;
        }
        let copies = if unit_f64(&mut self.rng) < l.duplicate { 2 } else { 1 };
        for _ in 0..copies {
            let mut ms = l.min_ms + below(&mut self.rng, l.max_ms - l.min_ms + 1);
            if unit_f64(&mut self.rng) < l.long {
                ms += below(&mut self.rng, l.long_ms + 1);
            }
            let at = self.now + ms * NANOS_PER_MS + below(&mut self.rng, NANOS_PER_MS);
            self.seq += 1;
            self.in_flight.insert((at, self.seq), (from, to, bytes.clone()));
        }
    }

    /// Records node `i`'s belief, in true time, after an input.
    fn observe(&mut self, i: usize) {
        let Some(node) = self.nodes[i].as_ref() else { return };
        let status = node.election().status(GROUP).expect("group configured");
        let local = self.local(i);
        match status.lease_valid_until.filter(|&u| local < u) {
            Some(until) => {
                let end = self.clocks[i].true_at(until.as_nanos());
                match &mut self.open[i] {
                    Some((_, e)) if *e >= self.now => *e = (*e).max(end),
                    slot => {
                        if let Some((s, e)) = slot.take() {
                            self.intervals.push((i, s, e));
                        }
                        *slot = Some((self.now, end));
                    }
                }
            }
            None => self.close(i),
        }
    }

    /// Closes node `i`'s open interval at the current instant at the latest.
    fn close(&mut self, i: usize) {
        if let Some((s, e)) = self.open[i].take() {
            self.intervals.push((i, s, e.min(self.now)));
        }
    }

    fn next_timer(&self) -> Option<(u64, usize)> {
        (0..self.nodes.len())
            .filter_map(|i| {
                let at = self.nodes[i].as_ref()?.poll_timeout()?;
                Some((self.clocks[i].true_at(at.as_nanos()).max(self.now), i))
            })
            .min()
    }

    fn run_for_ms(&mut self, ms: u64) {
        let end = self.now + ms * NANOS_PER_MS;
        loop {
            let delivery = self.in_flight.keys().next().map(|&(t, _)| t);
            let timer = self.next_timer();
            let next = match (delivery, timer) {
                (Some(d), Some((t, _))) => d.min(t),
                (Some(d), None) => d,
                (None, Some((t, _))) => t,
                (None, None) => break,
            };
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            if delivery == Some(next) {
                let (_, (from, to, bytes)) = self.in_flight.pop_first().expect("delivery");
                self.input(to, Input::Datagram { from: addr(from), bytes });
            } else if let Some((_, i)) = timer {
                self.input(i, Input::Timeout);
            }
            self.check();
        }
        self.now = end;
    }

    /// No two nodes' belief intervals overlap (open ones included).
    fn overlaps(&self) -> Vec<(Interval, Interval)> {
        let mut all = self.intervals.clone();
        all.extend(self.open.iter().enumerate().filter_map(|(i, o)| o.map(|(s, e)| (i, s, e))));
        let mut bad = Vec::new();
        for (x, a) in all.iter().enumerate() {
            for b in &all[x + 1..] {
                if a.0 != b.0 && a.1 < b.2 && b.1 < a.2 {
                    bad.push((*a, *b));
                }
            }
        }
        bad
    }

    fn check(&self) {
        // Cheap per-step check: at this instant, at most one node believes.
        let holders: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| self.open[i].is_some_and(|(s, e)| s <= self.now && self.now < e))
            .collect();
        assert!(holders.len() <= 1, "seed {}: two leases at true {} ns: {holders:?}", self.seed, self.now);
    }

    fn leaders(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| {
                self.nodes[i]
                    .as_ref()
                    .is_some_and(|n| n.election().status(GROUP).expect("group").holds_lease(self.local(i)))
            })
            .collect()
    }

    fn leader(&self) -> Option<usize> {
        let l = self.leaders();
        assert!(l.len() <= 1);
        l.first().copied()
    }

    /// True time of the first `LeaseAcquired` after `after` by a node other than `not`.
    fn acquired_after(&self, after: u64, not: usize) -> Option<(u64, usize)> {
        self.events
            .iter()
            .find(|(t, i, e)| *t >= after && *i != not && matches!(e, ElectionEvent::LeaseAcquired { .. }))
            .map(|(t, i, _)| (*t, *i))
    }
}

/// Worst-case drifts for 5 nodes: the first runs slow, the others fast.
fn skewed(drift: f64, n: usize) -> Vec<f64> {
    (0..n).map(|i| if i % 2 == 0 { -drift } else { drift }).collect()
}

#[test]
fn failover_after_the_leader_crashes_is_bounded() {
    let mut figures = Vec::new();
    for seed in 1..=20u64 {
        let p = params(3000, 50, 0.001, true);
        let mut w = World::new(seed, p, &[255, 254, 253, 252, 251], &skewed(0.001, 5));
        w.links = Links { min_ms: 2, max_ms: 20, ..Default::default() };
        w.run_for_ms(10_000);
        let leader = w.leader().expect("a leader after 10 s");
        assert_eq!(leader, 0, "the highest priority leads");
        // Crash at a random point between two renewals.
        let wait = below(&mut w.rng, 1000);
        w.run_for_ms(wait);
        let crash = w.now;
        w.crash(leader);
        w.run_for_ms(10_000);
        let (at, next) = w.acquired_after(crash, leader).expect("failover");
        assert_eq!(next, 1, "the next priority takes over");
        let ms = (at - crash) / NANOS_PER_MS;
        // The survivors' promises from the last renewal end a lease (3000)
        // plus the drift margins (7) after it reached them (one link, ≤ 20);
        // then grace (50) and jitter (20), no rank delay (the next in
        // priority stands first), and one round trip (≤ 40) to a majority.
        assert!(ms <= 3000 + 7 + 20 + 50 + 20 + 40, "seed {seed}: failover took {ms} ms");
        figures.push(ms);
        assert!(w.overlaps().is_empty(), "seed {seed}: {:?}", w.overlaps());
    }
    figures.sort_unstable();
    println!(
        "failover ms over {} crashes: min {} p50 {} p99 {} max {}",
        figures.len(),
        figures[0],
        figures[figures.len() / 2],
        figures[figures.len() * 99 / 100],
        figures[figures.len() - 1]
    );
}

#[test]
fn priority_take_back_with_preemption_and_none_without() {
    for preempt in [true, false] {
        let p = params(3000, 1000, 0.001, preempt);
        let mut w = World::new(7, p, &[255, 254, 253, 252, 251], &skewed(0.001, 5));
        w.crash(0);
        w.run_for_ms(10_000);
        assert_eq!(w.leader(), Some(1));
        w.start(0);
        w.run_for_ms(20_000);
        let expected = if preempt { 0 } else { 1 };
        assert_eq!(w.leader(), Some(expected), "preempt {preempt}");
        assert!(w.overlaps().is_empty());
        let lost = w.events.iter().filter(|(_, i, e)| *i == 1 && matches!(e, ElectionEvent::LeaseLost { .. })).count();
        assert_eq!(lost, usize::from(preempt));
    }
}

#[test]
fn a_node_joins_through_the_leader_and_a_removed_member_never_wins() {
    let p = params(3000, 1000, 0.001, true);
    let mut w = World::new(11, p, &[255, 254, 253, 252, 251], &skewed(0.001, 5));
    w.run_for_ms(10_000);
    assert_eq!(w.leader(), Some(0));
    let joiner = w.add_joiner(200, 0.0005);
    w.run_for_ms(3000);
    for i in 0..w.nodes.len() {
        let s = w.nodes[i].as_ref().unwrap().election().status(GROUP).unwrap();
        assert_eq!((s.version, s.members, s.is_member), (2, 6, true), "node {i}");
    }
    assert!(
        w.events
            .iter()
            .any(|(_, i, e)| *i == joiner && matches!(e, ElectionEvent::MembershipChanged { version: 2, .. }))
    );
    // Remove the member that would otherwise win next (priority 254).
    let removed = w.identities[1].id();
    w.command(0, ElectionCommand::RemoveMember { group: GROUP.into(), id: removed });
    w.run_for_ms(3000);
    let s = w.nodes[1].as_ref().unwrap().election().status(GROUP).unwrap();
    assert_eq!((s.version, s.is_member), (3, false));
    let removed_at = w.now;
    w.crash(0);
    w.run_for_ms(10_000);
    assert_eq!(w.leader(), Some(2), "the next member by priority, not the removed one");
    assert!(!w.intervals.iter().any(|&(i, _, end)| i == 1 && end > removed_at), "the removed member never led");
    assert!(w.open[1].is_none());
    assert!(w.overlaps().is_empty());
    let _ = w.membership.version;
    let _ = &w.priorities;
}

#[test]
fn a_whole_group_restarted_after_a_change_keeps_the_latest_list() {
    let p = params(3000, 50, 0.001, true);
    let mut w = World::new(13, p, &[255, 254, 253, 252, 251], &skewed(0.001, 5));
    w.run_for_ms(10_000);
    assert_eq!(w.leader(), Some(0));
    let removed = w.identities[1].id();
    w.command(0, ElectionCommand::RemoveMember { group: GROUP.into(), id: removed });
    w.run_for_ms(3000);
    let joiner = w.add_joiner(240, 0.0005);
    w.run_for_ms(3000);
    // Every node configured with version 1 restarts at once, except the
    // removed member (which knows it was removed).
    for i in (0..w.nodes.len()).filter(|&i| i != 1) {
        w.crash(i);
    }
    let restarted_at = w.now;
    for i in (0..w.nodes.len()).filter(|&i| i != 1) {
        w.start(i);
    }
    w.run_for_ms(15_000);
    for i in (0..w.nodes.len()).filter(|&i| i != 1) {
        let s = w.nodes[i].as_ref().unwrap().election().status(GROUP).unwrap();
        assert_eq!((s.version, s.members, s.is_member), (3, 5, true), "node {i} restarted into an older list");
    }
    assert!(w.leader().is_some_and(|l| l != 1));
    assert!(!w.intervals.iter().any(|&(i, _, end)| i == 1 && end > restarted_at), "the removed member never led");
    assert!(w.open[joiner].is_none() || w.leader() == Some(joiner));
    assert!(w.overlaps().is_empty());
}

#[test]
fn a_minority_partition_loses_the_lease_and_the_majority_elects() {
    let p = params(3000, 1000, 0.001, true);
    let mut w = World::new(5, p, &[255, 254, 253, 252, 251], &skewed(0.001, 5));
    w.run_for_ms(10_000);
    assert_eq!(w.leader(), Some(0));
    w.sides = Some(vec![0, 0, 1, 1, 1]);
    w.run_for_ms(10_000);
    assert_eq!(w.leader(), Some(2), "the majority side elects its best");
    w.sides = None;
    w.run_for_ms(15_000);
    assert_eq!(w.leader(), Some(0), "healed: the preferred node takes the role back");
    assert!(w.overlaps().is_empty(), "{:?}", w.overlaps());
}

/// Seeded random runs: crashes, restarts, partitions, loss, duplicates,
/// long delays and the worst allowed drift; no two leases ever overlap.
#[test]
fn randomized_runs_never_overlap() {
    let seeds: u64 = std::env::var("ELECTION_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    let mut leaderless_runs = 0;
    let mut acquisitions = 0;
    for seed in 1..=seeds {
        let mut rng = NodeSeed::derive(seed, 3000).stream("scenario");
        let drift = [0.0, 0.001, 0.01, 0.05][below(&mut rng, 4) as usize];
        let n = 3 + 2 * below(&mut rng, 2) as usize;
        let priorities: Vec<u8> = (0..n).map(|_| 250 + below(&mut rng, 6) as u8).collect();
        let drifts: Vec<f64> = (0..n)
            .map(|_| match below(&mut rng, 3) {
                0 => -drift,
                1 => drift,
                _ => drift * (2.0 * unit_f64(&mut rng) - 1.0),
            })
            .collect();
        let lease = 300 + 100 * below(&mut rng, 5);
        let p = params(lease, lease / 3, drift, below(&mut rng, 2) == 0);
        let mut w = World::new(seed, p, &priorities, &drifts);
        w.links = Links {
            min_ms: 1,
            max_ms: 1 + below(&mut rng, 40),
            loss: [0.0, 0.05, 0.2][below(&mut rng, 3) as usize],
            duplicate: 0.05,
            long: [0.02, 0.1][below(&mut rng, 2) as usize],
            long_ms: 3 * lease,
        };
        for _ in 0..40 {
            match below(&mut rng, 10) {
                0 | 1 => {
                    let i = below(&mut rng, n as u64) as usize;
                    if w.nodes[i].is_some() {
                        w.crash(i);
                    } else {
                        w.start(i);
                    }
                }
                2 => {
                    w.sides = Some((0..n).map(|_| below(&mut rng, 2) as u8).collect());
                }
                3 => w.sides = None,
                4 => {
                    // Crash whoever leads right now.
                    if let Some(l) = w.leaders().first().copied() {
                        w.crash(l);
                    }
                }
                5 | 6 => {
                    // Cut one link: members see different leaders.
                    let a = below(&mut rng, n as u64) as usize;
                    let b = below(&mut rng, n as u64) as usize;
                    w.cuts.insert((a.min(b), a.max(b)));
                }
                7 => w.cuts.clear(),
                8 => {
                    // Bounce a node: it forgets its promises at once.
                    let i = below(&mut rng, n as u64) as usize;
                    w.crash(i);
                    w.start(i);
                }
                _ => {}
            }
            let span = below(&mut rng, 2 * lease);
            w.run_for_ms(span);
        }
        w.sides = None;
        w.cuts.clear();
        for i in 0..n {
            if w.nodes[i].is_none() {
                w.start(i);
            }
        }
        w.run_for_ms(20 * lease);
        let overlaps = w.overlaps();
        assert!(overlaps.is_empty(), "seed {seed} (drift {drift}): overlapping leases {overlaps:?}");
        acquisitions += w.events.iter().filter(|(_, _, e)| matches!(e, ElectionEvent::LeaseAcquired { .. })).count();
        if w.leader().is_none() {
            leaderless_runs += 1;
        }
    }
    println!("{seeds} seeds: {acquisitions} acquisitions, {leaderless_runs} runs without a leader at the end");
    assert!(acquisitions as u64 >= seeds, "leases are acquired");
    assert!(leaderless_runs * 10 <= seeds, "{leaderless_runs} of {seeds} runs ended without a leader");
}

/// A member that restarts has forgotten its promise to the leader; it must
/// not grant a rival (cut off from the leader) before that promise would
/// have ended.
#[test]
fn a_restarted_member_does_not_vote_twice() {
    for seed in 1..=10 {
        let p = params(3000, 1000, 0.001, false);
        let mut w = World::new(seed, p, &[255, 254, 253], &skewed(0.001, 3));
        w.run_for_ms(10_000);
        assert_eq!(w.leader(), Some(0));
        // The rival (2) loses the leader; the middle member (1) sees both.
        w.cuts.insert((0, 2));
        w.run_for_ms(4500 + 100 * seed);
        w.crash(1);
        w.start(1);
        w.run_for_ms(10_000);
        assert!(w.overlaps().is_empty(), "seed {seed}: {:?}", w.overlaps());
        assert_eq!(w.leaders().len(), 1);
    }
}
