//! Structured (non-fuzz) test: every distinct class of malformed datagram
//! yields its typed [`WireError`], from the decoder itself and from a
//! [`Node`] as one `Event::Rejected`, and increments `wire.rejected` plus
//! exactly the expected `wire.rejected.<label>` counter.

use allium_engine::dht::message::MAX_PEERS_PER_MESSAGE;
use allium_engine::dht::{Body, DhtMessage, PeerInfo, pow};
use allium_engine::wire::{self, MAX_DATAGRAM, MessageKind, VERSION, WireError};
use allium_engine::{Addr, Event, Input, Instant, Node, Output, Params};
use allium_fuzz::pool;

/// Every `wire.rejected.<label>` counter.
const LABELS: [&str; 8] = ["truncated", "oversized", "version", "kind", "limit", "invalid", "trailing", "protocol"];

/// One malformation class.
struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    expected: WireError,
    /// The counter that must move, besides `wire.rejected`.
    metric: &'static str,
    /// Proof-of-work difficulty the node runs with.
    pow_difficulty: u32,
}

/// A well-formed message from pool peer 0 (valid proof of work for `difficulty`).
fn message(body: Body, difficulty: u32) -> DhtMessage {
    let sender = pool::peer(0);
    DhtMessage {
        sender_key: sender.identity.public().signing_key,
        pow_nonce: pow::solve(&sender.info.id, difficulty),
        request_id: 7,
        body,
    }
}

fn ping() -> Vec<u8> {
    message(Body::Ping, 0).encode()
}

fn cases() -> Vec<Case> {
    let case = |name, bytes, expected: WireError, metric| Case { name, bytes, expected, metric, pow_difficulty: 0 };
    let mut cases = Vec::new();

    cases.push(case("empty", Vec::new(), WireError::Truncated, "wire.rejected.truncated"));
    cases.push(case("one byte", vec![VERSION], WireError::Truncated, "wire.rejected.truncated"));

    let mut bad_version = ping();
    bad_version[0] = VERSION + 1;
    cases.push(case("bad version", bad_version, WireError::UnsupportedVersion(VERSION + 1), "wire.rejected.version"));

    let mut unknown_kind = ping();
    unknown_kind[1] = 0xEE;
    cases.push(case("unknown kind", unknown_kind, WireError::UnknownKind(0xEE), "wire.rejected.kind"));

    let mut truncated = ping();
    truncated.pop();
    cases.push(case("truncated body", truncated, WireError::Truncated, "wire.rejected.truncated"));

    let mut trailing = ping();
    trailing.extend_from_slice(&[0, 0, 0]);
    cases.push(case("trailing bytes", trailing, WireError::TrailingBytes { extra: 3 }, "wire.rejected.trailing"));

    // A `Nodes` body whose list length prefix claims u64::MAX entries
    // (varint marker 253 then 8 bytes): refused by the decode limit.
    let mut huge = message(Body::Nodes { closer: Vec::new() }, 0).encode();
    assert_eq!(huge.pop(), Some(0), "an empty list ends with its zero length prefix");
    huge.push(253);
    huge.extend_from_slice(&u64::MAX.to_le_bytes());
    cases.push(case("huge length prefix", huge, WireError::LimitExceeded, "wire.rejected.limit"));

    // The body's variant tag is the last byte of a Ping; 200 names no variant.
    let mut bad_tag = ping();
    *bad_tag.last_mut().expect("non-empty") = 200;
    cases.push(case("bad enum tag", bad_tag, WireError::InvalidField("enum variant"), "wire.rejected.invalid"));

    // The request id 7 in the long form of its varint (marker 251, then a
    // little-endian u16): bincode takes it, the canonical-encoding rule not.
    let mut long_varint = ping();
    let at = wire::HEADER_LEN + 32 + 1;
    assert_eq!(long_varint[at], 7, "the request id follows the key and a zero nonce");
    long_varint.splice(at..=at, [251, 7, 0]);
    cases.push(case(
        "long-form varint",
        long_varint,
        WireError::InvalidField("non-canonical encoding"),
        "wire.rejected.invalid",
    ));

    let mut bad_bool = message(Body::Stored { accepted: true }, 0).encode();
    *bad_bool.last_mut().expect("non-empty") = 2;
    cases.push(case("bad bool", bad_bool, WireError::InvalidField("bool"), "wire.rejected.invalid"));

    let closer: Vec<PeerInfo> = (0..=MAX_PEERS_PER_MESSAGE as u8).map(|i| pool::peer(i).info).collect();
    cases.push(case(
        "too many peers",
        message(Body::Nodes { closer }, 0).encode(),
        WireError::Protocol("too many peers in one message"),
        "wire.rejected.protocol",
    ));

    let oversized = vec![VERSION; MAX_DATAGRAM + 1];
    let expected = WireError::Oversized { len: MAX_DATAGRAM + 1 };
    cases.push(case("oversized", oversized, expected, "wire.rejected.oversized"));

    let mut own = message(Body::Ping, 0);
    own.sender_key = pool::local().public().signing_key;
    let own = own.encode();
    cases.push(case(
        "own identifier",
        own,
        WireError::Protocol("message claims our own identifier"),
        "wire.rejected.protocol",
    ));

    // With proof of work on, a nonce that does not prove the work.
    let difficulty = 8;
    let sender = pool::peer(0);
    let bad_nonce = (0..).find(|&n| !pow::verify(&sender.info.id, n, difficulty)).expect("most nonces fail");
    let mut weak = message(Body::Ping, difficulty);
    weak.pow_nonce = bad_nonce;
    cases.push(Case {
        name: "pow failure",
        bytes: weak.encode(),
        expected: WireError::Protocol("insufficient proof of work"),
        metric: "wire.rejected.protocol",
        pow_difficulty: difficulty,
    });
    cases
}

fn node(pow_difficulty: u32) -> Node {
    let mut params = Params::default();
    params.dht.pow_difficulty = pow_difficulty;
    Node::new(Instant::ZERO, pool::node_config(params, Vec::new()))
}

fn feed(node: &mut Node, from: Addr, bytes: Vec<u8>) -> Vec<(Addr, WireError)> {
    node.handle_input(Instant::from_secs(1), Input::Datagram { from, bytes });
    let mut rejected = Vec::new();
    while let Some(output) = node.poll_output() {
        if let Output::Event(Event::Rejected { from, error }) = output {
            rejected.push((from, error));
        }
    }
    rejected
}

/// What the decoder alone says about a datagram.
fn decode(bytes: &[u8]) -> Result<DhtMessage, WireError> {
    let (kind, body) = wire::split(bytes)?;
    assert_eq!(kind, MessageKind::Dht);
    DhtMessage::decode(body)
}

#[test]
fn each_malformation_class_has_its_typed_error_and_counter() {
    let from = pool::peer(0).info.addr;
    for case in cases() {
        let Case { name, bytes, expected, metric, pow_difficulty } = case;
        // The decoder's own verdict (the two protocol checks made by the DHT
        // machine rather than the decoder are only visible through the node).
        match name {
            "pow failure" | "own identifier" => assert!(decode(&bytes).is_ok(), "{name}"),
            _ => assert_eq!(decode(&bytes).err(), Some(expected.clone()), "{name}"),
        }
        assert_eq!(expected.metric(), metric, "{name}");

        let mut node = node(pow_difficulty);
        let rejected = feed(&mut node, from, bytes);
        assert_eq!(rejected, vec![(from, expected.clone())], "{name}");
        let metrics = node.metrics();
        assert_eq!(metrics.get("wire.datagrams.received"), 1, "{name}");
        assert_eq!(metrics.get("wire.rejected"), 1, "{name}");
        for label in LABELS {
            let counter = format!("wire.rejected.{label}");
            assert_eq!(metrics.get(&counter), u64::from(counter == metric), "{name}: {counter}");
        }
        if name == "pow failure" {
            assert_eq!(metrics.get("dht.rejected.pow"), 1);
        }
        assert!(node.dht().routing_table().is_empty(), "{name}: a rejected sender was added");
    }
}

#[test]
fn well_formed_datagrams_are_not_rejected() {
    let from = pool::peer(0).info.addr;
    for difficulty in [0, 8] {
        let mut node = node(difficulty);
        assert!(feed(&mut node, from, message(Body::Ping, difficulty).encode()).is_empty());
        let closer = (0..MAX_PEERS_PER_MESSAGE as u8).map(|i| pool::peer(i).info).collect();
        assert!(feed(&mut node, from, message(Body::Nodes { closer }, difficulty).encode()).is_empty());
        assert_eq!(node.metrics().get("wire.rejected"), 0);
        assert!(node.dht().routing_table().contains(&pool::peer(0).info.id));
    }
}

#[test]
fn every_counter_label_is_covered() {
    let metrics: Vec<&str> = cases().iter().map(|c| c.metric).collect();
    for label in LABELS {
        assert!(metrics.contains(&format!("wire.rejected.{label}").as_str()), "no case for {label}");
    }
}
