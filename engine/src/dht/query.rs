//! Queries: an iterative lookup, then for puts and provides a store phase.

use super::lookup::{IterState, PeersIter};
use super::message::Body;
use super::{Dht, DhtEvent, Join, Key, ProviderRecord, Purpose, QueryStats, ValueRecord};
use crate::identity::NodeId;
use crate::node::CommandId;
use crate::time::Instant;
use std::collections::BTreeMap;

/// Who asked for a query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum QueryOrigin {
    /// The application; the result is reported as an event.
    Command(CommandId),
    /// The join procedure's self-lookup.
    Join,
    /// Maintenance (bucket refresh, republish); nothing is reported.
    Internal,
}

/// What a query is for, with what it has gathered so far.
#[derive(Clone, Debug)]
pub(super) enum QueryKind {
    FindNode,
    GetValue { found: Option<(ValueRecord, u32)> },
    PutValue { record: ValueRecord },
    Provide { record: ProviderRecord },
    FindProviders { found: BTreeMap<NodeId, ProviderRecord> },
}

/// The store phase of a put or provide.
#[derive(Clone, Copy, Debug)]
pub(super) struct Storing {
    awaiting: usize,
    accepted: usize,
    hops: u32,
}

#[derive(Clone, Debug)]
pub(super) struct Query {
    pub(super) origin: QueryOrigin,
    pub(super) kind: QueryKind,
    pub(super) target: Key,
    pub(super) iter: PeersIter,
    pub(super) started: Instant,
    pub(super) deadline: Instant,
    pub(super) requests: u32,
    pub(super) timed_out: bool,
    pub(super) storing: Option<Storing>,
    /// Hop at which the first provider was found.
    pub(super) provider_hops: Option<u32>,
}

impl Query {
    fn lookup_request(&self) -> Body {
        match self.kind {
            QueryKind::GetValue { .. } => Body::FindValue { key: self.target },
            QueryKind::FindProviders { .. } => Body::GetProviders { key: self.target },
            _ => Body::FindNode { target: self.target },
        }
    }

    /// Whether the query already has what it came for.
    fn satisfied(&self, k: usize) -> bool {
        match &self.kind {
            QueryKind::GetValue { found } => found.is_some(),
            QueryKind::FindProviders { found } => found.len() >= k,
            _ => false,
        }
    }
}

impl Dht {
    pub(super) fn start_query(&mut self, now: Instant, origin: QueryOrigin, target: Key, kind: QueryKind) {
        self.table.mark_refreshed(&target, now);
        let initial = self.table.closest(&target, self.params.k);
        let iter = PeersIter::new(target, initial, self.params.alpha, self.params.k, self.params.disjoint_paths);
        let query_id = self.next_query;
        self.next_query += 1;
        let deadline = now + self.params.lookup_timeout();
        self.query_deadlines.insert((deadline, query_id));
        self.queries.insert(
            query_id,
            Query {
                origin,
                kind,
                target,
                iter,
                started: now,
                deadline,
                requests: 0,
                timed_out: false,
                storing: None,
                provider_hops: None,
            },
        );
        self.metrics.incr("dht.queries.started");
        self.drive_query(now, query_id);
    }

    /// Sends whatever requests the query's iterator wants, and finishes the
    /// query when it has nothing left to wait for.
    pub(super) fn drive_query(&mut self, now: Instant, query_id: u64) {
        loop {
            let k = self.params.k;
            let Some(query) = self.queries.get_mut(&query_id) else { return };
            if let Some(storing) = query.storing {
                if storing.awaiting == 0 || query.timed_out {
                    self.finish_query(now, query_id);
                }
                return;
            }
            if query.satisfied(k) {
                query.iter.finish();
            }
            match query.iter.next() {
                IterState::Contact(peer) => {
                    let body = query.lookup_request();
                    query.requests += 1;
                    self.send_request(now, peer.addr, Some(peer.id), Purpose::Query(query_id), body);
                }
                IterState::Waiting => return,
                IterState::Finished => {
                    self.lookup_done(now, query_id);
                    return;
                }
            }
        }
    }

    /// The lookup phase is over: finish, or start storing for puts and provides.
    fn lookup_done(&mut self, now: Instant, query_id: u64) {
        let Some(query) = self.queries.get_mut(&query_id) else { return };
        let results = query.iter.results(&query.target);
        let body = match &query.kind {
            QueryKind::PutValue { record } => Body::Store { record: record.clone() },
            QueryKind::Provide { record } => Body::AddProvider { record: record.clone() },
            _ => return self.finish_query(now, query_id),
        };
        if results.is_empty() || query.timed_out {
            return self.finish_query(now, query_id);
        }
        let hops = results.first().map_or(0, |(_, hop)| *hop);
        query.storing = Some(Storing { awaiting: results.len(), accepted: 0, hops });
        query.requests += results.len() as u32;
        for (peer, _) in results {
            self.send_request(now, peer.addr, Some(peer.id), Purpose::Store(query_id), body.clone());
        }
    }

    /// A STORE or ADD_PROVIDER was answered (or failed).
    pub(super) fn on_store_answer(&mut self, now: Instant, query_id: u64, accepted: bool) {
        let Some(query) = self.queries.get_mut(&query_id) else { return };
        if let Some(storing) = &mut query.storing {
            storing.awaiting = storing.awaiting.saturating_sub(1);
            storing.accepted += usize::from(accepted);
        }
        self.drive_query(now, query_id);
    }

    /// Handles a lookup-phase response from `from` (whose identity is checked).
    pub(super) fn on_lookup_answer(&mut self, now: Instant, query_id: u64, from: NodeId, body: Body) {
        let local = self.local.id;
        let k = self.params.k;
        let Some(query) = self.queries.get_mut(&query_id) else { return };
        let keep = |closer: Vec<super::PeerInfo>| -> Vec<super::PeerInfo> {
            closer.into_iter().filter(|p| p.id != local).take(k).collect()
        };
        let target = query.target;
        match (&mut query.kind, body) {
            (QueryKind::GetValue { found }, Body::Value { record }) => {
                if record.key == target && record.verify() {
                    let hop = query.iter.hop_of(&from).unwrap_or(1);
                    *found = Some((record, hop));
                    query.iter.on_success(&from, Vec::new());
                } else {
                    self.metrics.incr("dht.records.invalid");
                    query.iter.on_failure(&from);
                }
            }
            (QueryKind::FindProviders { found }, Body::Providers { providers, closer }) => {
                for record in providers {
                    if record.key == target && record.verify() {
                        query.provider_hops.get_or_insert(query.iter.hop_of(&from).unwrap_or(1));
                        found.insert(record.provider.id, record);
                    } else {
                        self.metrics.incr("dht.records.invalid");
                    }
                }
                query.iter.on_success(&from, keep(closer));
            }
            (_, Body::Nodes { closer }) => {
                query.iter.on_success(&from, keep(closer));
            }
            (_, _) => {
                self.metrics.incr("dht.responses.unexpected");
                query.iter.on_failure(&from);
            }
        }
        self.drive_query(now, query_id);
    }

    fn finish_query(&mut self, now: Instant, query_id: u64) {
        let Some(query) = self.queries.remove(&query_id) else { return };
        self.query_deadlines.remove(&(query.deadline, query_id));
        self.metrics.incr("dht.queries.finished");
        let results = query.iter.results(&query.target);
        let closest_hops = results.first().map_or(0, |(_, hop)| *hop);
        let mut stats = QueryStats {
            started: query.started,
            finished: now,
            hops: closest_hops,
            requests: query.requests,
            timed_out: query.timed_out,
        };
        let id = match query.origin {
            QueryOrigin::Command(id) => id,
            QueryOrigin::Internal => return,
            QueryOrigin::Join => {
                self.join = Join::Done;
                let peers = self.table.len();
                self.emit(DhtEvent::Bootstrapped { peers });
                return;
            }
        };
        let key = query.target;
        let event = match query.kind {
            QueryKind::FindNode => DhtEvent::LookupFinished {
                id,
                target: key,
                closest: results.into_iter().map(|(p, _)| p).collect(),
                stats,
            },
            QueryKind::GetValue { found } => {
                stats.hops = found.as_ref().map_or(closest_hops, |(_, hop)| *hop);
                DhtEvent::GetFinished { id, key, record: found.map(|(r, _)| r), stats }
            }
            QueryKind::FindProviders { found } => {
                stats.hops = query.provider_hops.unwrap_or(closest_hops);
                DhtEvent::ProvidersFound { id, key, providers: found.into_values().collect(), stats }
            }
            QueryKind::PutValue { .. } | QueryKind::Provide { .. } => {
                let (stored, hops) = query.storing.map_or((0, closest_hops), |s| (s.accepted, s.hops));
                stats.hops = hops;
                if matches!(query.kind, QueryKind::PutValue { .. }) {
                    DhtEvent::PutFinished { id, key, stored, stats }
                } else {
                    let closest = results.into_iter().map(|(p, _)| p).collect();
                    DhtEvent::ProvideFinished { id, key, stored, closest, stats }
                }
            }
        };
        self.emit(event);
    }
}
