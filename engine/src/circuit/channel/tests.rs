//! End-to-end tests of the channel over the simulated link.

use super::harness::{CLIENT, EXIT, Link, Pair, pattern};
use super::*;
use proptest::prelude::*;

const MIB: usize = 1024 * 1024;

fn closed(p: &Pair, side: usize, stream: u16) -> Option<StreamEnd> {
    p.app[side].events.iter().find_map(|e| match e {
        ChannelEvent::Closed { stream: s, reason } if *s == stream => Some(*reason),
        _ => None,
    })
}

/// Sends `len` bytes from `from` on a new stream, both sides finish; checks
/// bytes, order and the clean close on both sides. Returns the pair.
fn transfer(seed: u64, link: Link, from: usize, len: usize) -> Pair {
    let mut p = Pair::new(seed, link);
    let id = p.connect("example.org:80");
    let data = pattern(seed ^ len as u64, len);
    p.source(from, id, data.clone(), true);
    p.source(1 - from, id, Vec::new(), true);
    let ok =
        p.run_until(Duration::from_secs(3600), |p| closed(p, CLIENT, id).is_some() && closed(p, EXIT, id).is_some());
    assert!(ok, "seed {seed} from {from} len {len}: stream closed on both sides");
    let got = p.app[1 - from].received.get(&id).cloned().unwrap_or_default();
    assert_eq!(got.len(), data.len(), "length");
    assert!(got == data, "bytes identical and in order");
    assert_eq!(closed(&p, CLIENT, id), Some(StreamEnd::Finished));
    assert_eq!(closed(&p, EXIT, id), Some(StreamEnd::Finished));
    assert_eq!(p.ch[CLIENT].open_streams() + p.ch[EXIT].open_streams(), 0);
    for side in [CLIENT, EXIT] {
        let finished = p.app[side].events.iter().filter(|e| matches!(e, ChannelEvent::Finished { .. })).count();
        assert_eq!(finished, 1);
    }
    p
}

fn transfers_at(p: f64) {
    for (i, len) in [MIB, 5 * MIB].into_iter().enumerate() {
        for from in [CLIENT, EXIT] {
            transfer(10 + i as u64 * 2 + from as u64, Link::lossy(20, p), from, len);
        }
    }
}

#[test]
fn begin_and_connected() {
    let mut p = Pair::new(1, Link::clean(10));
    let id = p.connect("example.org:443");
    assert_eq!(id, 1);
    assert_eq!(p.app[EXIT].events[0], ChannelEvent::Begin { stream: 1, target: "example.org:443".into() });
    // One round trip (plus nothing else) to connect.
    assert_eq!(p.now, Instant::from_millis(20));
    assert_eq!(p.ch[CLIENT].open_stream(p.now, "b:1"), Ok(2));
}

#[test]
fn transfers_without_loss() {
    transfers_at(0.0);
}

#[test]
fn transfers_with_2_percent_loss_duplication_and_reordering() {
    transfers_at(0.02);
}

#[test]
fn transfers_with_10_percent_loss_duplication_and_reordering() {
    transfers_at(0.10);
}

#[test]
fn ten_mib_through_one_stream() {
    let p = transfer(3, Link::clean(20), CLIENT, 10 * MIB);
    assert!(p.ch[CLIENT].stats().bytes_acked >= 10 * MIB as u64);
}

#[test]
fn concurrent_streams_both_ways() {
    let mut p = Pair::new(4, Link::lossy(15, 0.02));
    let ids: Vec<u16> = (0..8).map(|i| p.ch[CLIENT].open_stream(p.now, &format!("h{i}:80")).unwrap()).collect();
    let mut expected = BTreeMap::new();
    for (i, &id) in ids.iter().enumerate() {
        let up = pattern(100 + i as u64, 50_000 * (i + 1));
        let down = pattern(200 + i as u64, 80_000 * (8 - i));
        p.source(CLIENT, id, up.clone(), true);
        p.source(EXIT, id, down.clone(), true);
        expected.insert(id, (up, down));
    }
    let ok = p.run_until(Duration::from_secs(600), |p| p.ch[CLIENT].open_streams() + p.ch[EXIT].open_streams() == 0);
    assert!(ok);
    for (id, (up, down)) in expected {
        assert!(p.app[EXIT].received[&id] == up, "stream {id} up");
        assert!(p.app[CLIENT].received[&id] == down, "stream {id} down");
    }
    // Round robin: the streams finished sending in an interleaved way, not one after another:
    // the first Data event of every stream arrived before the last stream finished.
    let first_data: Vec<usize> = (1..=8)
        .map(|id| {
            p.app[CLIENT]
                .events
                .iter()
                .position(|e| matches!(e, ChannelEvent::Data { stream, .. } if *stream == id))
                .unwrap()
        })
        .collect();
    let first_finish = p.app[CLIENT].events.iter().position(|e| matches!(e, ChannelEvent::Finished { .. })).unwrap();
    assert!(first_data.iter().all(|&i| i < first_finish));
}

#[test]
fn fin_handshake_closes_both_sides_only_when_both_finished() {
    let mut p = Pair::new(5, Link::clean(10));
    let id = p.connect("x:1");
    p.source(CLIENT, id, b"request".to_vec(), true);
    p.run_until(Duration::from_secs(5), |_| false);
    assert_eq!(p.app[EXIT].received[&id], b"request");
    assert!(p.app[EXIT].events.contains(&ChannelEvent::Finished { stream: id }));
    // Half-closed: still open on both sides.
    assert_eq!(closed(&p, CLIENT, id), None);
    assert_eq!(closed(&p, EXIT, id), None);
    p.source(EXIT, id, b"response".to_vec(), true);
    p.run_until(Duration::from_secs(5), |_| false);
    assert_eq!(p.app[CLIENT].received[&id], b"response");
    assert_eq!(closed(&p, CLIENT, id), Some(StreamEnd::Finished));
    assert_eq!(closed(&p, EXIT, id), Some(StreamEnd::Finished));
    assert_eq!(p.ch[CLIENT].send(id, b"late"), Err(ChannelError::UnknownStream));
}

#[test]
fn end_aborts_from_either_side() {
    let mut p = Pair::new(6, Link::lossy(10, 0.1));
    let id = p.connect("x:1");
    p.source(CLIENT, id, pattern(1, 2 * MIB), false);
    p.run_until(Duration::from_millis(300), |_| false);
    p.ch[CLIENT].end_stream(id, StreamEnd::Reset).unwrap();
    assert!(p.run_until(Duration::from_secs(30), |p| closed(p, EXIT, id).is_some()));
    assert_eq!(closed(&p, CLIENT, id), Some(StreamEnd::Reset));
    assert_eq!(closed(&p, EXIT, id), Some(StreamEnd::Reset));
    // Exit refuses a stream (which reuses id 1).
    p.app[CLIENT].events.clear();
    p.auto_accept = false;
    let id2 = p.ch[CLIENT].open_stream(p.now, "blocked:25").unwrap();
    assert!(p.run_until(Duration::from_secs(30), |p| p.ch[EXIT].open_streams() == 1));
    p.ch[EXIT].end_stream(id2, StreamEnd::Refused).unwrap();
    assert!(p.run_until(Duration::from_secs(30), |p| closed(p, CLIENT, id2).is_some()));
    assert_eq!(closed(&p, CLIENT, id2), Some(StreamEnd::Refused));
    assert_eq!(p.ch[CLIENT].open_streams() + p.ch[EXIT].open_streams(), 0);
}

#[test]
fn reused_ids_ignore_the_old_incarnation() {
    let mut p = Pair::new(7, Link::lossy(10, 0.1));
    for round in 0..5u64 {
        let id = p.connect("x:1");
        assert_eq!(id, 1);
        p.source(EXIT, id, pattern(round, 100_000), false);
        p.run_until(Duration::from_millis(50), |_| false);
        p.ch[CLIENT].end_stream(id, StreamEnd::Reset).unwrap();
        p.run_until(Duration::from_millis(1), |_| false);
        assert_eq!(closed(&p, CLIENT, id), Some(StreamEnd::Reset));
        p.app[CLIENT].received.remove(&id);
        p.app[CLIENT].events.clear();
    }
    // A last incarnation carries a whole transfer while stale frames may still arrive.
    let id = p.connect("x:1");
    let data = pattern(99, 300_000);
    p.source(EXIT, id, data.clone(), true);
    p.source(CLIENT, id, Vec::new(), true);
    assert!(p.run_until(Duration::from_secs(300), |p| closed(p, CLIENT, id).is_some()));
    assert!(p.app[CLIENT].received[&id] == data);
}

#[test]
fn connect_timeout_closes_and_ends_the_stream() {
    let mut p = Pair::new(8, Link::clean(10));
    p.auto_accept = false;
    let id = p.ch[CLIENT].open_stream(p.now, "slow:80").unwrap();
    assert!(p.run_until(Duration::from_secs(60), |p| closed(p, CLIENT, id).is_some()));
    assert_eq!(closed(&p, CLIENT, id), Some(StreamEnd::Timeout));
    assert_eq!(p.now, Instant::from_secs(30));
    assert!(p.run_until(Duration::from_secs(5), |p| closed(p, EXIT, id).is_some()));
    assert_eq!(closed(&p, EXIT, id), Some(StreamEnd::Timeout));
}

#[test]
fn a_stalled_receiver_stops_the_sender_at_the_granted_offset() {
    let mut p = Pair::new(9, Link::clean(10));
    let id = p.connect("x:1");
    let window = CircuitParams::default().stream_window_bytes as u64;
    let data = pattern(3, 3 * window as usize);
    p.drain[EXIT] = false;
    p.source(CLIENT, id, data.clone(), true);
    p.run_until(Duration::from_secs(20), |_| false);
    let sent = p.ch[CLIENT].streams[&id].send.sent_offset();
    assert_eq!(sent, window, "sender stops exactly at the initial window");
    assert_eq!(p.ch[CLIENT].stats().cells_in_flight, 0, "and idles (no probes needed)");
    p.drain[EXIT] = true;
    assert!(p.run_until(Duration::from_secs(60), |p| p.app[EXIT].received.get(&id).map(Vec::len) == Some(data.len())));
    assert!(p.app[EXIT].received[&id] == data);
}

#[test]
fn writable_after_the_buffer_drains_below_half() {
    let mut p = Pair::new(10, Link::clean(10));
    let id = p.connect("x:1");
    let limit = CircuitParams::default().stream_send_buffer_bytes as usize;
    assert_eq!(p.ch[CLIENT].send(id, &vec![1u8; limit]), Ok(limit));
    assert!(
        p.run_until(Duration::from_secs(10), |p| p.app[CLIENT].events.contains(&ChannelEvent::Writable { stream: id }))
    );
    assert!(p.ch[CLIENT].buffered(id) < limit / 2);
}

#[test]
fn a_dead_peer_is_unresponsive_after_the_backoffs() {
    let mut link = Link::clean(10);
    link.loss = 1.0;
    let params = CircuitParams { stream_connect_timeout_secs: 3600, ..CircuitParams::default() };
    let mut p = Pair::with_params(11, link, &params);
    let _ = p.ch[CLIENT].open_stream(p.now, "x:1").unwrap();
    assert!(p.run_until(Duration::from_secs(600), |p| p.app[CLIENT].events.contains(&ChannelEvent::Unresponsive)));
    // PTOs of 1.52, 3.04, 6.08, then 10 s (max_rto_ms) each: the 6th fires at 40.64 s.
    assert_eq!(p.now, Instant::from_millis(1520 + 3040 + 6080 + 10_000 * 3));
    let events = p.app[CLIENT].events.iter().filter(|e| **e == ChannelEvent::Unresponsive).count();
    assert_eq!(events, 1);
}

#[test]
fn cwnd_grows_in_slow_start_and_shrinks_on_loss() {
    let mut link = Link::clean(20);
    link.rate = Some(2000); // 2000 cells/s: a 40 ms RTT holds 80 cells
    link.queue = 40;
    let mut p = Pair::new(12, link);
    let id = p.connect("x:1");
    p.source(CLIENT, id, pattern(4, 4 * MIB), true);
    let initial = p.ch[CLIENT].stats().cwnd_cells;
    let mut peak = initial;
    let mut dropped_from_peak = false;
    let mut trace = Vec::new();
    p.run_until(Duration::from_secs(30), |p| {
        let cwnd = p.ch[CLIENT].stats().cwnd_cells;
        trace.push(cwnd);
        peak = peak.max(cwnd);
        dropped_from_peak |= cwnd <= peak / 2 + 1 && peak > initial;
        p.app[EXIT].received.get(&id).map(Vec::len) == Some(4 * MIB)
    });
    assert!(peak > initial * 2, "slow start grew {initial} to {peak}");
    assert!(dropped_from_peak, "a tail drop halved the window: {trace:?}");
    assert!(p.ch[CLIENT].stats().cells_retransmitted > 0);
}

#[test]
fn api_misuse_is_refused() {
    let params = CircuitParams { max_streams_per_circuit: 2, ..CircuitParams::default() };
    let mut c = Channel::new(Instant::ZERO, &params, Role::Client);
    let mut e = Channel::new(Instant::ZERO, &params, Role::Exit);
    assert_eq!(c.open_stream(Instant::ZERO, &"a".repeat(256)), Err(ChannelError::TargetTooLong));
    assert_eq!(e.open_stream(Instant::ZERO, "a:1"), Err(ChannelError::WrongRole));
    assert_eq!(c.accept_stream(1), Err(ChannelError::WrongRole));
    assert_eq!(e.accept_stream(1), Err(ChannelError::UnknownStream));
    assert_eq!(c.open_stream(Instant::ZERO, "a:1"), Ok(1));
    assert_eq!(c.open_stream(Instant::ZERO, "a:2"), Ok(2));
    assert_eq!(c.open_stream(Instant::ZERO, "a:3"), Err(ChannelError::TooManyStreams));
    c.end_stream(1, StreamEnd::Reset).unwrap();
    assert_eq!(c.open_stream(Instant::ZERO, "a:3"), Ok(1), "lowest free id");
    c.finish(2).unwrap();
    assert_eq!(c.send(2, b"x"), Err(ChannelError::StreamClosed));
    assert_eq!(c.send(9, b"x"), Err(ChannelError::UnknownStream));
    assert_eq!(c.end_stream(9, StreamEnd::Reset), Err(ChannelError::UnknownStream));
    assert_eq!(c.buffered(9), 0);
    assert_eq!(c.alloc_seq(), 0);
    let mut out = [0u8; PAYLOAD_LEN];
    assert_eq!(c.poll_transmit(Instant::ZERO, &mut out), Some(1), "channel cells share the counter");
}

fn payload_of(frames: &[frame::Frame<'_>]) -> [u8; PAYLOAD_LEN] {
    let mut buf = [0u8; PAYLOAD_LEN];
    let mut w = frame::FrameWriter::new(&mut buf);
    for f in frames {
        assert!(w.frame(f));
    }
    buf
}

#[test]
fn stateful_malformations_are_refused() {
    use frame::{AckFrame, Frame, StreamKey};
    let t = Instant::ZERO;
    let key = StreamKey { id: 1, generation: 0 };
    let p = CircuitParams::default();
    let window = p.stream_window_bytes;
    // An ACK of a seq never sent.
    let mut c = Channel::new(t, &p, Role::Client);
    let ack = Frame::Ack(AckFrame { ranges: vec![(0, 0)], ack_delay_us: 0 });
    assert_eq!(c.on_payload(t, 0, &payload_of(&[ack])), Err(FrameError::AckOfUnsent(0)));
    // BEGIN to a client, CONNECTED to an exit.
    let begin = Frame::Begin { stream: key, window, target: "a:1" };
    assert_eq!(c.on_payload(t, 1, &payload_of(std::slice::from_ref(&begin))), Err(FrameError::Unexpected("BEGIN")));
    let mut e = Channel::new(t, &p, Role::Exit);
    let connected = Frame::Connected { stream: key, window };
    assert_eq!(e.on_payload(t, 0, &payload_of(&[connected])), Err(FrameError::Unexpected("CONNECTED")));
    // Data beyond the window the exit granted in ... (the exit's window).
    e.on_payload(t, 1, &payload_of(&[begin])).unwrap();
    let data = [0u8; 100];
    let beyond = Frame::Stream { stream: key, offset: u64::from(window) - 50, data: &data, fin: false };
    assert_eq!(
        e.on_payload(t, 2, &payload_of(&[beyond])),
        Err(FrameError::FlowControl { stream: 1, end: u64::from(window) + 50, limit: u64::from(window) })
    );
    // FIN inconsistent with an earlier FIN.
    let fin = Frame::Stream { stream: key, offset: 0, data: &data, fin: true };
    e.on_payload(t, 3, &payload_of(&[fin])).unwrap();
    let other_fin = Frame::Stream { stream: key, offset: 0, data: &data[..50], fin: true };
    assert_eq!(e.on_payload(t, 4, &payload_of(&[other_fin])), Err(FrameError::FinalSize(1)));
    // A retransmitted frame is harmless.
    let dup = Frame::Stream { stream: key, offset: 0, data: &data, fin: true };
    assert_eq!(e.on_payload(t, 5, &payload_of(&[dup])), Ok(()));
    let delivered: usize = std::iter::from_fn(|| e.poll_event())
        .map(|ev| if let ChannelEvent::Data { data, .. } = ev { data.len() } else { 0 })
        .sum();
    assert_eq!(delivered, 100);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn delivered_bytes_equal_sent_bytes(
        seed in any::<u64>(),
        loss in 0.0f64..0.3,
        dup in 0.0f64..0.3,
        reorder in 0.0f64..0.3,
        jitter_ms in 0u64..40,
        delay_ms in 1u64..40,
        up in 0usize..200_000,
        down in 0usize..200_000,
    ) {
        let link = Link {
            delay: Duration::from_millis(delay_ms),
            reorder,
            jitter: Duration::from_millis(jitter_ms),
            loss,
            dup,
            rate: None,
            queue: 0,
        };
        let mut p = Pair::new(seed, link);
        let id = p.connect("p:1");
        let (a, b) = (pattern(seed, up), pattern(!seed, down));
        p.source(CLIENT, id, a.clone(), true);
        p.source(EXIT, id, b.clone(), true);
        let ok = p.run_until(Duration::from_secs(3600), |p| closed(p, CLIENT, id).is_some() && closed(p, EXIT, id).is_some());
        prop_assert!(ok);
        prop_assert!(p.app[EXIT].received.get(&id).cloned().unwrap_or_default() == a);
        prop_assert!(p.app[CLIENT].received.get(&id).cloned().unwrap_or_default() == b);
    }
}

/// Throughput and goodput of one bulk stream; prints the figures (run with
/// `--nocapture`) and checks floors well below them.
#[test]
fn throughput_and_goodput_figures() {
    let rtt_ms = 40;
    for (label, link, floor_cells_per_rtt) in [
        ("clean", Link::clean(rtt_ms / 2), 250.0),
        ("2% loss/dup/reorder", Link::lossy(rtt_ms / 2, 0.02), 3.0),
        ("10% loss/dup/reorder", Link::lossy(rtt_ms / 2, 0.10), 0.5),
    ] {
        let len = 10 * MIB;
        let mut p = Pair::new(21, link);
        let id = p.connect("bulk:80");
        let start = p.now;
        let cells_before = p.sent[CLIENT];
        p.source(CLIENT, id, pattern(21, len), true);
        assert!(p.run_until(Duration::from_secs(3600), |p| p.app[EXIT].received.get(&id).map(Vec::len) == Some(len)));
        let secs = (p.now - start).as_secs_f64();
        let cells = (p.sent[CLIENT] - cells_before) as f64;
        let cells_per_rtt = cells / (secs * 1000.0 / rtt_ms as f64);
        let goodput_per_cell = len as f64 / cells;
        let stats = p.ch[CLIENT].stats();
        eprintln!(
            "{label}: 10 MiB in {secs:.2} s over a {rtt_ms} ms RTT: {cells_per_rtt:.0} cells/RTT, \
             {goodput_per_cell:.0} stream bytes per cell sent, {:.0} stream bytes per STREAM byte sent ratio {:.3}, \
             retransmitted cells {}, cwnd {}",
            len as f64 / p.stream_bytes_sent[CLIENT] as f64 * 1156.0,
            len as f64 / p.stream_bytes_sent[CLIENT] as f64,
            stats.cells_retransmitted,
            stats.cwnd_cells
        );
        assert!(cells_per_rtt > floor_cells_per_rtt, "{label}: {cells_per_rtt} cells/RTT");
        if label == "clean" {
            assert!(goodput_per_cell > 1150.0, "a full cell carries 1156 stream bytes: {goodput_per_cell}");
        }
    }
}
