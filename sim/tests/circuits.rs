//! Onion circuits in the simulator: a small network of relays and clients
//! moves streams through three-hop circuits while relays churn. Circuits
//! build, streams arrive intact, the three circuit checkers hold (and each
//! can fail on a hand-crafted stream), and the run replays bit for bit.

use allium_engine::circuit::cell::CELL_LEN;
use allium_engine::wire::{MessageKind, VERSION};
use allium_sim::checkers::{CellSize, Checker, RelayAnonymity, StreamIntegrity};
use allium_sim::destinations::response_bytes;
use allium_sim::trace::TraceEvent;
use allium_sim::{Report, RunOptions, Scenario};

const SMALL_CIRCUITS: &str = r#"
nodes = 48

[phases]
join_secs = 20
safety_secs = 120
liveness_secs = 70
drain_secs = 30

[network]
regions = ["a", "b", "c"]
latency_ms = [[5, 30, 60], [30, 5, 40], [60, 40, 5]]
loss = 0.001

[relays]
fraction = 0.5
exit_fraction = 0.4
churn_per_hour = 3.0

[workload]
lookups_per_sec = 0.5
puts_per_sec = 0.0
gets_per_sec = 0.0
streams_per_sec = 1.0
stream_bytes_min = 4096
stream_bytes_max = 65536

[params.circuit]
prefetch_directory = true

[checks]
liveness_window_secs = 30
liveness_min_lookups = 5
"#;

fn scenario() -> Scenario {
    SMALL_CIRCUITS.parse().expect("scenario parses")
}

fn run(scenario: &Scenario, seed: u64) -> Report {
    allium_sim::run(scenario, seed, RunOptions::default()).expect("run succeeds")
}

#[test]
fn small_network_builds_circuits_and_moves_streams_intact_under_relay_churn() {
    let report = run(&scenario(), 5);
    assert_eq!(report.checkers.violations, 0, "first violation: {:?}", report.checkers.first);
    let m = |name: &str| report.metric(name);
    assert!(m("circuit.build.count") >= 20.0, "builds {}", m("circuit.build.count"));
    assert!(m("circuit.build.success_rate") >= 0.95, "build success {}", m("circuit.build.success_rate"));
    assert!(m("circuit.build.ms.p50") > 0.0);
    assert!(m("circuit.build.ms.p99") >= m("circuit.build.ms.p50"));
    assert!(m("stream.count") >= 100.0, "streams {}", m("stream.count"));
    assert!(m("stream.success_rate") >= 0.95, "stream success {}", m("stream.success_rate"));
    assert!(m("stream.throughput_kbps.p50") > 0.0);
    assert!(m("stream.ttfb_ms.p50") > 0.0);
    assert!(m("stream.bytes_delivered") > 1e6);
    assert_eq!(m("stream.bytes_corrupted"), 0.0);
    // Relays did churn, and every relay observation was judged.
    assert!(m("sim.nodes.left") >= 1.0, "relays left {}", m("sim.nodes.left"));
    assert!(m("circuit.relay.extended") > 0.0);
    assert!(m("circuit.exit.streams") >= m("stream.count") * 0.9);
}

#[test]
fn circuit_runs_replay_bit_for_bit() {
    let mut scenario = scenario();
    scenario.apply_sets(&["phases.safety_secs=60", "nodes=30"]).unwrap();
    let a = run(&scenario, 8);
    let b = run(&scenario, 8);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.events, b.events);
    assert_eq!(a.metrics, b.metrics);
    assert!(a.metric("stream.count") > 10.0);
    let c = run(&scenario, 9);
    assert_ne!(a.trace_hash, c.trace_hash);
}

fn feed(checker: &mut dyn Checker, events: &[TraceEvent<'_>]) -> Vec<String> {
    for event in events {
        checker.on_event(event);
    }
    checker.finish(1_000).into_iter().map(|v| v.message).collect()
}

#[test]
fn cell_size_checker_catches_a_short_cell_and_ignores_other_datagrams() {
    let mut cell = vec![0u8; CELL_LEN];
    cell[0] = VERSION;
    cell[1] = MessageKind::Circuit as u8;
    let short = &cell[..CELL_LEN - 1];
    let dht = [VERSION, MessageKind::Dht as u8, 1, 2, 3];
    let deliver = |bytes| TraceEvent::Deliver { at: 1, from: 0, to: 1, bytes };
    let mut checker = CellSize::default();
    assert!(feed(&mut checker, &[deliver(&cell), deliver(&dht)]).is_empty());
    assert_eq!(checker.checked(), 1);
    assert_eq!(feed(&mut CellSize::default(), &[deliver(short)]).len(), 1);
}

fn start(len: u64) -> TraceEvent<'static> {
    TraceEvent::StreamStart { at: 1, node: 3, id: 7, host: "svc-0.sim", port: 80, nonce: 42, len }
}

fn truth(offset: u64, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    response_bytes(42, offset, &mut out);
    out
}

fn data(offset: u64, bytes: &[u8]) -> TraceEvent<'_> {
    TraceEvent::StreamData { at: 2, node: 3, id: 7, offset, bytes }
}

fn end(reason: &'static str, received: u64) -> TraceEvent<'static> {
    TraceEvent::StreamEnd { at: 3, node: 3, id: 7, reason, received }
}

#[test]
fn stream_integrity_checker_catches_altered_reordered_and_short_streams() {
    let (a, b) = (truth(0, 600), truth(600, 400));
    let good = [start(1000), data(0, &a), data(600, &b), end("finished", 1000)];
    let mut checker = StreamIntegrity::default();
    assert!(feed(&mut checker, &good).is_empty());
    assert_eq!(checker.checked(), 3);

    let mut altered = b.clone();
    altered[17] ^= 1;
    let violations = feed(&mut StreamIntegrity::default(), &[start(1000), data(0, &a), data(600, &altered)]);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].contains("1 wrong bytes"), "{violations:?}");

    let reordered = [start(1000), data(600, &b), data(0, &a)];
    assert!(!feed(&mut StreamIntegrity::default(), &reordered).is_empty());

    let short = [start(1000), data(0, &a), end("finished", 600)];
    assert_eq!(feed(&mut StreamIntegrity::default(), &short).len(), 1);
    // A stream that failed part-way is no violation.
    assert!(feed(&mut StreamIntegrity::default(), &[start(1000), data(0, &a), end("circuit_closed", 600)]).is_empty());
    // Bytes past the response's end are corrupt.
    let long = [start(600), data(0, &a), data(600, &b)];
    assert_eq!(feed(&mut StreamIntegrity::default(), &long).len(), 1);
}

fn created(node: u32, prev: u32, prev_circ: u32) -> TraceEvent<'static> {
    TraceEvent::RelayCreated { at: 1, node, prev, prev_circ }
}

fn extended(node: u32, prev: u32, prev_circ: u32, next: u32, next_circ: u32) -> TraceEvent<'static> {
    TraceEvent::RelayExtended { at: 2, node, prev, prev_circ, next, next_circ }
}

fn exit(node: u32, prev: u32, prev_circ: u32) -> TraceEvent<'static> {
    TraceEvent::RelayExit { at: 3, node, prev, prev_circ, host: "svc-1.sim", port: 80 }
}

#[test]
fn relay_anonymity_checker_catches_an_exit_next_to_its_client_and_a_relay_used_twice() {
    // Client 0 → guard 1 → middle 2 → exit 3.
    let good = [
        created(1, 0, 11),
        extended(1, 0, 11, 2, 22),
        created(2, 1, 22),
        extended(2, 1, 22, 3, 33),
        created(3, 2, 33),
        exit(3, 2, 33),
    ];
    let mut checker = RelayAnonymity::default();
    assert!(feed(&mut checker, &good).is_empty());
    assert_eq!(checker.checked(), 1);

    // A one-hop circuit: the exit sees the client.
    let one_hop = [created(3, 0, 11), exit(3, 0, 11)];
    let violations = feed(&mut RelayAnonymity::default(), &one_hop);
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert!(violations[0].contains("saw client 0"), "{violations:?}");

    // Guard and exit are the same relay: it sees both ends.
    let twice = [extended(1, 0, 11, 2, 22), extended(2, 1, 22, 1, 44), exit(1, 2, 44)];
    assert_eq!(feed(&mut RelayAnonymity::default(), &twice).len(), 1);
}
