//! Five real `allium-node` processes on 127.0.0.1: put on one, get on every
//! other; kill one with SIGKILL and the gets still succeed; restart it and
//! it rejoins with its persisted identity and records.
#![cfg(not(madsim))]

mod common;

use common::{NodeProcess, curl, eventually};
use std::time::Duration;

fn get(node: &NodeProcess, key: &str) -> Option<String> {
    let out = node.ctl(&["dht", "get", key]);
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[test]
fn five_processes_put_get_kill_and_restart() {
    let root = tempfile::tempdir().unwrap();
    let first = NodeProcess::start(&root.path().join("n0"), &[]);
    first.wait_ready(Duration::from_secs(20));
    let mut nodes = vec![first];
    for i in 1..5 {
        let node = NodeProcess::start(&root.path().join(format!("n{i}")), &[nodes[0].listen]);
        nodes.push(node);
    }
    for node in &nodes {
        node.wait_ready(Duration::from_secs(20));
    }
    // Let the routing tables fill in.
    eventually(Duration::from_secs(20), || nodes.iter().all(|n| n.stats()["peers"].as_u64() >= Some(3)).then_some(()))
        .expect("every node should learn most of the others");

    let put = nodes[1].ctl(&["dht", "put", "greeting", "hello from node 1"]);
    assert!(put.status.success(), "put failed: {}", String::from_utf8_lossy(&put.stderr));
    for (i, node) in nodes.iter().enumerate().filter(|(i, _)| *i != 1) {
        assert_eq!(get(node, "greeting").as_deref(), Some("hello from node 1"), "get on node {i}");
    }

    // Prometheus and health, through curl.
    let metrics = curl(&["-s", &format!("http://{}/metrics", nodes[2].metrics)]);
    let text = String::from_utf8_lossy(&metrics.stdout);
    assert!(text.contains("allium_dht_requests_received_total"), "{text}");
    assert_eq!(nodes[2].curl_status("/healthz"), 200);

    // SIGKILL one node that holds the record: the others still answer.
    let victim = 3;
    let id_before = nodes[victim].stats()["node_id"].as_str().unwrap().to_string();
    let held_before = nodes[victim].stats()["values_held"].as_u64().unwrap();
    assert!(held_before >= 1, "with five nodes and k = 20 every node holds the record");
    nodes[victim].kill9();
    for (i, node) in nodes.iter().enumerate().filter(|(i, _)| *i != victim) {
        let value = eventually(Duration::from_secs(15), || get(node, "greeting"));
        assert_eq!(value.as_deref(), Some("hello from node 1"), "get on node {i} after the kill");
    }

    // Restart: same identity, the acknowledged record survived the SIGKILL, and it rejoins.
    nodes[victim].restart();
    nodes[victim].wait_ready(Duration::from_secs(20));
    let stats = nodes[victim].stats();
    assert_eq!(stats["node_id"].as_str().unwrap(), id_before);
    assert!(stats["values_held"].as_u64().unwrap() >= held_before);
    assert_eq!(get(&nodes[victim], "greeting").as_deref(), Some("hello from node 1"));

    // Clean shutdown on SIGTERM.
    let status = nodes[0].terminate();
    assert!(status.success(), "SIGTERM should exit 0, got {status:?}\n{}", nodes[0].log());
}

#[test]
fn amnesia_writes_nothing_and_forgets_its_identity() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("ghost");
    let mut node = NodeProcess::start_amnesiac(&dir);
    node.wait_ready(Duration::from_secs(20));
    let first_id = node.stats()["node_id"].as_str().unwrap().to_string();
    let put = node.ctl(&["dht", "put", "k", "v"]);
    assert!(put.status.success());
    assert!(node.terminate().success());
    node.restart();
    node.wait_ready(Duration::from_secs(20));
    let stats = node.stats();
    assert_ne!(stats["node_id"].as_str().unwrap(), first_id, "an amnesiac node has an ephemeral identity");
    assert_eq!(stats["values_held"].as_u64(), Some(0), "and remembers no records");
    assert!(!dir.exists(), "and writes nothing to its data directory");
}
