//! Targets for the content overlay: its wire messages, manifests, piece
//! reassembly, and a node that replicates and serves an object while the
//! harness, playing the only provider, answers its block requests honestly,
//! corruptly, or with nonsense.

use crate::pool;
use allium_engine::overlay::assembly::{Assembly, PieceOutcome};
use allium_engine::overlay::manifest::{MAX_MANIFEST_BYTES, cid_of};
use allium_engine::overlay::message::{MessageView, PieceRange};
use allium_engine::overlay::{BlockId, Cid, Manifest, ManifestError, Metadata, OverlayEvent, OverlayMessage};
use allium_engine::wire::{self, MessageKind};
use allium_engine::{Addr, Command, Event, Input, Instant, Node, Output, Params};
use bolero::TypeGenerator;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::LazyLock;
use std::time::Duration;

/// Labels a body decoder may produce.
const DECODE_LABELS: [&str; 5] = ["truncated", "limit", "invalid", "trailing", "protocol"];

/// `overlay_message_decode`: [`OverlayMessage::decode`] never panics; what
/// decodes re-encodes to the same bytes; an error is a typed body error; the
/// borrowing decoder of the receive path ([`OverlayMessage::decode_view`])
/// accepts exactly what the owning one accepts, with the same fields.
pub fn overlay_message_decode(body: &[u8]) {
    let owned = OverlayMessage::decode(body);
    match (&owned, OverlayMessage::decode_view(body)) {
        (Ok(OverlayMessage::Piece { request, block_len, index, data }), Ok(MessageView::Piece(view))) => {
            assert_eq!(
                (*request, *block_len, *index, &data[..]),
                (view.request, view.block_len, view.index, view.data)
            );
        }
        (Ok(message), Ok(MessageView::Other(other))) => assert_eq!(message, &other),
        (Err(_), Err(_)) => {}
        (owned, view) => panic!("decoders disagree: {owned:?} vs {view:?}"),
    }
    match owned {
        Ok(message) => {
            let again = wire::encode(MessageKind::Overlay, &message);
            assert_eq!(&again[wire::HEADER_LEN..], body, "the encoding is canonical");
        }
        Err(error) => assert!(DECODE_LABELS.contains(&error.label()), "unexpected error {error:?}"),
    }
}

/// `manifest_decode`: [`Manifest::decode`] never panics on arbitrary bytes;
/// a manifest that decodes has a chunk list matching its size.
pub fn manifest_decode(bytes: &[u8]) {
    if let Ok(manifest) = Manifest::decode(bytes) {
        assert_eq!(Manifest::chunk_count(manifest.size, manifest.chunk_bytes), manifest.chunks.len() as u64);
        assert!(bytes.len() <= MAX_MANIFEST_BYTES);
    }
}

/// Fuzzer input for [`manifest_round_trip`].
#[derive(Clone, Debug, TypeGenerator)]
pub struct ManifestInput {
    /// Content bytes.
    pub data: Vec<u8>,
    /// Chunk size is `1024 << (chunk_shift % 11)` bytes.
    pub chunk_shift: u8,
    /// Optional name.
    pub name: Option<String>,
    /// Byte to flip in the encoding (taken modulo its length).
    pub flip: u32,
    /// Bit to flip in that byte.
    pub bit: u8,
}

/// `manifest_round_trip`: a manifest built from fuzzer-chosen content
/// decodes to itself, lists the hash of every chunk, and any single flipped
/// bit of its encoding makes it fail to decode (the signature covers every byte).
pub fn manifest_round_trip(input: &ManifestInput) {
    let chunk_bytes = 1024u32 << (input.chunk_shift % 11);
    let metadata = Metadata { name: input.name.clone(), media_type: None };
    let identity = &pool::peer(0).identity;
    let built = Manifest::build(identity, &input.data, chunk_bytes, metadata);
    let (manifest, encoded) = match built {
        Ok(pair) => pair,
        Err(ManifestError::Metadata) => {
            assert!(input.name.as_ref().is_some_and(|n| n.len() > 255));
            return;
        }
        Err(other) => panic!("building failed: {other}"),
    };
    assert_eq!(Manifest::decode(&encoded).as_ref(), Ok(&manifest));
    for (i, chunk) in input.data.chunks(chunk_bytes as usize).enumerate() {
        assert!(manifest.chunks[i].matches(chunk));
    }
    let mut bad = encoded.clone();
    let at = input.flip as usize % bad.len();
    bad[at] ^= 1 << (input.bit % 8);
    assert!(Manifest::decode(&bad).is_err(), "a flipped bit at {at} went unnoticed");
    assert_ne!(cid_of(&bad), cid_of(&encoded));
}

/// One piece offered to an [`Assembly`].
#[derive(Clone, Debug, TypeGenerator)]
pub struct PieceInput {
    /// Claimed block length (taken modulo 70,000 when `small`).
    pub block_len: u32,
    /// Whether to take `block_len` modulo 70,000 (so that lengths fit).
    pub small: bool,
    /// Piece index.
    pub index: u16,
    /// Piece length.
    pub len: u16,
}

/// `piece_assembly`: an [`Assembly`] fed arbitrary pieces never panics,
/// never counts more pieces than the block has, and a complete block
/// holds exactly the bytes of the pieces that fit.
pub fn piece_assembly(input: &(u16, Option<u16>, Vec<PieceInput>)) {
    let (piece, known, pieces) = input;
    let piece_bytes = u32::from(*piece).clamp(256, 8192);
    let known = known.map(|l| u32::from(l).max(1));
    let mut assembly = Assembly::new(known, 65_536, piece_bytes);
    for p in pieces {
        let block_len = if p.small { p.block_len % 70_000 } else { p.block_len };
        let fill = (p.index % 251) as u8;
        let data = vec![fill; usize::from(p.len)];
        match assembly.on_piece(block_len, u32::from(p.index), &data) {
            Ok(PieceOutcome::New | PieceOutcome::Duplicate) => {
                assert!(data.len() <= piece_bytes as usize);
                assert!(assembly.received() <= assembly.piece_count().unwrap_or(0));
            }
            Err(_) => {}
        }
        for range in assembly.missing(64) {
            assert!(range.start < range.end);
        }
    }
    if assembly.is_complete() {
        let count = assembly.piece_count().unwrap_or(0);
        let bytes = assembly.into_bytes();
        assert_eq!(bytes.len().div_ceil(piece_bytes as usize), count as usize);
        for (i, chunk) in bytes.chunks(piece_bytes as usize).enumerate() {
            assert!(chunk.iter().all(|b| *b == (i % 251) as u8), "piece {i} holds bytes of another piece");
        }
    }
}

/// The object the harness serves: 5 KiB in 1 KiB chunks, published by a pool peer.
struct Object {
    data: Vec<u8>,
    manifest: Manifest,
    encoded: Vec<u8>,
    cid: Cid,
}

static OBJECT: LazyLock<Object> = LazyLock::new(|| {
    let data: Vec<u8> = (0..5_000u32).map(|i| (i * 31 % 253) as u8).collect();
    let metadata = Metadata { name: Some("fuzz.bin".into()), media_type: None };
    let (manifest, encoded) = Manifest::build(&pool::peer(1).identity, &data, 1024, metadata).expect("valid");
    let cid = cid_of(&encoded);
    Object { data, manifest, encoded, cid }
});

/// Where the harness's provider lives.
const PROVIDER: Addr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9)), 4_009);

/// One step of [`overlay_node`].
#[derive(Clone, Debug, TypeGenerator)]
pub enum OverlayStep {
    /// Ask the node to hold a replica of the object (it fetches it from the harness).
    Replicate {
        /// Request id.
        request: u64,
    },
    /// Answer one of the node's recent block requests.
    Serve {
        /// Which request (modulo their number).
        which: u8,
        /// How.
        how: Serve,
    },
    /// An arbitrary overlay body from the provider's address.
    Body(Vec<u8>),
    /// A structurally arbitrary piece.
    Piece {
        /// Request id (low values hit real requests).
        request: u8,
        /// Claimed block length.
        block_len: u32,
        /// Index.
        index: u16,
        /// Data length.
        len: u16,
    },
    /// Ask the node for blocks of the object (it serves what it holds).
    Get {
        /// Which block: 0 the manifest, else chunk `block - 1` (modulo).
        block: u8,
    },
    /// An application fetch of the object.
    Fetch,
    /// Move the clock forward by `ms` milliseconds and deliver a timeout.
    Wait {
        /// Milliseconds.
        ms: u16,
    },
}

/// How the harness answers a block request.
#[derive(Clone, Copy, Debug, TypeGenerator)]
pub enum Serve {
    /// Every requested piece, correct.
    Honest,
    /// Every requested piece, with one bit of piece `piece` flipped.
    Corrupt {
        /// Which piece (modulo).
        piece: u8,
        /// Which bit of its data.
        bit: u16,
    },
    /// Only the first piece requested.
    FirstOnly,
    /// `NotFound`.
    NotFound,
}

/// `overlay_node`: a node under test asked to replicate the harness's
/// object, whose only provider (the harness) serves honestly, corruptly or
/// not at all, interleaved with arbitrary bodies, fetches and timeouts.
/// Never panics; every `Data` event carries exactly the object's bytes at
/// its offset; a successful fetch delivered the whole object; and whatever
/// the node stores as complete matches the object.
pub fn overlay_node(steps: &Vec<OverlayStep>) {
    let object = &*OBJECT;
    let mut params = Params::default();
    params.overlay.piece_bytes = 256;
    let mut h = Harness {
        node: Node::new(Instant::ZERO, pool::node_config(params, Vec::new())),
        requests: Vec::new(),
        delivered: vec![false; object.data.len()],
    };
    let mut now = Instant::ZERO;
    for step in steps {
        match step {
            OverlayStep::Replicate { request } => {
                let msg = OverlayMessage::Replicate { request: *request, cid: object.cid, repair: false };
                h.input(now, datagram(&msg));
            }
            OverlayStep::Serve { which, how } => {
                if h.requests.is_empty() {
                    continue;
                }
                let (request, block, ranges) = h.requests[usize::from(*which) % h.requests.len()].clone();
                for msg in answer(request, block, &ranges, *how) {
                    h.input(now, datagram(&msg));
                }
            }
            OverlayStep::Body(body) => {
                let mut bytes = vec![wire::VERSION, MessageKind::Overlay as u8];
                bytes.extend_from_slice(body);
                h.input(now, Input::Datagram { from: PROVIDER, bytes });
            }
            OverlayStep::Piece { request, block_len, index, len } => {
                let msg = OverlayMessage::Piece {
                    request: u64::from(*request),
                    block_len: *block_len,
                    index: u32::from(*index),
                    data: vec![7; usize::from(*len)],
                };
                h.input(now, datagram(&msg));
            }
            OverlayStep::Get { block } => {
                let block = match usize::from(*block) % (object.manifest.chunks.len() + 1) {
                    0 => object.cid.block(),
                    i => object.manifest.chunks[i - 1],
                };
                let pieces = vec![PieceRange { start: 0, end: 64 }];
                let msg = OverlayMessage::GetBlock { request: 1, block, piece_bytes: 256, pieces };
                h.input(now, datagram(&msg));
            }
            OverlayStep::Fetch => {
                h.delivered.iter_mut().for_each(|d| *d = false);
                let command = Command::Fetch { cid: object.cid, range: None };
                h.input(now, Input::Command { id: 1, command });
            }
            OverlayStep::Wait { ms } => {
                now += Duration::from_millis(u64::from(*ms));
                while h.node.poll_timeout().is_some_and(|t| t <= now) {
                    h.input(now, Input::Timeout);
                }
            }
        }
    }
    if let Some(held) = h.node.overlay().index().get(&object.cid)
        && held.is_complete()
    {
        for (i, chunk) in object.manifest.chunks.iter().enumerate() {
            let stored = h.node.overlay().store().block(chunk).expect("memory store").expect("present");
            assert!(chunk.matches(&stored), "stored chunk {i} does not match its hash");
        }
    }
}

/// The node under test and what the harness remembers about it.
struct Harness {
    node: Node,
    /// The node's recent block requests to the harness.
    requests: Vec<(u64, BlockId, Vec<PieceRange>)>,
    /// Which bytes of the object the current fetch has delivered.
    delivered: Vec<bool>,
}

impl Harness {
    fn input(&mut self, now: Instant, input: Input) {
        self.node.handle_input(now, input);
        self.drain();
    }

    /// Drains the node's outputs, remembering its block requests and checking
    /// every delivered byte.
    fn drain(&mut self) {
        let object = &*OBJECT;
        let mut n = 0;
        while let Some(output) = self.node.poll_output() {
            n += 1;
            assert!(n < 100_000, "poll_output does not run dry");
            match output {
                Output::Transmit { to, bytes } => {
                    let (kind, body) = wire::split(&bytes).expect("well-framed");
                    if kind != MessageKind::Overlay {
                        continue;
                    }
                    let message = OverlayMessage::decode(body).expect("the node sends decodable messages");
                    if let OverlayMessage::GetBlock { request, block, pieces, .. } = message {
                        assert_eq!(to, PROVIDER, "the only provider is the harness");
                        if self.requests.len() == 16 {
                            self.requests.remove(0);
                        }
                        self.requests.push((request, block, pieces));
                    }
                }
                Output::Event(Event::Overlay(OverlayEvent::Data { cid, offset, bytes, .. })) => {
                    assert_eq!(cid, object.cid);
                    let at = offset as usize;
                    assert_eq!(&object.data[at..at + bytes.len()], &bytes[..], "delivered bytes differ at {at}");
                    self.delivered[at..at + bytes.len()].iter_mut().for_each(|d| *d = true);
                }
                Output::Event(Event::Overlay(OverlayEvent::FetchFinished { result: Ok(_), .. })) => {
                    assert!(self.delivered.iter().all(|d| *d), "a successful fetch delivered every byte");
                }
                _ => {}
            }
        }
    }
}

fn datagram(message: &OverlayMessage) -> Input {
    Input::Datagram { from: PROVIDER, bytes: message.encode() }
}

/// The harness's answers to one block request.
fn answer(request: u64, block: BlockId, ranges: &[PieceRange], how: Serve) -> Vec<OverlayMessage> {
    let object = &*OBJECT;
    let bytes: &[u8] = if block == object.cid.block() {
        &object.encoded
    } else if let Some(i) = object.manifest.chunks.iter().position(|c| *c == block) {
        let (offset, len) = object.manifest.chunk_span(i as u32);
        &object.data[offset as usize..offset as usize + len as usize]
    } else {
        return vec![OverlayMessage::NotFound { request }];
    };
    if let Serve::NotFound = how {
        return vec![OverlayMessage::NotFound { request }];
    }
    let count = bytes.len().div_ceil(256) as u32;
    let mut out = Vec::new();
    for range in ranges {
        for index in range.start..range.end.min(count) {
            let start = index as usize * 256;
            let mut data = bytes[start..(start + 256).min(bytes.len())].to_vec();
            if let Serve::Corrupt { piece, bit } = how
                && u32::from(piece) % count == index
            {
                let at = usize::from(bit / 8) % data.len();
                data[at] ^= 1 << (bit % 8);
            }
            out.push(OverlayMessage::Piece { request, block_len: bytes.len() as u32, index, data });
            if let Serve::FirstOnly = how {
                return out;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn harness() -> Harness {
        let mut params = Params::default();
        params.overlay.piece_bytes = 256;
        Harness {
            node: Node::new(Instant::ZERO, pool::node_config(params, Vec::new())),
            requests: Vec::new(),
            delivered: vec![false; OBJECT.data.len()],
        }
    }

    /// Serves the node's latest request `rounds` times, corrupting round `bad`.
    fn replicate(h: &mut Harness, rounds: usize, bad: Option<usize>) {
        let replicate = OverlayMessage::Replicate { request: 1, cid: OBJECT.cid, repair: false };
        h.input(Instant::ZERO, datagram(&replicate));
        for round in 0..rounds {
            let pending = std::mem::take(&mut h.requests);
            let how = if Some(round) == bad { Serve::Corrupt { piece: 0, bit: 0 } } else { Serve::Honest };
            for (request, block, ranges) in pending {
                for msg in answer(request, block, &ranges, how) {
                    h.input(Instant::ZERO, datagram(&msg));
                }
            }
        }
    }

    /// The harness can drive a node through a whole replication (the
    /// fuzzer's scripts explore around this path), and a corrupt block ends
    /// the provider's part in the fetch.
    #[test]
    fn honest_serving_completes_a_replica_and_a_corrupt_block_bans_the_provider() {
        let mut h = harness();
        replicate(&mut h, 20, None);
        assert!(h.node.overlay().index().get(&OBJECT.cid).is_some_and(|o| o.is_complete()));
        h.input(Instant::ZERO, Input::Command { id: 1, command: Command::Fetch { cid: OBJECT.cid, range: None } });
        assert!(h.delivered.iter().all(|d| *d), "served from the local replica");

        let mut h = harness();
        replicate(&mut h, 20, Some(2));
        assert!(h.node.metrics().get("overlay.corrupt_chunks.rejected") >= 1);
        assert!(h.requests.is_empty(), "nothing more is asked of a provider that lied");
        assert!(h.node.metrics().get("overlay.requests.sent") >= 3);
        assert!(!h.node.overlay().index().get(&OBJECT.cid).is_some_and(|o| o.is_complete()));
    }
}
