//! Frame codec tests: round trips and one case per malformation.

use super::*;
use proptest::prelude::*;

const S: StreamKey = StreamKey { id: 7, generation: 3 };

fn payload(bytes: &[u8]) -> [u8; PAYLOAD_LEN] {
    let mut p = [0u8; PAYLOAD_LEN];
    p[..bytes.len()].copy_from_slice(bytes);
    p
}

fn encode(frames: &[Frame<'_>]) -> [u8; PAYLOAD_LEN] {
    let mut buf = [0u8; PAYLOAD_LEN];
    let mut w = FrameWriter::new(&mut buf);
    for f in frames {
        assert!(w.frame(f), "{f:?} fits");
    }
    buf
}

#[test]
fn every_frame_round_trips() {
    let data = vec![0xabu8; 300];
    let frames = vec![
        Frame::Ack(AckFrame { ranges: vec![(90, 100), (50, 80), (3, 3)], ack_delay_us: 1234 }),
        Frame::Ping,
        Frame::Begin { stream: S, window: 65536, target: "example.org:443" },
        Frame::Connected { stream: S, window: 1 },
        Frame::End { stream: S, reason: 3 },
        Frame::MaxStreamData { stream: S, max: 1 << 40 },
        Frame::Stream { stream: S, offset: 12345, data: &data, fin: true },
        Frame::Stream { stream: StreamKey { id: 65535, generation: 0 }, offset: 0, data: &[], fin: true },
    ];
    let buf = encode(&frames);
    assert_eq!(decode(&buf).unwrap(), frames);
}

#[test]
fn a_full_data_cell_carries_1156_bytes_or_1140_with_an_ack() {
    let mut buf = [0u8; PAYLOAD_LEN];
    let mut w = FrameWriter::new(&mut buf);
    let room = w.stream_room(1 << 20).unwrap();
    assert_eq!(room, 1156);
    w.stream(S, 0, room, false, |b| b.fill(9));
    assert_eq!(w.remaining(), 0);
    let frames = decode(&buf).unwrap();
    assert!(matches!(&frames[0], Frame::Stream { data, .. } if data.len() == 1156));

    let mut w = FrameWriter::new(&mut buf);
    w.ack(&[(0, 10)], 0).unwrap();
    assert_eq!(w.stream_room(1 << 20), Some(1140));
}

#[test]
fn a_short_frame_with_len_leaves_padding() {
    let mut buf = [0u8; PAYLOAD_LEN];
    let mut w = FrameWriter::new(&mut buf);
    let n = w.stream_room(10).unwrap();
    w.stream(S, 5, n, false, |b| b.fill(1));
    w.ping();
    let frames = decode(&buf).unwrap();
    assert_eq!(frames, vec![Frame::Stream { stream: S, offset: 5, data: &[1; 10], fin: false }, Frame::Ping]);
}

#[test]
fn ack_truncates_to_what_fits() {
    let ranges: Vec<(u64, u64)> = (0..100u64).rev().map(|i| (i * 10, i * 10 + 3)).collect();
    let mut buf = [0u8; PAYLOAD_LEN];
    let mut w = FrameWriter::new(&mut buf);
    let lowest = w.ack(&ranges, 0).unwrap();
    let frames = decode(&buf).unwrap();
    let Frame::Ack(ack) = &frames[0] else { panic!() };
    assert_eq!(ack.ranges.len(), 1 + MAX_ACK_EXTRA_RANGES);
    assert_eq!(ack.ranges[..], ranges[..1 + MAX_ACK_EXTRA_RANGES]);
    assert_eq!(lowest, ack.ranges.last().unwrap().0);
}

#[test]
fn malformations_give_typed_errors() {
    use FrameError::*;
    let cases: Vec<(&str, Vec<u8>, FrameError)> = vec![
        ("unknown type", vec![0x07], UnknownType(0x07)),
        ("unknown high type", vec![0x01, 0x40], UnknownType(0x40)),
        ("stream 0", vec![0x04, 0, 0, 1, 0, 0, 0, 0], ZeroStream),
        ("padding then junk", vec![0x01, 0x00, 0x00, 0x05], PaddingNotZero),
        ("ack range underflow", vec![0x02, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 6, 0], AckRange),
        ("ack gap underflow", vec![0x02, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 1, 1, 0, 3, 0, 0], AckRange),
        ("begin target not utf-8", vec![0x03, 0, 1, 0, 0, 0, 0, 1, 2, 0xff, 0xfe], BadTarget),
    ];
    for (name, bytes, expected) in cases {
        assert_eq!(decode(&payload(&bytes)), Err(expected), "{name}");
    }
    // An ACK cut by the end of the payload.
    let mut p = [0x01u8; PAYLOAD_LEN];
    p[PAYLOAD_LEN - 4..].copy_from_slice(&[0x02, 0, 0, 0]);
    assert_eq!(decode(&p), Err(Truncated));
    // A STREAM frame whose LEN runs past the payload.
    let mut p = payload(&[0x0a, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    p[12] = 0xff;
    p[13] = 0xff;
    assert_eq!(decode(&p), Err(Truncated));
    // Offset + length overflows.
    let mut p = payload(&[0x08, 0, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0]);
    p[20] = 1;
    assert_eq!(decode(&p), Err(OffsetOverflow));
    // A BEGIN target running past the end.
    let mut p = [0u8; PAYLOAD_LEN];
    p[PAYLOAD_LEN - 9..].copy_from_slice(&[0x03, 0, 1, 0, 0, 0, 0, 1, 200]);
    p[0] = 0x01;
    for b in &mut p[1..PAYLOAD_LEN - 9] {
        *b = 0x01;
    }
    assert_eq!(decode(&p), Err(Truncated));
}

#[test]
fn an_all_zero_payload_is_empty() {
    assert_eq!(decode(&[0u8; PAYLOAD_LEN]).unwrap(), vec![]);
}

proptest! {
    #[test]
    fn decode_never_panics_and_reencodes(bytes in proptest::collection::vec(any::<u8>(), 0..PAYLOAD_LEN)) {
        let p = payload(&bytes);
        if let Ok(frames) = decode(&p) {
            let mut buf = [0u8; PAYLOAD_LEN];
            let mut w = FrameWriter::new(&mut buf);
            for f in &frames {
                prop_assert!(w.frame(f));
            }
            prop_assert_eq!(decode(&buf).unwrap(), frames);
        }
    }

    #[test]
    fn stream_frames_round_trip(offset in 0u64..(1 << 50), len in 0usize..1200, fin: bool, lead in 0usize..40) {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let mut buf = [0u8; PAYLOAD_LEN];
        let mut w = FrameWriter::new(&mut buf);
        for _ in 0..lead { w.ping(); }
        let Some(n) = w.stream_room(len) else { return Ok(()) };
        w.stream(S, offset, n, fin, |b| b.copy_from_slice(&data[..n]));
        let frames = decode(&buf).unwrap();
        prop_assert_eq!(frames.len(), lead + 1);
        prop_assert_eq!(&frames[lead], &Frame::Stream { stream: S, offset, data: &data[..n], fin });
    }
}
