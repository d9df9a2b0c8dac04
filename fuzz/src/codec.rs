//! Targets for the byte-level decoders: datagram framing, DHT messages and
//! persisted state. Each function panics if a property is broken.

use crate::model::{FuzzMessage, FuzzPersistOp};
use crate::pool;
use allium_engine::dht::message::MAX_PEERS_PER_MESSAGE;
use allium_engine::dht::{Body, DhtMessage};
use allium_engine::wire::{self, HEADER_LEN, MAX_DATAGRAM, MessageKind, VERSION, WireError};
use allium_engine::{Command, Input, Instant, Node, NodeId, Output, PersistOp, PersistedState};
use std::collections::BTreeSet;

/// Labels a framing error may carry (see [`WireError::label`]).
const SPLIT_LABELS: [&str; 4] = ["truncated", "oversized", "version", "kind"];

/// Labels a body decoder may produce: everything but the framing ones.
const DECODE_LABELS: [&str; 5] = ["truncated", "limit", "invalid", "trailing", "protocol"];

/// Encodes a control-message body the way [`wire::encode`] does, without the
/// `[version][kind]` header.
pub fn encode_body<T: bincode::Encode>(value: &T) -> Vec<u8> {
    wire::encode(MessageKind::Dht, value).split_off(HEADER_LEN)
}

/// `wire_split`: [`wire::split`] never panics; on success the header is
/// `[VERSION, kind]`, the kind byte matches and the body is the rest; on
/// failure the error is a framing error consistent with the input.
pub fn wire_split(bytes: &[u8]) {
    check_split(bytes);
    // The fuzzer's inputs are short; also try the same prefix past the size limit.
    let mut oversized = bytes.to_vec();
    oversized.resize(MAX_DATAGRAM + 1 + bytes.len() % 7, 0);
    assert_eq!(wire::split(&oversized), Err(WireError::Oversized { len: oversized.len() }));
}

fn check_split(bytes: &[u8]) {
    match wire::split(bytes) {
        Ok((kind, body)) => {
            assert!(bytes.len() <= MAX_DATAGRAM);
            assert_eq!(bytes[0], VERSION);
            assert_eq!(kind as u8, bytes[1], "kind byte mismatch");
            assert_eq!(MessageKind::from_byte(bytes[1]), Some(kind));
            assert_eq!(body, &bytes[HEADER_LEN..]);
        }
        Err(error) => {
            assert!(SPLIT_LABELS.contains(&error.label()), "unexpected framing error {error:?}");
            assert_eq!(error == WireError::Truncated, bytes.len() < HEADER_LEN, "{error:?}");
            match error {
                WireError::UnsupportedVersion(v) => assert!(v == bytes[0] && v != VERSION),
                WireError::UnknownKind(k) => {
                    assert!(k == bytes[1] && bytes[0] == VERSION && MessageKind::from_byte(k).is_none())
                }
                _ => {}
            }
        }
    }
}

/// `dht_message_decode`: [`DhtMessage::decode`] never panics; a decoded
/// message respects the peer-count limit, and encoding then decoding it
/// again gives an equal value (and the same bytes: the encoding is
/// canonical once decoded); a failure is a typed body error.
pub fn dht_message_decode(body: &[u8]) {
    match DhtMessage::decode(body) {
        Ok(message) => {
            assert!(peer_counts(&message.body).iter().all(|&n| n <= MAX_PEERS_PER_MESSAGE));
            let datagram = message.encode();
            let (kind, again) = wire::split(&datagram).expect("an encoded message frames");
            assert_eq!(kind, MessageKind::Dht);
            let decoded = DhtMessage::decode(again).expect("an encoded message decodes");
            assert_eq!(decoded, message);
            assert_eq!(decoded.encode(), datagram, "re-encoding is not stable");
        }
        Err(error) => {
            assert!(DECODE_LABELS.contains(&error.label()), "unexpected decode error {error:?}");
            // The only rule on top of the generic codec is the peer limit.
            if let Ok(raw) = wire::decode_body::<DhtMessage>(body) {
                assert_eq!(error, WireError::Protocol("too many peers in one message"));
                assert!(peer_counts(&raw.body).iter().any(|&n| n > MAX_PEERS_PER_MESSAGE));
            }
        }
    }
}

/// `dht_message_round_trip`: a structurally valid message built from
/// fuzzer-chosen fields encodes into a datagram that frames and decodes to
/// an equal value, unless it carries more peers than allowed, which is
/// refused with the typed protocol error.
pub fn dht_message_round_trip(input: &FuzzMessage) {
    let message = input.message();
    let datagram = message.encode();
    assert!(datagram.len() <= MAX_DATAGRAM, "{} bytes", datagram.len());
    let (kind, body) = wire::split(&datagram).expect("an encoded message frames");
    assert_eq!(kind, MessageKind::Dht);
    let too_many = peer_counts(&message.body).iter().any(|&n| n > MAX_PEERS_PER_MESSAGE);
    match DhtMessage::decode(body) {
        Ok(decoded) => {
            assert!(!too_many, "an over-long peer list was accepted");
            assert_eq!(decoded, message);
        }
        Err(error) => {
            assert!(too_many, "a valid message was refused: {error:?}");
            assert_eq!(error, WireError::Protocol("too many peers in one message"));
        }
    }
}

fn peer_counts(body: &Body) -> Vec<usize> {
    match body {
        Body::Nodes { closer } => vec![closer.len()],
        Body::Providers { providers, closer } => vec![providers.len(), closer.len()],
        _ => Vec::new(),
    }
}

/// `persist_decode`: decoding a [`PersistOp`] or a [`PersistedState`]
/// from arbitrary bytes (as a node loads them from its database) never
/// panics; what decodes round-trips; and a node restored from it starts,
/// bootstraps and handles a timeout without panicking.
pub fn persist_decode(bytes: &[u8]) {
    match wire::decode_body::<PersistOp>(bytes) {
        Ok(op) => {
            assert_eq!(wire::decode_body::<PersistOp>(&encode_body(&op)), Ok(op.clone()));
            let mut state = PersistedState::default();
            state.apply(op);
            exercise_restored(state);
        }
        Err(error) => assert!(DECODE_LABELS.contains(&error.label()), "{error:?}"),
    }
    match wire::decode_body::<PersistedState>(bytes) {
        Ok(state) => {
            assert_eq!(wire::decode_body::<PersistedState>(&encode_body(&state)), Ok(state.clone()));
            exercise_restored(state);
        }
        Err(error) => assert!(DECODE_LABELS.contains(&error.label()), "{error:?}"),
    }
}

/// `persist_round_trip`: a state built by applying fuzzer-chosen
/// operations encodes and decodes to an equal value, and restoring a node
/// from it keeps exactly the persisted contacts and the valid records.
pub fn persist_round_trip(ops: &[FuzzPersistOp]) {
    let mut state = PersistedState::default();
    for op in ops {
        state.apply(op.op());
    }
    let bytes = encode_body(&state);
    assert_eq!(wire::decode_body::<PersistedState>(&bytes), Ok(state.clone()));
    exercise_restored(state);
}

/// Restores the node under test from `state`, checks what it kept, then
/// bootstraps it, publishes a value under every name the generators use
/// (so a persisted own record is updated), announces itself as a provider,
/// and fires its first timer.
fn exercise_restored(state: PersistedState) {
    let now = Instant::from_secs(1);
    let mut node = pool::restore_node(now, state.clone());
    let local = node.id();
    // Contacts come only from the persisted ones, never the node itself.
    let table: BTreeSet<NodeId> = node.dht().routing_table().peers().map(|p| p.id).collect();
    assert!(!table.contains(&local));
    assert!(table.iter().all(|id| state.peers.values().any(|p| p.id == *id)));
    // Records are re-verified: only validly signed ones come back.
    for record in node.dht().store().values() {
        assert!(record.verify());
        assert!(state.values.values().any(|r| r == record));
    }
    for record in node.dht().store().all_providers() {
        assert!(record.verify());
    }
    node.handle_input(now, Input::Command { id: 0, command: Command::Bootstrap });
    drain(&mut node);
    for name in 0..pool::NAMES {
        let command = Command::PutValue { name: vec![name], value: vec![name; 8] };
        node.handle_input(now, Input::Command { id: u64::from(name) + 1, command });
        drain(&mut node);
    }
    let key = allium_engine::dht::key_for_name(&[0]);
    node.handle_input(now, Input::Command { id: 100, command: Command::Provide { key } });
    drain(&mut node);
    let wake = node.poll_timeout().expect("a node always has a timer");
    node.handle_input(wake.max(now), Input::Timeout);
    drain(&mut node);
}

fn drain(node: &mut Node) {
    let mut n = 0;
    while let Some(output) = node.poll_output() {
        if let Output::Transmit { bytes, .. } = &output {
            let (_, body) = wire::split(bytes).expect("the node emits well-framed datagrams");
            DhtMessage::decode(body).expect("the node emits decodable messages");
        }
        n += 1;
        assert!(n < 100_000, "poll_output does not run dry");
    }
}
