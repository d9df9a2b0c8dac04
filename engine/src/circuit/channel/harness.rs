//! Test harness: a client and an exit channel joined by a simulated link
//! that delays, drops, duplicates and reorders cells (seeded), in virtual
//! time that jumps to the next arrival or timeout (quinn's `Pair` style).
//! The harness checks on every cell that no STREAM frame reaches beyond a
//! flow-control limit its sender had learned.

use super::frame::{self, Frame, StreamKey};
use super::{Channel, ChannelEvent, PAYLOAD_LEN, Role};
use crate::circuit::CircuitParams;
use crate::rng::{self, EngineRng, NodeSeed};
use crate::time::Instant;
use core::time::Duration;
use std::collections::BTreeMap;

/// Index of the client in per-side arrays.
pub(super) const CLIENT: usize = 0;
/// Index of the exit in per-side arrays.
pub(super) const EXIT: usize = 1;

/// A cell on the wire: receiving side, seq, payload.
type InFlight = (usize, u64, Box<[u8; PAYLOAD_LEN]>);

/// How the link treats each cell (both directions alike).
#[derive(Clone, Debug)]
pub(super) struct Link {
    /// One-way base delay.
    pub delay: Duration,
    /// Probability a cell is held back by an extra uniformly random delay in `0..jitter` (reordering).
    pub reorder: f64,
    /// Most extra delay of a reordered cell.
    pub jitter: Duration,
    /// Probability a cell is dropped.
    pub loss: f64,
    /// Probability a cell is delivered twice.
    pub dup: f64,
    /// Bottleneck rate in cells per second (`None`: unlimited).
    pub rate: Option<u64>,
    /// Cells the bottleneck queue holds before it drops (tail drop).
    pub queue: u64,
}

impl Link {
    /// A clean link with `ms` milliseconds of one-way delay.
    pub fn clean(ms: u64) -> Link {
        Link {
            delay: Duration::from_millis(ms),
            reorder: 0.0,
            jitter: Duration::ZERO,
            loss: 0.0,
            dup: 0.0,
            rate: None,
            queue: 0,
        }
    }

    /// Loss, duplication and reordering all at probability `p` (a reordered
    /// cell is held back by up to the base delay).
    pub fn lossy(ms: u64, p: f64) -> Link {
        Link { loss: p, dup: p, reorder: p, jitter: Duration::from_millis(ms), ..Link::clean(ms) }
    }
}

/// A byte source an application pushes into a stream.
#[derive(Debug)]
struct Source {
    data: Vec<u8>,
    pos: usize,
    finish: bool,
}

/// One side's application.
#[derive(Debug, Default)]
pub(super) struct App {
    /// Bytes received per stream id.
    pub received: BTreeMap<u16, Vec<u8>>,
    /// Every event taken from the channel, in order.
    pub events: Vec<ChannelEvent>,
    sources: BTreeMap<u16, Source>,
}

/// The two channels, the link between them and virtual time.
pub(super) struct Pair {
    /// `[client, exit]`.
    pub ch: [Channel; 2],
    /// `[client app, exit app]`.
    pub app: [App; 2],
    /// Current virtual time.
    pub now: Instant,
    /// Link behaviour.
    pub link: Link,
    /// Exit accepts every BEGIN at once.
    pub auto_accept: bool,
    /// Per side: whether the application takes events (a stalled receiver does not).
    pub drain: [bool; 2],
    /// Cells each side sent (by kind: all, carrying STREAM data).
    pub sent: [u64; 2],
    /// Stream bytes each side put on the wire (retransmissions included).
    pub stream_bytes_sent: [u64; 2],
    rng: EngineRng,
    /// Cells on the wire by (arrival, order): (to, seq, payload).
    in_flight: BTreeMap<(Instant, u64), InFlight>,
    order: u64,
    busy_until: [Instant; 2],
    /// Flow-control limits each side learned from the other, per stream.
    learned: [BTreeMap<StreamKey, u64>; 2],
}

impl Pair {
    /// A pair with default parameters.
    pub fn new(seed: u64, link: Link) -> Pair {
        Pair::with_params(seed, link, &CircuitParams::default())
    }

    /// A pair with the given parameters on both sides.
    pub fn with_params(seed: u64, link: Link, params: &CircuitParams) -> Pair {
        let now = Instant::ZERO;
        Pair {
            ch: [Channel::new(now, params, Role::Client), Channel::new(now, params, Role::Exit)],
            app: [App::default(), App::default()],
            now,
            link,
            auto_accept: true,
            drain: [true, true],
            sent: [0, 0],
            stream_bytes_sent: [0, 0],
            rng: NodeSeed::derive(seed, 0).stream("t"),
            in_flight: BTreeMap::new(),
            order: 0,
            busy_until: [now, now],
            learned: [BTreeMap::new(), BTreeMap::new()],
        }
    }

    /// Queues `data` (then FIN if `finish`) to be sent on `stream` by `side`, as the buffer allows.
    pub fn source(&mut self, side: usize, stream: u16, data: Vec<u8>, finish: bool) {
        self.app[side].sources.insert(stream, Source { data, pos: 0, finish });
    }

    /// Opens a stream from the client and runs until it is connected.
    pub fn connect(&mut self, target: &str) -> u16 {
        let id = self.ch[CLIENT].open_stream(self.now, target).expect("open");
        let ok = self.run_until(Duration::from_secs(60), |p| {
            p.app[CLIENT].events.contains(&ChannelEvent::Connected { stream: id })
        });
        assert!(ok, "stream {id} connected");
        id
    }

    /// Runs until `done` holds (true) or `limit` of virtual time passes (false).
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Pair) -> bool) -> bool {
        let end = self.now + limit;
        loop {
            self.service();
            if done(self) {
                return true;
            }
            let next = [
                self.in_flight.keys().next().map(|k| k.0),
                self.ch[CLIENT].poll_timeout(),
                self.ch[EXIT].poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t <= end => self.now = self.now.max(t),
                _ => {
                    self.now = end;
                    return done(self);
                }
            }
            self.deliver_and_fire();
        }
    }

    fn deliver_and_fire(&mut self) {
        while let Some(entry) = self.in_flight.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let (to, seq, payload) = entry.remove();
            self.learn(to, &payload);
            if let Err(e) = self.ch[to].on_payload(self.now, seq, &payload) {
                panic!("side {to} refused seq {seq}: {e}");
            }
        }
        for side in [CLIENT, EXIT] {
            if self.ch[side].poll_timeout().is_some_and(|t| t <= self.now) {
                self.ch[side].handle_timeout(self.now);
            }
        }
    }

    /// Events, application sources, then transmits, for both sides.
    fn service(&mut self) {
        for side in [CLIENT, EXIT] {
            if self.drain[side] {
                while let Some(event) = self.ch[side].poll_event() {
                    self.on_event(side, event);
                }
            }
            self.feed(side);
            let mut buf = [0u8; PAYLOAD_LEN];
            while let Some(seq) = self.ch[side].poll_transmit(self.now, &mut buf) {
                self.check_flow_control(side, &buf);
                self.transmit(side, seq, &buf);
            }
        }
    }

    fn on_event(&mut self, side: usize, event: ChannelEvent) {
        match &event {
            ChannelEvent::Begin { stream, .. } if self.auto_accept => {
                self.ch[side].accept_stream(*stream).expect("accept");
            }
            ChannelEvent::Data { stream, data } => {
                self.app[side].received.entry(*stream).or_default().extend_from_slice(data);
            }
            ChannelEvent::Closed { stream, .. } => {
                self.app[side].sources.remove(stream);
            }
            _ => {}
        }
        self.app[side].events.push(event);
    }

    fn feed(&mut self, side: usize) {
        let limit = CircuitParams::default().stream_send_buffer_bytes as usize;
        let ch = &mut self.ch[side];
        for (&id, src) in self.app[side].sources.iter_mut() {
            while src.pos < src.data.len() && ch.buffered(id) < limit {
                let n = (src.data.len() - src.pos).min(64 * 1024);
                if ch.send(id, &src.data[src.pos..src.pos + n]).is_err() {
                    break;
                }
                src.pos += n;
            }
            if src.pos == src.data.len() && src.finish {
                src.finish = false;
                let _ = ch.finish(id);
            }
        }
    }

    /// Records flow-control limits the receiving side learns from a cell.
    fn learn(&mut self, to: usize, payload: &[u8; PAYLOAD_LEN]) {
        let Ok(frames) = frame::decode(payload) else { return };
        for f in frames {
            let (key, limit) = match f {
                Frame::Begin { stream, window, .. } | Frame::Connected { stream, window } => {
                    (stream, u64::from(window))
                }
                Frame::MaxStreamData { stream, max } => (stream, max),
                _ => continue,
            };
            let entry = self.learned[to].entry(key).or_insert(0);
            *entry = (*entry).max(limit);
        }
    }

    /// Asserts that `side` sends no stream byte beyond a limit it learned.
    fn check_flow_control(&mut self, side: usize, payload: &[u8; PAYLOAD_LEN]) {
        let frames = frame::decode(payload).expect("own cells decode");
        self.sent[side] += 1;
        for f in frames {
            if let Frame::Stream { stream, offset, data, .. } = f {
                let limit = self.learned[side].get(&stream).copied().unwrap_or(0);
                let end = offset + data.len() as u64;
                assert!(end <= limit, "side {side} sent {stream:?} up to {end} beyond learned limit {limit}");
                self.stream_bytes_sent[side] += data.len() as u64;
            }
        }
    }

    fn transmit(&mut self, from: usize, seq: u64, payload: &[u8; PAYLOAD_LEN]) {
        let to = 1 - from;
        let copies = if rng::unit_f64(&mut self.rng) < self.link.dup { 2 } else { 1 };
        // The bottleneck serialises the cell once, then the path delays each copy.
        let mut depart = self.now;
        if let Some(rate) = self.link.rate {
            let service = Duration::from_nanos(1_000_000_000 / rate.max(1));
            let start = self.busy_until[from].max(self.now);
            if start > self.now + service * self.link.queue as u32 {
                return; // tail drop
            }
            depart = start + service;
            self.busy_until[from] = depart;
        }
        for _ in 0..copies {
            if rng::unit_f64(&mut self.rng) < self.link.loss {
                continue;
            }
            let reordered = rng::unit_f64(&mut self.rng) < self.link.reorder;
            let jitter_ns = if reordered { rng::below(&mut self.rng, self.link.jitter.as_nanos() as u64) } else { 0 };
            let at = depart + self.link.delay + Duration::from_nanos(jitter_ns);
            self.order += 1;
            self.in_flight.insert((at, self.order), (to, seq, Box::new(*payload)));
        }
    }
}

/// Deterministic test bytes for a stream (xorshift), so misordered bytes show.
pub(super) fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
