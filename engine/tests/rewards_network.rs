//! The rewards protocol across a network of 8 nodes: an election group of
//! 3 elects the coordinator, overlay traffic produces receipts, epochs
//! settle and are published (record and inputs as overlay content, a
//! signed pointer in the DHT), every auditor verifies the records from
//! the DHT, the payouts conserve the emission, a node forging receipts
//! earns nothing, a node failing its storage challenges earns no storage
//! share, a dishonest coordinator is caught, a failed DHT get is retried,
//! and a node that never registered audits too.

mod common;

use allium_engine::election::{ElectionConfig, GroupConfig, Member, Membership};
use allium_engine::overlay::{ContentStore, Metadata, OverlayEvent};
use allium_engine::rewards::clock::RewardsConfig;
use allium_engine::rewards::machine::AuditOutcome;
use allium_engine::rewards::messages::RewardsMessage;
use allium_engine::rewards::{EpochRecord, Receipt, RecordPointer, RewardsEvent, record_key};
use allium_engine::wire;
use allium_engine::{Command, CryptoSuite, Event, Identity, NodeSeed, Params};
use common::{Net, addr};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

const SEED: u64 = 41;
const GROUP: &str = "rewards";
const EPOCH_SECS: u64 = 60;
const NODES: usize = 8;
/// Holds content, then loses its chunks: fails its challenges.
const LOSER: usize = 6;
/// Claims forged receipts.
const FORGER: usize = 7;

fn identity(i: usize) -> Identity {
    Identity::from_seed(&NodeSeed::derive(SEED, i as u64), CryptoSuite::Real)
}

fn params() -> Params {
    let mut p = Params::default();
    p.dht.k = 8;
    p.overlay.chunk_bytes = 16 * 1024;
    p.rewards.epoch_secs = EPOCH_SECS;
    p.rewards.settle_delay_secs = 10;
    p.rewards.receipt_interval_ms = 2_000;
    p.rewards.probe_bytes = 64 * 1024;
    p.rewards.probes_per_epoch = 1;
    p.rewards.challenges_per_epoch = 3;
    p
}

fn publish(net: &mut Net, node: usize, len: u32, salt: u32) -> allium_engine::overlay::Cid {
    let data: Vec<u8> = (0..len).map(|i| (i.wrapping_mul(31).wrapping_add(salt) / 7) as u8).collect();
    let id = net.command(node, Command::Publish { data, metadata: Metadata::default() });
    net.run_for(Duration::from_secs(3));
    net.overlay_events(node)
        .into_iter()
        .find_map(|e| match e {
            OverlayEvent::Published { id: i, cid, .. } if *i == id => Some(*cid),
            _ => None,
        })
        .expect("published")
}

fn fetch(net: &mut Net, node: usize, cid: allium_engine::overlay::Cid) {
    let id = net.command(node, Command::Fetch { cid, range: None });
    net.run_for(Duration::from_secs(4));
    assert!(
        net.overlay_events(node)
            .iter()
            .any(|e| matches!(e, OverlayEvent::FetchFinished { id: i, result: Ok(_), .. } if *i == id)),
        "node {node} fetched {cid:?}"
    );
}

fn rewards_events(net: &Net) -> Vec<(usize, RewardsEvent)> {
    net.events
        .iter()
        .filter_map(|(i, e)| match e {
            Event::Rewards(r) => Some((*i, r.clone())),
            _ => None,
        })
        .collect()
}

/// The rewards settings of node `i` of the test network.
fn config(audit: bool) -> RewardsConfig {
    RewardsConfig { enabled: true, group: Some(GROUP.into()), unix_ms_at_start: 0, audit }
}

/// The index of the node that coordinates now (one of the 3 group members).
fn coordinator(net: &Net) -> usize {
    (0..3).find(|&i| net.node(i).rewards(net.now).coordinating).expect("a coordinator")
}

/// Runs until `at` seconds of virtual time.
fn run_until(net: &mut Net, at_ms: u64) {
    let now = net.now.as_millis();
    assert!(at_ms >= now, "already at {now} ms");
    net.run_for(Duration::from_millis(at_ms - now));
}

/// The body of a DHT datagram.
fn dht_body(bytes: &[u8]) -> Option<allium_engine::dht::Body> {
    let Ok((wire::MessageKind::Dht, body)) = wire::split(bytes) else { return None };
    allium_engine::dht::DhtMessage::decode(body).ok().map(|m| m.body)
}

/// Every node but `except` reported `epoch`'s record as verified (hash
/// `hash`), holds it as its last record, and saw no mismatch.
fn all_verified(net: &Net, epoch: u64, hash: [u8; 32], except: &[usize]) {
    let events = rewards_events(net);
    for i in (0..net.len()).filter(|i| !except.contains(i)) {
        assert!(
            events.iter().any(|(n, e)| *n == i && *e == RewardsEvent::Verified { epoch, hash }),
            "node {i} verified epoch {epoch}: {:?}",
            events.iter().filter(|(n, _)| *n == i).collect::<Vec<_>>()
        );
        let last = net.node(i).rewards(net.now).last_record.expect("a record");
        assert_eq!(last.epoch, epoch);
        assert_eq!(last.audit, AuditOutcome::Verified);
        let metrics = net.node(i).metrics();
        assert_eq!(metrics.get("rewards.audit.mismatch"), 0, "node {i}");
        assert!(metrics.get("rewards.audit.gets") >= 1, "node {i} asked the DHT");
    }
}

fn build() -> Net {
    let mut net = Net::new(SEED, params());
    net.uplink_bytes_per_sec = Some(2_000_000);
    let founder = Identity::from_seed(&NodeSeed::derive(SEED, 1000), CryptoSuite::Real);
    let members: Vec<Member> = (0..3).map(|i| Member::of(&identity(i), addr(i), i as u8)).collect();
    let membership = Membership::founder(&founder, GROUP, members);
    for i in 0..3 {
        let group = GroupConfig {
            name: GROUP.into(),
            founder_key: founder.public().signing_key,
            membership: membership.clone(),
            priority: i as u8,
            join_token: None,
        };
        net.elections.insert(i, ElectionConfig { groups: vec![group] });
    }
    for i in 0..NODES {
        net.rewards.insert(i, config(true));
    }
    net.add_node(&[]);
    for _ in 1..NODES {
        net.add_node(&[0]);
        net.run_for(Duration::from_millis(200));
    }
    net.run_for(Duration::from_secs(3));
    net
}

#[test]
fn an_epoch_settles_audits_and_pays_only_honest_work() {
    let mut net = build();
    // Epoch 0: content to hold.
    let first = publish(&mut net, 3, 100_000, 1);
    for node in [4, 5, LOSER] {
        fetch(&mut net, node, first);
    }
    let coordinator = (0..3).find(|&i| net.node(i).rewards(net.now).coordinating).expect("a coordinator");
    // Into epoch 1: every node registers (declaring what it holds).
    let now = net.now.as_millis();
    net.run_for(Duration::from_millis(EPOCH_SECS * 1000 - now + 1_500));
    assert_eq!(net.node(3).epoch_at(net.now), 1);
    let coordinator = (0..3).find(|&i| net.node(i).rewards(net.now).coordinating).unwrap_or(coordinator);
    let coordinator_id = net.node(coordinator).id();
    for i in 0..NODES {
        if i != coordinator {
            assert_eq!(
                net.node(i).rewards(net.now).coordinator,
                Some(coordinator_id),
                "node {i} found the coordinator"
            );
        }
    }
    // The loser drops its chunks (keeps the manifest): its challenges fail.
    {
        let store = net.stores[LOSER].clone();
        let mut store = store.lock().unwrap();
        for (cid, _) in store.objects().unwrap() {
            let manifest = store.block(&cid.block()).unwrap().unwrap();
            let manifest = allium_engine::overlay::Manifest::decode(&manifest).unwrap();
            for block in manifest.chunks {
                store.remove_block(&block).unwrap();
            }
        }
    }
    // Epoch 1 traffic.
    let second = publish(&mut net, 4, 80_000, 2);
    for node in [1, 2, 5, 3] {
        fetch(&mut net, node, second);
    }
    // After the epoch, inside the claim window: the forger claims receipts
    // from an unregistered key and a tampered one from a registered node.
    run_until(&mut net, 2 * EPOCH_SECS * 1000 + 5_000);
    let forger = net.node(FORGER).id();
    let sybil = Identity::from_seed(&NodeSeed::derive(SEED, 5000), CryptoSuite::Real);
    let mut tampered = Receipt::sign(&identity(5), 1, forger, 1_000);
    tampered.bytes = 50_000_000;
    let claim = RewardsMessage::Claim {
        epoch: 1,
        part: 7,
        receipts: vec![Receipt::sign(&sybil, 1, forger, 40_000_000), tampered],
    };
    net.deliver_raw(addr(FORGER), coordinator, claim.encode());
    // Settlement at +10 s, audits from +15 s to +25 s.
    net.run_for(Duration::from_secs(30));

    let events = rewards_events(&net);
    let settled: Vec<_> = events
        .iter()
        .filter_map(|(i, e)| match e {
            RewardsEvent::Settled { epoch: 1, hash, .. } => Some((*i, *hash)),
            _ => None,
        })
        .collect();
    assert_eq!(settled.len(), 1, "one coordinator settled epoch 1: {settled:?}");
    assert_eq!(settled[0].0, coordinator);
    let record: EpochRecord = net.node(coordinator).rewards_machine().last_record().cloned().expect("record");
    assert_eq!(record.epoch, 1);
    assert_eq!(record.hash(), settled[0].1);
    // The simulator's accessor: the signed record and its canonical inputs.
    let machine = net.node(coordinator).rewards_machine();
    let (kept, inputs) = machine.settled(1).expect("epoch 1 kept");
    assert_eq!(kept, &record);
    assert!(kept.verify_signature());
    assert!(inputs.is_canonical());
    assert_eq!(kept.verify_against(&params().rewards, inputs), Ok(()));
    assert!(machine.settled(0).is_some_and(|(r, _)| record.follows(r)), "epoch 0 kept too");
    assert!(machine.settled(2).is_none());
    // Published: the record names its inputs' content, and the DHT holds
    // the coordinator's signed pointer to both (at every holder of the key).
    let inputs_cid = record.inputs_cid.expect("the inputs were published");
    let key = record_key(GROUP, 1);
    let holders: Vec<usize> =
        (0..NODES).filter(|&i| net.node(i).dht().store().values().any(|v| v.key == key)).collect();
    assert!(holders.len() >= 2, "the pointer is replicated: {holders:?}");
    for &i in &holders {
        let value = net.node(i).dht().store().values().find(|v| v.key == key).expect("held").value.clone();
        let pointer = RecordPointer::decode(&value).expect("a pointer");
        assert_eq!(pointer.verify(), Ok(()));
        assert_eq!(pointer.coordinator(), net.node(coordinator).id());
        assert_eq!((pointer.epoch, pointer.record_hash, pointer.inputs_cid), (1, record.hash(), inputs_cid));
    }
    assert!(net.node(coordinator).metrics().get("rewards.coord.pointer_stored") >= 2);
    // Chained to epoch 0's record.
    assert!(!record.is_first(), "epoch 1 chains to epoch 0");
    // Conservation.
    let paid: u64 = record.payouts.iter().map(|p| p.total).sum();
    assert_eq!(paid + record.carried_out, record.emission + record.carried_in);
    assert!(paid > 0, "{record:?}");
    // Every other node verified the record, from the DHT and the overlay.
    all_verified(&net, 1, record.hash(), &[coordinator]);
    for i in (0..NODES).filter(|&i| i != coordinator) {
        assert_eq!(net.node(i).metrics().get("rewards.audit.verified"), 2, "node {i} audited epochs 0 and 1");
    }
    let row = |i: usize| record.payouts.iter().find(|p| p.node == net.node(i).id()).cloned();
    // Providers that served chunks earned bandwidth; the publisher earned its share.
    assert!(row(4).is_some_and(|p| p.bandwidth > 0), "{record:?}");
    assert!(row(4).is_some_and(|p| p.publisher > 0 || p.storage > 0), "{record:?}");
    // The forger earns nothing; its receipts are counted as refused.
    assert!(row(FORGER).is_none(), "{:?}", row(FORGER));
    assert!(record.rejected.forged_receipts >= 1, "{:?}", record.rejected);
    assert!(record.rejected.unregistered_consumer >= 1, "{:?}", record.rejected);
    // The loser failed a challenge: no storage share.
    assert!(record.rejected.failed_challenges >= 1, "{:?}", record.rejected);
    assert_eq!(row(LOSER).map_or(0, |p| p.storage), 0);
    // Somebody honest earned storage.
    assert!(record.payouts.iter().any(|p| p.storage > 0), "{record:?}");
    eprintln!("payouts {:?} rejected {:?} carried_out {}", record.payouts, record.rejected, record.carried_out);

    // Once epoch 2 settles, the coordinator forgets epoch 0: no longer kept,
    // its content unpinned, its pointer no longer republished.
    let epoch0_inputs = net.node(coordinator).rewards_machine().settled(0).and_then(|(r, _)| r.inputs_cid);
    let epoch0_inputs = epoch0_inputs.expect("epoch 0 published");
    run_until(&mut net, 3 * EPOCH_SECS * 1000 + 30_000);
    let machine = net.node(coordinator).rewards_machine();
    assert!(machine.settled(0).is_none() && machine.settled(1).is_some() && machine.settled(2).is_some());
    let own = &net.persisted[coordinator].own_values;
    assert!(!own.contains_key(&record_key(GROUP, 0)), "epoch 0's pointer forgotten");
    assert!(own.contains_key(&record_key(GROUP, 1)) && own.contains_key(&record_key(GROUP, 2)));
    let holding = net.node(coordinator).overlay().index().get(&epoch0_inputs).map(|o| o.meta.holding);
    assert_eq!(holding, Some(allium_engine::overlay::Holding::Cached), "epoch 0's inputs unpinned");
    all_verified(&net, 2, machine.settled(2).expect("kept").0.hash(), &[coordinator]);
}

/// A dishonest coordinator publishes a record that does not match its
/// inputs (signed, consistently pointed to, only the recomputation can
/// tell): every auditor fetches it from the DHT and flags the mismatch;
/// the dishonest record does not become their chain's head.
#[test]
fn a_record_not_matching_its_inputs_is_a_mismatch() {
    let mut net = build();
    let cid = publish(&mut net, 3, 60_000, 5);
    fetch(&mut net, 4, cid);
    let coordinator = coordinator(&net);
    // Whichever member settles, it adds a unit to its own carry-out.
    for i in 0..3 {
        net.nodes[i].as_mut().expect("up").rewards_mut().set_forgery(|r| r.carried_out += 1);
    }
    run_until(&mut net, EPOCH_SECS * 1000 + 30_000);
    let events = rewards_events(&net);
    assert!(events.iter().any(|(n, e)| *n == coordinator && matches!(e, RewardsEvent::Settled { epoch: 0, .. })));
    for i in (0..NODES).filter(|&i| i != coordinator) {
        assert!(
            events.iter().any(|(n, e)| *n == i && *e == RewardsEvent::Mismatch { epoch: 0, what: "carried_out" }),
            "node {i}: {events:?}"
        );
        let metrics = net.node(i).metrics();
        assert_eq!(metrics.get("rewards.audit.mismatch"), 1, "node {i}");
        assert_eq!(metrics.get("rewards.audit.verified"), 0, "node {i}");
        let last = net.node(i).rewards(net.now).last_record.expect("the record is reported");
        assert_eq!(last.audit, AuditOutcome::Mismatch("carried_out"));
        assert!(net.node(i).rewards_machine().last_record().is_none(), "node {i} does not chain to it");
    }
}

/// The first DHT get of one auditor fails (the pointer's STOREs and every
/// VALUE answer to it are lost): it is counted and tried again later, and
/// the auditor then verifies the record, once.
#[test]
fn a_failed_dht_get_is_retried() {
    let mut net = build();
    let cid = publish(&mut net, 3, 60_000, 9);
    fetch(&mut net, 4, cid);
    let coordinator = coordinator(&net);
    let victim = if coordinator == 5 { 6 } else { 5 };
    let cut = Rc::new(Cell::new(true));
    let cutting = cut.clone();
    net.tamper = Some(Box::new(move |_, to, bytes: &mut Vec<u8>| {
        use allium_engine::dht::Body;
        let lost = match dht_body(bytes) {
            Some(Body::Store { .. }) => true,
            Some(Body::Value { .. }) => to == victim,
            _ => false,
        };
        if cutting.get() && lost {
            bytes.clear(); // refused by the receiver: as good as lost
        }
    }));
    run_until(&mut net, EPOCH_SECS * 1000 + 5_000);
    // Until the victim's first get has failed.
    for _ in 0..60 {
        if net.node(victim).metrics().get("rewards.audit.get_failed") > 0 {
            break;
        }
        net.run_for(Duration::from_secs(1));
    }
    assert_eq!(net.node(victim).metrics().get("rewards.audit.get_failed"), 1);
    assert!(!rewards_events(&net).iter().any(|(n, e)| *n == victim && matches!(e, RewardsEvent::Verified { .. })));
    cut.set(false);
    net.run_for(Duration::from_secs(40));
    let events = rewards_events(&net);
    let hash = events
        .iter()
        .find_map(|(_, e)| match e {
            RewardsEvent::Settled { epoch: 0, hash, .. } => Some(*hash),
            _ => None,
        })
        .expect("settled");
    all_verified(&net, 0, hash, &[coordinator]);
    let metrics = net.node(victim).metrics();
    assert!(metrics.get("rewards.audit.gets") >= 2, "asked again");
    assert_eq!(events.iter().filter(|(n, e)| *n == victim && matches!(e, RewardsEvent::Verified { .. })).count(), 1);
    // The coordinator's own put reached no peer at first, and was tried again.
    let coord = net.node(coordinator).metrics();
    assert!(coord.get("rewards.coord.pointer_unstored") >= 1);
    assert!(coord.get("rewards.coord.pointer_retried") >= 1);
}

/// A node the coordinator never registered (its announcements are lost)
/// audits from the DHT like the others; a node that does not audit asks
/// nothing.
#[test]
fn an_unregistered_node_audits_and_a_non_auditor_does_not() {
    let mut net = build();
    const LATE: usize = NODES;
    const SILENT: usize = NODES + 1;
    net.rewards.insert(LATE, config(true));
    net.rewards.insert(SILENT, config(false));
    net.tamper = Some(Box::new(|_, to, bytes: &mut Vec<u8>| {
        let Ok((wire::MessageKind::Rewards, body)) = wire::split(bytes) else { return };
        if to == LATE && matches!(RewardsMessage::decode(body), Ok(RewardsMessage::Announce(_))) {
            bytes.clear();
        }
    }));
    net.add_node(&[0]);
    net.add_node(&[0]);
    let cid = publish(&mut net, 3, 60_000, 11);
    fetch(&mut net, LATE, cid);
    let coordinator = coordinator(&net);
    run_until(&mut net, EPOCH_SECS * 1000 + 30_000);
    assert_eq!(net.node(LATE).rewards(net.now).coordinator, None, "never registered");
    let (record, inputs) = net.node(coordinator).rewards_machine().settled(0).expect("settled");
    let late_key = net.node(LATE).identity().public().signing_key;
    assert!(!inputs.nodes.iter().any(|n| n.signing_key == late_key), "not in the inputs");
    let hash = record.hash();
    all_verified(&net, 0, hash, &[coordinator, SILENT]);
    let silent = net.node(SILENT).metrics();
    assert_eq!(silent.get("rewards.audit.gets") + silent.get("rewards.audit.fetches"), 0);
    assert_eq!(net.node(SILENT).rewards(net.now).last_record, None);
    assert!(net.node(SILENT).rewards(net.now).coordinator.is_some(), "it registered all the same");
}
