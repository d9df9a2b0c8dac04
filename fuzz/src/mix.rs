//! Targets for the mixnet's Sphinx packets: the decoder and one mix's
//! processing fed arbitrary bytes, and packets built along fuzzer-chosen
//! paths. Each function panics if a property is broken.

use allium_engine::crypto::{CryptoSuite, KxSecret};
use allium_engine::identity::NodeId;
use allium_engine::mix::packet::{
    self, HEADER_LEN, Hop, MAX_HOPS, MAX_MESSAGE_LEN, PACKET_LEN, Packet, PacketError, Processed, SURB_LEN, Surb,
    VERSION,
};
use allium_engine::rng::NodeSeed;
use bolero::TypeGenerator;

/// The recipient every harness packet is addressed to.
const RECIPIENT: NodeId = NodeId([0xEE; 32]);

/// [`MAX_HOPS`] mixes with fixed keys: (secret, hop).
fn mixes() -> Vec<(KxSecret, Hop)> {
    (0..MAX_HOPS)
        .map(|i| {
            let sk = KxSecret::from_bytes([0x40 + i as u8; 32]);
            let key = CryptoSuite::Real.kx_public(&sk);
            (sk, Hop { id: NodeId([i as u8 + 1; 32]), key, delay_us: 1_000 * i as u32 })
        })
        .collect()
}

/// `mix_packet_decode`: [`Packet::from_bytes`] never panics and refuses
/// exactly a wrong length or version; what parses writes back to the same
/// bytes, and a mix processing it (with a fixed key) returns a typed error
/// or a same-size forward packet, never a panic. The same bytes are also
/// tried resized to [`PACKET_LEN`] with the right version, and XORed onto a
/// valid one-hop packet: any non-zero change there is refused (the header
/// MAC or the payload's integrity marker catches it). The SURB decoder
/// gets the same bytes, raw and resized to [`SURB_LEN`].
pub fn mix_packet_decode(bytes: &[u8]) {
    let m = mixes();
    check_decode(&m[0].0, bytes);
    let mut sized = bytes.to_vec();
    sized.resize(PACKET_LEN, 0);
    sized[0] = VERSION;
    check_decode(&m[0].0, &sized);

    check_surb(&m[0].0, bytes);
    let mut surb_sized = bytes.to_vec();
    surb_sized.resize(SURB_LEN, 0);
    check_surb(&m[0].0, &surb_sized);

    let mut rng = NodeSeed::from_bytes([1; 32]).stream("fuzz mix decode");
    let path = [m[0].1];
    let (valid, _) = Packet::create(&mut rng, &path, RECIPIENT, b"fuzz").expect("valid path");
    let mut wire = valid.to_bytes();
    let mut changed_header = false;
    let mut changed = false;
    for (i, (w, b)) in wire.iter_mut().skip(1).zip(bytes).enumerate() {
        *w ^= b;
        changed |= *b != 0;
        changed_header |= *b != 0 && i < HEADER_LEN;
    }
    let tampered = Packet::from_bytes(&wire).expect("same length and version");
    match packet::process(&m[0].0, tampered) {
        Ok(Processed::Deliver { recipient, message, .. }) => {
            assert!(!changed, "a changed packet was accepted");
            assert_eq!((recipient, message.as_slice()), (RECIPIENT, &b"fuzz"[..]));
        }
        Err(PacketError::BadMac | PacketError::DegenerateAlpha) => assert!(changed_header),
        Err(PacketError::PayloadTampered) => assert!(changed && !changed_header),
        other => panic!("unexpected {other:?}"),
    }
}

fn check_decode(sk: &KxSecret, bytes: &[u8]) {
    match Packet::from_bytes(bytes) {
        Ok(p) => {
            assert_eq!(p.to_bytes(), bytes);
            // Any other result (almost always `BadMac`) is fine: typed, no panic.
            if let Ok(Processed::Forward { packet, .. }) = packet::process(sk, p) {
                assert_eq!(packet.to_bytes().len(), PACKET_LEN);
            }
        }
        Err(PacketError::BadLength { len }) => assert!(len == bytes.len() && len != PACKET_LEN),
        Err(PacketError::BadVersion(v)) => assert!(bytes.len() == PACKET_LEN && v == bytes[0] && v != VERSION),
        Err(e) => panic!("decode error {e:?}"),
    }
}

/// [`Surb::from_bytes`] refuses exactly a wrong length; a parsed SURB
/// writes back to the same bytes, and a reply through it (whatever its
/// header holds) is a full-size packet that a mix refuses or processes
/// without panicking.
fn check_surb(sk: &KxSecret, bytes: &[u8]) {
    match Surb::from_bytes(bytes) {
        Ok(surb) => {
            assert_eq!(surb.to_bytes(), bytes);
            let (reply, first) = surb.reply(b"fuzz reply").expect("message fits");
            assert_eq!(first.0, bytes[..32]);
            assert_eq!(reply.to_bytes().len(), PACKET_LEN);
            let _ = packet::process(sk, reply);
        }
        Err(e) => assert_eq!((e, bytes.len() == SURB_LEN), (PacketError::BadLength { len: bytes.len() }, false)),
    }
}

/// Input of `mix_packet_round_trip`.
#[derive(Clone, Debug, TypeGenerator)]
pub struct RoundTripInput {
    /// Path length: 1 + `hops % MAX_HOPS`.
    pub hops: u8,
    /// The message, cut to [`MAX_MESSAGE_LEN`].
    pub message: Vec<u8>,
    /// Seeds the sender's generator.
    pub seed: u64,
    /// Whether to send the reply through a SURB as well.
    pub reply: bool,
}

/// `mix_packet_round_trip`: a packet created for the path and processed
/// hop by hop through its wire bytes keeps [`PACKET_LEN`] at every hop,
/// forwards to the path's next hop with the sender's delay, and delivers
/// the message to the recipient at the last hop. With `reply`, a SURB for
/// the same path carries the message back and its keys open it.
pub fn mix_packet_round_trip(input: &RoundTripInput) {
    let m = mixes();
    let n = 1 + usize::from(input.hops) % MAX_HOPS;
    let path: Vec<Hop> = m[..n].iter().map(|(_, h)| *h).collect();
    let message = &input.message[..input.message.len().min(MAX_MESSAGE_LEN)];
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&input.seed.to_le_bytes());
    let mut rng = NodeSeed::from_bytes(seed).stream("fuzz mix round trip");

    let (packet, first) = Packet::create(&mut rng, &path, RECIPIENT, message).expect("valid path and message");
    assert_eq!(first, path[0].id);
    match run(&m[..n], packet) {
        Processed::Deliver { recipient, message: got, .. } => {
            assert_eq!(recipient, RECIPIENT);
            assert_eq!(got, message);
        }
        other => panic!("unexpected {other:?}"),
    }
    if input.reply {
        let (surb, keys) = packet::Surb::create(&mut rng, &path, RECIPIENT).expect("valid path");
        let (reply, _) = surb.reply(message).expect("message fits");
        match run(&m[..n], reply) {
            Processed::Reply { recipient, surb_id, payload, .. } => {
                assert_eq!((recipient, surb_id), (RECIPIENT, keys.id()));
                assert_eq!(keys.open(&payload).expect("untampered reply"), message);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// Processes `packet` through `mixes` via its wire bytes; returns the last hop's result.
fn run(mixes: &[(KxSecret, Hop)], mut packet: Packet) -> Processed {
    for (i, (sk, hop)) in mixes.iter().enumerate() {
        let bytes = packet.to_bytes();
        assert_eq!(bytes.len(), PACKET_LEN);
        let parsed = Packet::from_bytes(&bytes).expect("own packet parses");
        match packet::process(sk, parsed).expect("valid packet") {
            Processed::Forward { next, delay_us, packet: p, .. } => {
                assert_eq!((next, delay_us), (mixes[i + 1].1.id, hop.delay_us));
                packet = p;
            }
            done => {
                assert_eq!(i + 1, mixes.len(), "finished at hop {i}");
                return done;
            }
        }
    }
    panic!("never finished")
}
