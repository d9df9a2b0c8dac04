//! 10,000 random and truncated datagrams at a node's UDP port: the node
//! keeps running and answering, and its rejected-datagram metric counts
//! exactly the ones the engine's decoders refuse.
#![cfg(not(madsim))]

mod common;

use allium_engine::dht::DhtMessage;
use allium_engine::wire::{self, MessageKind};
use common::{NodeProcess, eventually};
use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use std::net::UdpSocket;
use std::time::Duration;

/// Whether the engine would reject this datagram.
fn malformed(bytes: &[u8]) -> bool {
    match wire::split(bytes) {
        Err(_) => true,
        Ok((MessageKind::Dht, body)) => DhtMessage::decode(body).is_err(),
        Ok((MessageKind::Overlay, body)) => allium_engine::overlay::OverlayMessage::decode(body).is_err(),
        Ok((MessageKind::Circuit, _)) => allium_engine::circuit::cell::Cell::parse(bytes).is_err(),
        // The node takes no part in the mixnet and refuses all of it.
        Ok((MessageKind::Mix | MessageKind::MixDelivery | MessageKind::MixControl, _)) => true,
        // Nor in any election group.
        Ok((MessageKind::Election, _)) => true,
        // Nor in rewards.
        Ok((MessageKind::Rewards, _)) => true,
    }
}

#[test]
fn ten_thousand_bad_datagrams_are_counted_and_survived() {
    let root = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(&root.path().join("n0"), &[]);
    node.wait_ready(Duration::from_secs(20));
    let valid = DhtMessage {
        sender_key: [1; 32],
        pow_nonce: 0,
        request_id: 9,
        body: allium_engine::dht::Body::FindNode { target: allium_engine::NodeId([2; 32]) },
    }
    .encode();

    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(2026);
    let mut expected = 0u64;
    for i in 0..10_000u32 {
        let bytes = match i % 4 {
            // Uniformly random bytes of random length.
            0 => {
                let mut b = vec![0u8; (rng.next_u32() % 1400) as usize];
                rng.fill_bytes(&mut b);
                b
            }
            // A valid header followed by garbage: reaches the DHT decoder.
            1 => {
                let mut b = vec![wire::VERSION, MessageKind::Dht as u8];
                let mut tail = vec![0u8; (rng.next_u32() % 300) as usize];
                rng.fill_bytes(&mut tail);
                b.extend(tail);
                b
            }
            // A valid message cut short.
            2 => valid[..(rng.next_u32() as usize % valid.len())].to_vec(),
            // A valid message with one bit flipped.
            _ => {
                let mut b = valid.clone();
                let bit = rng.next_u32() as usize % (b.len() * 8);
                b[bit / 8] ^= 1 << (bit % 8);
                b
            }
        };
        expected += u64::from(malformed(&bytes));
        socket.send_to(&bytes, node.listen).unwrap();
        if i % 50 == 0 {
            // Pace the flood so the kernel's receive buffer never overflows:
            // the test counts every datagram, so none may be lost in transit.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    assert!(expected > 7_000, "most of the flood should be malformed ({expected})");
    let stats = eventually(Duration::from_secs(20), || {
        let stats = node.stats();
        let received = stats["metrics"]["wire.datagrams.received"].as_u64().unwrap_or(0);
        (received >= 10_000).then_some(stats)
    })
    .unwrap_or_else(|| panic!("the node should answer and have received the flood: {:#}", node.stats()["metrics"]));
    assert_eq!(stats["metrics"]["wire.rejected"].as_u64(), Some(expected), "{stats:#}");
    assert_eq!(node.curl_status("/healthz"), 200);
}
