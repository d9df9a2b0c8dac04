//! Rewards with real processes on 127.0.0.1: three `init`'ed nodes in one
//! election group (`params.election.lease_ms = 1000`) that is also their
//! `[rewards] group`, with 10 s epochs (`params.rewards`: settle 3 s after
//! the epoch, receipts every second, one 128 KiB probe and one challenge
//! per node and epoch), and `overlay.replication_factor = 0` so that a
//! fetch is a real transfer from the publisher.
//!
//! A file published on node 1 and fetched on node 2 inside one epoch is
//! settled by the leader (node 0, the highest priority) into a record
//! that: conserves the tokens (Σ payouts + carried out = emission +
//! carried in), names the leader `ctl leader` shows as its coordinator,
//! pays node 1 for the bandwidth node 2 receipted, and is audited
//! ("verified", same hash) by both other nodes; the engine's `rewards.*`
//! counters reach `/metrics`. Epochs follow the unix wall clock, so the
//! fetch waits for an epoch with enough time left. Timings go to stderr
//! (`--nocapture`).
//!
//! And a `[rewards] group` that names no configured election group stops
//! `run` with an error naming it.
#![cfg(not(madsim))]

mod common;

use common::{BIN, NodeProcess, curl, election_group, eventually, field, text};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const GROUP: &str = "publishers";
/// Priorities of nodes 0, 1, 2: node 0 leads, and so coordinates.
const PRIORITIES: [u8; 3] = [30, 20, 10];
const EPOCH_SECS: u64 = 10;
const PARAMS: &str = "[params.election]
lease_ms = 1000
[params.overlay]
replication_factor = 0
[params.rewards]
epoch_secs = 10
settle_delay_secs = 3
receipt_interval_ms = 1000
probe_bytes = 131072
probes_per_epoch = 1
challenges_per_epoch = 1
probe_timeout_ms = 1000
challenge_timeout_ms = 1000
";

/// `ctl rewards --json`, if the node answers.
fn rewards(node: &NodeProcess) -> Option<Value> {
    let out = node.ctl(&["rewards", "--json"]);
    out.status.success().then(|| serde_json::from_slice(&out.stdout).ok()).flatten()
}

/// The group's leader in `ctl leader --json` (node id), if the node has one.
fn leader(node: &NodeProcess) -> Option<String> {
    let out = node.ctl(&["leader", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).ok()?;
    let group = list.as_array()?.iter().find(|g| g["group"] == GROUP)?;
    group["leader"].as_str().map(str::to_string)
}

fn dump(nodes: &[NodeProcess]) -> String {
    nodes
        .iter()
        .enumerate()
        .map(|(i, n)| format!("n{i}: {:?}\n{}", rewards(n), n.log()))
        .collect::<Vec<_>>()
        .join("\n----\n")
}

/// Three nodes in the group, configured for rewards, running and joined;
/// returns the root directory, the nodes and their ids.
fn start() -> (tempfile::TempDir, Vec<NodeProcess>, Vec<String>) {
    let root = tempfile::tempdir().unwrap();
    let mut nodes: Vec<NodeProcess> = Vec::new();
    let (mut ids, mut keys) = (Vec::new(), Vec::new());
    for i in 0..PRIORITIES.len() {
        let bootstrap: Vec<_> = nodes.first().map(|n: &NodeProcess| n.listen).into_iter().collect();
        let (node, init) = NodeProcess::init(&root.path().join(format!("n{i}")), &bootstrap, &[], &[]);
        ids.push(field(&init, "node id"));
        keys.push(field(&init, "signing"));
        nodes.push(node);
    }
    let members: Vec<_> =
        PRIORITIES.iter().enumerate().map(|(i, &priority)| (keys[i].clone(), nodes[i].listen, priority)).collect();
    election_group(root.path(), GROUP, &members, &nodes.iter().collect::<Vec<_>>());
    for node in &mut nodes {
        node.append_config(&format!("[rewards]\nenabled = true\ngroup = \"{GROUP}\"\n{PARAMS}"));
        node.restart();
    }
    for node in &nodes {
        node.wait_ready(Duration::from_secs(20));
    }
    (root, nodes, ids)
}

/// Waits for an epoch in which every node knows node 0 as its coordinator
/// and at least `left` remains; returns it.
fn quiet_epoch(nodes: &[NodeProcess], coordinator: &str, left: Duration, within: Duration) -> Option<u64> {
    eventually(within, || {
        let views: Vec<Value> = nodes.iter().map(rewards).collect::<Option<_>>()?;
        let epoch = views[0]["epoch"].as_u64()?;
        let ready = views.iter().all(|v| {
            v["epoch"] == epoch
                && v["coordinator"] == coordinator
                && v["epoch_remaining_ms"].as_u64().is_some_and(|ms| ms >= left.as_millis() as u64)
        });
        (ready && views[0]["coordinating"] == true).then_some(epoch)
    })
}

fn seeded_file(path: &Path, len: usize) {
    let bytes: Vec<u8> = (0..len as u64).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn an_epoch_with_traffic_is_settled_conserved_audited_and_pays_the_server() {
    let started = Instant::now();
    let (root, nodes, ids) = start();
    eventually(Duration::from_secs(15), || nodes.iter().all(|n| n.stats()["peers"].as_u64() >= Some(2)).then_some(()))
        .unwrap_or_else(|| panic!("the nodes did not learn each other; logs:\n{}", dump(&nodes)));

    // The leader every node agrees on is node 0, and it coordinates.
    let agreed = eventually(Duration::from_secs(20), || {
        let leaders: Vec<String> = nodes.iter().map(leader).collect::<Option<_>>()?;
        leaders.iter().all(|l| *l == ids[0]).then_some(())
    });
    assert!(agreed.is_some(), "no agreed leader n0; logs:\n{}", dump(&nodes));
    eprintln!("leader n0 agreed after {:.2} s", started.elapsed().as_secs_f64());

    // Publish on node 1, then fetch on node 2 inside one epoch that every
    // node registered for with node 0.
    let original = root.path().join("original.bin");
    seeded_file(&original, 300_000);
    let out = nodes[1].ctl(&["put", original.to_str().unwrap()]);
    assert!(out.status.success(), "put: {}", text(&out));
    let cid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let epoch = quiet_epoch(&nodes, &ids[0], Duration::from_secs(5), Duration::from_secs(15))
        .unwrap_or_else(|| panic!("no epoch with every node registered with n0; logs:\n{}", dump(&nodes)));
    let fetched = root.path().join("fetched.bin");
    let out = nodes[2].ctl(&["get", &cid, "-o", fetched.to_str().unwrap()]);
    assert!(out.status.success(), "get: {}", text(&out));
    assert_eq!(std::fs::read(&fetched).unwrap(), std::fs::read(&original).unwrap());
    let consumer = rewards(&nodes[2]).unwrap();
    assert_eq!(consumer["epoch"], epoch, "the fetch crossed an epoch boundary");
    // Epochs are the unix wall clock's (each node passed it at its start).
    let unix_secs = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert!((unix_secs / EPOCH_SECS).abs_diff(epoch) <= 1, "epoch {epoch} at unix time {unix_secs}");
    assert!(consumer["received"]["chunk"].as_u64() >= Some(300_000), "{consumer}");
    eprintln!("fetched in epoch {epoch} at {:.2} s", started.elapsed().as_secs_f64());

    // The coordinator settles the epoch a settle delay after it ends.
    let deadline = Duration::from_secs(EPOCH_SECS + 10);
    let settled = eventually(deadline, || {
        let view = rewards(&nodes[0])?;
        (view["last_record"]["epoch"].as_u64()? >= epoch).then_some(view)
    })
    .unwrap_or_else(|| panic!("epoch {epoch} not settled; logs:\n{}", dump(&nodes)));
    eprintln!("epoch {epoch} settled at {:.2} s", started.elapsed().as_secs_f64());
    let out = nodes[0].ctl(&["rewards", "record", "--json"]);
    assert!(out.status.success(), "ctl rewards record: {}", text(&out));
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["epoch"], epoch, "{record}");
    assert_eq!(record["hash"], settled["last_record"]["hash"]);
    assert_eq!(record["group"], GROUP);

    // Conservation: every unit emitted or carried in is paid or carried out.
    let payouts = record["payouts"].as_array().unwrap();
    let paid: u64 = payouts.iter().map(|p| p["total"].as_u64().unwrap()).sum();
    let (emission, carried_in, carried_out) = (
        record["emission"].as_u64().unwrap(),
        record["carried_in"].as_u64().unwrap(),
        record["carried_out"].as_u64().unwrap(),
    );
    assert_eq!(paid + carried_out, emission + carried_in, "{record}");
    assert_eq!(emission, 1_000_000_000);
    for p in payouts {
        let parts = ["bandwidth", "storage", "publisher"].map(|k| p[k].as_u64().unwrap());
        assert_eq!(parts.iter().sum::<u64>(), p["total"].as_u64().unwrap(), "{p}");
    }

    // The coordinator is the leader `ctl leader` shows.
    let leader_now = leader(&nodes[1]).expect("a leader");
    assert_eq!(record["coordinator"], leader_now.as_str());
    assert_eq!(leader_now, ids[0]);

    // Node 1 served node 2 and is paid for bandwidth; node 2 only consumed.
    eprintln!("record: {}", serde_json::to_string(&record).unwrap());
    let payout = |id: &str| payouts.iter().find(|p| p["node"] == id).cloned();
    let server = payout(&ids[1]).unwrap_or_else(|| panic!("no payout for the server n1: {record}"));
    assert!(server["bandwidth"].as_u64() > Some(0), "{record}");
    assert_eq!(payout(&ids[2]).map_or(0, |p| p["bandwidth"].as_u64().unwrap()), 0, "{record}");

    // Every other node audited the same record and found it right.
    let hash = record["hash"].as_str().unwrap().to_string();
    for (i, node) in nodes.iter().enumerate().skip(1) {
        let view = eventually(Duration::from_secs(8), || {
            let view = rewards(node)?;
            (view["last_record"]["epoch"].as_u64()? >= epoch).then_some(view)
        })
        .unwrap_or_else(|| panic!("n{i} has no record of epoch {epoch}; logs:\n{}", dump(&nodes)));
        let last = &view["last_record"];
        assert_eq!((last["epoch"].as_u64(), last["hash"].as_str()), (Some(epoch), Some(hash.as_str())), "n{i}: {view}");
        assert_eq!(last["audit"], "verified", "n{i}: {view}");
        let own = payout(&ids[i]).map_or(0, |p| p["total"].as_u64().unwrap());
        assert_eq!(last["payout"].as_u64(), Some(own), "n{i}: {view}");
    }
    eprintln!("audited by n1 and n2 at {:.2} s", started.elapsed().as_secs_f64());

    // The human forms, and the export for a settlement system.
    let out = nodes[1].ctl(&["rewards"]);
    let summary = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "ctl rewards: {}", text(&out));
    assert!(summary.contains(&format!("coordinator  {}", &ids[0][..12])), "{summary}");
    assert!(summary.contains(&format!("epoch {epoch}, hash {}", &hash[..12])), "{summary}");
    assert!(summary.contains("audit verified"), "{summary}");
    let out = nodes[1].ctl(&["rewards", "record"]);
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "ctl rewards record: {}", text(&out));
    let own_line = table.lines().find(|l| l.starts_with(&ids[1])).unwrap_or_else(|| panic!("{table}"));
    assert!(own_line.ends_with("(this node)"), "{table}");
    assert!(own_line.contains(&server["total"].to_string()), "{table}");
    let export = root.path().join("record.json");
    let out = nodes[2].ctl(&["rewards", "record", "--export", export.to_str().unwrap()]);
    assert!(out.status.success(), "ctl rewards record --export: {}", text(&out));
    let exported: Value = serde_json::from_str(&std::fs::read_to_string(&export).unwrap()).unwrap();
    assert_eq!(exported, record);

    // The engine's rewards counters reach Prometheus.
    let metrics = |node: &NodeProcess| {
        let out = curl(&["-s", &format!("http://{}/metrics", node.metrics)]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coordinator = metrics(&nodes[0]);
    assert!(coordinator.contains("allium_rewards_coord_settled_total"), "{coordinator}");
    let consumer = metrics(&nodes[2]);
    assert!(consumer.contains("allium_rewards_receipts_sent_total"), "{consumer}");
    assert!(metrics(&nodes[1]).contains("allium_rewards_audit_verified_total"));
    eprintln!("done in {:.2} s", started.elapsed().as_secs_f64());
}

#[test]
fn a_rewards_group_that_is_not_an_election_group_stops_the_node() {
    let root = tempfile::tempdir().unwrap();
    let (node, init) = NodeProcess::init(&root.path().join("n0"), &[], &[], &[]);
    let member = [(field(&init, "signing"), node.listen, 10)];
    election_group(root.path(), GROUP, &member, &[&node]);
    node.append_config("[rewards]\nenabled = true\ngroup = \"nope\"\n");
    let mut child = Command::new(BIN)
        .args(["run", "--config", node.dir.join("config.toml").to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = eventually(Duration::from_secs(10), || child.try_wait().unwrap());
    let Some(status) = status else {
        child.kill().unwrap();
        panic!("the node started with [rewards] group = \"nope\"");
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(!status.success(), "{status:?}: {stderr}");
    assert!(stderr.contains("rewards.group = \"nope\""), "{stderr}");
    assert!(stderr.contains("configured: \"publishers\""), "{stderr}");
    // Nothing listens on the control address.
    assert!(!node.ctl(&["rewards"]).status.success());
}
