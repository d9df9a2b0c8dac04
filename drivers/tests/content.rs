//! The content overlay between real `allium-node` processes on 127.0.0.1,
//! driven only through `allium-node ctl`: a 20 MiB file put on one node is
//! fetched byte for byte on another; pin and unpin; bad content IDs fail
//! clearly; the publisher keeps its content across a SIGKILL and restart
//! (redb) and still serves it.
//!
//! Every node runs with `overlay.replication_factor=0`, so that the only
//! copy is the publisher's: each `ctl get` is a real network transfer (with
//! replicas, the fetching node could already hold a copy it was asked to
//! replicate), and after the restart only the publisher's store can serve it.
#![cfg(not(madsim))]

mod common;

use common::{NodeProcess, curl, eventually};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use std::path::Path;
use std::time::{Duration, Instant};

const NO_REPLICAS: &[&str] = &["--set", "overlay.replication_factor=0"];

fn seeded_file(path: &Path, len: usize, seed: u64) {
    let mut bytes = vec![0u8; len];
    ChaCha20Rng::seed_from_u64(seed).fill_bytes(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// `ctl put FILE`: the one line on stdout is the CID.
fn put(node: &NodeProcess, file: &Path) -> String {
    let out = node.ctl(&["put", file.to_str().unwrap()]);
    assert!(out.status.success(), "put failed: {}\n{}", stderr(&out), node.log());
    let cid = stdout(&out);
    assert!(cid.starts_with("b3:") && cid.len() == 67 && !cid.contains('\n'), "put printed {cid:?}");
    cid
}

/// `ctl get CID -o OUT`, asserting success; returns the wall time.
fn get(node: &NodeProcess, cid: &str, out_path: &Path) -> Duration {
    let started = Instant::now();
    let out = node.ctl(&["get", cid, "-o", out_path.to_str().unwrap()]);
    let elapsed = started.elapsed();
    assert!(out.status.success(), "get failed: {}\n{}", stderr(&out), node.log());
    elapsed
}

/// `ctl content --json`: the entry for `cid`, if listed.
fn entry(node: &NodeProcess, cid: &str) -> Option<serde_json::Value> {
    let out = node.ctl(&["content", "--json"]);
    assert!(out.status.success(), "content failed: {}", stderr(&out));
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    list.into_iter().find(|e| e["cid"] == cid)
}

fn same_file(a: &Path, b: &Path) -> bool {
    std::fs::read(a).unwrap() == std::fs::read(b).unwrap()
}

fn report(what: &str, bytes: usize, elapsed: Duration) {
    let mib = bytes as f64 / (1024.0 * 1024.0);
    eprintln!("{what}: {mib:.0} MiB in {:.2} s ({:.1} MiB/s)", elapsed.as_secs_f64(), mib / elapsed.as_secs_f64());
}

#[test]
fn twenty_mib_put_get_pin_unpin_and_restart() {
    let root = tempfile::tempdir().unwrap();
    let first = NodeProcess::start_with(&root.path().join("n0"), &[], NO_REPLICAS);
    first.wait_ready(Duration::from_secs(20));
    let mut nodes = vec![first];
    for i in 1..3 {
        nodes.push(NodeProcess::start_with(&root.path().join(format!("n{i}")), &[nodes[0].listen], NO_REPLICAS));
    }
    for node in &nodes {
        node.wait_ready(Duration::from_secs(20));
    }
    eventually(Duration::from_secs(20), || nodes.iter().all(|n| n.stats()["peers"].as_u64() >= Some(2)).then_some(()))
        .expect("every node should learn the others");

    // 20 MiB of seeded random bytes, put on node 1 and fetched on node 2.
    const SIZE: usize = 20 << 20;
    let original = root.path().join("original.bin");
    seeded_file(&original, SIZE, 2026);
    let started = Instant::now();
    let cid = put(&nodes[1], &original);
    report("put", SIZE, started.elapsed());
    let fetched = root.path().join("fetched.bin");
    let elapsed = get(&nodes[2], &cid, &fetched);
    report("get on another node", SIZE, elapsed);
    assert!(same_file(&original, &fetched), "the fetched file differs from the original");
    let cached = entry(&nodes[2], &cid).expect("the fetcher keeps a cached copy");
    assert_eq!(cached["holding"], "cached");
    assert_eq!(cached["complete"], true);
    assert_eq!(cached["size"].as_u64(), Some(SIZE as u64));

    // `-o -` writes to stdout.
    let out = nodes[2].ctl(&["get", &cid, "-o", "-"]);
    assert!(out.status.success() && out.stdout.len() == SIZE, "get -o -: {}", stderr(&out));

    // The overlay counters reach Prometheus.
    let metrics = curl(&["-s", &format!("http://{}/metrics", nodes[2].metrics)]);
    let text = String::from_utf8_lossy(&metrics.stdout);
    assert!(text.contains("allium_overlay_fetch_succeeded_total 2"), "{text}");
    assert!(text.contains("allium_content_objects 1"), "{text}");

    // Pin and unpin a small object published on node 0, from node 2.
    let small = root.path().join("small.txt");
    seeded_file(&small, 100_000, 7);
    let small_cid = put(&nodes[0], &small);
    let out = nodes[2].ctl(&["pin", &small_cid]);
    assert!(out.status.success(), "pin failed: {}", stderr(&out));
    assert_eq!(stdout(&out), format!("pinned {small_cid}"));
    let pinned = entry(&nodes[2], &small_cid).expect("pinning fetches the object");
    assert_eq!((pinned["holding"].as_str(), pinned["complete"].as_bool()), (Some("pinned"), Some(true)));
    assert_eq!(pinned["name"], "small.txt", "the file name travels in the manifest");
    let out = nodes[2].ctl(&["unpin", &small_cid]);
    assert!(out.status.success(), "unpin failed: {}", stderr(&out));
    assert_eq!(stdout(&out), format!("unpinned {small_cid}"));
    assert_eq!(entry(&nodes[2], &small_cid).unwrap()["holding"], "cached");
    let out = nodes[2].ctl(&["unpin", &small_cid]);
    assert_eq!(stdout(&out), format!("{small_cid} was not pinned"));

    // Bad content IDs: a non-zero exit and a clear message, and no output file.
    let bad_out = root.path().join("bad.bin");
    let out = nodes[2].ctl(&["get", "b3:not-a-cid", "-o", bad_out.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not a content ID"), "{}", stderr(&out));
    let unknown = format!("b3:{}", "ab".repeat(32));
    let out = nodes[2].ctl(&["get", &unknown, "-o", bad_out.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("no providers found"), "{}", stderr(&out));
    assert!(!bad_out.exists(), "a failed get writes nothing");
    let out = nodes[2].ctl(&["pin", "b3:zz"]);
    assert!(!out.status.success() && stderr(&out).contains("not a content ID"), "{}", stderr(&out));

    // SIGKILL the publisher and restart it: its content is still in node.redb,
    // and node 0 (which never held it) fetches it from there.
    nodes[1].kill9();
    nodes[1].restart();
    nodes[1].wait_ready(Duration::from_secs(20));
    let kept = entry(&nodes[1], &cid).expect("the publisher's content survives a restart");
    assert_eq!((kept["holding"].as_str(), kept["complete"].as_bool()), (Some("pinned"), Some(true)));
    assert!(entry(&nodes[0], &cid).is_none());
    let refetched = root.path().join("refetched.bin");
    let elapsed = get(&nodes[0], &cid, &refetched);
    report("get from the restarted publisher", SIZE, elapsed);
    assert!(same_file(&original, &refetched), "the content served after the restart differs");
}
