//! The mixnet end to end with real processes on 127.0.0.1: a seed node
//! everyone joins through, three mixes (layers 0, 1, 2), two providers and
//! two clients, A (provider P1) and B (provider P2).
//!
//! A sends a 20 KiB file (several fragments) to B's mix address with two
//! reply blocks and waits for delivery; B's inbox shows it and `ctl mix
//! read` gives the exact bytes; B answers through a reply block and A's
//! inbox gets the reply, naming A's message. Timings go to stderr
//! (`--nocapture`); `MIX_TEST_DUMP=1` adds every node's `mix.*` counters.
#![cfg(not(madsim))]

mod common;

use common::{BIN, NodeProcess, eventually, text};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Small delays and brisk cover so that the test runs in seconds.
const MIX_PARAMS: &str = "[params.mix]
mean_delay_ms = 20.0
payload_rate_per_sec = 10.0
loop_rate_per_sec = 5.0
drop_rate_per_sec = 5.0
mix_loop_rate_per_sec = 5.0
topology_refresh_secs = 2
";

/// The message: 20 KiB of deterministic pseudo-random bytes (xorshift64).
fn message_bytes(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.extend_from_slice(&state.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `ctl ARGS` with `input` on stdin.
fn ctl_stdin(node: &NodeProcess, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(BIN)
        .args(["ctl", "--control", &node.control.to_string()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

fn json(node: &NodeProcess, args: &[&str]) -> Value {
    let out = node.ctl(args);
    assert!(out.status.success(), "ctl {args:?}: {}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Waits for the client's mix address.
fn address(node: &NodeProcess, name: &str, within: Duration) -> String {
    eventually(within, || {
        let out = node.ctl(&["mix", "address"]);
        out.status.success().then(|| stdout(&out))
    })
    .unwrap_or_else(|| {
        let status = node.ctl(&["mix", "status"]);
        panic!("{name} has no mix address; status:\n{}\nlog:\n{}", text(&status), node.log())
    })
}

/// Waits until `node`'s inbox holds a message answering `id`; returns its inbox entry.
fn wait_inbox(node: &NodeProcess, within: Duration, pick: impl Fn(&Value) -> bool) -> Option<Value> {
    eventually(within, || {
        let inbox = json(node, &["mix", "inbox", "--json"]);
        inbox.as_array()?.iter().find(|m| pick(m)).cloned()
    })
}

struct Network {
    seed: NodeProcess,
    mixes: Vec<NodeProcess>,
    providers: Vec<NodeProcess>,
    a: NodeProcess,
    b: NodeProcess,
    root: tempfile::TempDir,
}

fn start_network() -> Network {
    let root = tempfile::tempdir().unwrap();
    let dir = |name: &str| root.path().join(name);
    // A seed outside the mixnet: a node's DHT announcements need a live peer to land on.
    let seed = NodeProcess::start(&dir("seed"), &[]);
    seed.wait_ready(Duration::from_secs(20));
    let boot = [seed.listen];
    let mixes: Vec<NodeProcess> = (0..3)
        .map(|layer| {
            let toml = format!("[mix]\nrole = \"mix\"\nlayer = {layer}\n{MIX_PARAMS}");
            NodeProcess::start_configured(&dir(&format!("mix{layer}")), &boot, &toml, &[], &[])
        })
        .collect();
    let providers: Vec<NodeProcess> = (1..=2)
        .map(|i| {
            let toml = format!("[mix]\nrole = \"provider\"\n{MIX_PARAMS}");
            NodeProcess::start_configured(&dir(&format!("provider{i}")), &boot, &toml, &[], &[])
        })
        .collect();
    for node in mixes.iter().chain(&providers) {
        node.wait_ready(Duration::from_secs(20));
    }
    let client = |name: &str, provider: &NodeProcess| {
        let id = provider.stats()["node_id"].as_str().unwrap().to_string();
        let toml = format!("[mix]\nclient = true\nprovider = \"{id}\"\n{MIX_PARAMS}");
        let node = NodeProcess::start_configured(&dir(name), &boot, &toml, &[], &[]);
        node.wait_ready(Duration::from_secs(20));
        node
    };
    let a = client("a", &providers[0]);
    let b = client("b", &providers[1]);
    Network { seed, mixes, providers, a, b, root }
}

#[test]
fn a_message_crosses_three_mix_layers_intact_and_a_reply_comes_back_through_a_reply_block() {
    let started = Instant::now();
    let net = start_network();
    let a_addr = address(&net.a, "client A", Duration::from_secs(60));
    let b_addr = address(&net.b, "client B", Duration::from_secs(60));
    eprintln!("network of 8 processes up, both clients ready: {:.2} s", started.elapsed().as_secs_f64());
    // A mix forwards only to next hops it knows: wait until every member of
    // the mixnet has fetched the whole topology (a mix that started before
    // the others learns of them at its next refresh).
    for node in net.mixes.iter().chain(&net.providers).chain([&net.a, &net.b]) {
        eventually(Duration::from_secs(30), || {
            let status = json(node, &["mix", "status", "--json"]);
            (status["layers"] == serde_json::json!([1, 1, 1]) && status["providers"] == 2).then_some(())
        })
        .unwrap_or_else(|| panic!("incomplete topology: {}", json(node, &["mix", "status", "--json"])));
    }
    eprintln!("every mixnet node knows the 3 mixes and 2 providers: {:.2} s", started.elapsed().as_secs_f64());
    let p1 = net.providers[0].stats()["node_id"].as_str().unwrap().to_string();
    let p2 = net.providers[1].stats()["node_id"].as_str().unwrap().to_string();
    assert!(a_addr.ends_with(&format!("@{p1}")), "A uses P1: {a_addr}");
    assert!(b_addr.ends_with(&format!("@{p2}")), "B uses P2: {b_addr}");
    assert!(b_addr.starts_with(net.b.stats()["node_id"].as_str().unwrap()), "{b_addr}");

    // Every node sees the whole topology; each mix sits in its layer.
    for (layer, mix) in net.mixes.iter().enumerate() {
        let status = json(mix, &["mix", "status", "--json"]);
        assert_eq!((status["role"].as_str(), status["layer"].as_u64()), (Some("mix"), Some(layer as u64)), "{status}");
    }
    let status = json(&net.a, &["mix", "status", "--json"]);
    assert_eq!(status["layers"], serde_json::json!([1, 1, 1]), "{status}");
    assert_eq!(status["providers"].as_u64(), Some(2), "{status}");
    assert_eq!(status["address"].as_str(), Some(a_addr.as_str()));

    // A sends 20 KiB to B with two reply blocks and waits for every fragment's acknowledgement.
    let message = message_bytes(20 * 1024);
    let file = net.root.path().join("message");
    std::fs::write(&file, &message).unwrap();
    let sending = Instant::now();
    let out = net.a.ctl(&["mix", "send", &b_addr, file.to_str().unwrap(), "--reply-blocks", "2", "--wait"]);
    let sent_in = sending.elapsed();
    assert!(out.status.success(), "send: {}\nA log:\n{}", text(&out), net.a.log());
    let printed = stdout(&out);
    let mut lines = printed.lines();
    let id: u64 = lines.next().unwrap().parse().unwrap();
    assert!(lines.next().unwrap_or("").starts_with("delivered in"), "{printed}");
    eprintln!(
        "20 KiB A -> B through P1, 3 mixes, P2: delivered (all fragments acknowledged) in {:.2} s",
        sent_in.as_secs_f64()
    );
    let info = json(&net.a, &["mix", "sent", &id.to_string(), "--json"]);
    assert_eq!((info["status"].as_str(), info["bytes"].as_u64()), (Some("delivered"), Some(20 * 1024)), "{info}");

    // B's inbox shows it (acknowledged means B has every fragment, so it is there now).
    let entry =
        wait_inbox(&net.b, Duration::from_secs(5), |m| m["len"] == 20 * 1024).expect("B's inbox has the message");
    assert_eq!((entry["has_reply"].as_bool(), entry["in_reply_to"].is_null()), (Some(true), true), "{entry}");
    let index = entry["index"].as_u64().unwrap().to_string();
    let table = stdout(&net.b.ctl(&["mix", "inbox"]));
    assert!(table.contains("20480  yes"), "{table}");
    let copy = net.root.path().join("copy");
    let out = net.b.ctl(&["mix", "read", &index, "--out", copy.to_str().unwrap()]);
    assert!(out.status.success(), "read: {}", text(&out));
    assert!(std::fs::read(&copy).unwrap() == message, "B read back different bytes");
    let out = net.b.ctl(&["mix", "read", &index]);
    assert!(out.status.success() && out.stdout == message, "read to stdout");

    // B answers through a reply block (the answer on stdin); A gets it, naming its message.
    let answer = b"thanks, got your 20 KiB; this reply went through a reply block".to_vec();
    let replying = Instant::now();
    let out = ctl_stdin(&net.b, &["mix", "reply", &index, "-", "--wait"], &answer);
    assert!(out.status.success(), "reply: {}\nB log:\n{}", text(&out), net.b.log());
    let reply_id: u64 = stdout(&out).lines().next().unwrap().parse().unwrap();
    let replied = wait_inbox(&net.a, Duration::from_secs(10), |m| m["in_reply_to"].as_u64() == Some(id))
        .expect("A's inbox gets the reply");
    eprintln!(
        "reply B -> A through a reply block: delivered and in A's inbox in {:.2} s",
        replying.elapsed().as_secs_f64()
    );
    assert_eq!((replied["len"].as_u64(), replied["has_reply"].as_bool()), (Some(answer.len() as u64), Some(false)));
    let reply_index = replied["index"].as_u64().unwrap().to_string();
    assert_eq!(net.a.ctl(&["mix", "read", &reply_index]).stdout, answer);
    let sent = json(&net.b, &["mix", "sent", "--json"]);
    assert_eq!(sent[0]["id"].as_u64(), Some(reply_id), "{sent}");
    assert_eq!((sent[0]["kind"].as_str(), sent[0]["status"].as_str()), (Some("reply"), Some("delivered")), "{sent}");

    // The second reply block carries a second answer; then none is left.
    let out = ctl_stdin(&net.b, &["mix", "reply", &index, "-", "--wait"], b"and a second one");
    assert!(out.status.success(), "second reply: {}", text(&out));
    let out = ctl_stdin(&net.b, &["mix", "reply", &index, "-"], b"a third has no reply block");
    assert!(!out.status.success() && text(&out).contains("no reply block left"), "{}", text(&out));
    wait_inbox(&net.a, Duration::from_secs(10), |m| m["len"].as_u64() == Some(16)).expect("the second reply");

    // GET /v1/mix is the JSON of `ctl mix status`; the providers serve their clients.
    let curl = common::curl(&["-s", &format!("http://{}/v1/mix", net.providers[1].control)]);
    let report: Value = serde_json::from_slice(&curl.stdout).unwrap();
    assert_eq!((report["role"].as_str(), report["clients"].as_u64()), (Some("provider"), Some(1)), "{report}");
    let table = stdout(&net.a.ctl(&["mix", "status"]));
    assert!(table.contains("yes, ready") && table.contains(&a_addr), "{table}");
    let middle = net.mixes[1].stats();
    let a = net.a.stats();
    let count = |stats: &Value, name: &str| stats["metrics"][name].as_u64().unwrap_or(0);
    eprintln!(
        "layer-1 mix forwarded {} packets; A sent {} cover and {} real packets ({} retransmissions)",
        count(&middle, "mix.packets.forwarded"),
        count(&a, "mix.client.cover_sent"),
        count(&a, "mix.client.real_sent"),
        count(&a, "mix.fragments.retransmitted"),
    );
    assert_eq!(count(&middle, "mix.packets.replayed"), 0);
    if std::env::var_os("MIX_TEST_DUMP").is_some() {
        let all = [
            ("seed", &net.seed),
            ("mix0", &net.mixes[0]),
            ("mix1", &net.mixes[1]),
            ("mix2", &net.mixes[2]),
            ("p1", &net.providers[0]),
            ("p2", &net.providers[1]),
            ("a", &net.a),
            ("b", &net.b),
        ];
        for (name, node) in all {
            let stats = node.stats();
            let mix: Vec<String> = stats["metrics"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| k.starts_with("mix.") || k.contains("rejected"))
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            eprintln!("{name}: {}", mix.join(" "));
        }
    }

    // Clear refusals, non-zero exits.
    let refused = |node: &NodeProcess, args: &[&str], needle: &str| {
        let out = node.ctl(args);
        assert!(!out.status.success(), "ctl {args:?} should fail: {}", text(&out));
        assert!(text(&out).contains(needle), "ctl {args:?}: expected {needle:?} in {}", text(&out));
    };
    refused(&net.mixes[0], &["mix", "address"], "not a mixnet client");
    refused(&net.seed, &["mix", "send", &b_addr, file.to_str().unwrap()], "not a mixnet client");
    refused(&net.a, &["mix", "send", "nonsense", file.to_str().unwrap()], "recipient");
    refused(&net.a, &["mix", "send", &b_addr, "/nonexistent/file"], "/nonexistent/file");
    refused(&net.a, &["mix", "send", &b_addr, file.to_str().unwrap(), "--reply-blocks", "17"], "17");
    refused(&net.b, &["mix", "read", "999"], "no message 999");
    refused(&net.a, &["mix", "reply", &reply_index, file.to_str().unwrap()], "without reply blocks");
    refused(&net.a, &["mix", "sent", "999"], "no sent message 999");
    let big = net.root.path().join("big");
    std::fs::write(&big, vec![0u8; 256 * 1024 + 1]).unwrap();
    refused(&net.a, &["mix", "send", &b_addr, big.to_str().unwrap()], "HTTP 413");
    eprintln!("whole test: {:.2} s", started.elapsed().as_secs_f64());
    assert!(Path::new(&copy).exists());
}
