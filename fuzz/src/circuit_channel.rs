//! Target for the circuit channel (`allium_engine::circuit::channel`): its
//! frame decoder and what a channel does with arbitrary payloads.

use allium_engine::Instant;
use allium_engine::circuit::CircuitParams;
use allium_engine::circuit::channel::frame::{self, FrameWriter};
use allium_engine::circuit::channel::{Channel, ChannelEvent, PAYLOAD_LEN, Role};
use core::time::Duration;

/// Most payloads one input is cut into.
const MAX_PAYLOADS: usize = 4;

/// `channel_frames`: the input is cut into up to four payloads (each
/// zero-padded to [`PAYLOAD_LEN`]). For each, [`frame::decode`] never
/// panics, and what decodes re-encodes frame by frame into a payload that
/// decodes to the same frames. The payloads are then fed, in order, to a
/// fresh client channel, a fresh exit channel, and a client that has opened
/// stream 1 and sent cells 0..8 (so ACK and STREAM frames reach live state).
/// No channel panics; a payload the decoder refuses is refused by every
/// channel with the same error; every cell a channel then transmits decodes,
/// and after a handled timeout (and the transmits it allows)
/// `poll_timeout` is strictly later.
pub fn channel_frames(bytes: &[u8]) {
    let payloads: Vec<[u8; PAYLOAD_LEN]> = bytes
        .chunks(PAYLOAD_LEN)
        .take(MAX_PAYLOADS)
        .map(|chunk| {
            let mut p = [0u8; PAYLOAD_LEN];
            p[..chunk.len()].copy_from_slice(chunk);
            p
        })
        .collect();
    for p in &payloads {
        check_round_trip(p);
    }
    let params = CircuitParams::default();
    let t0 = Instant::from_secs(1);
    let mut channels = vec![Channel::new(t0, &params, Role::Client), Channel::new(t0, &params, Role::Exit), primed(t0)];
    for channel in &mut channels {
        let mut now = t0;
        for (i, p) in payloads.iter().enumerate() {
            now += Duration::from_millis(7);
            let result = channel.on_payload(now, 1000 + i as u64, p);
            if let Err(expected) = frame::decode(p) {
                assert_eq!(result, Err(expected), "the channel refuses what the decoder refuses");
            }
            drive(channel, now);
        }
        if let Some(at) = channel.poll_timeout() {
            let at = at.max(now);
            channel.handle_timeout(at);
            drive(channel, at);
            assert!(channel.poll_timeout().is_none_or(|next| next > at), "no timer at or before now");
        }
    }
}

fn check_round_trip(payload: &[u8; PAYLOAD_LEN]) {
    let Ok(frames) = frame::decode(payload) else { return };
    let mut buf = [0u8; PAYLOAD_LEN];
    let mut w = FrameWriter::new(&mut buf);
    for f in &frames {
        assert!(w.frame(f), "a decoded frame fits again: {f:?}");
    }
    assert!(w.len() <= PAYLOAD_LEN);
    assert_eq!(frame::decode(&buf).as_ref(), Ok(&frames), "re-encoding is consistent");
}

/// A client with stream 1 open (BEGIN, data and FIN queued) that sent eight cells.
fn primed(now: Instant) -> Channel {
    let mut ch = Channel::new(now, &CircuitParams::default(), Role::Client);
    let id = ch.open_stream(now, "example.org:80").expect("open");
    ch.send(id, &[7u8; 4000]).expect("send");
    ch.finish(id).expect("finish");
    let mut out = [0u8; PAYLOAD_LEN];
    for _ in 0..8 {
        if ch.poll_transmit(now, &mut out).is_none() {
            ch.alloc_seq();
        }
    }
    ch
}

/// Drains events and transmits the way the machine does; every transmitted payload must decode.
fn drive(channel: &mut Channel, now: Instant) {
    while let Some(event) = channel.poll_event() {
        if let ChannelEvent::Begin { stream, .. } = event {
            let _ = channel.accept_stream(stream);
            let _ = channel.send(stream, b"hello");
        }
    }
    let mut out = [0u8; PAYLOAD_LEN];
    for _ in 0..64 {
        if channel.poll_transmit(now, &mut out).is_none() {
            break;
        }
        assert!(frame::decode(&out).is_ok(), "own cells decode");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaches_live_stream_state() {
        // An ACK of the primed client's cells 0..=7 and a CONNECTED for stream 1.
        let mut buf = [0u8; PAYLOAD_LEN];
        let mut w = FrameWriter::new(&mut buf);
        w.ack(&[(0, 7)], 0).unwrap();
        let key = frame::StreamKey { id: 1, generation: 0 };
        assert!(w.connected(key, 1 << 19));
        let mut ch = primed(Instant::ZERO);
        ch.on_payload(Instant::from_millis(50), 0, &buf).unwrap();
        assert_eq!(ch.poll_event(), Some(ChannelEvent::Connected { stream: 1 }));
        assert!(ch.stats().bytes_acked == 0 && ch.stats().cells_in_flight == 0);
        channel_frames(&buf[..w_len(&buf)]);
    }

    fn w_len(buf: &[u8]) -> usize {
        buf.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1)
    }
}
