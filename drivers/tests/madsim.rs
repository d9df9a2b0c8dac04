//! The driver loop itself under madsim's deterministic network and clock:
//! 20 simulated nodes bootstrap and do puts and gets; a partition splits
//! them and heals; content published on one node is fetched on another; a
//! client builds a circuit through three of four relays; a message crosses
//! three simulated mix layers and a reply comes back through a reply
//! block. Each scenario runs twice with the same seed and must give the
//! same outcome.
//!
//! Run with: `RUSTFLAGS="--cfg madsim" cargo test -p allium-node --test madsim --target-dir target/madsim`
#![cfg(madsim)]

use allium_engine::circuit::{CircuitEvent, ExitPolicy, FLAG_STABLE, RelayConfig, StreamEnd};
use allium_engine::dht::{DhtEvent, key_for_name};
use allium_engine::mix::{MixConfig, MixService};
use allium_engine::overlay::{Metadata, OverlayEvent};
use allium_engine::{Command, CryptoSuite, Identity, NodeSeed, Params};
use allium_node::runtime::{OpenError, SentStatus};
use allium_node::store::Store;
use allium_node::{CommandOutcome, Handle, NodeRuntime};
use madsim::net::NetSim;
use madsim::runtime::{Handle as Sim, Runtime};
use std::net::SocketAddr;
use std::time::Duration;

const NODES: usize = 20;

fn addr(i: usize) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, (i + 1) as u8], 7400))
}

/// What a run produced; two runs with one seed must produce equal ones.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    stored: Vec<usize>,
    gets: Vec<Option<Vec<u8>>>,
    peers: Vec<usize>,
    messages: u64,
}

struct Cluster {
    handles: Vec<Handle>,
    sim_ids: Vec<madsim::task::NodeId>,
}

async fn start_cluster(seed: u64, params: Params) -> Cluster {
    start_cluster_with(seed, params, |_| RelayConfig::default()).await
}

/// Like [`start_cluster`], with node `i` relaying as `relay_of(i)` says.
async fn start_cluster_with(seed: u64, params: Params, relay_of: fn(usize) -> RelayConfig) -> Cluster {
    start_cluster_roles(seed, params, relay_of, |_, _| MixConfig::default()).await
}

/// Like [`start_cluster_with`], with node `i` in the mixnet as `mix_of(seed, i)` says.
async fn start_cluster_roles(
    seed: u64,
    params: Params,
    relay_of: fn(usize) -> RelayConfig,
    mix_of: fn(u64, usize) -> MixConfig,
) -> Cluster {
    let sim = Sim::current();
    let mut handles = Vec::new();
    let mut sim_ids = Vec::new();
    for i in 0..NODES {
        let node = sim.create_node().name(format!("n{i}")).ip(addr(i).ip()).build();
        sim_ids.push(node.id());
        let (tx, rx) = tokio::sync::oneshot::channel();
        let params = params.clone();
        node.spawn(async move {
            let node_seed = NodeSeed::derive(seed, i as u64);
            let identity = Identity::from_seed(&node_seed, CryptoSuite::Real);
            let bootstrap = if i == 0 { Vec::new() } else { vec![addr(0)] };
            let store = Store::memory_with_identity(&identity);
            let (runtime, handle) = NodeRuntime::start(
                addr(i),
                bootstrap,
                params,
                relay_of(i),
                mix_of(seed, i),
                Default::default(),
                Default::default(),
                store,
                node_seed,
            )
            .await
            .unwrap();
            tx.send(handle).unwrap();
            runtime.run(std::future::pending()).await.unwrap();
        });
        handles.push(rx.await.unwrap());
        madsim::time::sleep(Duration::from_millis(50)).await;
    }
    madsim::time::sleep(Duration::from_secs(10)).await;
    Cluster { handles, sim_ids }
}

async fn put(handle: &Handle, name: &str, value: &[u8]) -> usize {
    let command = Command::PutValue { name: name.as_bytes().to_vec(), value: value.to_vec() };
    match handle.command(command).await.unwrap() {
        CommandOutcome::Dht(event) => match *event {
            DhtEvent::PutFinished { stored, .. } => stored,
            other => panic!("unexpected {other:?}"),
        },
        CommandOutcome::Rejected(reason) => panic!("rejected: {reason}"),
        other => panic!("unexpected {other:?}"),
    }
}

async fn get(handle: &Handle, name: &str) -> Option<Vec<u8>> {
    let command = Command::GetValue { key: key_for_name(name.as_bytes()) };
    match handle.command(command).await.unwrap() {
        CommandOutcome::Dht(event) => match *event {
            DhtEvent::GetFinished { record, .. } => record.map(|r| r.value),
            other => panic!("unexpected {other:?}"),
        },
        CommandOutcome::Rejected(reason) => panic!("rejected: {reason}"),
        other => panic!("unexpected {other:?}"),
    }
}

async fn summarize(cluster: &Cluster, stored: Vec<usize>, gets: Vec<Option<Vec<u8>>>) -> Outcome {
    let mut peers = Vec::new();
    let mut messages = 0;
    for handle in &cluster.handles {
        let stats = handle.stats().await.unwrap();
        peers.push(stats.peers);
        messages += stats.metrics.get("dht.messages.sent").copied().unwrap_or(0);
    }
    Outcome { stored, gets, peers, messages }
}

async fn bootstrap_put_get(seed: u64) -> Outcome {
    let cluster = start_cluster(seed, Params::default()).await;
    for handle in &cluster.handles {
        assert!(handle.stats().await.unwrap().bootstrapped);
    }
    let mut stored = Vec::new();
    for j in 0..10 {
        stored.push(put(&cluster.handles[j], &format!("key-{j}"), format!("value-{j}").as_bytes()).await);
    }
    let mut gets = Vec::new();
    for j in 0..10 {
        let getter = &cluster.handles[(j * 7 + 3) % NODES];
        let value = get(getter, &format!("key-{j}")).await;
        assert_eq!(value.as_deref(), Some(format!("value-{j}").as_bytes()), "get key-{j}");
        gets.push(value);
    }
    assert!(stored.iter().all(|&n| n >= NODES / 2), "stored {stored:?}");
    summarize(&cluster, stored, gets).await
}

async fn partition_and_heal(seed: u64) -> Outcome {
    let cluster = start_cluster(seed, Params::default()).await;
    let net = NetSim::current();
    let (side_a, side_b) = cluster.sim_ids.split_at(NODES / 2);
    for a in side_a {
        for b in side_b {
            net.clog_link(*a, *b);
            net.clog_link(*b, *a);
        }
    }
    // Published on side A while split: side B cannot see it.
    let stored = vec![put(&cluster.handles[1], "split", b"during").await];
    assert!(stored[0] >= 1 && stored[0] < NODES / 2 + 1, "only side A can store ({stored:?})");
    let mut gets = vec![get(&cluster.handles[15], "split").await];
    assert_eq!(gets[0], None, "side B must not see a record published on side A during the split");
    for a in side_a {
        for b in side_b {
            net.unclog_link(*a, *b);
            net.unclog_link(*b, *a);
        }
    }
    madsim::time::sleep(Duration::from_secs(5)).await;
    // Healed: side B finds it through its (stale-flagged, not forgotten) side-A contacts.
    for getter in [12usize, 15, 19] {
        let value = get(&cluster.handles[getter], "split").await;
        assert_eq!(value.as_deref(), Some(&b"during"[..]), "get on node {getter} after healing");
        gets.push(value);
    }
    summarize(&cluster, stored, gets).await
}

async fn publish_and_fetch(seed: u64) -> Outcome {
    let cluster = start_cluster(seed, Params::default()).await;
    // 300 KB of content that is not all one byte, so misplaced chunks would show.
    let data: Vec<u8> = (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let command = Command::Publish { data: data.clone(), metadata: Metadata::default() };
    let (cid, providers_stored) = match cluster.handles[3].command(command).await.unwrap() {
        CommandOutcome::Overlay(event) => match *event {
            OverlayEvent::Published { cid, size, providers_stored, .. } => {
                assert_eq!(size, data.len() as u64);
                (cid, providers_stored)
            }
            other => panic!("unexpected {other:?}"),
        },
        other => panic!("unexpected {other:?}"),
    };
    assert!(providers_stored >= 1, "the provider record is stored somewhere");
    let fetched = match cluster.handles[15].command(Command::Fetch { cid, range: None }).await.unwrap() {
        CommandOutcome::Fetched { bytes, result, .. } => {
            let stats = result.expect("fetch succeeds");
            assert_eq!(stats.size, data.len() as u64);
            bytes
        }
        other => panic!("unexpected {other:?}"),
    };
    assert!(fetched == data, "fetched bytes differ from the published ones");
    let listed = cluster.handles[15].content().await.unwrap();
    assert!(listed.iter().any(|e| e.cid == cid.to_string() && e.complete), "the fetcher lists its copy");
    summarize(&cluster, vec![providers_stored], vec![Some(fetched)]).await
}

/// Nodes 0 to 3 relay, each in its own region; node 3 is the only exit
/// (port 80) and is not a guard. The others are clients only.
fn four_relays(i: usize) -> RelayConfig {
    match i {
        0..=2 => RelayConfig { enabled: true, region: i as u16 + 1, ..RelayConfig::default() },
        3 => RelayConfig {
            enabled: true,
            region: 4,
            flags: FLAG_STABLE,
            exit_policy: ExitPolicy::parse(&["accept *:80"]).unwrap(),
            ..RelayConfig::default()
        },
        _ => RelayConfig::default(),
    }
}

async fn circuit_through_relays(seed: u64) -> Outcome {
    let cluster = start_cluster_with(seed, Params::default(), four_relays).await;
    let client = &cluster.handles[NODES - 1];
    let path = match client.command(Command::BuildCircuit { exit_port: Some(80) }).await.unwrap() {
        CommandOutcome::Circuit(event) => match *event {
            CircuitEvent::Built { path, .. } => path,
            other => panic!("unexpected {other:?}"),
        },
        other => panic!("unexpected {other:?}"),
    };
    let hops: Vec<SocketAddr> = path.iter().map(|p| p.addr).collect();
    assert_eq!(hops.len(), 3);
    assert_eq!(hops[2], addr(3), "the only exit is the last hop");
    let report = client.circuits().await.unwrap();
    assert_eq!(report.circuits.len(), 1);
    assert_eq!(report.circuits[0].state, "open");
    assert!(report.directory_relays >= 3 && report.directory_exits == 1, "{report:?}");
    // No TCP under madsim: the exit answers every stream as unreachable.
    match client.open_stream("example.org".into(), 80).await.unwrap() {
        Err(OpenError::Stream(StreamEnd::Unreachable)) => {}
        other => panic!("unexpected {other:?}"),
    }
    let mut relayed = Vec::new();
    for handle in &cluster.handles[..4] {
        relayed.push(handle.stats().await.unwrap().relayed_circuits);
    }
    assert_eq!(relayed.iter().sum::<usize>(), 3, "each hop carries the circuit once: {relayed:?}");
    let path_text = hops.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    summarize(&cluster, relayed, vec![Some(path_text.into_bytes())]).await
}

/// The node id of node `i` of a cluster started with `seed`.
fn node_id(seed: u64, i: usize) -> allium_engine::NodeId {
    Identity::from_seed(&NodeSeed::derive(seed, i as u64), CryptoSuite::Real).id()
}

/// Node 0 is the seed; nodes 1 to 3 mix in layers 0 to 2, nodes 4 and 5
/// are providers, node 6 (client A) uses provider 4 and node 7 (client B)
/// provider 5. The others stay out of the mixnet.
fn mix_roles(seed: u64, i: usize) -> MixConfig {
    match i {
        1..=3 => MixConfig { service: MixService::Mix { layer: Some(i as u8 - 1) }, ..MixConfig::default() },
        4 | 5 => MixConfig { service: MixService::Provider, ..MixConfig::default() },
        6 | 7 => MixConfig { client: true, provider: Some(node_id(seed, i - 2)), ..MixConfig::default() },
        _ => MixConfig::default(),
    }
}

async fn mix_message_and_reply(seed: u64) -> Outcome {
    let mut params = Params::default();
    params.mix.mean_delay_ms = 20.0;
    params.mix.topology_refresh_secs = 2;
    let cluster = start_cluster_roles(seed, params, |_| RelayConfig::default(), mix_roles).await;
    let (a, b) = (&cluster.handles[6], &cluster.handles[7]);
    let mut address = None;
    for _ in 0..120 {
        address = b.mix_status().await.unwrap().address.and_then(|text| text.parse().ok());
        if address.is_some() && a.mix_status().await.unwrap().address.is_some() {
            break;
        }
        madsim::time::sleep(Duration::from_millis(500)).await;
    }
    let b_address: allium_engine::mix::MixAddress = address.expect("client B gets a mix address");
    assert_eq!((b_address.recipient, b_address.provider), (node_id(seed, 7), node_id(seed, 5)));
    let status = a.mix_status().await.unwrap();
    assert_eq!((status.layers.clone(), status.providers), (vec![1, 1, 1], 2), "{status:?}");

    // Three fragments' worth, with two reply blocks.
    let data: Vec<u8> = (0..5_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let id = a.mix_send(b_address, data.clone(), 2).await.unwrap().expect("A's message is taken");
    let info = a.mix_sent(id, true).await.unwrap().expect("the message is on record");
    assert_eq!(info.status, SentStatus::Delivered, "{info:?}");
    let inbox = b.mix_inbox().await.unwrap();
    assert_eq!(inbox.len(), 1, "{inbox:?}");
    assert!(inbox[0].has_reply && inbox[0].in_reply_to.is_none());
    let received = b.mix_read(inbox[0].index).await.unwrap().expect("B reads it").data;
    assert!(received == data, "B got different bytes");

    let answer = b"received, thank you".to_vec();
    let reply_id = b.mix_reply(inbox[0].index, answer.clone()).await.unwrap().expect("B's reply is taken");
    let reply_info = b.mix_sent(reply_id, true).await.unwrap().expect("on record");
    assert_eq!(reply_info.status, SentStatus::Delivered, "{reply_info:?}");
    let inbox = a.mix_inbox().await.unwrap();
    let reply = inbox.iter().find(|m| m.in_reply_to == Some(id)).expect("A has the reply, naming its message");
    let replied = a.mix_read(reply.index).await.unwrap().expect("A reads it").data;
    assert_eq!(replied, answer);
    let mut forwarded = Vec::new();
    for handle in &cluster.handles[1..=5] {
        forwarded
            .push(handle.stats().await.unwrap().metrics.get("mix.packets.forwarded").copied().unwrap_or(0) as usize);
    }
    assert!(forwarded[..3].iter().all(|&n| n > 0), "every mix forwards: {forwarded:?}");
    let timings = format!("delivered {} ms, reply {} ms", info.elapsed_ms, reply_info.elapsed_ms);
    eprintln!("simulated mixnet: 5,000 bytes {timings}; packets forwarded by mixes and providers {forwarded:?}");
    summarize(&cluster, forwarded, vec![Some(received), Some(replied), Some(timings.into_bytes())]).await
}

fn run_twice<F: std::future::Future<Output = Outcome> + 'static>(seed: u64, scenario: fn(u64) -> F) {
    let first = Runtime::with_seed_and_config(seed, madsim::Config::default()).block_on(scenario(seed));
    let second = Runtime::with_seed_and_config(seed, madsim::Config::default()).block_on(scenario(seed));
    assert_eq!(first, second, "same seed, different outcome");
}

#[test]
fn twenty_nodes_bootstrap_put_and_get_deterministically() {
    run_twice(7, bootstrap_put_get);
}

#[test]
fn a_partition_heals_and_records_cross_it_deterministically() {
    run_twice(11, partition_and_heal);
}

#[test]
fn content_published_on_one_node_is_fetched_on_another_deterministically() {
    run_twice(5, publish_and_fetch);
}

#[test]
fn a_client_builds_a_circuit_through_three_relays_deterministically() {
    run_twice(3, circuit_through_relays);
}

#[test]
fn a_mix_message_crosses_three_layers_and_a_reply_comes_back_deterministically() {
    run_twice(13, mix_message_and_reply);
}
