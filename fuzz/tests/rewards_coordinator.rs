//! Fuzz target `rewards_coordinator`: a node that holds the lease of its
//! (one-member) election group, so it coordinates rewards, fed a
//! fuzzer-chosen sequence of rewards datagrams — raw bodies, and
//! structured ones signed by four pool identities: registrations, claims
//! with valid, tampered, unregistered or wrong-epoch receipts, probe data
//! and challenge answers (for the nonces the node actually sent, or
//! random) — interleaved with time steps across epoch ends and
//! settlements. The harness is in this file.
//!
//! Checked after every input: nothing panics; `poll_output` runs dry;
//! `poll_timeout` is always `Some` and, after a timeout at `now`, strictly
//! later; every datagram the node sends frames and decodes; every rewards
//! event is one of the coordinator's (no `Mismatch` from its own records);
//! every record it settles verifies its own signature and conserves the
//! units (`Σ totals + carried_out = emission + carried_in`), a settled
//! record's hash is the last record's, it names its published inputs and
//! is what `Rewards::settled` returns with inputs that recompute it, and
//! the node's DHT store holds a verified pointer to it under
//! `record_key(group, epoch)`.

use allium_engine::election::{ElectionConfig, GroupConfig, Member, Membership};
use allium_engine::rewards::challenge::ChallengeAnswer;
use allium_engine::rewards::clock::RewardsConfig;
use allium_engine::rewards::messages::{Declared, Register, RewardsMessage};
use allium_engine::rewards::{EpochRecord, Receipt, RecordPointer, RewardsEvent, record_key};
use allium_engine::wire::{self, MessageKind};
use allium_engine::{Addr, CryptoSuite, Event, Identity, Input, Instant, Node, NodeSeed, Output, Params};
use allium_fuzz::pool;
use allium_fuzz::{ITERATIONS, TEST_TIME};
use bolero::{TypeGenerator, produce};
use core::time::Duration;
use std::net::{Ipv4Addr, SocketAddr};

const GROUP: &str = "rewards";

#[derive(Clone, Debug, TypeGenerator)]
enum Step {
    Raw(#[generator(produce::<Vec<u8>>().with().len(0usize..=300))] Vec<u8>),
    Register { who: u8, epoch_back: bool, declared: u8, cid: u8 },
    Claim { who: u8, epoch_back: u8, part: u32, receipts: Vec<(u8, u8, u32, bool)> },
    ProbeData { from: u8, nonce: u8, random: bool, len: u16 },
    Answer { from: u8, nonce: u8, slice: Vec<u8>, manifest: Vec<u8> },
    Wait(u16),
}

#[derive(Clone, Debug, TypeGenerator)]
struct Script {
    #[generator(produce::<Vec<Step>>().with().len(0usize..=40))]
    steps: Vec<Step>,
}

fn peer(i: u8) -> Identity {
    Identity::from_seed(&NodeSeed::derive(77, u64::from(i % 4)), CryptoSuite::Real)
}

fn peer_addr(i: u8) -> Addr {
    SocketAddr::from((Ipv4Addr::new(10, 9, 0, (i % 4) + 1), 4000))
}

struct Harness {
    node: Node,
    now: Instant,
    nonces: Vec<[u8; 32]>,
}

impl Harness {
    fn new() -> Harness {
        let mut params = Params::default();
        params.rewards.epoch_secs = 20;
        params.rewards.settle_delay_secs = 2;
        params.rewards.receipt_interval_ms = 1_000;
        params.rewards.probe_bytes = 4_096;
        params.rewards.probe_timeout_ms = 500;
        params.rewards.challenge_timeout_ms = 500;
        params.rewards.max_receipts_per_claim = 8;
        let mut config = pool::node_config(params, Vec::new());
        let founder = Identity::from_seed(&NodeSeed::derive(77, 1000), CryptoSuite::Real);
        let me = Member::of(&config.identity, config.local_addr, 0);
        let membership = Membership::founder(&founder, GROUP, vec![me]);
        config.election = ElectionConfig {
            groups: vec![GroupConfig {
                name: GROUP.into(),
                founder_key: founder.public().signing_key,
                membership,
                priority: 0,
                join_token: None,
            }],
        };
        config.rewards = RewardsConfig { enabled: true, group: Some(GROUP.into()), unix_ms_at_start: 0, audit: true };
        let node = Node::new(Instant::ZERO, config);
        let mut h = Harness { node, now: Instant::ZERO, nonces: Vec::new() };
        h.drain();
        h.wait(Duration::from_secs(5));
        h
    }

    fn epoch(&self) -> u64 {
        self.node.epoch_at(self.now)
    }

    fn input(&mut self, input: Input) {
        self.node.handle_input(self.now, input);
        self.drain();
    }

    fn drain(&mut self) {
        while let Some(output) = self.node.poll_output() {
            match output {
                Output::Transmit { bytes, .. } => {
                    let (kind, body) = wire::split(&bytes).expect("own datagrams frame");
                    if kind == MessageKind::Rewards {
                        match RewardsMessage::decode(body).expect("own rewards datagrams decode") {
                            RewardsMessage::ProbeRequest { nonce, .. } => self.nonces.push(nonce),
                            RewardsMessage::Challenge(c) => self.nonces.push(c.nonce),
                            _ => {}
                        }
                        if self.nonces.len() > 16 {
                            self.nonces.remove(0);
                        }
                    }
                }
                Output::Event(Event::Rewards(event)) => self.check(event),
                _ => {}
            }
        }
    }

    fn check(&self, event: RewardsEvent) {
        match event {
            RewardsEvent::Settled { epoch, hash, paid, carried_out, .. } => {
                let record: &EpochRecord = self.node.rewards_machine().last_record().expect("a settled record");
                assert_eq!(record.epoch, epoch);
                assert_eq!(record.hash(), hash);
                assert!(record.verify_signature());
                let sum = record.payouts.iter().fold(0u128, |a, p| a + u128::from(p.total));
                assert_eq!(sum, u128::from(paid));
                assert_eq!(carried_out, record.carried_out);
                assert_eq!(
                    sum + u128::from(record.carried_out),
                    u128::from(record.emission) + u128::from(record.carried_in)
                );
                let machine = self.node.rewards_machine();
                let (kept, inputs) = machine.settled(epoch).expect("the settled epoch is kept");
                assert_eq!(kept, record);
                assert!(record.inputs_cid.is_some(), "the inputs were published");
                assert_eq!(record.verify_against(machine.params(), inputs), Ok(()));
                let key = record_key(GROUP, epoch);
                let value = self.node.dht().store().values().find(|v| v.key == key).expect("the pointer is held");
                let pointer = RecordPointer::decode(&value.value).expect("the pointer decodes");
                assert_eq!(pointer.verify(), Ok(()));
                assert_eq!((pointer.record_hash, pointer.inputs_cid), (hash, record.inputs_cid.expect("set")));
            }
            RewardsEvent::Mismatch { .. } => panic!("the coordinator's own record mismatched"),
            RewardsEvent::EpochEnded { .. } | RewardsEvent::Verified { .. } => {}
        }
    }

    fn wait(&mut self, span: Duration) {
        let end = self.now.saturating_add(span);
        loop {
            let next = self.node.poll_timeout().expect("a rewards node always has a timer");
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            let at = self.now;
            self.input(Input::Timeout);
            let after = self.node.poll_timeout().expect("a timer");
            assert!(after > at, "timer at {after:?} not after {at:?}");
        }
        self.now = end;
    }

    fn datagram(&mut self, from: Addr, message: &RewardsMessage) {
        self.input(Input::Datagram { from, bytes: message.encode() });
    }

    fn step(&mut self, step: Step) {
        let epoch = self.epoch();
        match step {
            Step::Raw(body) => {
                let mut bytes = wire::encode(MessageKind::Rewards, &());
                bytes.extend_from_slice(&body);
                self.input(Input::Datagram { from: peer_addr(0), bytes });
            }
            Step::Register { who, epoch_back, declared, cid } => {
                let e = if epoch_back { epoch.saturating_sub(1) } else { epoch };
                let stored = (0..declared % 4)
                    .map(|i| Declared {
                        cid: allium_engine::overlay::Cid([cid; 32]),
                        chunk_index: u32::from(i),
                        block: allium_engine::overlay::BlockId([i; 32]),
                        chunk_len: 1 + u32::from(cid) * 100,
                    })
                    .collect();
                let register = Register::sign(&peer(who), GROUP, e, stored);
                self.datagram(peer_addr(who), &RewardsMessage::Register(register));
            }
            Step::Claim { who, epoch_back, part, receipts } => {
                let e = epoch.saturating_sub(u64::from(epoch_back % 3));
                let receipts = receipts
                    .into_iter()
                    .take(10)
                    .map(|(c, p, bytes, tamper)| {
                        let consumer = if c >= 200 {
                            Identity::from_seed(&NodeSeed::derive(78, 0), CryptoSuite::Real)
                        } else {
                            peer(c)
                        };
                        let mut r = Receipt::sign(&consumer, e, peer(p).id(), u64::from(bytes));
                        if tamper {
                            r.bytes ^= 1;
                        }
                        r
                    })
                    .collect();
                self.datagram(peer_addr(who), &RewardsMessage::Claim { epoch: e, part, receipts });
            }
            Step::ProbeData { from, nonce, random, len } => {
                let nonce = match self.nonces.get(usize::from(nonce)) {
                    Some(n) if !random => *n,
                    _ => [nonce; 32],
                };
                let payload = vec![0; usize::from(len) % 20_000];
                self.datagram(peer_addr(from), &RewardsMessage::ProbeData { nonce, payload });
            }
            Step::Answer { from, nonce, slice, manifest } => {
                let nonce = self.nonces.get(usize::from(nonce)).copied().unwrap_or([nonce; 32]);
                let answer = ChallengeAnswer {
                    epoch,
                    nonce,
                    cid: allium_engine::overlay::Cid([from; 32]),
                    chunk_index: 0,
                    slice: slice.into_iter().take(2048).collect(),
                    proof: Vec::new(),
                };
                let manifest = manifest.into_iter().take(4096).collect();
                self.datagram(peer_addr(from), &RewardsMessage::Answer { answer, manifest });
            }
            Step::Wait(ms) => self.wait(Duration::from_millis(u64::from(ms) * 4)),
        }
    }
}

fn rewards_coordinator(script: &Script) {
    let mut h = Harness::new();
    assert!(h.node.rewards(h.now).coordinating, "the lone member coordinates");
    for step in script.steps.iter().cloned() {
        h.step(step);
    }
    // Through the epoch's end and its settlement.
    h.wait(Duration::from_secs(25));
    assert!(h.node.rewards_machine().last_record().is_some(), "an epoch settled");
}

#[test]
fn rewards_coordinator_target() {
    bolero::check!()
        .with_type::<Script>()
        .with_iterations(ITERATIONS / 40)
        .with_test_time(TEST_TIME)
        .for_each(rewards_coordinator);
}

/// The harness reaches the coordinator's paths: two registrations, a
/// claim after the epoch, a settlement with three registered nodes.
#[test]
fn rewards_coordinator_reaches_settlement() {
    let mut h = Harness::new();
    h.step(Step::Register { who: 0, epoch_back: false, declared: 2, cid: 3 });
    h.step(Step::Register { who: 1, epoch_back: false, declared: 0, cid: 0 });
    h.wait(Duration::from_secs(16));
    h.step(Step::Claim { who: 1, epoch_back: 1, part: 0, receipts: vec![(0, 1, 5_000, false), (0, 1, 6_000, true)] });
    h.wait(Duration::from_secs(5));
    let record = h.node.rewards_machine().last_record().expect("settled");
    assert_eq!(record.epoch, 0);
    assert_eq!(record.rejected.forged_receipts, 1, "{:?}", record.rejected);
    assert!(record.rejected.failed_challenges >= 1, "{:?}", record.rejected);
    assert!(h.node.metrics().get("rewards.coord.registered") >= 2);
}
