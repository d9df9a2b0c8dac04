//! Path selection: which relays a new circuit goes through.
//!
//! The exit is chosen first, weighted by bandwidth among the relays whose
//! policy allows the destination; then the guard (the pinned one when the
//! [`GuardSet`](super::guards::GuardSet) gave one, else weighted among
//! [`FLAG_GUARD`](super::FLAG_GUARD) relays); then the middles, weighted by
//! bandwidth. All hops are distinct nodes.
//!
//! Two diversity rules apply on top, each only as far as the directory
//! allows: with `distinct_regions`, no two hops share a region; and, like
//! Tor's `EnforceDistinctSubnets`, no two hops share an IPv4 /16 or an IPv6
//! /32. Selection tries both rules, then regions only, then subnets only,
//! then neither, and never fails only because of them. At each level the
//! choice is exact: every hop is drawn by bandwidth among the relays that
//! still leave the rest of the path completable (a randomised depth-first
//! search, with a work budget so a hostile directory cannot make it slow).
//!
//! Weights are integers (bandwidth capped at [`MAX_WEIGHT`]) and draws use
//! [`crate::rng::below`], so a seed decides the path on every platform.

use super::descriptor::RelayDescriptor;
use super::directory::Directory;
use crate::identity::NodeId;
use crate::node::Addr;
use crate::rng::{EngineRng, below};
use std::collections::BTreeSet;
use std::net::IpAddr;

/// Largest bandwidth weight one relay counts with, in bytes per second
/// (1 TiB/s), so that a relay claiming `u64::MAX` cannot overflow the sum.
pub const MAX_WEIGHT: u64 = 1 << 40;

/// Candidate draws one diversity level may spend before it gives up and the
/// next, weaker level is tried. Only a large, adversarially shaped
/// directory comes near it; small ones are searched exhaustively.
pub const SEARCH_BUDGET: usize = 4096;

/// What the circuit needs.
#[derive(Clone, Copy, Debug)]
pub struct PathRequest<'a> {
    /// Relays on the path (`circuit.hops`): guard, middles, exit.
    pub hops: usize,
    /// The port the first stream goes to. `None`: the last hop need not be
    /// an exit at all.
    pub exit_port: Option<u16>,
    /// The destination host, when known: the exit's policy must allow
    /// `host:port`. Ignored without `exit_port`.
    pub exit_host: Option<&'a str>,
    /// A pinned first hop (from the guard set); used if given.
    pub guard: Option<NodeId>,
    /// Relays never used (the client itself, relays known dead).
    pub exclude: &'a BTreeSet<NodeId>,
    /// `circuit.distinct_regions`: keep hops in different regions when possible.
    pub distinct_regions: bool,
}

/// Why no path could be chosen.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// No usable relay's exit policy allows the destination (or the only
    /// one is the pinned guard).
    #[error("no relay can be the exit")]
    NoExit,
    /// The pinned guard is unknown or excluded, or no usable relay (other
    /// than the only possible exit) has the guard flag.
    #[error("no usable guard")]
    NoGuard,
    /// Fewer usable relays than hops.
    #[error("{have} usable relays, {need} needed")]
    TooFewRelays {
        /// Usable relays (known and not excluded).
        have: usize,
        /// Hops requested.
        need: usize,
    },
}

/// Chooses `request.hops` relays, returned in path order: guard, middles, exit.
pub fn select_path(
    rng: &mut EngineRng,
    directory: &Directory,
    request: &PathRequest,
) -> Result<Vec<RelayDescriptor>, PathError> {
    let hops = request.hops;
    if hops == 0 {
        return Ok(Vec::new());
    }
    let candidates: Vec<Candidate> = directory
        .relays()
        .filter(|(id, _)| !request.exclude.contains(id))
        .map(|(id, d)| Candidate::new(*id, d, request))
        .collect();
    if candidates.len() < hops {
        return Err(PathError::TooFewRelays { have: candidates.len(), need: hops });
    }
    let roles = roles(hops);
    check_roles_fillable(&candidates, &roles, request)?;

    let levels: &[Diversity] = if request.distinct_regions {
        &[Diversity::BOTH, Diversity::REGIONS, Diversity::SUBNETS, Diversity::NONE]
    } else {
        &[Diversity::SUBNETS, Diversity::NONE]
    };
    for &level in levels {
        if !level.could_hold(&candidates, hops) {
            continue;
        }
        let mut search = Search { candidates: &candidates, roles: &roles, level, budget: Some(SEARCH_BUDGET) };
        // The last level is never cut short: it always succeeds quickly
        // (the checks above guarantee a path exists).
        if level == Diversity::NONE {
            search.budget = None;
        }
        let mut chosen = Vec::with_capacity(hops);
        if let Ok(true) = search.extend(rng, &mut chosen) {
            return Ok(in_path_order(&candidates, &chosen));
        }
    }
    // Unreachable given `check_roles_fillable`; reported rather than panicking.
    Err(PathError::NoGuard)
}

/// What a hop must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// The last hop.
    Exit,
    /// The first hop.
    Guard,
    /// Anything between.
    Middle,
    /// A one-hop path: guard and exit at once.
    Both,
}

/// Roles in the order they are chosen: exit, guard, middles.
fn roles(hops: usize) -> Vec<Role> {
    if hops == 1 {
        return vec![Role::Both];
    }
    let mut roles = vec![Role::Exit, Role::Guard];
    roles.resize(hops, Role::Middle);
    roles
}

/// Path order (guard, middles, exit) from choice order (exit, guard, middles).
fn in_path_order(candidates: &[Candidate], chosen: &[usize]) -> Vec<RelayDescriptor> {
    let mut order: Vec<usize> = Vec::with_capacity(chosen.len());
    if chosen.len() == 1 {
        order.push(chosen[0]);
    } else {
        order.push(chosen[1]);
        order.extend_from_slice(&chosen[2..]);
        order.push(chosen[0]);
    }
    order.into_iter().map(|i| candidates[i].descriptor.clone()).collect()
}

/// The typed errors for paths that cannot exist whatever the diversity.
fn check_roles_fillable(candidates: &[Candidate], roles: &[Role], request: &PathRequest) -> Result<(), PathError> {
    if !candidates.iter().any(|c| c.exit_ok) {
        return Err(PathError::NoExit);
    }
    if !candidates.iter().any(|c| c.guard_ok) {
        return Err(PathError::NoGuard);
    }
    let pinned = request.guard.is_some();
    if roles == [Role::Both] {
        return match candidates.iter().any(|c| c.exit_ok && c.guard_ok) {
            true => Ok(()),
            false if pinned => Err(PathError::NoExit),
            false => Err(PathError::NoGuard),
        };
    }
    let exits: Vec<&NodeId> = candidates.iter().filter(|c| c.exit_ok).map(|c| &c.id).collect();
    let guards: Vec<&NodeId> = candidates.iter().filter(|c| c.guard_ok).map(|c| &c.id).collect();
    // Exit and guard must differ: impossible only when both sets are the same single relay.
    if exits.len() == 1 && guards.len() == 1 && exits[0] == guards[0] {
        return Err(if pinned { PathError::NoExit } else { PathError::NoGuard });
    }
    Ok(())
}

/// One usable relay, with what path selection needs to know about it.
struct Candidate<'d> {
    id: NodeId,
    descriptor: &'d RelayDescriptor,
    weight: u64,
    region: u16,
    subnet: Subnet,
    exit_ok: bool,
    guard_ok: bool,
}

impl<'d> Candidate<'d> {
    fn new(id: NodeId, descriptor: &'d RelayDescriptor, request: &PathRequest) -> Self {
        let exit_ok = match (request.exit_port, request.exit_host) {
            (None, _) => true,
            (Some(port), None) => descriptor.exit_policy.allows_some_host_on(port),
            (Some(port), Some(host)) => descriptor.exit_policy.allows(host, port),
        };
        let guard_ok = match request.guard {
            Some(pinned) => pinned == id,
            None => descriptor.is_guard(),
        };
        Candidate {
            id,
            descriptor,
            weight: descriptor.bandwidth_bytes_per_sec.clamp(1, MAX_WEIGHT),
            region: descriptor.region,
            subnet: subnet_of(&descriptor.addr),
            exit_ok,
            guard_ok,
        }
    }

    fn fits(&self, role: Role) -> bool {
        match role {
            Role::Exit => self.exit_ok,
            Role::Guard => self.guard_ok,
            Role::Middle => true,
            Role::Both => self.exit_ok && self.guard_ok,
        }
    }
}

/// The network a relay's address belongs to for the distinct-subnet rule:
/// its IPv4 /16 or IPv6 /32 (an IPv4-mapped IPv6 address counts as IPv4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Subnet {
    V4([u8; 2]),
    V6([u8; 4]),
}

fn subnet_of(addr: &Addr) -> Subnet {
    let ip = match addr.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, _, _] = v4.octets();
            Subnet::V4([a, b])
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            Subnet::V6([o[0], o[1], o[2], o[3]])
        }
    }
}

/// Which diversity rules a search enforces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Diversity {
    regions: bool,
    subnets: bool,
}

impl Diversity {
    const BOTH: Diversity = Diversity { regions: true, subnets: true };
    const REGIONS: Diversity = Diversity { regions: true, subnets: false };
    const SUBNETS: Diversity = Diversity { regions: false, subnets: true };
    const NONE: Diversity = Diversity { regions: false, subnets: false };

    /// A cheap necessary condition: enough distinct regions and subnets.
    fn could_hold(self, candidates: &[Candidate], hops: usize) -> bool {
        let regions: BTreeSet<u16> = candidates.iter().map(|c| c.region).collect();
        let subnets: BTreeSet<Subnet> = candidates.iter().map(|c| c.subnet).collect();
        (!self.regions || regions.len() >= hops) && (!self.subnets || subnets.len() >= hops)
    }

    fn compatible(self, a: &Candidate, b: &Candidate) -> bool {
        a.id != b.id && !(self.regions && a.region == b.region) && !(self.subnets && a.subnet == b.subnet)
    }
}

/// The search out of work.
struct Exhausted;

struct Search<'a, 'd> {
    candidates: &'a [Candidate<'d>],
    roles: &'a [Role],
    level: Diversity,
    /// Draws left; `None` is unlimited.
    budget: Option<usize>,
}

impl Search<'_, '_> {
    /// Fills the remaining roles after `chosen`. Each hop is drawn by weight
    /// among the candidates that fit; one whose subtree cannot be completed
    /// is set aside and the draw repeated, so the result is weighted among
    /// the candidates that lead to a complete path.
    fn extend(&mut self, rng: &mut EngineRng, chosen: &mut Vec<usize>) -> Result<bool, Exhausted> {
        let Some(&role) = self.roles.get(chosen.len()) else {
            return Ok(true);
        };
        let mut pool: Vec<(usize, u64)> = self
            .candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.fits(role) && chosen.iter().all(|&j| self.level.compatible(c, &self.candidates[j])))
            .map(|(i, c)| (i, c.weight))
            .collect();
        while !pool.is_empty() {
            if let Some(budget) = &mut self.budget {
                *budget = budget.checked_sub(1).ok_or(Exhausted)?;
            }
            let k = weighted_index(rng, &pool);
            let (index, _) = pool.swap_remove(k);
            chosen.push(index);
            if self.extend(rng, chosen)? {
                return Ok(true);
            }
            chosen.pop();
        }
        Ok(false)
    }
}

/// An index into `pool` drawn with probability proportional to its weight
/// (the `usize` is the caller's; only the weight counts); 0 for an empty pool.
pub(crate) fn weighted_index(rng: &mut EngineRng, pool: &[(usize, u64)]) -> usize {
    let total = pool.iter().fold(0u64, |sum, (_, w)| sum.saturating_add(*w));
    let mut point = below(rng, total);
    for (k, (_, weight)) in pool.iter().enumerate() {
        if point < *weight {
            return k;
        }
        point -= weight;
    }
    pool.len().saturating_sub(1)
}

#[cfg(test)]
#[path = "path_tests.rs"]
mod tests;
