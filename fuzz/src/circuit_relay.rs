//! Targets for the circuit machine: the end-to-end payload decoder, and a
//! relay node driven by a harness that plays its client and its next hop,
//! sending real handshakes, validly sealed cells, altered cells, replays
//! and arbitrary bytes.

use allium_engine::circuit::cell::{BODY_LEN, CELL_LEN, Cell, CellCommand, CreatedBody, PLAINTEXT_LEN};
use allium_engine::circuit::handshake::{ClientHandshake, HopKeys};
use allium_engine::circuit::payload::{self, Extend, Payload};
use allium_engine::circuit::{CircuitEvent, ExitPolicy, RelayConfig, onion};
use allium_engine::crypto::KxPublic;
use allium_engine::identity::NodeId;
use allium_engine::wire::{MessageKind, split};
use allium_engine::{Addr, Command, Event, Input, Instant, Node, NodeSeed, Output, Params};
use bolero::TypeGenerator;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// `circuit_payload_decode`: [`payload::decode`] never panics on any
/// plaintext; EXTEND and EXTENDED payloads that decode re-encode to the
/// same bytes.
pub fn circuit_payload_decode(bytes: &[u8]) {
    let mut plaintext = [0u8; PLAINTEXT_LEN];
    let n = bytes.len().min(PLAINTEXT_LEN);
    plaintext[..n].copy_from_slice(&bytes[..n]);
    let mut again = [0u8; PLAINTEXT_LEN];
    match payload::decode(&plaintext) {
        Ok(Payload::Extend(extend)) => {
            payload::encode_extend(&extend, &mut again);
            assert_eq!(again, plaintext, "EXTEND encoding is canonical");
        }
        Ok(Payload::Extended(created)) => {
            payload::encode_extended(&created, &mut again);
            assert_eq!(again, plaintext, "EXTENDED encoding is canonical");
        }
        Ok(Payload::Channel(_)) => assert_eq!(plaintext[0], payload::TYPE_CHANNEL),
        Err(_) => {}
    }
}

/// The client the harness plays.
const CLIENT: Addr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 9, 0, 1)), 7000);
/// The next hop the harness plays.
const NEXT: Addr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(10, 9, 0, 2)), 7000);
/// The relay under test.
const RELAY: Addr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 4000);

/// One step of a [`circuit_relay`] script.
#[derive(Clone, Debug, TypeGenerator)]
pub enum RelayStep {
    /// The client sends CREATE on circuit `circ` (a real handshake).
    Create {
        /// Link circuit id (0 is mapped to 1).
        circ: u8,
    },
    /// The client sends a FORWARD cell sealed for the relay as last hop.
    Sealed {
        /// Which created circuit (modulo their number).
        circuit: u8,
        /// What the plaintext is.
        kind: SealedKind,
        /// A bit to flip in the sealed body: (byte, bit).
        flip: Option<(u16, u8)>,
    },
    /// The next hop answers the relay's pending CREATE (a real or a garbage CREATED).
    NextCreated {
        /// Whether the reply is a well-formed CREATED.
        real: bool,
    },
    /// The next hop sends a BACKWARD cell with arbitrary body on the relay's link.
    NextBackward {
        /// Sequence number.
        seq: u16,
        /// Body fill byte.
        fill: u8,
    },
    /// Re-deliver the `n`-th datagram the harness sent earlier (a replay).
    Replay {
        /// Index (modulo the number sent).
        n: u8,
    },
    /// Arbitrary bytes from the client's address.
    Raw(Vec<u8>),
    /// A cell-sized datagram of arbitrary content from the client or the next hop.
    RawCell {
        /// Whether it comes from the next hop.
        from_next: bool,
        /// Header command byte.
        command: u8,
        /// Link circuit id.
        circ: u8,
        /// Body fill byte.
        fill: u8,
    },
    /// The exit's driver reports a connection for the latest exit stream.
    Connected,
    /// Time passes.
    Wait {
        /// Milliseconds.
        ms: u16,
    },
}

/// The plaintext of a sealed FORWARD cell.
#[derive(Clone, Debug, TypeGenerator)]
pub enum SealedKind {
    /// EXTEND to the harness's next hop.
    Extend,
    /// EXTEND back to the client (must be refused).
    ExtendBack,
    /// Arbitrary channel frames.
    Channel(Vec<u8>),
    /// Arbitrary plaintext bytes.
    Raw(Vec<u8>),
}

struct Circ {
    circ_id: u32,
    handshake: Option<ClientHandshake>,
    keys: Option<HopKeys>,
    seq: u64,
}

/// `circuit_relay`: a relay (and exit for `*:80`) fed a script never
/// panics; every cell it sends is exactly `CELL_LEN` bytes; a cell whose
/// sealed body was altered never yields a stream event and tears the
/// circuit down; a replayed cell is never switched or delivered twice.
pub fn circuit_relay(script: &[RelayStep]) {
    run_relay_script(script);
}

/// Runs a [`circuit_relay`] script and returns the relay's counters.
pub fn run_relay_script(script: &[RelayStep]) -> allium_engine::Metrics {
    let seed = NodeSeed::derive(0xC1C, 0);
    let identity = allium_engine::Identity::from_seed(&seed, allium_engine::CryptoSuite::Real);
    let onion = identity.public().onion_key;
    let relay_id = identity.id();
    let relay = RelayConfig {
        enabled: true,
        exit_policy: ExitPolicy::parse(&["accept *:80"]).expect("valid policy"),
        ..RelayConfig::default()
    };
    let config = allium_engine::NodeConfig {
        identity,
        seed: NodeSeed::derive(0xC1C, 0),
        params: Params::default(),
        local_addr: RELAY,
        bootstrap: Vec::new(),
        content: Box::<allium_engine::overlay::MemoryStore>::default(),
        relay,
        mix: Default::default(),
        election: Default::default(),
        rewards: Default::default(),
    };
    let mut now = Instant::from_secs(1);
    let mut node = Node::new(now, config);
    let mut rng = NodeSeed::derive(0xC1C, 1).stream("harness");
    let mut circuits: Vec<Circ> = Vec::new();
    // Every cell delivered, and whether the relay switched it onwards or
    // acted on it (a cell dropped as early or unknown was never processed,
    // so a copy of it is not a replay).
    let mut sent: Vec<(Addr, Vec<u8>, bool)> = Vec::new();
    let mut next_link: Option<u32> = None;
    let mut exit_stream = None;
    let mut next_command = 1;
    for step in script.iter().take(64) {
        let deliver;
        let mut tampered = false;
        match step {
            RelayStep::Create { circ } => {
                let circ_id = u32::from(*circ).max(1);
                let (handshake, create) =
                    ClientHandshake::start(allium_engine::CryptoSuite::Real, &mut rng, relay_id, onion);
                let mut cell = Cell::new(circ_id, CellCommand::Create, 0);
                create.write(cell.body_mut());
                circuits.push(Circ { circ_id, handshake: Some(handshake), keys: None, seq: 0 });
                deliver = Some((CLIENT, cell.into_vec()));
            }
            RelayStep::Sealed { circuit, kind, flip } => {
                let count = circuits.len();
                let Some(c) = circuits.get_mut(usize::from(*circuit) % count.max(1)) else { continue };
                let Some(keys) = c.keys.as_ref() else { continue };
                let mut plaintext = [0u8; PLAINTEXT_LEN];
                match kind {
                    SealedKind::Extend | SealedKind::ExtendBack => {
                        let addr = if matches!(kind, SealedKind::Extend) { NEXT } else { CLIENT };
                        let create = allium_engine::circuit::cell::CreateBody {
                            client_public: KxPublic([9; 32]),
                            relay_id: NodeId([7; 32]),
                            hop: 1,
                        };
                        payload::encode_extend(&Extend { addr, create }, &mut plaintext);
                    }
                    SealedKind::Channel(frames) => {
                        let body = payload::channel_body(&mut plaintext);
                        let n = frames.len().min(body.len());
                        body[..n].copy_from_slice(&frames[..n]);
                    }
                    SealedKind::Raw(bytes) => {
                        let n = bytes.len().min(PLAINTEXT_LEN);
                        plaintext[..n].copy_from_slice(&bytes[..n]);
                    }
                }
                let seq = c.seq;
                c.seq += 1;
                let mut cell = Cell::new(c.circ_id, CellCommand::Forward, seq);
                onion::client_seal_forward(&[keys], seq, &plaintext, cell.body_mut());
                if let Some((byte, bit)) = flip {
                    cell.body_mut()[usize::from(*byte) % BODY_LEN] ^= 1 << (bit % 8);
                    tampered = true;
                }
                deliver = Some((CLIENT, cell.into_vec()));
            }
            RelayStep::NextCreated { real } => {
                let Some(link) = next_link else { continue };
                let mut cell = Cell::new(link, CellCommand::Created, 0);
                let body = CreatedBody { server_public: KxPublic([5; 32]), auth: [6; 32] };
                if *real {
                    body.write(cell.body_mut());
                } else {
                    cell.body_mut()[100] = 1;
                }
                deliver = Some((NEXT, cell.into_vec()));
            }
            RelayStep::NextBackward { seq, fill } => {
                let Some(link) = next_link else { continue };
                let mut cell = Cell::new(link, CellCommand::Backward, u64::from(*seq));
                cell.body_mut().fill(*fill);
                deliver = Some((NEXT, cell.into_vec()));
            }
            RelayStep::Replay { n } => {
                if sent.is_empty() {
                    continue;
                }
                let (from, bytes, processed) = sent[usize::from(*n) % sent.len()].clone();
                let before = node.metrics();
                node.handle_input(now, Input::Datagram { from, bytes: bytes.clone() });
                let outputs = drain(&mut node);
                check_outputs(&outputs);
                if processed && bytes.len() == CELL_LEN && (bytes[6] == 3 || bytes[6] == 4) {
                    // A relay cell seen before is refused (or its circuit is gone): never switched or delivered.
                    let after = node.metrics();
                    assert_eq!(
                        after.get("circuit.relay.cells_switched"),
                        before.get("circuit.relay.cells_switched"),
                        "a replayed cell was switched"
                    );
                    assert!(!outputs.iter().any(is_stream_event), "a replayed cell produced a stream event");
                }
                continue;
            }
            RelayStep::Raw(bytes) => deliver = Some((CLIENT, bytes.clone())),
            RelayStep::RawCell { from_next, command, circ, fill } => {
                let mut bytes = vec![*fill; CELL_LEN];
                bytes[0] = allium_engine::wire::VERSION;
                bytes[1] = MessageKind::Circuit as u8;
                bytes[2..6].copy_from_slice(&u32::from(*circ).to_be_bytes());
                bytes[6] = *command;
                deliver = Some((if *from_next { NEXT } else { CLIENT }, bytes));
            }
            RelayStep::Connected => {
                if let Some(stream) = exit_stream.take() {
                    node.handle_input(
                        now,
                        Input::Command { id: next_command, command: Command::ExitConnected { stream } },
                    );
                    next_command += 1;
                    check_outputs(&drain(&mut node));
                }
                continue;
            }
            RelayStep::Wait { ms } => {
                now = now.saturating_add(Duration::from_millis(u64::from(*ms)));
                if node.poll_timeout().is_some_and(|t| t <= now) {
                    node.handle_input(now, Input::Timeout);
                }
                check_outputs(&drain(&mut node));
                continue;
            }
        }
        let Some((from, bytes)) = deliver else { continue };
        let before = node.metrics();
        node.handle_input(now, Input::Datagram { from, bytes: bytes.clone() });
        let outputs = drain(&mut node);
        check_outputs(&outputs);
        let after = node.metrics();
        let moved = |name: &str| after.get(name) > before.get(name);
        let processed = moved("circuit.relay.cells_switched") || outputs.iter().any(is_stream_event);
        sent.push((from, bytes, processed));
        if tampered {
            assert!(!outputs.iter().any(is_stream_event), "an altered cell produced a stream event");
            // The last hop refuses it and tears down; a middle hop (the
            // circuit was extended) passes it on for the exit to refuse; a
            // cell for a circuit still extending, or already gone, is dropped.
            assert!(
                moved("circuit.integrity_failures")
                    || moved("circuit.relay.cells_switched")
                    || moved("circuit.relay.early_cells")
                    || moved("circuit.cells.unknown_circuit"),
                "an altered cell was accepted"
            );
        }
        for output in &outputs {
            match output {
                Output::Transmit { to, bytes } if *to == CLIENT && bytes.len() == CELL_LEN && bytes[6] == 2 => {
                    let circ_id = u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]);
                    let Ok(cell) = Cell::parse(bytes) else { continue };
                    let Ok(reply) = CreatedBody::read(cell.body()) else { continue };
                    for c in circuits.iter_mut().filter(|c| c.circ_id == circ_id && c.keys.is_none()) {
                        if let Some(hs) = c.handshake.take() {
                            c.keys = hs.finish(&reply).ok();
                        }
                    }
                }
                Output::Transmit { to, bytes } if *to == NEXT && bytes.len() == CELL_LEN && bytes[6] == 1 => {
                    next_link = Some(u32::from_be_bytes([bytes[2], bytes[3], bytes[4], bytes[5]]));
                }
                Output::Event(Event::Circuit(CircuitEvent::ExitConnect { stream, .. })) => exit_stream = Some(*stream),
                _ => {}
            }
        }
    }
    node.metrics()
}

fn drain(node: &mut Node) -> Vec<Output> {
    std::iter::from_fn(|| node.poll_output()).collect()
}

fn is_stream_event(output: &Output) -> bool {
    matches!(
        output,
        Output::Event(Event::Circuit(
            CircuitEvent::ExitConnect { .. } | CircuitEvent::StreamData { .. } | CircuitEvent::StreamFinished { .. }
        ))
    )
}

/// Every circuit datagram the node sends is exactly one cell.
fn check_outputs(outputs: &[Output]) {
    for output in outputs {
        if let Output::Transmit { bytes, .. } = output
            && let Ok((MessageKind::Circuit, _)) = split(bytes)
        {
            assert_eq!(bytes.len(), CELL_LEN, "a circuit datagram of {} bytes", bytes.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The harness really reaches the interesting states: a created
    /// circuit, an extension, an exit stream, a torn-down circuit.
    #[test]
    fn the_relay_harness_reaches_extension_exit_streams_and_teardown() {
        let script = vec![
            RelayStep::Create { circ: 1 },
            RelayStep::Sealed { circuit: 0, kind: SealedKind::Extend, flip: None },
            RelayStep::NextCreated { real: true },
            RelayStep::NextBackward { seq: 0, fill: 3 },
            RelayStep::Replay { n: 1 },
            RelayStep::Create { circ: 2 },
            RelayStep::Sealed { circuit: 1, kind: SealedKind::Raw(vec![1, 0, 1]), flip: Some((5, 1)) },
            RelayStep::Wait { ms: 100 },
        ];
        let metrics = run_relay_script(&script);
        assert_eq!(metrics.get("circuit.relay.created"), 2);
        assert_eq!(metrics.get("circuit.relay.extended"), 1, "the extension completed");
        assert_eq!(metrics.get("circuit.relay.cells_switched"), 1, "the backward cell was switched");
        assert_eq!(metrics.get("circuit.replays_rejected"), 1, "the replayed EXTEND was refused");
        assert_eq!(metrics.get("circuit.integrity_failures"), 1, "the altered cell was caught");
    }
}
