//! The compact binary encoding of trace events that feeds the trace hash:
//! a tag byte, the time, then the fields in declaration order, integers
//! little-endian, identifiers as their 32 bytes, byte strings and lists
//! length-prefixed. Datagrams are included in full.

use super::event::{FaultEdge, Phase, QueryFigures, RecordView, TraceEvent};
use allium_engine::NodeId;

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
    };
}
