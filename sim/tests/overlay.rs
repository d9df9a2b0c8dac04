//! The content overlay in the simulator: a small network publishes objects,
//! fetches them while a wave of nodes crashes and a tenth of the nodes serve
//! corrupt pieces, then probes every object. The checkers hold, nothing
//! corrupt reaches the application, the integrity checker does catch a bad
//! chunk, and the run replays bit for bit.

use allium_engine::overlay::{Cid, Holding};
use allium_sim::checkers::{Checker, OverlayIntegrity, OverlayLiveness};
use allium_sim::trace::{FetchFigures, TraceEvent};
use allium_sim::{Report, RunOptions, Scenario};

const SMALL_OVERLAY: &str = r#"
nodes = 60

[phases]
join_secs = 20
safety_secs = 160
liveness_secs = 90
drain_secs = 30

[network]
loss = 0.001

[workload]
lookups_per_sec = 1.0
puts_per_sec = 0.0
gets_per_sec = 0.0
objects = 100
publish_per_sec = 5.0
object_bytes_min = 1000
object_bytes_max = 20000
fetches_per_sec = 1.0

[params.overlay]
chunk_bytes = 4096
repair_interval_secs = 40

[faults]
restart_at_liveness = false

[[faults.crashes]]
at_secs = 60
fraction = 0.1
restart_after_secs = 0

[faults.corrupt]
fraction = 0.1

[checks]
liveness_window_secs = 40
liveness_min_lookups = 10
"#;

fn scenario() -> Scenario {
    SMALL_OVERLAY.parse().expect("scenario parses")
}

fn run(scenario: &Scenario, seed: u64) -> Report {
    allium_sim::run(scenario, seed, RunOptions::default()).expect("run succeeds")
}

#[test]
fn small_overlay_holds_its_invariants_under_crashes_and_corruption() {
    let report = run(&scenario(), 3);
    assert_eq!(report.checkers.violations, 0, "first violation: {:?}", report.checkers.first);
    let m = |name: &str| report.metric(name);
    assert_eq!(m("overlay.publish.count"), 100.0);
    assert_eq!(m("overlay.publish.success_rate"), 1.0);
    assert_eq!(m("overlay.probe.count"), 100.0);
    assert!(m("overlay.availability") >= 0.99, "availability {}", m("overlay.availability"));
    assert!(m("overlay.get.count") > 50.0, "gets {}", m("overlay.get.count"));
    assert!(m("overlay.get.success_rate") >= 0.95, "get success {}", m("overlay.get.success_rate"));
    assert!(m("overlay.get.latency_ms.p50") > 0.0);
    assert!(m("overlay.get.latency_ms.p99") >= m("overlay.get.latency_ms.p50"));
    assert!(m("overlay.chunks.delivered") > 100.0);
    assert_eq!(m("overlay.corrupt_chunks.delivered"), 0.0);
    // The Byzantine nodes did corrupt pieces, and fetchers threw the blocks away.
    assert!(m("sim.corrupted_pieces") > 0.0);
    assert!(m("overlay.corrupt_chunks.rejected") > 0.0);
    assert!(m("overlay.replicas.stored") > 100.0);
    assert_eq!(m("sim.nodes.crashed"), 6.0);
}

#[test]
fn overlay_runs_replay_bit_for_bit() {
    let mut scenario = scenario();
    scenario.apply_sets(&["workload.objects=30", "phases.safety_secs=100"]).unwrap();
    let a = run(&scenario, 8);
    let b = run(&scenario, 8);
    assert_eq!(a.trace_hash, b.trace_hash);
    assert_eq!(a.events, b.events);
    assert_eq!(a.metrics, b.metrics);
    let c = run(&scenario, 9);
    assert_ne!(a.trace_hash, c.trace_hash);
}

const CID: Cid = Cid([7; 32]);

fn publish(truth: &[[u8; 32]]) -> [TraceEvent<'_>; 2] {
    [
        TraceEvent::OverlayPublishStart { at: 1, node: 0, id: 1, size: 5000, chunks: truth },
        TraceEvent::OverlayPublishDone { at: 2, node: 0, id: 1, cid: CID, size: 5000, providers_stored: 3 },
    ]
}

fn chunk(chunk: u32, hash: [u8; 32]) -> TraceEvent<'static> {
    TraceEvent::OverlayChunk { at: 4, node: 1, id: 2, cid: CID, chunk, offset: u64::from(chunk) * 4096, len: 1, hash }
}

fn fetch_events(chunks: Vec<TraceEvent<'static>>, ok: bool) -> Vec<TraceEvent<'static>> {
    let result = if ok { Ok(FetchFigures { size: 5000, ..FetchFigures::default() }) } else { Err("exhausted") };
    let mut events = vec![TraceEvent::OverlayFetchStart { at: 3, node: 1, id: 2, cid: CID, probe: false }];
    events.extend(chunks);
    events.push(TraceEvent::OverlayFetchDone { at: 5, node: 1, id: 2, cid: CID, result });
    events
}

fn integrity(truth: &[[u8; 32]], fetch: &[TraceEvent<'_>]) -> Vec<String> {
    let mut checker = OverlayIntegrity::default();
    for event in publish(truth).iter().chain(fetch) {
        checker.on_event(event);
    }
    checker.finish(10).into_iter().map(|v| v.message).collect()
}

#[test]
fn integrity_checker_catches_a_bad_chunk_and_an_incomplete_success() {
    let truth = [*blake3::hash(b"chunk zero").as_bytes(), *blake3::hash(b"chunk one").as_bytes()];
    let good = fetch_events(vec![chunk(0, truth[0]), chunk(1, truth[1])], true);
    assert!(integrity(&truth, &good).is_empty());

    // One flipped byte in the delivered chunk: its hash differs from the truth.
    let bad = fetch_events(vec![chunk(0, truth[0]), chunk(1, *blake3::hash(b"chunk onf").as_bytes())], true);
    let violations = integrity(&truth, &bad);
    assert_eq!(violations.len(), 2, "{violations:?}"); // the chunk, and the success after it
    assert!(violations[0].contains("differs"), "{violations:?}");

    // A bad chunk is a violation even when the fetch then fails.
    let bad_then_failed = fetch_events(vec![chunk(1, truth[0])], false);
    assert_eq!(integrity(&truth, &bad_then_failed).len(), 1);

    // Success after delivering only some of the chunks; a chunk index outside the object.
    let partial = fetch_events(vec![chunk(0, truth[0])], true);
    assert!(integrity(&truth, &partial)[0].contains("1 of 2 chunks"));
    assert_eq!(integrity(&truth, &fetch_events(vec![chunk(2, truth[0])], false)).len(), 1);
}

#[test]
fn liveness_checker_judges_probes_of_held_objects_only() {
    let probe = |id: u64, at: u64| TraceEvent::OverlayFetchStart { at, node: 2, id, cid: CID, probe: true };
    let failed = |id: u64| TraceEvent::OverlayFetchDone { at: 150, node: 2, id, cid: CID, result: Err("no_providers") };
    let up =
        |node: u32| TraceEvent::NodeUp { at: 0, node, id: allium_engine::NodeId([node as u8; 32]), restarted: false };
    let stored = TraceEvent::OverlayStored { at: 10, node: 1, cid: CID, holding: Holding::Replica };
    let down = TraceEvent::NodeDown { at: 20, node: 1, permanent: false };
    let judge = |events: &[TraceEvent<'_>]| {
        let mut checker = OverlayLiveness::new(100, 200);
        for event in events {
            checker.on_event(event);
        }
        (checker.finish(300).len(), checker.checked())
    };
    // Held by a live node: a failed probe is a violation; so is one that never finishes.
    assert_eq!(judge(&[up(1), up(2), stored.clone(), probe(5, 120), failed(5)]), (1, 1));
    assert_eq!(judge(&[up(1), up(2), stored.clone(), probe(5, 120)]), (1, 1));
    // Its only holder is down, or the probe is outside the window: not judged.
    assert_eq!(judge(&[up(1), up(2), stored.clone(), down, probe(5, 120), failed(5)]), (0, 0));
    assert_eq!(judge(&[up(1), up(2), stored.clone(), probe(5, 50), failed(5)]), (0, 0));
    // Evicted: no longer held.
    let evicted = TraceEvent::OverlayEvicted { at: 30, node: 1, cid: CID };
    assert_eq!(judge(&[up(1), up(2), stored, evicted, probe(5, 120), failed(5)]), (0, 0));
    // A cached copy is never announced: it does not oblige the network to find it.
    let cached = TraceEvent::OverlayStored { at: 10, node: 1, cid: CID, holding: Holding::Cached };
    assert_eq!(judge(&[up(1), up(2), cached, probe(5, 120), failed(5)]), (0, 0));
}
