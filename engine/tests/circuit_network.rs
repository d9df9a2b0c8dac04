//! Onion circuits over a small in-memory network: builds through three
//! distinct relays, downloads through an exit, loss, many streams, a
//! flipped bit, a replayed cell, dead relays, idle expiry.

mod common;

use allium_engine::circuit::{
    CircuitEvent, CircuitHandle, CloseReason, ExitPolicy, FLAG_GUARD, FLAG_STABLE, RelayConfig, StreamEnd, StreamHandle,
};
use allium_engine::{Command, Params};
use common::{Net, service_bytes};
use std::collections::BTreeSet;
use std::time::Duration;

/// Relays in the test network (node 0 is the bootstrap node and a relay too).
const RELAYS: usize = 12;

fn params() -> Params {
    let mut p = Params::default();
    p.dht.k = 8;
    p.circuit.directory_target = 16;
    p
}

/// A network of `RELAYS` relays (every third one an exit for `*.sim`) and
/// one client (the last node), with the client's directory filled.
fn network(seed: u64) -> (Net, usize) {
    let mut net = Net::new(seed, params());
    for i in 0..RELAYS {
        let exit_policy =
            if i % 3 == 2 { ExitPolicy::parse(&["accept *:80"]).unwrap() } else { ExitPolicy::reject_all() };
        net.relays.insert(
            i,
            RelayConfig {
                enabled: true,
                region: (i % 4) as u16,
                bandwidth_bytes_per_sec: 1_000_000 + 100_000 * i as u64,
                flags: FLAG_GUARD | FLAG_STABLE,
                exit_policy,
            },
        );
    }
    net.add_node(&[]);
    for _ in 1..=RELAYS {
        net.add_node(&[0]);
        net.run_for(Duration::from_millis(200));
    }
    // Bootstrap, then let every relay publish its descriptor.
    net.run_for(Duration::from_secs(10));
    (net, RELAYS)
}

fn built(net: &Net, client: usize, id: u64) -> Option<(CircuitHandle, Vec<allium_engine::dht::PeerInfo>, u32)> {
    net.circuit_events(client).into_iter().find_map(|e| match e {
        CircuitEvent::Built { id: i, circuit, path, attempts, .. } if *i == id => {
            Some((*circuit, path.clone(), *attempts))
        }
        _ => None,
    })
}

fn opened(net: &Net, client: usize, id: u64) -> Option<StreamHandle> {
    net.circuit_events(client).into_iter().find_map(|e| match e {
        CircuitEvent::StreamOpened { id: i, stream, .. } if *i == id => Some(*stream),
        _ => None,
    })
}

/// Bytes delivered on `stream` and whether the peer finished.
fn received(net: &Net, client: usize, stream: StreamHandle) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    let mut finished = false;
    for event in net.circuit_events(client) {
        match event {
            CircuitEvent::StreamData { stream: s, data } if *s == stream => out.extend_from_slice(data),
            CircuitEvent::StreamFinished { stream: s } if *s == stream => finished = true,
            _ => {}
        }
    }
    (out, finished)
}

/// Opens a stream to `host:80`, asks for `len` bytes, runs for `span`.
fn download(net: &mut Net, client: usize, host: &str, len: usize, span: Duration) -> (StreamHandle, Vec<u8>, bool) {
    let id = net.command(client, Command::OpenStream { host: host.into(), port: 80 });
    net.run_for(Duration::from_secs(15));
    let stream = opened(net, client, id).expect("stream opened");
    net.command(client, Command::StreamSend { stream, data: format!("GET {len}\n").into_bytes() });
    net.run_for(span);
    let (bytes, finished) = received(net, client, stream);
    (stream, bytes, finished)
}

#[test]
fn a_circuit_has_three_distinct_relays_and_carries_a_download_intact() {
    let (mut net, client) = network(1);
    let id = net.command(client, Command::BuildCircuit { exit_port: Some(80) });
    net.run_for(Duration::from_secs(15));
    let (_, path, _) = built(&net, client, id).expect("circuit built");
    assert_eq!(path.len(), 3);
    let distinct: BTreeSet<_> = path.iter().map(|p| p.id).collect();
    assert_eq!(distinct.len(), 3, "hops are distinct");
    assert!(!distinct.contains(&net.node(client).id()), "the client is not a hop");
    let exit = path[2].id;
    let exit_index = (0..RELAYS).find(|&i| net.node(i).id() == exit).unwrap();
    assert_eq!(exit_index % 3, 2, "the exit allows the port");

    let (_, bytes, finished) = download(&mut net, client, "files.sim", 300_000, Duration::from_secs(20));
    assert!(finished, "the exit finished the stream");
    assert!(bytes == service_bytes(300_000), "the download is byte-identical");
    // The stream used the circuit built first (its exit allows files.sim:80).
    let circuits = net.node(client).circuits().summaries(net.now);
    assert_eq!(circuits.len(), 1);
    assert!(circuits[0].open);
    // Without loss or tampering no hop ever sees a sequence number twice: the
    // EXTENDED cells of the guard and the middle and the exit's channel use
    // disjoint numbers (each hop's start at its position on the circuit).
    for i in 0..net.len() {
        let rejected = net.node(i).metrics().get("circuit.replays_rejected");
        assert_eq!(rejected, 0, "node {i} rejected a replay");
    }
}

#[test]
fn downloads_survive_loss_and_share_a_circuit() {
    let (mut net, client) = network(2);
    net.loss = 0.03;
    let ids: Vec<u64> =
        (0..4).map(|_| net.command(client, Command::OpenStream { host: "bulk.sim".into(), port: 80 })).collect();
    net.run_for(Duration::from_secs(20));
    let streams: Vec<StreamHandle> = ids.iter().map(|&id| opened(&net, client, id).expect("opened")).collect();
    for (i, &stream) in streams.iter().enumerate() {
        net.command(
            client,
            Command::StreamSend { stream, data: format!("GET {}\n", 200_000 + i * 50_000).into_bytes() },
        );
    }
    net.run_for(Duration::from_secs(60));
    for (i, &stream) in streams.iter().enumerate() {
        let (bytes, finished) = received(&net, client, stream);
        assert!(finished, "stream {i} finished");
        assert!(bytes == service_bytes(200_000 + i * 50_000), "stream {i} is byte-identical under 3 % loss");
    }
    let circuits = net.node(client).circuits().summaries(net.now);
    assert_eq!(circuits.len(), 1, "the four streams share one circuit: {circuits:?}");
    assert!(net.node(client).metrics().get("circuit.cells.sent") > 0);
}

#[test]
fn a_flipped_bit_tears_the_circuit_down_and_no_corrupt_byte_is_delivered() {
    let (mut net, client) = network(3);
    let id = net.command(client, Command::BuildCircuit { exit_port: Some(80) });
    net.run_for(Duration::from_secs(15));
    let (circuit, path, _) = built(&net, client, id).expect("built");
    let middle = (0..RELAYS).find(|&i| net.node(i).id() == path[1].id).unwrap();
    // The 40th cell the middle relays from now on (a download cell, or one
    // of the client's acks) has a bit flipped.
    net.nodes[middle].as_mut().unwrap().circuits_mut().corrupt_relayed_cell(40);
    let (stream, bytes, finished) = download(&mut net, client, "files.sim", 1_000_000, Duration::from_secs(30));
    assert_eq!(net.node(middle).metrics().get("circuit.test.corrupted"), 1);
    assert!(!finished, "the stream cannot finish");
    let truth = service_bytes(1_000_000);
    assert!(bytes.len() < truth.len() && bytes == truth[..bytes.len()], "only a clean prefix was delivered");
    let events = net.circuit_events(client);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, CircuitEvent::Closed { circuit: c, reason: CloseReason::Integrity } if *c == circuit)),
        "the client saw the altered cell: {events:?}"
    );
    assert!(events.iter().any(|e| matches!(e,
        CircuitEvent::StreamClosed { stream: s, reason: StreamEnd::CircuitClosed } if *s == stream)));
    // The altered cell was refused by the AEAD of the end it was heading for:
    // the client (a download cell) or the exit (one of the client's acks).
    let exit = (0..RELAYS).find(|&i| net.node(i).id() == path[2].id).unwrap();
    let refused: u64 = [client, exit].iter().map(|&i| net.node(i).metrics().get("circuit.integrity_failures")).sum();
    assert_eq!(refused, 1, "exactly one end refused the altered cell");
}

#[test]
fn a_flipped_bit_towards_the_exit_is_caught_there() {
    let (mut net, client) = network(4);
    let id = net.command(client, Command::BuildCircuit { exit_port: Some(80) });
    net.run_for(Duration::from_secs(15));
    let (circuit, path, _) = built(&net, client, id).expect("built");
    let guard = (0..RELAYS).find(|&i| net.node(i).id() == path[0].id).unwrap();
    let exit = (0..RELAYS).find(|&i| net.node(i).id() == path[2].id).unwrap();
    // The next cell the guard relays is the client's BEGIN, heading for the exit.
    net.nodes[guard].as_mut().unwrap().circuits_mut().corrupt_relayed_cell(1);
    let open = net.command(client, Command::OpenStream { host: "files.sim".into(), port: 80 });
    net.run_for(Duration::from_secs(5));
    assert_eq!(net.node(exit).metrics().get("circuit.integrity_failures"), 1, "the exit's AEAD refused it");
    let events = net.circuit_events(client);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, CircuitEvent::Closed { circuit: c, reason: CloseReason::Integrity } if *c == circuit)),
        "the DESTROY reached the client with its reason: {events:?}"
    );
    // The stream is retried on a fresh circuit and succeeds.
    net.run_for(Duration::from_secs(15));
    assert!(opened(&net, client, open).is_some(), "the stream moved to a new circuit");
}

#[test]
fn a_replayed_cell_is_dropped_by_the_first_relay_that_sees_it_again() {
    let (mut net, client) = network(5);
    net.record_transmits = true;
    let (stream, bytes, finished) = download(&mut net, client, "files.sim", 50_000, Duration::from_secs(10));
    assert!(finished && bytes == service_bytes(50_000));
    let client_addr = common::addr(client);
    let (_, to, cell) = net
        .transmits
        .iter()
        .find(|(from, _, bytes)| *from == client && bytes.len() == 1200 && bytes[6] == 3)
        .cloned()
        .expect("the client sent a FORWARD cell");
    let guard = (0..RELAYS).find(|&i| common::addr(i) == to).unwrap();
    let before = net.node(guard).metrics().get("circuit.replays_rejected");
    let switched = net.node(guard).metrics().get("circuit.relay.cells_switched");
    net.deliver_raw(client_addr, guard, cell);
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.node(guard).metrics().get("circuit.replays_rejected"), before + 1);
    assert_eq!(net.node(guard).metrics().get("circuit.relay.cells_switched"), switched, "not forwarded");
    let (after, _) = received(&net, client, stream);
    assert_eq!(after.len(), 50_000, "nothing delivered twice");
}

#[test]
fn a_dead_middle_relay_tears_the_circuit_down_and_a_replacement_is_built() {
    let (mut net, client) = network(6);
    let id = net.command(client, Command::OpenStream { host: "files.sim".into(), port: 80 });
    net.run_for(Duration::from_secs(15));
    let stream = opened(&net, client, id).expect("opened");
    let (circuit, path, _) = built(&net, client, id).expect("built for the stream");
    let middle = (0..RELAYS).find(|&i| net.node(i).id() == path[1].id).unwrap();
    net.crash(middle);
    net.command(client, Command::StreamSend { stream, data: b"GET 100000\n".to_vec() });
    net.run_for(Duration::from_secs(60));
    let events = net.circuit_events(client);
    assert!(
        events.iter().any(|e| matches!(e,
        CircuitEvent::Closed { circuit: c, reason: CloseReason::Unresponsive } if *c == circuit)),
        "{events:?}"
    );
    assert!(events.iter().any(|e| matches!(e,
        CircuitEvent::StreamClosed { stream: s, reason: StreamEnd::CircuitClosed } if *s == stream)));
    let replacement = events.iter().find_map(|e| match e {
        CircuitEvent::Built { id: i, circuit: c, path, .. } if *i == id && *c != circuit => Some(path.clone()),
        _ => None,
    });
    let replacement = replacement.expect("a replacement circuit was built");
    assert!(replacement.iter().all(|p| p.id != path[1].id), "the dead relay is avoided");
}

#[test]
fn builds_retry_on_new_paths_past_dead_relays_and_a_dead_guard_is_replaced() {
    let (mut net, client) = network(7);
    let id = net.command(client, Command::BuildCircuit { exit_port: Some(80) });
    net.run_for(Duration::from_secs(15));
    let (_, path, _) = built(&net, client, id).expect("built");
    // Kill the client's pinned guard and another non-exit relay behind its back.
    let guard = (0..RELAYS).find(|&i| net.node(i).id() == path[0].id).unwrap();
    let other = (0..RELAYS).find(|&i| i != guard && i % 3 != 2 && net.node(i).id() != path[1].id).unwrap();
    let dead = [net.node(guard).id(), net.node(other).id()];
    net.crash(guard);
    net.crash(other);
    let mut attempts = Vec::new();
    for _ in 0..5 {
        let id = net.command(client, Command::BuildCircuit { exit_port: Some(80) });
        net.run_for(Duration::from_secs(60));
        let Some((_, path, tried)) = built(&net, client, id) else {
            let events: Vec<_> = net.circuit_events(client);
            panic!("request {id} did not build: {events:#?}");
        };
        assert!(path.iter().all(|p| !dead.contains(&p.id)), "a dead relay in a built path");
        attempts.push(tried);
    }
    assert!(attempts[0] > 1, "the first build after the crash hit the dead guard and retried: {attempts:?}");
    let guards = net.node(client).circuits().guards();
    assert!(!guards.contains(&dead[0]), "the dead guard was replaced");
    assert!(net.node(client).metrics().get("circuit.attempts.timed_out") >= 1);
}

#[test]
fn idle_circuits_expire_and_refused_destinations_fail_cleanly() {
    let (mut net, client) = network(8);
    let id = net.command(client, Command::BuildCircuit { exit_port: Some(80) });
    net.run_for(Duration::from_secs(15));
    let (circuit, _, _) = built(&net, client, id).expect("built");
    net.run_for(Duration::from_secs(params().circuit.idle_timeout_secs + 10));
    assert!(net.circuit_events(client).iter().any(|e| matches!(e,
        CircuitEvent::Closed { circuit: c, reason: CloseReason::Idle } if *c == circuit)));

    // No exit allows port 22: the stream fails without a circuit.
    let id = net.command(client, Command::OpenStream { host: "files.sim".into(), port: 22 });
    net.run_for(Duration::from_secs(15));
    assert!(
        net.circuit_events(client).iter().any(|e| matches!(e, CircuitEvent::StreamFailed { id: i, .. } if *i == id))
    );
    // An exit that cannot reach the destination says so.
    let id = net.command(client, Command::OpenStream { host: "gone.unreachable".into(), port: 80 });
    net.run_for(Duration::from_secs(15));
    let failed = net.circuit_events(client).into_iter().find_map(|e| match e {
        CircuitEvent::StreamFailed { id: i, reason } if *i == id => Some(*reason),
        _ => None,
    });
    assert_eq!(failed, Some(StreamEnd::Unreachable));
}

#[test]
fn the_same_seed_gives_the_same_events() {
    let run = |seed| {
        let (mut net, client) = network(seed);
        net.loss = 0.01;
        download(&mut net, client, "files.sim", 100_000, Duration::from_secs(20));
        format!("{:?}", net.events)
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9), run(10));
}
