//! Targets for the mixnet beyond the packet format: the provider-to-client
//! frames, and a provider node driven by a script of packets (valid,
//! tampered and replayed), subscriptions (answered, forged, stale), raw
//! datagrams and time steps. Each function panics if a property is broken.

use crate::pool::{NODE_ADDR, node_config, peer};
use allium_engine::identity::NodeId;
use allium_engine::mix::frame::{Control, DELIVERY_DATAGRAM_LEN, Delivery};
use allium_engine::mix::packet::{HEADER_LEN as SPHINX_HEADER_LEN, Hop, Packet};
use allium_engine::mix::{DROP_RECIPIENT, MixConfig, MixService};
use allium_engine::rng::NodeSeed;
use allium_engine::wire::{self, HEADER_LEN, MessageKind};
use allium_engine::{Addr, Event, Input, Instant, Node, Output, Params};
use bolero::TypeGenerator;
use core::time::Duration;

/// `mix_frame_decode`: arbitrary bytes into the delivery and control
/// decoders never panic; a delivery that parses writes back to exactly the
/// same body (the format is canonical), and a control message that parses
/// re-encodes to a message that parses to the same value.
pub fn mix_frame_decode(bytes: &[u8]) {
    for body in [bytes.to_vec(), sized(bytes)] {
        if let Ok(d) = Delivery::parse(&body) {
            let datagram = d.to_datagram();
            assert_eq!(datagram.len(), DELIVERY_DATAGRAM_LEN);
            assert_eq!(&datagram[HEADER_LEN..], &body[..], "deliveries are canonical");
        }
    }
    let local = NodeId([7; 32]);
    if let Ok(c) = Control::parse(bytes, &local) {
        let again = c.to_datagram();
        assert_eq!(Control::parse(&again[HEADER_LEN..], &local).ok(), Some(c));
    }
}

/// `bytes` cut or zero-padded to a delivery body's length.
fn sized(bytes: &[u8]) -> Vec<u8> {
    let mut body = bytes.to_vec();
    body.resize(DELIVERY_DATAGRAM_LEN - HEADER_LEN, 0);
    body
}

/// Where a scripted packet goes after the provider.
#[derive(Clone, Copy, Debug, TypeGenerator)]
pub enum Route {
    /// Forward to a pool peer (not in the provider's topology: unroutable).
    Forward(u8),
    /// Deliver to a pool peer (a client of the provider, if subscribed).
    Deliver(u8),
    /// Drop cover.
    Drop,
    /// Deliver to the provider itself.
    ToSelf,
}

/// One step of a provider script.
#[derive(Clone, Debug, TypeGenerator)]
pub enum Step {
    /// A packet for the provider: its route, message length, and an
    /// optional byte to XOR in at an offset (tampering).
    Packet {
        /// The route.
        route: Route,
        /// Message length (cut to 2,000).
        len: u16,
        /// Offset and XOR mask.
        tamper: Option<(u16, u8)>,
    },
    /// Sends the last valid packet again, from the same address.
    Replay,
    /// A pool peer asks for and answers a challenge (`honest` = with the
    /// nonce the provider gave it; otherwise with a made-up one).
    Subscribe {
        /// The peer.
        peer: u8,
        /// Whether it signs the real nonce.
        honest: bool,
    },
    /// Raw bytes as a datagram of one of the three mixnet kinds.
    Raw {
        /// 0: mix packet, 1: delivery, 2: control.
        kind: u8,
        /// The body.
        body: Vec<u8>,
    },
    /// Time passes, in milliseconds (cut to 600,000).
    Advance(u32),
}

/// `mix_provider_inputs`: a provider (small inbox limits) fed the script
/// never panics; every datagram it sends of a mixnet packet kind is
/// exactly one packet long; every refused input is reported as exactly
/// one rejected datagram and counted; a replayed packet is counted as a
/// replay and sends nothing; the inbox stays within its bounds.
pub fn mix_provider_inputs(steps: &[Step]) {
    let mut params = Params::default();
    params.mix.inbox_max_messages = 3;
    params.mix.provider_max_clients = 2;
    params.mix.subscription_secs = 30;
    let mut config = node_config(params, Vec::new());
    config.mix = MixConfig { service: MixService::Provider, ..MixConfig::default() };
    let mut now = Instant::from_secs(1);
    let mut node = Node::new(now, config);
    let key = node.mixnet().descriptor().expect("a provider has a descriptor").newest_key().key;
    let mut rng = NodeSeed::derive(0xF1F, 0).stream("mix provider harness");
    let sender: Addr = peer(0).info.addr;
    let mut last_valid: Option<Vec<u8>> = None;
    for step in steps.iter().take(64) {
        match step {
            Step::Packet { route, len, tamper } => {
                let (next, recipient) = match route {
                    Route::Forward(p) => (Some(peer(*p).info.id), peer(*p).info.id),
                    Route::Deliver(p) => (None, peer(*p).info.id),
                    Route::Drop => (None, DROP_RECIPIENT),
                    Route::ToSelf => (None, node.id()),
                };
                let mut path = vec![Hop { id: node.id(), key, delay_us: 0 }];
                if let Some(next) = next {
                    // The next hop's key does not matter: the provider only forwards.
                    path.push(Hop { id: next, key, delay_us: 0 });
                }
                let message = vec![0x5A; usize::from(*len).min(2000)];
                let (packet, _) = Packet::create(&mut rng, &path, recipient, &message).expect("valid path");
                let mut datagram = vec![wire::VERSION, MessageKind::Mix as u8];
                datagram.extend_from_slice(&packet.to_bytes());
                let mut tampered = false;
                let mut caught = false;
                if let Some((at, x)) = tamper.filter(|(_, x)| *x != 0) {
                    let i = HEADER_LEN + usize::from(at) % (datagram.len() - HEADER_LEN);
                    datagram[i] ^= x;
                    tampered = true;
                    // A changed payload is only noticed at the last hop (Sphinx's guarantee).
                    let in_payload = i >= HEADER_LEN + 1 + SPHINX_HEADER_LEN;
                    caught = !(in_payload && next.is_some());
                }
                let rejected = feed(&mut node, now, sender, datagram.clone());
                assert_eq!(rejected, caught, "a packet is refused exactly when a change is detectable here");
                if !tampered {
                    last_valid = Some(datagram);
                }
            }
            Step::Replay => {
                if let Some(datagram) = last_valid.clone() {
                    let replays = node.metrics().get("mix.packets.replayed");
                    let sent = transmits_of(&mut node, now, sender, datagram);
                    assert_eq!(node.metrics().get("mix.packets.replayed"), replays + 1);
                    assert!(sent.is_empty(), "a replay sends nothing");
                }
            }
            Step::Subscribe { peer: p, honest } => {
                let client = peer(*p);
                let hello = Control::Hello { client: client.info.id }.to_datagram();
                let answers = transmits_of(&mut node, now, client.info.addr, hello);
                let nonce = answers.iter().find_map(|b| match wire::split(b) {
                    Ok((MessageKind::MixControl, body)) => match Control::parse(body, &client.info.id) {
                        Ok(Control::Challenge { nonce }) => Some(nonce),
                        _ => None,
                    },
                    _ => None,
                });
                let nonce = nonce.expect("a provider answers a hello with a challenge");
                let nonce = if *honest { nonce } else { [nonce[0] ^ 1; 16] };
                let subscribe = Control::subscribe(&client.identity, node.id(), nonce).to_datagram();
                let full = node.mixnet().status().clients >= 2;
                let rejected = feed(&mut node, now, client.info.addr, subscribe);
                if !*honest {
                    assert!(rejected, "a made-up nonce is refused");
                } else if !full {
                    assert!(!rejected, "an honest subscription is accepted");
                }
            }
            Step::Raw { kind, body } => {
                let kind =
                    [MessageKind::Mix, MessageKind::MixDelivery, MessageKind::MixControl][usize::from(*kind) % 3];
                let mut datagram = vec![wire::VERSION, kind as u8];
                datagram.extend_from_slice(body);
                feed(&mut node, now, sender, datagram);
            }
            Step::Advance(ms) => {
                now += Duration::from_millis(u64::from((*ms).min(600_000)));
                node.handle_input(now, Input::Timeout);
                drain(&mut node);
            }
        }
        let status = node.mixnet().status();
        assert!(status.held <= 3 * 2 + 3, "inbox bounds: {status:?}");
        assert!(status.clients <= 2);
    }
}

/// Feeds a datagram; returns whether it was rejected (and checks the count).
fn feed(node: &mut Node, now: Instant, from: Addr, bytes: Vec<u8>) -> bool {
    let before = node.metrics().get("wire.rejected");
    node.handle_input(now, Input::Datagram { from, bytes });
    let rejected = drain(node);
    let counted = node.metrics().get("wire.rejected") - before;
    assert_eq!(counted, rejected as u64, "every rejection is counted once");
    assert!(rejected <= 1);
    rejected == 1
}

/// Feeds a datagram and returns what the node sent.
fn transmits_of(node: &mut Node, now: Instant, from: Addr, bytes: Vec<u8>) -> Vec<Vec<u8>> {
    node.handle_input(now, Input::Datagram { from, bytes });
    let mut sent = Vec::new();
    while let Some(output) = node.poll_output() {
        if let Output::Transmit { bytes, .. } = output {
            check_size(&bytes);
            sent.push(bytes);
        }
    }
    sent
}

/// Drains outputs; returns the rejected-datagram events seen.
fn drain(node: &mut Node) -> usize {
    let mut rejected = 0;
    while let Some(output) = node.poll_output() {
        match output {
            Output::Transmit { to, bytes } => {
                assert_ne!(to, NODE_ADDR);
                check_size(&bytes);
            }
            Output::Event(Event::Rejected { .. }) => rejected += 1,
            _ => {}
        }
    }
    rejected
}

fn check_size(bytes: &[u8]) {
    if let Ok((MessageKind::Mix | MessageKind::MixDelivery, _)) = wire::split(bytes) {
        assert_eq!(bytes.len(), DELIVERY_DATAGRAM_LEN, "every mixnet packet on a link has one size");
    }
}
