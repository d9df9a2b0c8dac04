//! Packet tests: round trips, constant size, unlinkability, tampering,
//! replay, wrong keys, SURBs.

use super::*;
use crate::crypto::CryptoSuite;
use crate::rng::EngineRng;
use proptest::prelude::*;
use rand_core::{Rng, SeedableRng};

struct Mix {
    sk: KxSecret,
    hop: Hop,
}

fn rng(seed: u8) -> EngineRng {
    EngineRng::from_seed([seed; 32])
}

fn mixes(n: usize, seed: u8) -> Vec<Mix> {
    let mut r = rng(seed.wrapping_add(100));
    (0..n)
        .map(|i| {
            let mut b = [0u8; 32];
            r.fill_bytes(&mut b);
            let sk = KxSecret::from_bytes(b);
            let key = CryptoSuite::Real.kx_public(&sk);
            let id = NodeId([i as u8 + 1; 32]);
            Mix { sk, hop: Hop { id, key, delay_us: 1000 * (i as u32 + 1) } }
        })
        .collect()
}

fn path(m: &[Mix]) -> Vec<Hop> {
    m.iter().map(|m| m.hop).collect()
}

const RECIPIENT: NodeId = NodeId([0xEE; 32]);

/// Runs `packet` through every mix, checking each forward step, and returns
/// the last hop's result.
fn run(m: &[Mix], mut packet: Packet) -> Result<Processed, PacketError> {
    for (i, mix) in m.iter().enumerate() {
        match process(&mix.sk, packet)? {
            Processed::Forward { next, delay_us, packet: p, .. } => {
                assert_eq!(next, m[i + 1].hop.id);
                assert_eq!(delay_us, mix.hop.delay_us);
                packet = p;
            }
            done => {
                assert_eq!(i, m.len() - 1, "finished early");
                return Ok(done);
            }
        }
    }
    panic!("never finished");
}

fn windows_shared(a: &[u8], b: &[u8]) -> bool {
    let set: std::collections::BTreeSet<&[u8]> = a.windows(16).collect();
    b.windows(16).any(|w| set.contains(w))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn round_trip_constant_size_and_unlinkable(
        hops in 1..=MAX_HOPS,
        message in proptest::collection::vec(any::<u8>(), 0..=MAX_MESSAGE_LEN),
        seed in any::<u8>(),
    ) {
        let m = mixes(hops, seed);
        let (mut packet, first) = Packet::create(&mut rng(seed), &path(&m), RECIPIENT, &message).unwrap();
        prop_assert_eq!(first, m[0].hop.id);
        for (i, mix) in m.iter().enumerate() {
            let incoming = packet.to_bytes();
            prop_assert_eq!(incoming.len(), PACKET_LEN);
            let parsed = Packet::from_bytes(&incoming).unwrap();
            prop_assert_eq!(&parsed, &packet);
            match process(&mix.sk, parsed).unwrap() {
                Processed::Forward { packet: p, .. } => {
                    let outgoing = p.to_bytes();
                    prop_assert_eq!(outgoing.len(), PACKET_LEN);
                    prop_assert!(!windows_shared(&incoming, &outgoing[1..]), "hop {} output links to input", i);
                    packet = p;
                }
                Processed::Deliver { recipient, message: got, .. } => {
                    prop_assert_eq!(i, hops - 1);
                    prop_assert_eq!(recipient, RECIPIENT);
                    prop_assert_eq!(&got, &message);
                    break;
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
    }

    #[test]
    fn a_flipped_header_bit_fails_the_mac_where_checked(
        hops in 1..=MAX_HOPS,
        at_hop in 0..MAX_HOPS,
        bit in 0..HEADER_LEN * 8,
        seed in any::<u8>(),
    ) {
        let at_hop = at_hop % hops;
        let m = mixes(hops, seed);
        let (mut packet, _) = Packet::create(&mut rng(seed), &path(&m), RECIPIENT, b"hi").unwrap();
        for mix in &m[..at_hop] {
            match process(&mix.sk, packet).unwrap() {
                Processed::Forward { packet: p, .. } => packet = p,
                other => panic!("unexpected {other:?}"),
            }
        }
        let mut bytes = packet.to_bytes();
        bytes[1 + bit / 8] ^= 1 << (bit % 8);
        let tampered = Packet::from_bytes(&bytes).unwrap();
        let result = process(&m[at_hop].sk, tampered);
        // A flipped alpha may (with negligible probability) hit a low-order point.
        prop_assert!(matches!(result, Err(PacketError::BadMac | PacketError::DegenerateAlpha)), "{:?}", result);
    }

    #[test]
    fn a_flipped_payload_bit_is_caught_at_the_last_hop(
        hops in 1..=MAX_HOPS,
        at_hop in 0..MAX_HOPS,
        bit in 0..PAYLOAD_LEN * 8,
        seed in any::<u8>(),
    ) {
        let at_hop = at_hop % hops;
        let m = mixes(hops, seed);
        let (mut packet, _) = Packet::create(&mut rng(seed), &path(&m), RECIPIENT, b"payload").unwrap();
        for (i, mix) in m.iter().enumerate() {
            if i == at_hop {
                let mut bytes = packet.to_bytes();
                bytes[1 + HEADER_LEN + bit / 8] ^= 1 << (bit % 8);
                packet = Packet::from_bytes(&bytes).unwrap();
            }
            match process(&mix.sk, packet) {
                Ok(Processed::Forward { packet: p, .. }) => packet = p,
                Err(e) => {
                    prop_assert_eq!(i, hops - 1);
                    prop_assert_eq!(e, PacketError::PayloadTampered);
                    return Ok(());
                }
                Ok(other) => {
                    prop_assert!(false, "tampering undetected: {:?}", other);
                    return Ok(());
                }
            }
        }
    }
}

#[test]
fn creation_is_deterministic_given_the_rng() {
    let m = mixes(3, 1);
    let a = Packet::create(&mut rng(9), &path(&m), RECIPIENT, b"x").unwrap();
    let b = Packet::create(&mut rng(9), &path(&m), RECIPIENT, b"x").unwrap();
    let c = Packet::create(&mut rng(10), &path(&m), RECIPIENT, b"x").unwrap();
    assert_eq!(a, b);
    assert_ne!(a.0, c.0);
}

#[test]
fn replays_are_refused_by_the_filter() {
    let m = mixes(3, 2);
    let (packet, _) = Packet::create(&mut rng(3), &path(&m), RECIPIENT, b"once").unwrap();
    let mut filter = ReplayFilter::new(0);
    let first = process_checked(&m[0].sk, 0, &mut filter, packet.clone()).unwrap();
    assert!(matches!(first, Processed::Forward { .. }));
    assert_eq!(process_checked(&m[0].sk, 0, &mut filter, packet.clone()), Err(PacketError::Replay));
    // A forged copy (bad MAC) does not touch the filter.
    let mut forged = packet.to_bytes();
    forged[40] ^= 1;
    let mut fresh = ReplayFilter::new(0);
    let forged = Packet::from_bytes(&forged).unwrap();
    assert_eq!(process_checked(&m[0].sk, 0, &mut fresh, forged), Err(PacketError::BadMac));
    assert!(fresh.is_empty());
    // The tag is what process returns, so a caller can keep its own set.
    let Processed::Forward { replay_tag, .. } = first else { unreachable!() };
    let Ok(Processed::Forward { replay_tag: again, .. }) = process(&m[0].sk, packet) else { unreachable!() };
    assert_eq!(replay_tag, again);
}

#[test]
fn a_wrong_key_is_refused() {
    let m = mixes(3, 4);
    let other = mixes(3, 5);
    let (packet, _) = Packet::create(&mut rng(6), &path(&m), RECIPIENT, b"m").unwrap();
    assert_eq!(process(&other[0].sk, packet), Err(PacketError::BadMac));
}

#[test]
fn degenerate_keys_are_refused() {
    let mut m = mixes(3, 7);
    m[1].hop.key = KxPublic([0u8; 32]);
    assert_eq!(Packet::create(&mut rng(1), &path(&m), RECIPIENT, b"m"), Err(PacketError::DegenerateHopKey { hop: 1 }));
    let ok = mixes(1, 7);
    let (packet, _) = Packet::create(&mut rng(1), &path(&ok), RECIPIENT, b"m").unwrap();
    let mut bytes = packet.to_bytes();
    bytes[1..33].fill(0);
    let zero_alpha = Packet::from_bytes(&bytes).unwrap();
    assert_eq!(process(&ok[0].sk, zero_alpha), Err(PacketError::DegenerateAlpha));
}

#[test]
fn bad_paths_messages_and_encodings_are_typed_errors() {
    let m = mixes(MAX_HOPS + 1, 8);
    assert_eq!(Packet::create(&mut rng(1), &[], RECIPIENT, b""), Err(PacketError::EmptyPath));
    assert_eq!(
        Packet::create(&mut rng(1), &path(&m), RECIPIENT, b""),
        Err(PacketError::PathTooLong { hops: MAX_HOPS + 1, max: MAX_HOPS })
    );
    assert!(matches!(
        Packet::create(&mut rng(1), &path(&m[..3]), RECIPIENT, &[0; MAX_MESSAGE_LEN + 1]),
        Err(PacketError::MessageTooLong { .. })
    ));
    for len in [0, 1, PACKET_LEN - 1, PACKET_LEN + 1] {
        assert_eq!(Packet::from_bytes(&vec![VERSION; len]), Err(PacketError::BadLength { len }));
    }
    assert_eq!(Packet::from_bytes(&[2u8; PACKET_LEN]), Err(PacketError::BadVersion(2)));
    assert_eq!(Surb::from_bytes(&[0u8; 10]), Err(PacketError::BadLength { len: 10 }));
}

#[test]
fn a_surb_reply_comes_back_through_three_hops() {
    let alice = NodeId([0xA1; 32]);
    let bob = NodeId([0xB0; 32]);
    let forward = mixes(3, 11);
    let back = mixes(3, 12);
    let mut r = rng(13);
    let (surb, keys) = Surb::create(&mut r, &path(&back), alice).unwrap();

    // Alice sends Bob a message carrying the SURB.
    let mut message = b"question?".to_vec();
    message.extend_from_slice(&surb.to_bytes());
    let (packet, _) = Packet::create(&mut r, &path(&forward), bob, &message).unwrap();
    let Processed::Deliver { recipient, message: got, .. } = run(&forward, packet).unwrap() else {
        panic!("not delivered")
    };
    assert_eq!(recipient, bob);
    assert_eq!(&got[..9], b"question?");
    let surb = Surb::from_bytes(&got[9..]).unwrap();
    assert_eq!(surb.first_hop(), back[0].hop.id);

    // Bob replies through the SURB without knowing who Alice is.
    let (reply, first) = surb.clone().reply(b"answer!").unwrap();
    assert_eq!(first, back[0].hop.id);
    assert_eq!(reply.to_bytes().len(), PACKET_LEN);
    let Processed::Reply { recipient, surb_id, payload, .. } = run(&back, reply.clone()).unwrap() else {
        panic!("not a reply")
    };
    assert_eq!(recipient, alice);
    assert_eq!(surb_id, keys.id());
    assert_eq!(keys.open(&payload).unwrap(), b"answer!");

    // Tampering on the way is caught by Alice; other keys cannot open it.
    let mut bad = payload.clone();
    bad[100] ^= 1;
    assert_eq!(keys.open(&bad), Err(PacketError::PayloadTampered));
    let (_, other_keys) = Surb::create(&mut r, &path(&back), alice).unwrap();
    assert_eq!(other_keys.open(&payload), Err(PacketError::PayloadTampered));

    // A second use of the SURB is a replay at the first mix.
    let mut filter = ReplayFilter::new(0);
    assert!(process_checked(&back[0].sk, 0, &mut filter, reply).is_ok());
    let (again, _) = surb.reply(b"again").unwrap();
    assert_eq!(process_checked(&back[0].sk, 0, &mut filter, again), Err(PacketError::Replay));
}

#[test]
fn the_edwards_form_computes_exactly_x25519_and_has_one_encoding() {
    let m = mixes(1, 21);
    let (packet, _) = Packet::create(&mut rng(22), &path(&m), RECIPIENT, b"m").unwrap();
    let alpha = packet.header().alpha;
    let (s, point) = keys::mix_shared(&m[0].sk, &alpha).unwrap();
    let u = point.to_montgomery().to_bytes();
    assert_eq!(*s, x25519_dalek::x25519(*m[0].sk.as_bytes(), u));
    let mut flipped = alpha;
    flipped[31] |= 0x80;
    assert_eq!(keys::mix_shared(&m[0].sk, &flipped).err(), Some(PacketError::DegenerateAlpha));
    let mut above_p = [0xff; 32];
    above_p[31] = 0x7f;
    assert_eq!(keys::mix_shared(&m[0].sk, &above_p).err(), Some(PacketError::DegenerateAlpha));
}

#[test]
fn a_hop_key_with_a_small_order_component_still_agrees() {
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::montgomery::MontgomeryPoint;
    let mut m = mixes(3, 31);
    // The same secret's public point plus a point of order 8: X25519's
    // clamping (a multiple of 8) makes the mix's secret agree all the same.
    let honest = MontgomeryPoint(m[1].hop.key.0).to_edwards(0).unwrap();
    m[1].hop.key = KxPublic((honest + EIGHT_TORSION[1]).to_montgomery().to_bytes());
    let (packet, _) = Packet::create(&mut rng(32), &path(&m), RECIPIENT, b"torsion").unwrap();
    let Processed::Deliver { message, .. } = run(&m, packet).unwrap() else { panic!("not delivered") };
    assert_eq!(message, b"torsion");
}
