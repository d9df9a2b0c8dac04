//! The JSON form of trace events (one object per line with `--trace`).
//! Datagrams are shown by length and a BLAKE3 digest rather than in full.

use super::event::{FaultEdge, QueryFigures, TraceEvent};
use crate::scenario::MixRole;
use allium_engine::NodeId;
use allium_engine::mix::{MixObservation, PacketDigest};
use serde_json::{Value, json};

fn id(id: &NodeId) -> Value {
    Value::String(id.to_hex())
}

fn opt_id(id: &Option<NodeId>) -> Value {
    id.as_ref().map_or(Value::Null, |i| Value::String(i.to_hex()))
}

fn digest(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex()[..16].to_string()
}

fn figures(f: &QueryFigures) -> Value {
    json!({"hops": f.hops, "requests": f.requests, "timed_out": f.timed_out})
}

fn hex(bytes: &[u8]) -> String {
    allium_engine::identity::hex(bytes)
}

fn packet(d: PacketDigest) -> String {
    format!("{:032x}", d.0)
}

/// The fields of a mix observation.
fn observation(o: &MixObservation) -> Value {
    match *o {
        MixObservation::Originated { packet: p, kind } => {
            json!({"observed": "originated", "packet": packet(p), "packet_kind": kind.name()})
        }
        MixObservation::Accepted { packet: p } => json!({"observed": "accepted", "packet": packet(p)}),
        MixObservation::Released { input, output } => {
            json!({"observed": "released", "input": packet(input), "output": packet(output)})
        }
        MixObservation::Consumed { input } => json!({"observed": "consumed", "input": packet(input)}),
        MixObservation::Pushed { input, delivery } => {
            json!({"observed": "pushed", "input": packet(input), "delivery": packet(delivery)})
        }
        MixObservation::Dropped { input } => json!({"observed": "dropped", "input": packet(input)}),
        MixObservation::Arrived { delivery, kind } => json!({
            "observed": "arrived", "delivery": packet(delivery), "packet_kind": kind.map(|k| k.name())
        }),
    }
}

/// The event as a JSON object with a `kind` field.
pub fn to_json(event: &TraceEvent<'_>) -> Value {
    match event {
        TraceEvent::Phase { at, phase } => json!({"at": at, "kind": "phase", "phase": phase.name()}),
        TraceEvent::Fault { at, edge } => {
            let (what, index) = match edge {
                FaultEdge::PartitionStart(i) => ("partition_start", Some(i)),
                FaultEdge::PartitionHeal(i) => ("partition_heal", Some(i)),
                FaultEdge::BurstStart(i) => ("burst_start", Some(i)),
                FaultEdge::BurstEnd(i) => ("burst_end", Some(i)),
                FaultEdge::PacketRulesOn => ("packet_rules_on", None),
                FaultEdge::HealAll => ("heal_all", None),
            };
            json!({"at": at, "kind": "fault", "fault": what, "index": index})
        }
        TraceEvent::NodeUp { at, node, id: node_id, restarted } => {
            json!({"at": at, "kind": "node_up", "node": node, "id": id(node_id), "restarted": restarted})
        }
        TraceEvent::NodeDown { at, node, permanent } => {
            json!({"at": at, "kind": "node_down", "node": node, "permanent": permanent})
        }
        TraceEvent::Joined { at, node, peers } => json!({"at": at, "kind": "joined", "node": node, "peers": peers}),
        TraceEvent::BootstrapFailed { at, node } => json!({"at": at, "kind": "bootstrap_failed", "node": node}),
        TraceEvent::Deliver { at, from, to, bytes } => json!({
            "at": at, "kind": "deliver", "from": from, "to": to, "len": bytes.len(), "digest": digest(bytes)
        }),
        TraceEvent::Drop { at, from, to, cause, len } => {
            json!({"at": at, "kind": "drop", "from": from, "to": to, "cause": cause.name(), "len": len})
        }
        TraceEvent::Timeout { at, node } => json!({"at": at, "kind": "timeout", "node": node}),
        TraceEvent::LookupStart { at, node, id: cmd, target, true_closest } => json!({
            "at": at, "kind": "lookup_start", "node": node, "id": cmd, "target": id(target),
            "true_closest": opt_id(true_closest)
        }),
        TraceEvent::LookupDone { at, node, id: cmd, target, closest, true_closest, figures: f } => json!({
            "at": at, "kind": "lookup_done", "node": node, "id": cmd, "target": id(target),
            "closest": closest.iter().map(id).collect::<Vec<_>>(), "true_closest": opt_id(true_closest),
            "figures": figures(f)
        }),
        TraceEvent::PutStart { at, node, id: cmd, key, publisher, value } => json!({
            "at": at, "kind": "put_start", "node": node, "id": cmd, "key": id(key), "publisher": id(publisher),
            "value": hex(value)
        }),
        TraceEvent::PutDone { at, node, id: cmd, key, stored, figures: f } => json!({
            "at": at, "kind": "put_done", "node": node, "id": cmd, "key": id(key), "stored": stored,
            "figures": figures(f)
        }),
        TraceEvent::GetStart { at, node, id: cmd, key } => {
            json!({"at": at, "kind": "get_start", "node": node, "id": cmd, "key": id(key)})
        }
        TraceEvent::GetDone { at, node, id: cmd, key, record, figures: f } => {
            let record = record.map_or(
                Value::Null,
                |r| json!({"key": id(&r.key), "publisher": id(&r.publisher), "value": hex(r.value)}),
            );
            json!({
                "at": at, "kind": "get_done", "node": node, "id": cmd, "key": id(key), "record": record,
                "figures": figures(f)
            })
        }
        TraceEvent::Abandoned { at, node, id: cmd } => json!({"at": at, "kind": "abandoned", "node": node, "id": cmd}),
        TraceEvent::Rejected { at, node, from, reason } => {
            json!({"at": at, "kind": "rejected", "node": node, "from": from, "reason": reason})
        }
        TraceEvent::CommandRejected { at, node, id: cmd } => {
            json!({"at": at, "kind": "command_rejected", "node": node, "id": cmd})
        }
        TraceEvent::Snapshot { at, node, peers, max_bucket } => {
            json!({"at": at, "kind": "snapshot", "node": node, "peers": peers, "max_bucket": max_bucket})
        }
        TraceEvent::OverlayPublishStart { at, node, id: cmd, size, chunks } => json!({
            "at": at, "kind": "overlay_publish_start", "node": node, "id": cmd, "size": size,
            "chunks": chunks.iter().map(|c| hex(c)).collect::<Vec<_>>()
        }),
        TraceEvent::OverlayPublishDone { at, node, id: cmd, cid, size, providers_stored } => json!({
            "at": at, "kind": "overlay_publish_done", "node": node, "id": cmd, "cid": cid.to_string(),
            "size": size, "providers_stored": providers_stored
        }),
        TraceEvent::OverlayFetchStart { at, node, id: cmd, cid, probe } => json!({
            "at": at, "kind": "overlay_fetch_start", "node": node, "id": cmd, "cid": cid.to_string(), "probe": probe
        }),
        TraceEvent::OverlayFetchDone { at, node, id: cmd, cid, result } => {
            let (ok, detail) = match result {
                Ok(f) => (
                    true,
                    json!({"size": f.size, "chunks_fetched": f.chunks_fetched, "bytes_received": f.bytes_received,
                        "providers_used": f.providers_used, "corrupt_rejected": f.corrupt_rejected}),
                ),
                Err(label) => (false, json!(label)),
            };
            let key = if ok { "figures" } else { "error" };
            json!({"at": at, "kind": "overlay_fetch_done", "node": node, "id": cmd, "cid": cid.to_string(),
                "ok": ok, key: detail})
        }
        TraceEvent::OverlayChunk { at, node, id: cmd, cid, chunk, offset, len, hash } => json!({
            "at": at, "kind": "overlay_chunk", "node": node, "id": cmd, "cid": cid.to_string(), "chunk": chunk,
            "offset": offset, "len": len, "hash": hex(hash)
        }),
        TraceEvent::OverlayStored { at, node, cid, holding } => json!({
            "at": at, "kind": "overlay_stored", "node": node, "cid": cid.to_string(), "holding": holding.name()
        }),
        TraceEvent::OverlayEvicted { at, node, cid } => {
            json!({"at": at, "kind": "overlay_evicted", "node": node, "cid": cid.to_string()})
        }
        TraceEvent::CircuitBuilt { at, node, id: cmd, circuit, path, first_circ, build_ms, attempts, replacement } => {
            json!({"at": at, "kind": "circuit_built", "node": node, "id": cmd, "circuit": circuit, "path": path,
                "first_circ": first_circ, "build_ms": build_ms, "attempts": attempts, "replacement": replacement})
        }
        TraceEvent::CircuitBuildFailed { at, node, id: cmd, attempts, reason } => json!({
            "at": at, "kind": "circuit_build_failed", "node": node, "id": cmd, "attempts": attempts, "reason": reason
        }),
        TraceEvent::CircuitClosed { at, node, circuit, reason } => {
            json!({"at": at, "kind": "circuit_closed", "node": node, "circuit": circuit, "reason": reason})
        }
        TraceEvent::StreamStart { at, node, id: cmd, host, port, nonce, len } => json!({
            "at": at, "kind": "stream_start", "node": node, "id": cmd, "host": host, "port": port,
            "nonce": nonce, "len": len
        }),
        TraceEvent::StreamOpened { at, node, id: cmd, circuit } => {
            json!({"at": at, "kind": "stream_opened", "node": node, "id": cmd, "circuit": circuit})
        }
        TraceEvent::StreamData { at, node, id: cmd, offset, bytes } => json!({
            "at": at, "kind": "stream_data", "node": node, "id": cmd, "offset": offset, "len": bytes.len(),
            "digest": digest(bytes)
        }),
        TraceEvent::StreamEnd { at, node, id: cmd, reason, received } => json!({
            "at": at, "kind": "stream_end", "node": node, "id": cmd, "reason": reason, "received": received
        }),
        TraceEvent::RelayCreated { at, node, prev, prev_circ } => {
            json!({"at": at, "kind": "relay_created", "node": node, "prev": prev, "prev_circ": prev_circ})
        }
        TraceEvent::RelayExtended { at, node, prev, prev_circ, next, next_circ } => json!({
            "at": at, "kind": "relay_extended", "node": node, "prev": prev, "prev_circ": prev_circ,
            "next": next, "next_circ": next_circ
        }),
        TraceEvent::RelayExit { at, node, prev, prev_circ, host, port } => json!({
            "at": at, "kind": "relay_exit", "node": node, "prev": prev, "prev_circ": prev_circ, "host": host,
            "port": port
        }),
        TraceEvent::MixNode { at, node, role, region } => {
            let layer = match role {
                MixRole::Mix { layer } => Some(*layer),
                _ => None,
            };
            json!({"at": at, "kind": "mix_node", "node": node, "role": role.name(), "layer": layer, "region": region})
        }
        TraceEvent::MixReady { at, node, provider } => {
            json!({"at": at, "kind": "mix_ready", "node": node, "provider": provider})
        }
        TraceEvent::MixSend { at, node, id: cmd, to, len, nonce, reply_to, reply_blocks } => json!({
            "at": at, "kind": "mix_send", "node": node, "id": cmd, "to": to, "len": len, "nonce": nonce,
            "reply_to": reply_to, "reply_blocks": reply_blocks
        }),
        TraceEvent::MixReceived { at, node, nonce, reply, data } => json!({
            "at": at, "kind": "mix_received", "node": node, "nonce": nonce, "reply": reply, "len": data.len(),
            "digest": digest(data)
        }),
        TraceEvent::MixDelivered { at, node, id: cmd } => {
            json!({"at": at, "kind": "mix_delivered", "node": node, "id": cmd})
        }
        TraceEvent::MixFailed { at, node, id: cmd, reason } => {
            json!({"at": at, "kind": "mix_failed", "node": node, "id": cmd, "reason": reason})
        }
        TraceEvent::ElectionGroup { at, group, members, budget_ms } => {
            json!({"at": at, "kind": "election_group", "group": group, "members": members, "budget_ms": budget_ms})
        }
        TraceEvent::LeaseHeld { at, node, group, until, acquired } => {
            json!({"at": at, "kind": "lease_held", "node": node, "group": group, "until": until, "acquired": acquired})
        }
        TraceEvent::RewardsNode { at, node, cheat, auditor } => {
            json!({"at": at, "kind": "rewards_node", "node": node, "cheat": cheat.name(), "auditor": auditor})
        }
        TraceEvent::Cheated { at, node, epoch, cheat, amount } => json!({
            "at": at, "kind": "cheated", "node": node, "epoch": epoch, "cheat": cheat.name(), "amount": amount
        }),
        TraceEvent::EpochSettled { at, node, epoch, figures: f } => json!({
            "at": at, "kind": "epoch_settled", "node": node, "epoch": epoch, "emission": f.emission,
            "carried_in": f.carried_in, "paid": f.paid, "carried_out": f.carried_out,
            "bandwidth_pool": f.bandwidth_pool, "credited_bytes": f.credited_bytes, "payees": f.payees,
            "registered": f.registered, "forged_claimed": f.forged_claimed,
            "failed_challenges": f.failed_challenges, "hash": hex(&f.hash)
        }),
        TraceEvent::Payout { at, node, epoch, figures: f } => json!({
            "at": at, "kind": "payout", "node": node, "epoch": epoch, "bandwidth": f.bandwidth,
            "storage": f.storage, "publisher": f.publisher, "valid_receipts": f.valid_receipts,
            "receipted_bytes": f.receipted_bytes, "cap_bytes": f.cap_bytes, "credited_bytes": f.credited_bytes,
            "forged_credit_bytes": f.forged_credit_bytes, "passed": f.passed, "failed": f.failed,
            "publisher_passes": f.publisher_passes
        }),
        TraceEvent::MixPacket { at, node, observation: o } => {
            let mut value = observation(o);
            if let Value::Object(map) = &mut value {
                map.insert("at".into(), json!(at));
                map.insert("kind".into(), json!("mix_packet"));
                map.insert("node".into(), json!(node));
            }
            value
        }
    }
}
