//! Unit tests of the election machine: a few machines wired directly to
//! each other with zero latency, one shared clock.

use super::*;
use crate::crypto::CryptoSuite;
use crate::rng::NodeSeed;
use crate::wire;

fn identity(i: u64) -> Identity {
    Identity::from_seed(&NodeSeed::derive(77, i), CryptoSuite::Real)
}

fn addr(i: usize) -> Addr {
    ([127, 0, 0, 1], 5000 + i as u16).into()
}

struct Cluster {
    machines: Vec<Option<Election>>,
    founder: Identity,
    now: Instant,
    events: Vec<(usize, ElectionEvent)>,
    /// Membership lists persisted: (machine, group, encoded list).
    persisted: Vec<(usize, String, Vec<u8>)>,
}

fn config(founder: &Identity, n: usize, priorities: &[u8]) -> ElectionConfig {
    let members = (0..n).map(|i| Member::of(&identity(i as u64 + 1), addr(i), priorities[i])).collect();
    let membership = Membership::founder(founder, "g", members);
    let group = GroupConfig {
        name: "g".into(),
        founder_key: founder.public().signing_key,
        membership,
        priority: 0,
        join_token: None,
    };
    ElectionConfig { groups: vec![group] }
}

impl Cluster {
    fn new(n: usize, priorities: &[u8], params: ElectionParams) -> Cluster {
        let founder = identity(0);
        let config = config(&founder, n, priorities);
        let machines = (0..n)
            .map(|i| {
                let id = identity(i as u64 + 1);
                Some(Election::new(
                    Instant::ZERO,
                    &id,
                    params.clone(),
                    config.clone(),
                    &Default::default(),
                    NodeSeed::derive(1, i as u64).stream("e"),
                ))
            })
            .collect();
        Cluster { machines, founder, now: Instant::ZERO, events: Vec::new(), persisted: Vec::new() }
    }

    fn index_of(a: &Addr) -> usize {
        usize::from(a.port() - 5000)
    }

    /// Drains outputs, delivering datagrams at once (breadth first).
    fn settle(&mut self) {
        let mut queue = VecDeque::new();
        loop {
            for (i, m) in self.machines.iter_mut().enumerate() {
                let Some(m) = m else { continue };
                while let Some(out) = m.poll_output() {
                    match out {
                        Output::Transmit { to, bytes } => queue.push_back((i, Cluster::index_of(&to), bytes)),
                        Output::Event(Event::Election(e)) => self.events.push((i, e)),
                        // Every adopted list is persisted (checked in `join_and_remove_through_the_leader`).
                        Output::Persist(crate::PersistOp::PutMembership { group, list }) => {
                            self.persisted.push((i, group, list))
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                }
            }
            let Some((from, to, bytes)) = queue.pop_front() else { break };
            if let Some(m) = self.machines[to].as_mut() {
                let (kind, body) = wire::split(&bytes).unwrap();
                assert_eq!(kind, wire::MessageKind::Election);
                m.handle_datagram(self.now, addr(from), body).unwrap();
            }
        }
    }

    fn run_until(&mut self, end: Instant) {
        loop {
            self.settle();
            let next = self.machines.iter().flatten().filter_map(|m| m.poll_timeout()).min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    for m in self.machines.iter_mut().flatten() {
                        m.handle_timeout(self.now);
                    }
                    self.assert_one_leader();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    fn run_for(&mut self, ms: u64) {
        self.run_until(self.now + Duration::from_millis(ms));
    }

    fn leaders(&self) -> Vec<usize> {
        (0..self.machines.len())
            .filter(|&i| self.machines[i].as_ref().is_some_and(|m| m.status("g").unwrap().holds_lease(self.now)))
            .collect()
    }

    fn assert_one_leader(&self) {
        assert!(self.leaders().len() <= 1, "two leaders at {}: {:?}", self.now, self.leaders());
    }
}

#[test]
fn three_members_elect_the_highest_priority_and_renew() {
    let mut c = Cluster::new(3, &[200, 255, 100], ElectionParams::default());
    c.run_for(2000);
    assert!(c.leaders().is_empty(), "nobody grants while quiet after start");
    c.run_for(5000);
    assert_eq!(c.leaders(), vec![1]);
    let s0 = c.machines[0].as_ref().unwrap().status("g").unwrap();
    assert_eq!(s0.leader, Some(identity(2).id()));
    c.run_for(20_000);
    assert_eq!(c.leaders(), vec![1], "renewals keep the lease");
    let acquired = c.events.iter().filter(|(_, e)| matches!(e, ElectionEvent::LeaseAcquired { .. })).count();
    assert_eq!(acquired, 1);
    assert!(c.machines[1].as_ref().unwrap().metrics().get("election.leases.renewed") > 10);
}

#[test]
fn failover_after_the_leader_stops() {
    let mut c = Cluster::new(3, &[200, 255, 100], ElectionParams::default());
    c.run_for(7000);
    assert_eq!(c.leaders(), vec![1]);
    c.machines[1] = None;
    let crashed = c.now;
    c.run_for(10_000);
    assert_eq!(c.leaders(), vec![0], "the next priority takes over");
    let acquired_at = c.machines[0].as_ref().unwrap().status("g").unwrap();
    assert!(acquired_at.lease_valid_until.is_some());
    let _ = crashed;
}

#[test]
fn preemption_on_and_off() {
    for preempt in [true, false] {
        let params = ElectionParams { preempt, ..Default::default() };
        let mut c = Cluster::new(3, &[200, 255, 100], params.clone());
        c.machines[1] = None;
        c.run_for(8000);
        assert_eq!(c.leaders(), vec![0]);
        let config = config(&c.founder, 3, &[200, 255, 100]);
        c.machines[1] = Some(Election::new(
            c.now,
            &identity(2),
            params,
            config,
            &Default::default(),
            NodeSeed::derive(2, 1).stream("e"),
        ));
        c.run_for(20_000);
        let expected = if preempt { vec![1] } else { vec![0] };
        assert_eq!(c.leaders(), expected, "preempt {preempt}");
    }
}

#[test]
fn join_and_remove_through_the_leader() {
    let mut c = Cluster::new(3, &[255, 200, 100], ElectionParams::default());
    c.run_for(7000);
    assert_eq!(c.leaders(), vec![0]);
    // Node 3 joins with a token.
    let joiner = identity(4);
    let token = JoinToken::sign(&c.founder, "g", joiner.public().signing_key, 50, Some(5));
    let config = config(&c.founder, 3, &[255, 200, 100]);
    let mut m = Election::new(
        c.now,
        &joiner,
        ElectionParams::default(),
        config,
        &Default::default(),
        NodeSeed::derive(3, 3).stream("e"),
    );
    assert_eq!(m.command(c.now, ElectionCommand::Join { group: "g".into(), token }), Ok(()));
    c.machines.push(Some(m));
    c.run_for(3000);
    for m in c.machines.iter().flatten() {
        let s = m.status("g").unwrap();
        assert_eq!((s.version, s.members, s.is_member), (2, 4, true));
    }
    // Each of the four persisted version 2 when it adopted it.
    for i in 0..4 {
        let (_, group, list) = c.persisted.iter().rfind(|(m, ..)| *m == i).expect("persisted");
        assert_eq!((group.as_str(), Membership::decode(list).unwrap().version), ("g", 2), "machine {i}");
    }
    // Removal: only at the leader.
    let removed = identity(3).id();
    let remove = ElectionCommand::RemoveMember { group: "g".into(), id: removed };
    assert_eq!(c.machines[1].as_mut().unwrap().command(c.now, remove.clone()), Err(ElectionError::NotLeader));
    let now = c.now;
    assert_eq!(c.machines[0].as_mut().unwrap().command(now, remove), Ok(()));
    c.run_for(3000);
    let s = c.machines[2].as_ref().unwrap().status("g").unwrap();
    assert_eq!((s.version, s.is_member), (3, false));
    assert_eq!(c.machines[0].as_ref().unwrap().status("g").unwrap().members, 3);
    assert_eq!(c.leaders(), vec![0]);
}

#[test]
fn forged_and_foreign_messages_are_refused() {
    let mut c = Cluster::new(3, &[255, 200, 100], ElectionParams::default());
    c.run_for(7000);
    let stranger = identity(99);
    let request = Request {
        group: "g".into(),
        ballot: 1000,
        nonce: [0; 16],
        candidate: [0; 32],
        duration_ms: 3000,
        version: 1,
        digest: [0; 32],
        renewal: true,
        membership: None,
        signature: [0; 64],
    }
    .sign(&stranger);
    let bytes = ElectionMessage::Request(request.clone()).encode();
    let m = c.machines[1].as_mut().unwrap();
    assert_eq!(
        m.handle_datagram(c.now, addr(9), &bytes[2..]),
        Err(WireError::Protocol("election request from a non-member"))
    );
    // A member's key with a stranger's signature.
    let mut forged = request;
    forged.candidate = identity(3).public().signing_key;
    let bytes = ElectionMessage::Request(forged).encode();
    assert_eq!(
        m.handle_datagram(c.now, addr(9), &bytes[2..]),
        Err(WireError::Protocol("bad election request signature"))
    );
    let other = Request {
        group: "other".into(),
        ballot: 1,
        nonce: [0; 16],
        candidate: [0; 32],
        duration_ms: 3000,
        version: 1,
        digest: [0; 32],
        renewal: false,
        membership: None,
        signature: [0; 64],
    };
    let bytes = ElectionMessage::Request(other).encode();
    assert_eq!(m.handle_datagram(c.now, addr(9), &bytes[2..]), Err(WireError::Protocol("unknown election group")));
    // A membership signed by a stranger is not adopted.
    let members = vec![Member::of(&stranger, addr(9), 255)];
    let list = Membership::sign(&stranger, "g", 9, members);
    m.handle_datagram(c.now, addr(9), &ElectionMessage::Update(list).encode()[2..]).unwrap();
    assert_eq!(m.status("g").unwrap().version, 1);
    c.run_for(1000);
    assert_eq!(c.leaders(), vec![0]);
}

#[test]
fn config_with_a_bad_founder_signature_is_skipped() {
    let founder = identity(0);
    let mut cfg = config(&founder, 2, &[1, 2]);
    cfg.groups[0].founder_key = identity(50).public().signing_key;
    let m = Election::new(
        Instant::ZERO,
        &identity(1),
        ElectionParams::default(),
        cfg,
        &Default::default(),
        NodeSeed::derive(1, 1).stream("e"),
    );
    assert!(m.statuses().is_empty());
    assert_eq!(m.metrics().get("election.config.invalid"), 1);
    assert_eq!(m.poll_timeout(), None, "an idle machine wants no timer");
}

#[test]
fn single_member_group_leads_alone() {
    let mut c = Cluster::new(1, &[10], ElectionParams::default());
    c.run_for(20_000);
    assert_eq!(c.leaders(), vec![0]);
}
