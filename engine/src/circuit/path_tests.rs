//! Tests of path selection (a separate file to keep `path.rs` short).

use super::*;
use crate::circuit::descriptor::FLAG_EXIT;
use crate::circuit::{ExitPolicy, FLAG_GUARD, FLAG_STABLE};
use crate::crypto::KxPublic;
use crate::rng::NodeSeed;
use crate::time::Instant;
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// A descriptor with arbitrary keys (path selection never verifies signatures).
fn relay(i: u8, region: u16, addr: [u8; 4], bandwidth: u64, guard: bool, policy: &[&str]) -> RelayDescriptor {
    let exit_policy = ExitPolicy::parse(policy).unwrap();
    let flags = FLAG_STABLE | if guard { FLAG_GUARD } else { 0 } | if exit_policy.is_exit() { FLAG_EXIT } else { 0 };
    RelayDescriptor {
        signing_key: [i; 32],
        addr: SocketAddr::from((Ipv4Addr::from(addr), 4000)),
        onion_key: KxPublic([i; 32]),
        bandwidth_bytes_per_sec: bandwidth,
        flags,
        region,
        exit_policy,
        version: 1,
        signature: [0; 64],
    }
}

fn directory(relays: &[RelayDescriptor]) -> Directory {
    let mut dir = Directory::new();
    for r in relays {
        dir.insert(Instant::ZERO, r.clone());
    }
    dir
}

fn rng(seed: u64) -> EngineRng {
    NodeSeed::derive(seed, 0).stream("path")
}

fn request(hops: usize, exit_port: Option<u16>, exclude: &BTreeSet<NodeId>) -> PathRequest<'_> {
    PathRequest { hops, exit_port, exit_host: None, guard: None, exclude, distinct_regions: true }
}

const WEB: &[&str] = &["accept *:80", "accept *:443"];
const NONE: &[&str] = &[];

#[test]
fn chooses_guard_middle_exit_in_path_order() {
    let relays = [
        relay(1, 1, [10, 1, 0, 1], 1000, true, NONE),
        relay(2, 2, [10, 2, 0, 1], 1000, false, NONE),
        relay(3, 3, [10, 3, 0, 1], 1000, false, WEB),
    ];
    let dir = directory(&relays);
    let none = BTreeSet::new();
    for seed in 0..20 {
        let path = select_path(&mut rng(seed), &dir, &request(3, Some(80), &none)).unwrap();
        assert_eq!(path, relays.to_vec(), "guard first, exit last");
    }
    assert_eq!(select_path(&mut rng(1), &dir, &request(0, None, &none)), Ok(vec![]));
}

#[test]
fn impossible_requests_have_typed_errors() {
    let relays = [
        relay(1, 1, [10, 1, 0, 1], 1000, true, NONE),
        relay(2, 2, [10, 2, 0, 1], 1000, false, NONE),
        relay(3, 3, [10, 3, 0, 1], 1000, false, WEB),
    ];
    let dir = directory(&relays);
    let none = BTreeSet::new();
    let mut r = rng(2);
    assert_eq!(select_path(&mut r, &dir, &request(3, Some(22), &none)), Err(PathError::NoExit));
    assert_eq!(
        select_path(&mut r, &dir, &request(4, Some(80), &none)),
        Err(PathError::TooFewRelays { have: 3, need: 4 })
    );
    let no_guard: BTreeSet<NodeId> = [relays[0].node_id()].into();
    assert_eq!(
        select_path(&mut r, &dir, &request(2, Some(80), &no_guard)),
        Err(PathError::NoGuard),
        "the only guard is excluded"
    );
    let pinned_unknown = PathRequest { guard: Some(NodeId([9; 32])), ..request(3, Some(80), &none) };
    assert_eq!(select_path(&mut r, &dir, &pinned_unknown), Err(PathError::NoGuard));
    // The pinned guard is the only exit: it cannot be both.
    let pinned_exit = PathRequest { guard: Some(relays[2].node_id()), ..request(2, Some(80), &none) };
    assert_eq!(select_path(&mut r, &dir, &pinned_exit), Err(PathError::NoExit));
    // A guard that is also the only exit, unpinned.
    let lone = directory(&[relay(1, 1, [10, 1, 0, 1], 1, true, WEB), relay(2, 2, [10, 2, 0, 1], 1, false, NONE)]);
    assert_eq!(select_path(&mut r, &lone, &request(2, Some(80), &none)), Err(PathError::NoGuard));
    // One hop: guard and exit at once.
    let one = select_path(&mut r, &lone, &request(1, Some(443), &none)).unwrap();
    assert_eq!(one[0].signing_key, [1; 32]);
    assert_eq!(select_path(&mut r, &dir, &request(1, Some(80), &none)), Err(PathError::NoGuard));
}

#[test]
fn the_exit_policy_and_host_are_honoured() {
    let relays = [
        relay(1, 1, [10, 1, 0, 1], 1000, true, NONE),
        relay(2, 2, [10, 2, 0, 1], 1000, false, &["accept *.internal:80", "reject *:*"]),
        relay(3, 3, [10, 3, 0, 1], 1000, false, &["reject *.internal:*", "accept *:80"]),
        relay(4, 4, [10, 4, 0, 1], 1000, false, NONE),
    ];
    let dir = directory(&relays);
    let none = BTreeSet::new();
    let for_host = |host| PathRequest { exit_host: Some(host), ..request(3, Some(80), &none) };
    for seed in 0..30 {
        let internal = select_path(&mut rng(seed), &dir, &for_host("files.internal")).unwrap();
        assert_eq!(internal[2].signing_key, [2; 32]);
        let public = select_path(&mut rng(seed), &dir, &for_host("example.com")).unwrap();
        assert_eq!(public[2].signing_key, [3; 32]);
    }
    let nowhere = PathRequest { exit_host: Some("files.internal"), ..request(3, Some(81), &none) };
    assert_eq!(select_path(&mut rng(1), &dir, &nowhere), Err(PathError::NoExit));
    // Without a port the last hop can be anyone, even a non-exit.
    let last: BTreeSet<[u8; 32]> =
        (0..200).map(|s| select_path(&mut rng(s), &dir, &request(3, None, &none)).unwrap()[2].signing_key).collect();
    assert!(last.contains(&[4; 32]), "a non-exit is a valid last hop without a port");
}

#[test]
fn regions_and_subnets_relax_only_when_they_must() {
    let none = BTreeSet::new();
    // Everyone in one region and one /16: a path is still chosen.
    let crowded: Vec<RelayDescriptor> = (1..=4).map(|i| relay(i, 7, [10, 0, 0, i], 1000, true, WEB)).collect();
    let path = select_path(&mut rng(1), &directory(&crowded), &request(3, Some(80), &none)).unwrap();
    assert_eq!(path.len(), 3);

    // Two relays share a /16; with enough other subnets they are never together.
    let mut relays: Vec<RelayDescriptor> = (1..=5).map(|i| relay(i, 1, [10, i, 0, 1], 1000, true, WEB)).collect();
    relays.push(relay(6, 1, [10, 1, 9, 9], 1_000_000, true, WEB));
    let dir = directory(&relays);
    for seed in 0..100 {
        let path = select_path(&mut rng(seed), &dir, &request(4, Some(80), &none)).unwrap();
        let subnets: BTreeSet<Subnet> = path.iter().map(|d| subnet_of(&d.addr)).collect();
        assert_eq!(subnets.len(), 4, "seed {seed}: {path:?}");
    }
}

#[test]
fn subnets_are_ipv4_slash_16_and_ipv6_slash_32() {
    let v4 = |a: [u8; 4]| SocketAddr::from((Ipv4Addr::from(a), 1));
    let v6 = |s: &str| SocketAddr::from((s.parse::<Ipv6Addr>().unwrap(), 1));
    assert_eq!(subnet_of(&v4([192, 168, 1, 1])), subnet_of(&v4([192, 168, 200, 9])));
    assert_ne!(subnet_of(&v4([192, 168, 1, 1])), subnet_of(&v4([192, 169, 1, 1])));
    assert_eq!(subnet_of(&v6("2001:db8::1")), subnet_of(&v6("2001:db8:ffff::2")));
    assert_ne!(subnet_of(&v6("2001:db8::1")), subnet_of(&v6("2001:db9::1")));
    assert_eq!(subnet_of(&v6("::ffff:192.168.3.4")), subnet_of(&v4([192, 168, 1, 1])));
}

#[test]
fn a_hostile_directory_cannot_make_selection_slow_or_fail() {
    // Every guard and exit in region 0, middles in regions 1 and 2: the
    // region rule cannot hold (guard and exit would share region 0), yet
    // counting regions does not show it. The search must give up quickly.
    let mut relays = Vec::new();
    for i in 0..1500u32 {
        let [_, _, a, b] = i.to_be_bytes();
        let (region, guard, policy) = match i % 3 {
            0 => (0, true, NONE),
            1 => (0, false, WEB),
            _ => (1 + (i % 2) as u16, false, NONE),
        };
        let mut d = relay(0, region, [10, a, b, 1], 1000 + u64::from(i), guard, policy);
        d.signing_key[..4].copy_from_slice(&i.to_be_bytes());
        relays.push(d);
    }
    let dir = directory(&relays);
    let none = BTreeSet::new();
    let path = select_path(&mut rng(3), &dir, &request(3, Some(80), &none)).unwrap();
    assert_eq!((path[0].region, path[2].region), (0, 0));
    assert!(path[0].is_guard() && path[2].exit_policy.allows_some_host_on(80));
}

#[test]
fn choices_are_weighted_by_bandwidth() {
    // One guard, one exit, three middles: A has ten times B's and C's bandwidth.
    let relays = [
        relay(1, 1, [10, 1, 0, 1], 1000, true, NONE),
        relay(2, 2, [10, 2, 0, 1], 1000, false, WEB),
        relay(10, 3, [10, 3, 0, 1], 10_000_000, false, NONE),
        relay(11, 4, [10, 4, 0, 1], 1_000_000, false, NONE),
        relay(12, 5, [10, 5, 0, 1], 1_000_000, false, NONE),
    ];
    let dir = directory(&relays);
    let none = BTreeSet::new();
    let mut r = rng(7);
    let mut counts = [0u32; 3];
    let draws = 20_000;
    for _ in 0..draws {
        let path = select_path(&mut r, &dir, &request(3, Some(80), &none)).unwrap();
        counts[usize::from(path[1].signing_key[0] - 10)] += 1;
    }
    let ratio_b = f64::from(counts[0]) / f64::from(counts[1]);
    let ratio_c = f64::from(counts[0]) / f64::from(counts[2]);
    assert!((9.0..11.0).contains(&ratio_b) && (9.0..11.0).contains(&ratio_c), "{counts:?}");

    // Exits: weights 3:1.
    let exits = [
        relay(1, 1, [10, 1, 0, 1], 1000, true, NONE),
        relay(2, 2, [10, 2, 0, 1], 3000, false, WEB),
        relay(3, 3, [10, 3, 0, 1], 1000, false, WEB),
    ];
    let dir = directory(&exits);
    let mut heavy = 0u32;
    for _ in 0..draws {
        let path = select_path(&mut r, &dir, &request(2, Some(443), &none)).unwrap();
        heavy += u32::from(path[1].signing_key[0] == 2);
    }
    let share = f64::from(heavy) / f64::from(draws);
    assert!((share - 0.75).abs() < 0.015, "share {share}");
}

#[test]
fn huge_claimed_bandwidth_neither_overflows_nor_takes_everything() {
    let relays = [
        relay(1, 1, [10, 1, 0, 1], u64::MAX, true, WEB),
        relay(2, 2, [10, 2, 0, 1], u64::MAX, true, WEB),
        relay(3, 3, [10, 3, 0, 1], u64::MAX, true, WEB),
        relay(4, 4, [10, 4, 0, 1], MAX_WEIGHT, true, WEB),
    ];
    let dir = directory(&relays);
    let none = BTreeSet::new();
    let used: BTreeSet<[u8; 32]> = (0..200)
        .flat_map(|s| select_path(&mut rng(s), &dir, &request(3, Some(80), &none)).unwrap())
        .map(|d| d.signing_key)
        .collect();
    assert_eq!(used.len(), 4, "capped weights: every relay is chosen sometimes");
}

#[test]
fn the_same_seed_gives_the_same_path() {
    let relays: Vec<RelayDescriptor> =
        (1..=12).map(|i| relay(i, u16::from(i % 4), [10, i, 0, 1], 1000 * u64::from(i), i % 2 == 0, WEB)).collect();
    let dir = directory(&relays);
    let none = BTreeSet::new();
    let a = select_path(&mut rng(5), &dir, &request(3, Some(80), &none)).unwrap();
    let b = select_path(&mut rng(5), &dir, &request(3, Some(80), &none)).unwrap();
    assert_eq!(a, b);
}

/// Every valid path by brute force, as node indices in choice order
/// (exit, guard, middles), ignoring diversity.
fn brute_force(relays: &[RelayDescriptor], req: &PathRequest) -> Vec<Vec<usize>> {
    let usable: Vec<usize> = (0..relays.len()).filter(|&i| !req.exclude.contains(&relays[i].node_id())).collect();
    let mut out = Vec::new();
    let mut current = Vec::new();
    fn rec(
        relays: &[RelayDescriptor],
        req: &PathRequest,
        usable: &[usize],
        cur: &mut Vec<usize>,
        out: &mut Vec<Vec<usize>>,
    ) {
        if cur.len() == req.hops {
            out.push(cur.clone());
            return;
        }
        for &i in usable {
            if cur.contains(&i) {
                continue;
            }
            let c = Candidate::new(relays[i].node_id(), &relays[i], req);
            let role = roles(req.hops)[cur.len()];
            if c.fits(role) {
                cur.push(i);
                rec(relays, req, usable, cur, out);
                cur.pop();
            }
        }
    }
    rec(relays, req, &usable, &mut current, &mut out);
    out
}

fn holds(relays: &[RelayDescriptor], path: &[usize], level: Diversity) -> bool {
    let regions: BTreeSet<u16> = path.iter().map(|&i| relays[i].region).collect();
    let subnets: BTreeSet<Subnet> = path.iter().map(|&i| subnet_of(&relays[i].addr)).collect();
    (!level.regions || regions.len() == path.len()) && (!level.subnets || subnets.len() == path.len())
}

fn arb_relay() -> impl Strategy<Value = (u16, u8, u8, bool, u8)> {
    // region, subnet, bandwidth scale, guard flag, policy index
    (0u16..4, 0u8..4, 1u8..10, any::<bool>(), 0u8..4)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn paths_obey_every_rule_and_diversity_whenever_possible(
        specs in prop::collection::vec(arb_relay(), 1..8),
        hops in 1usize..5,
        port in prop::option::of(prop::sample::select(vec![22u16, 80, 443])),
        host in prop::option::of(prop::sample::select(vec!["a.internal", "example.com"])),
        pin in prop::option::of(0usize..8),
        excluded in prop::collection::btree_set(0usize..8, 0..3),
        distinct_regions in any::<bool>(),
        seed in any::<u64>(),
    ) {
        const POLICIES: [&[&str]; 4] = [NONE, WEB, &["accept *.internal:*"], &["reject *:22", "accept *:*"]];
        let relays: Vec<RelayDescriptor> = specs
            .iter()
            .enumerate()
            .map(|(i, &(region, subnet, bw, guard, policy))| {
                relay(i as u8 + 1, region, [10, subnet, i as u8, 1], u64::from(bw) * 1000, guard, POLICIES[usize::from(policy)])
            })
            .collect();
        let dir = directory(&relays);
        let exclude: BTreeSet<NodeId> = excluded.iter().filter_map(|&i| relays.get(i)).map(|d| d.node_id()).collect();
        let guard = pin.and_then(|i| relays.get(i)).map(|d| d.node_id());
        let req = PathRequest { hops, exit_port: port, exit_host: host, guard, exclude: &exclude, distinct_regions };
        let valid = brute_force(&relays, &req);
        let result = select_path(&mut rng(seed), &dir, &req);
        let Ok(path) = result else {
            prop_assert!(valid.is_empty(), "failed with {result:?} though {} paths exist", valid.len());
            return Ok(());
        };
        prop_assert_eq!(path.len(), hops);
        let index = |d: &RelayDescriptor| relays.iter().position(|r| r == d).unwrap();
        let mut chosen: Vec<usize> = path.iter().map(index).collect();
        // Back to choice order (exit, guard, middles) to compare with the brute force.
        if hops > 1 {
            let exit = chosen.pop().unwrap();
            chosen.insert(0, exit);
        }
        prop_assert!(valid.contains(&chosen), "not a valid path: {:?}", chosen);
        let ids: BTreeSet<NodeId> = path.iter().map(|d| d.node_id()).collect();
        prop_assert_eq!(ids.len(), hops);
        prop_assert!(ids.is_disjoint(&exclude));
        if let Some(pinned) = guard {
            prop_assert_eq!(path[0].node_id(), pinned);
        } else {
            prop_assert!(path[0].is_guard());
        }
        if let Some(port) = port {
            let exit = &path[hops - 1].exit_policy;
            let allowed = match host {
                Some(h) => exit.allows(h, port),
                None => exit.allows_some_host_on(port),
            };
            prop_assert!(allowed, "exit refuses the destination");
        }
        // The strongest diversity level any valid path meets is met.
        let levels: &[Diversity] = if distinct_regions {
            &[Diversity::BOTH, Diversity::REGIONS, Diversity::SUBNETS]
        } else {
            &[Diversity::SUBNETS]
        };
        if let Some(level) = levels.iter().find(|&&l| valid.iter().any(|p| holds(&relays, p, l))) {
            prop_assert!(holds(&relays, &chosen, *level), "{:?} possible but not met by {:?}", level, chosen);
        }
    }
}
