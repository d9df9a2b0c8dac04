//! The compact binary encoding of trace events that feeds the trace hash:
//! a tag byte, the time, then the fields in declaration order, integers
//! little-endian, identifiers as their 32 bytes, byte strings and lists
//! length-prefixed. Datagrams are included in full. Mix packet observations
//! (about a million in `mix-1k`) are kept compact: a sub-tag, 16-byte
//! digests and a kind byte, 30 to 46 bytes in all.

use super::event::{FaultEdge, FetchFigures, Phase, QueryFigures, RecordView, TraceEvent};
use crate::scenario::MixRole;
use allium_engine::NodeId;
use allium_engine::mix::{MixObservation, PacketKind};
use allium_engine::overlay::{Cid, Holding};

struct Out<'a>(&'a mut Vec<u8>);

impl Out<'_> {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.0.push(v);
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn opt_u64(&mut self, v: Option<u64>) -> &mut Self {
        match v {
            Some(v) => self.u8(1).u64(v),
            None => self.u8(0),
        }
    }
    fn u128(&mut self, v: u128) -> &mut Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn id(&mut self, id: &NodeId) -> &mut Self {
        self.0.extend_from_slice(&id.0);
        self
    }
    fn opt_id(&mut self, id: &Option<NodeId>) -> &mut Self {
        match id {
            Some(id) => self.u8(1).id(id),
            None => self.u8(0),
        }
    }
    fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
        self
    }
    fn b32(&mut self, b: &[u8; 32]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
    fn cid(&mut self, cid: &Cid) -> &mut Self {
        self.b32(&cid.0)
    }
    fn fetch(&mut self, f: &FetchFigures) -> &mut Self {
        self.u64(f.size).u32(f.chunks_fetched).u64(f.bytes_received).u32(f.providers_used).u32(f.corrupt_rejected)
    }
    fn figures(&mut self, f: &QueryFigures) -> &mut Self {
        self.u32(f.hops).u32(f.requests).u8(u8::from(f.timed_out))
    }
}

fn phase_code(p: Phase) -> u8 {
    match p {
        Phase::Join => 0,
        Phase::Safety => 1,
        Phase::Liveness => 2,
        Phase::Drain => 3,
        Phase::End => 4,
    }
}

/// Stable code of a holding.
pub fn holding_code(h: Holding) -> u8 {
    match h {
        Holding::Pinned => 0,
        Holding::Replica => 1,
        Holding::Cached => 2,
    }
}

/// Stable code of a mix packet's kind.
pub fn packet_kind_code(kind: PacketKind) -> u8 {
    match kind {
        PacketKind::Message => 0,
        PacketKind::Ack => 1,
        PacketKind::Reply => 2,
        PacketKind::LoopCover => 3,
        PacketKind::DropCover => 4,
        PacketKind::MixLoop => 5,
    }
}

/// A mix observation: a sub-tag, then its digests (16 bytes each) and kind.
fn observation(o: &mut Out<'_>, observation: &MixObservation) {
    match *observation {
        MixObservation::Originated { packet, kind } => o.u8(0).u128(packet.0).u8(packet_kind_code(kind)),
        MixObservation::Accepted { packet } => o.u8(1).u128(packet.0),
        MixObservation::Released { input, output } => o.u8(2).u128(input.0).u128(output.0),
        MixObservation::Consumed { input } => o.u8(3).u128(input.0),
        MixObservation::Pushed { input, delivery } => o.u8(4).u128(input.0).u128(delivery.0),
        MixObservation::Arrived { delivery, kind } => o.u8(5).u128(delivery.0).u8(kind.map_or(0xff, packet_kind_code)),
        MixObservation::Dropped { input } => o.u8(6).u128(input.0),
    };
}

fn edge_code(e: FaultEdge) -> (u8, u32) {
    match e {
        FaultEdge::PartitionStart(i) => (0, i),
        FaultEdge::PartitionHeal(i) => (1, i),
        FaultEdge::BurstStart(i) => (2, i),
        FaultEdge::BurstEnd(i) => (3, i),
        FaultEdge::PacketRulesOn => (4, 0),
        FaultEdge::HealAll => (5, 0),
    }
}

/// Appends the encoding of `event` to `buf`.
pub fn encode(event: &TraceEvent<'_>, buf: &mut Vec<u8>) {
    let mut o = Out(buf);
    match event {
        TraceEvent::Phase { at, phase } => o.u8(0).u64(*at).u8(phase_code(*phase)),
        TraceEvent::Fault { at, edge } => {
            let (code, index) = edge_code(*edge);
            o.u8(1).u64(*at).u8(code).u32(index)
        }
        TraceEvent::NodeUp { at, node, id, restarted } => o.u8(2).u64(*at).u32(*node).id(id).u8(u8::from(*restarted)),
        TraceEvent::NodeDown { at, node, permanent } => o.u8(3).u64(*at).u32(*node).u8(u8::from(*permanent)),
        TraceEvent::Joined { at, node, peers } => o.u8(4).u64(*at).u32(*node).u32(*peers),
        TraceEvent::BootstrapFailed { at, node } => o.u8(5).u64(*at).u32(*node),
        TraceEvent::Deliver { at, from, to, bytes } => o.u8(6).u64(*at).u32(*from).u32(*to).bytes(bytes),
        TraceEvent::Drop { at, from, to, cause, len } => {
            o.u8(7).u64(*at).u32(*from).u32(*to).u8(cause.code()).u32(*len)
        }
        TraceEvent::Timeout { at, node } => o.u8(8).u64(*at).u32(*node),
        TraceEvent::LookupStart { at, node, id, target, true_closest } => {
            o.u8(9).u64(*at).u32(*node).u64(*id).id(target).opt_id(true_closest)
        }
        TraceEvent::LookupDone { at, node, id, target, closest, true_closest, figures } => {
            o.u8(10).u64(*at).u32(*node).u64(*id).id(target).u32(closest.len() as u32);
            for c in closest {
                o.id(c);
            }
            o.opt_id(true_closest).figures(figures)
        }
        TraceEvent::PutStart { at, node, id, key, publisher, value } => {
            o.u8(11).u64(*at).u32(*node).u64(*id).id(key).id(publisher).bytes(value)
        }
        TraceEvent::PutDone { at, node, id, key, stored, figures } => {
            o.u8(12).u64(*at).u32(*node).u64(*id).id(key).u32(*stored).figures(figures)
        }
        TraceEvent::GetStart { at, node, id, key } => o.u8(13).u64(*at).u32(*node).u64(*id).id(key),
        TraceEvent::GetDone { at, node, id, key, record, figures } => {
            o.u8(14).u64(*at).u32(*node).u64(*id).id(key);
            match record {
                Some(RecordView { key, publisher, value }) => o.u8(1).id(key).id(publisher).bytes(value),
                None => o.u8(0),
            };
            o.figures(figures)
        }
        TraceEvent::Abandoned { at, node, id } => o.u8(15).u64(*at).u32(*node).u64(*id),
        TraceEvent::Rejected { at, node, from, reason } => {
            o.u8(16).u64(*at).u32(*node).u32(*from).bytes(reason.as_bytes())
        }
        TraceEvent::CommandRejected { at, node, id } => o.u8(17).u64(*at).u32(*node).u64(*id),
        TraceEvent::Snapshot { at, node, peers, max_bucket } => {
            o.u8(18).u64(*at).u32(*node).u32(*peers).u32(*max_bucket)
        }
        TraceEvent::OverlayPublishStart { at, node, id, size, chunks } => {
            o.u8(19).u64(*at).u32(*node).u64(*id).u64(*size).u32(chunks.len() as u32);
            for c in chunks.iter() {
                o.b32(c);
            }
            &mut o
        }
        TraceEvent::OverlayPublishDone { at, node, id, cid, size, providers_stored } => {
            o.u8(20).u64(*at).u32(*node).u64(*id).cid(cid).u64(*size).u32(*providers_stored)
        }
        TraceEvent::OverlayFetchStart { at, node, id, cid, probe } => {
            o.u8(21).u64(*at).u32(*node).u64(*id).cid(cid).u8(u8::from(*probe))
        }
        TraceEvent::OverlayFetchDone { at, node, id, cid, result } => {
            o.u8(22).u64(*at).u32(*node).u64(*id).cid(cid);
            match result {
                Ok(f) => o.u8(1).fetch(f),
                Err(label) => o.u8(0).bytes(label.as_bytes()),
            }
        }
        TraceEvent::OverlayChunk { at, node, id, cid, chunk, offset, len, hash } => {
            o.u8(23).u64(*at).u32(*node).u64(*id).cid(cid).u32(*chunk).u64(*offset).u32(*len).b32(hash)
        }
        TraceEvent::OverlayStored { at, node, cid, holding } => {
            o.u8(24).u64(*at).u32(*node).cid(cid).u8(holding_code(*holding))
        }
        TraceEvent::OverlayEvicted { at, node, cid } => o.u8(25).u64(*at).u32(*node).cid(cid),
        TraceEvent::CircuitBuilt { at, node, id, circuit, path, first_circ, build_ms, attempts, replacement } => {
            o.u8(26).u64(*at).u32(*node).u64(*id).u64(*circuit).u32(path.len() as u32);
            for hop in path {
                o.u32(*hop);
            }
            o.u32(*first_circ).u64(*build_ms).u32(*attempts).u8(u8::from(*replacement))
        }
        TraceEvent::CircuitBuildFailed { at, node, id, attempts, reason } => {
            o.u8(27).u64(*at).u32(*node).u64(*id).u32(*attempts).bytes(reason.as_bytes())
        }
        TraceEvent::CircuitClosed { at, node, circuit, reason } => {
            o.u8(28).u64(*at).u32(*node).u64(*circuit).bytes(reason.as_bytes())
        }
        TraceEvent::StreamStart { at, node, id, host, port, nonce, len } => {
            o.u8(29).u64(*at).u32(*node).u64(*id).bytes(host.as_bytes()).u32(u32::from(*port)).u64(*nonce).u64(*len)
        }
        TraceEvent::StreamOpened { at, node, id, circuit } => o.u8(30).u64(*at).u32(*node).u64(*id).u64(*circuit),
        TraceEvent::StreamData { at, node, id, offset, bytes } => {
            o.u8(31).u64(*at).u32(*node).u64(*id).u64(*offset).bytes(bytes)
        }
        TraceEvent::StreamEnd { at, node, id, reason, received } => {
            o.u8(32).u64(*at).u32(*node).u64(*id).bytes(reason.as_bytes()).u64(*received)
        }
        TraceEvent::RelayCreated { at, node, prev, prev_circ } => {
            o.u8(33).u64(*at).u32(*node).u32(*prev).u32(*prev_circ)
        }
        TraceEvent::RelayExtended { at, node, prev, prev_circ, next, next_circ } => {
            o.u8(34).u64(*at).u32(*node).u32(*prev).u32(*prev_circ).u32(*next).u32(*next_circ)
        }
        TraceEvent::RelayExit { at, node, prev, prev_circ, host, port } => {
            o.u8(35).u64(*at).u32(*node).u32(*prev).u32(*prev_circ).bytes(host.as_bytes()).u32(u32::from(*port))
        }
        TraceEvent::MixNode { at, node, role, region } => {
            let layer = match role {
                MixRole::Mix { layer } => *layer,
                _ => 0xff,
            };
            o.u8(36).u64(*at).u32(*node).u8(role.code()).u8(layer).u32(u32::from(*region))
        }
        TraceEvent::MixReady { at, node, provider } => o.u8(37).u64(*at).u32(*node).u32(*provider),
        TraceEvent::MixSend { at, node, id, to, len, nonce, reply_to, reply_blocks } => {
            o.u8(38).u64(*at).u32(*node).u64(*id).u32(*to).u64(*len).u64(*nonce).opt_u64(*reply_to).u8(*reply_blocks)
        }
        TraceEvent::MixReceived { at, node, nonce, reply, data } => {
            o.u8(39).u64(*at).u32(*node).opt_u64(*nonce).u8(u8::from(*reply)).bytes(data)
        }
        TraceEvent::MixDelivered { at, node, id } => o.u8(40).u64(*at).u32(*node).u64(*id),
        TraceEvent::MixFailed { at, node, id, reason } => {
            o.u8(41).u64(*at).u32(*node).u64(*id).bytes(reason.as_bytes())
        }
        TraceEvent::MixPacket { at, node, observation: obs } => {
            o.u8(42).u64(*at).u32(*node);
            observation(&mut o, obs);
            &mut o
        }
        TraceEvent::ElectionGroup { at, group, members, budget_ms } => {
            o.u8(43).u64(*at).u32(*group).u32(*members).u64(*budget_ms)
        }
        TraceEvent::LeaseHeld { at, node, group, until, acquired } => {
            o.u8(44).u64(*at).u32(*node).u32(*group).u64(*until).u8(u8::from(*acquired))
        }
        TraceEvent::RewardsNode { at, node, cheat, auditor } => {
            o.u8(45).u64(*at).u32(*node).u8(cheat.code()).u8(u8::from(*auditor))
        }
        TraceEvent::Cheated { at, node, epoch, cheat, amount } => {
            o.u8(46).u64(*at).u32(*node).u64(*epoch).u8(cheat.code()).u64(*amount)
        }
        TraceEvent::EpochSettled { at, node, epoch, figures: f } => o
            .u8(47)
            .u64(*at)
            .u32(*node)
            .u64(*epoch)
            .u64(f.emission)
            .u64(f.carried_in)
            .u64(f.paid)
            .u64(f.carried_out)
            .u64(f.bandwidth_pool)
            .u64(f.credited_bytes)
            .u32(f.payees)
            .u32(f.registered)
            .u32(f.forged_claimed)
            .u32(f.failed_challenges)
            .b32(&f.hash),
        TraceEvent::Payout { at, node, epoch, figures: f } => o
            .u8(48)
            .u64(*at)
            .u32(*node)
            .u64(*epoch)
            .u64(f.bandwidth)
            .u64(f.storage)
            .u64(f.publisher)
            .u32(f.valid_receipts)
            .u64(f.receipted_bytes)
            .u64(f.cap_bytes)
            .u64(f.credited_bytes)
            .u64(f.forged_credit_bytes)
            .u32(f.passed)
            .u32(f.failed)
            .u32(f.publisher_passes),
    };
}
