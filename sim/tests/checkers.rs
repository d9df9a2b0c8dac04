//! Each checker can fail: hand-crafted event streams that break its
//! invariant produce violations, and the matching good streams do not.

use allium_engine::NodeId;
use allium_engine::dht::Distance;
use allium_sim::checkers::{Checker, Liveness, LookupSanity, RecordIntegrity, RoutingBound};
use allium_sim::trace::{QueryFigures, RecordView, TraceEvent};

fn id(n: u8) -> NodeId {
    NodeId([n; 32])
}

fn feed(checker: &mut dyn Checker, events: &[TraceEvent<'_>]) -> Vec<String> {
    for event in events {
        checker.on_event(event);
    }
    checker.finish(1_000).into_iter().map(|v| v.message).collect()
}

fn up(node: u32, n: u8) -> TraceEvent<'static> {
    TraceEvent::NodeUp { at: 0, node, id: id(n), restarted: false }
}

fn put(key: NodeId, publisher: NodeId, value: &[u8]) -> TraceEvent<'_> {
    TraceEvent::PutStart { at: 1, node: 0, id: 1, key, publisher, value }
}

fn get(key: NodeId, record: RecordView<'_>) -> TraceEvent<'_> {
    TraceEvent::GetDone { at: 2, node: 1, id: 2, key, record: Some(record), figures: QueryFigures::default() }
}

#[test]
fn record_integrity_catches_forged_and_misplaced_values() {
    let (key, other_key, alice, mallory) = (id(1), id(2), id(10), id(11));
    let genuine = RecordView { key, publisher: alice, value: b"v1" };
    let good = [put(key, alice, b"v1"), get(key, genuine)];
    assert!(feed(&mut RecordIntegrity::default(), &good).is_empty());

    let corrupted = RecordView { value: b"v2", ..genuine };
    let forged = RecordView { publisher: mallory, ..genuine };
    let misplaced = RecordView { key: other_key, ..genuine };
    let bad = [put(key, alice, b"v1"), get(key, corrupted), get(key, forged), get(key, misplaced)];
    let mut checker = RecordIntegrity::default();
    let violations = feed(&mut checker, &bad);
    assert_eq!(violations.len(), 3, "{violations:?}");
    assert_eq!(checker.checked(), 3);
    // A get of a key nobody ever put is also caught.
    assert_eq!(feed(&mut RecordIntegrity::default(), &[get(key, genuine)]).len(), 1);
}

fn done(node: u32, target: NodeId, closest: Vec<NodeId>) -> TraceEvent<'static> {
    let figures = QueryFigures::default();
    TraceEvent::LookupDone { at: 5, node, id: 7, target, closest, true_closest: None, figures }
}

/// Known nodes 1..=6, sorted by distance to `target`.
fn sorted_known(target: &NodeId) -> Vec<NodeId> {
    let mut ids: Vec<NodeId> = (1..=6).map(id).collect();
    ids.sort_by_key(|i| Distance::between(i, target));
    ids
}

#[test]
fn lookup_sanity_catches_each_kind_of_bad_result() {
    let target = id(0x55);
    let known: Vec<TraceEvent<'static>> = (1..=6).map(|n| up(u32::from(n), n)).collect();
    let sorted = sorted_known(&target);
    let requester = 1u32;
    let without_requester: Vec<NodeId> = sorted.iter().copied().filter(|i| *i != id(1)).collect();
    let run = |closest: Vec<NodeId>, k: usize| {
        let mut events = known.clone();
        events.push(done(requester, target, closest));
        feed(&mut LookupSanity::new(k), &events)
    };
    assert!(run(without_requester.clone(), 20).is_empty());
    // Too many.
    assert_eq!(run(without_requester.clone(), 3).len(), 1);
    // Unsorted.
    let mut unsorted = without_requester.clone();
    unsorted.swap(0, 1);
    assert!(run(unsorted, 20).iter().any(|m| m.contains("not sorted")));
    // Duplicate.
    let mut duplicated = without_requester.clone();
    duplicated.insert(1, duplicated[0]);
    assert!(run(duplicated, 20).iter().any(|m| m.contains("twice")));
    // The requester itself.
    assert!(run(sorted.clone(), 20).iter().any(|m| m.contains("requester")));
    // An identifier that no node ever had.
    let mut stranger = without_requester.clone();
    stranger.push(id(0x55));
    let stranger_sorted = {
        let mut s = stranger;
        s.sort_by_key(|i| Distance::between(i, &target));
        s
    };
    assert!(run(stranger_sorted, 20).iter().any(|m| m.contains("no node")));
}

#[test]
fn routing_bound_catches_an_oversized_bucket() {
    let snapshot = |peers, max_bucket| TraceEvent::Snapshot { at: 9, node: 3, peers, max_bucket };
    assert!(feed(&mut RoutingBound::new(20), &[snapshot(150, 20)]).is_empty());
    assert_eq!(feed(&mut RoutingBound::new(20), &[snapshot(150, 21)]).len(), 1);
    assert_eq!(feed(&mut RoutingBound::new(20), &[snapshot(5, 6)]).len(), 1);
}

#[test]
fn liveness_catches_a_network_that_does_not_converge() {
    let (start, end) = (100, 200);
    let target = id(0x40);
    let truth = Some(id(3));
    let lookup = |i: u64, at: u64, found: bool| {
        let closest = if found { vec![id(3), id(4)] } else { vec![id(4)] };
        let figures = QueryFigures::default();
        [
            TraceEvent::LookupStart { at, node: 1, id: i, target, true_closest: truth },
            TraceEvent::LookupDone { at: at + 1, node: 1, id: i, target, closest, true_closest: truth, figures },
        ]
    };
    let stream = |outcomes: &[bool]| -> Vec<TraceEvent<'static>> {
        outcomes.iter().enumerate().flat_map(|(i, ok)| lookup(i as u64, start + i as u64, *ok)).collect()
    };
    assert!(feed(&mut Liveness::new(start, end, 0.9, 5), &stream(&[true; 10])).is_empty());
    let mostly_failing = stream(&[true, false, false, true, false, true, true, false, true, false]);
    let violations = feed(&mut Liveness::new(start, end, 0.9, 5), &mostly_failing);
    assert_eq!(violations.len(), 1);
    assert!(violations[0].contains("below"), "{violations:?}");
    // Too few lookups in the window to judge.
    assert_eq!(feed(&mut Liveness::new(start, end, 0.9, 5), &stream(&[true; 3])).len(), 1);
    // Lookups outside the window do not count; unfinished lookups in it fail.
    let mut outside = stream(&[false; 10]);
    for event in &mut outside {
        if let TraceEvent::LookupStart { at, .. } = event {
            *at += 1_000;
        }
    }
    let unfinished = [TraceEvent::LookupStart { at: start, node: 1, id: 99, target, true_closest: truth }];
    let mut checker = Liveness::new(start, end, 0.5, 1);
    let violations = feed(&mut checker, &[outside, unfinished.to_vec()].concat());
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(checker.checked(), 1);
}
