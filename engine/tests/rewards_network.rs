//! The rewards protocol across a network of 8 nodes: an election group of
//! 3 elects the coordinator, overlay traffic produces receipts, epochs
//! settle, every auditor verifies the records, the payouts conserve the
//! emission, a node forging receipts earns nothing and a node failing its
//! storage challenges earns no storage share.

mod common;

use allium_engine::election::{ElectionConfig, GroupConfig, Member, Membership};
use allium_engine::overlay::{ContentStore, Metadata, OverlayEvent};
use allium_engine::rewards::clock::RewardsConfig;
use allium_engine::rewards::machine::AuditOutcome;
use allium_engine::rewards::messages::RewardsMessage;
use allium_engine::rewards::{EpochRecord, Receipt, RewardsEvent};
use allium_engine::wire;
use allium_engine::{Command, CryptoSuite, Event, Identity, NodeSeed, Params};
use common::{Net, addr};
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
        let config = RewardsConfig { enabled: true, group: Some(GROUP.into()), unix_ms_at_start: 0, audit: true };
        net.rewards.insert(i, config);
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
    let now = net.now.as_millis();
    net.run_for(Duration::from_millis(2 * EPOCH_SECS * 1000 - now + 5_000));
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
    net.run_for(Duration::from_secs(15));

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
    // Chained to epoch 0's record.
    assert!(!record.is_first(), "epoch 1 chains to epoch 0");
    // Conservation.
    let paid: u64 = record.payouts.iter().map(|p| p.total).sum();
    assert_eq!(paid + record.carried_out, record.emission + record.carried_in);
    assert!(paid > 0, "{record:?}");
    // Every other node verified the record.
    for i in 0..NODES {
        if i == coordinator {
            continue;
        }
        assert!(
            events.iter().any(|(n, e)| *n == i && *e == RewardsEvent::Verified { epoch: 1, hash: record.hash() }),
            "node {i} verified epoch 1"
        );
        let last = net.node(i).rewards(net.now).last_record.expect("a record");
        assert_eq!(last.epoch, 1);
        assert_eq!(last.audit, AuditOutcome::Verified);
        assert_eq!(net.node(i).metrics().get("rewards.audit.mismatch"), 0);
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
    assert!(RewardsMessage::Record(record).encode().len() <= wire::MAX_BODY + 8);
}

/// A record altered after signing (re-signed by the coordinator's key, so
/// only the recomputation can tell) is flagged by the auditor that got it;
/// the others verify the real one.
#[test]
fn an_altered_record_is_a_mismatch() {
    let mut net = build();
    let cid = publish(&mut net, 3, 60_000, 5);
    fetch(&mut net, 4, cid);
    let coordinator = (0..3).find(|&i| net.node(i).rewards(net.now).coordinating).expect("a coordinator");
    let signer = identity(coordinator);
    const VICTIM: usize = 5;
    net.tamper = Some(Box::new(move |from, to, bytes: &mut Vec<u8>| {
        if from != coordinator || to != VICTIM {
            return;
        }
        let Ok((wire::MessageKind::Rewards, body)) = wire::split(bytes) else { return };
        if let Ok(RewardsMessage::Record(mut record)) = RewardsMessage::decode(body) {
            record.carried_out = record.carried_out.wrapping_add(1);
            *bytes = RewardsMessage::Record(record.sign(&signer)).encode();
        }
    }));
    let now = net.now.as_millis();
    net.run_for(Duration::from_millis(EPOCH_SECS * 1000 - now + 15_000));
    let events = rewards_events(&net);
    assert!(
        events.iter().any(|(n, e)| *n == VICTIM && matches!(e, RewardsEvent::Mismatch { epoch: 0, .. })),
        "{events:?}"
    );
    assert_eq!(net.node(VICTIM).metrics().get("rewards.audit.mismatch"), 1);
    assert!(matches!(net.node(VICTIM).rewards(net.now).last_record.map(|r| r.audit), Some(AuditOutcome::Mismatch(_))));
    for i in (0..NODES).filter(|&i| i != VICTIM && i != coordinator) {
        assert!(
            events.iter().any(|(n, e)| *n == i && matches!(e, RewardsEvent::Verified { epoch: 0, .. })),
            "node {i}"
        );
    }
}

/// A node that lost the inputs of a settled epoch asks the coordinator
/// again and then verifies.
#[test]
fn a_lost_publication_is_asked_for_again() {
    let mut net = build();
    let cid = publish(&mut net, 3, 60_000, 9);
    fetch(&mut net, 4, cid);
    let coordinator = (0..3).find(|&i| net.node(i).rewards(net.now).coordinating).expect("a coordinator");
    const VICTIM: usize = 5;
    let mut dropped = 0;
    net.tamper = Some(Box::new(move |from, to, bytes: &mut Vec<u8>| {
        if from != coordinator || to != VICTIM || dropped > 0 {
            return;
        }
        let Ok((wire::MessageKind::Rewards, body)) = wire::split(bytes) else { return };
        if let Ok(RewardsMessage::Inputs { .. }) = RewardsMessage::decode(body) {
            dropped += 1;
            bytes.truncate(bytes.len() / 2); // refused by the decoder: as good as lost
        }
    }));
    let now = net.now.as_millis();
    net.run_for(Duration::from_millis(EPOCH_SECS * 1000 - now + 30_000));
    let events = rewards_events(&net);
    assert!(
        events.iter().any(|(n, e)| *n == VICTIM && matches!(e, RewardsEvent::Verified { epoch: 0, .. })),
        "{events:?}"
    );
    assert!(net.node(VICTIM).metrics().get("rewards.record.requested") >= 1);
    assert_eq!(net.node(coordinator).metrics().get("rewards.coord.record_resent"), 1);
    assert_eq!(events.iter().filter(|(n, e)| *n == VICTIM && matches!(e, RewardsEvent::Verified { .. })).count(), 1);
}
