//! Targets for relay descriptors: decoding arbitrary bytes, and signing
//! descriptors built from fuzzer-chosen fields and then damaging them.

use crate::pool;
use allium_engine::Addr;
use allium_engine::circuit::descriptor::{KNOWN_FLAGS, MAX_DESCRIPTOR_BYTES};
use allium_engine::circuit::policy::{Action, HostPattern, Rule};
use allium_engine::circuit::{DescriptorError, ExitPolicy, FLAG_GUARD, RelayConfig, RelayDescriptor};
use allium_engine::wire::WireError;
use bolero::TypeGenerator;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::LazyLock;

/// Labels a body decoder may produce.
const DECODE_LABELS: [&str; 5] = ["truncated", "limit", "invalid", "trailing", "protocol"];

/// A valid descriptor (pool peer 0, an exit) the decode target splices
/// fuzzer bytes into, so that inputs reach the checks behind the codec.
static VALID: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let config = RelayConfig {
        exit_policy: ExitPolicy::parse(&["reject *.internal:*", "accept *:80-443"]).unwrap_or_default(),
        region: 5,
        ..RelayConfig::default()
    };
    let addr = SocketAddr::from((Ipv4Addr::new(192, 0, 2, 1), 4000));
    RelayDescriptor::sign(&pool::peer(0).identity, addr, &config, 7).encode()
});

/// `descriptor_decode`: [`RelayDescriptor::decode`] never panics, on the
/// raw bytes and on a valid descriptor with the bytes spliced in (the first
/// two bytes choose where); a descriptor that decodes is within the size
/// limit, re-encodes to exactly the same bytes, decodes again to itself,
/// and meets every field rule; an error maps to a typed body error.
pub fn descriptor_decode(bytes: &[u8]) {
    check_decode(bytes);
    let valid = &*VALID;
    if let [hi, lo, patch @ ..] = bytes {
        let at = usize::from(u16::from_be_bytes([*hi, *lo])) % (valid.len() + 1);
        let mut spliced = valid[..at].to_vec();
        spliced.extend_from_slice(patch);
        spliced.extend_from_slice(valid.get(at + patch.len()..).unwrap_or_default());
        check_decode(&spliced);
        assert_eq!(RelayDescriptor::decode(&spliced).is_ok(), spliced == *valid, "only the signed bytes verify");
    }
}

fn check_decode(bytes: &[u8]) {
    match RelayDescriptor::decode(bytes) {
        Ok(descriptor) => {
            assert!(bytes.len() <= MAX_DESCRIPTOR_BYTES);
            assert_eq!(descriptor.encode(), bytes, "the encoding is canonical");
            assert_eq!(RelayDescriptor::decode(bytes).as_ref(), Ok(&descriptor));
            assert!(descriptor.bandwidth_bytes_per_sec > 0);
            assert_eq!(descriptor.flags & !KNOWN_FLAGS, 0);
            assert!(descriptor.exit_policy.is_well_formed());
        }
        Err(error) => {
            let wire = WireError::from(error);
            assert!(DECODE_LABELS.contains(&wire.label()), "unexpected error {wire:?}");
        }
    }
}

/// A fuzzer-chosen address.
#[derive(Clone, Copy, Debug, TypeGenerator)]
pub enum AddrInput {
    /// IPv4 address and port.
    V4([u8; 4], u16),
    /// IPv6 address and port.
    V6([u8; 16], u16),
}

/// A fuzzer-chosen exit-policy rule; rarely (1 in 256 for each way) malformed.
#[derive(Clone, Debug, TypeGenerator)]
pub struct RuleInput {
    /// Accept or reject.
    pub accept: bool,
    /// Modulo 3 — 0: any host; 1: exact name; 2: suffix.
    pub host_kind: u8,
    /// The host name.
    pub host: String,
    /// 0: the name is used as is (the policy rules may refuse it); else it
    /// is mapped onto host-name characters.
    pub raw: u8,
    /// First port.
    pub port_min: u16,
    /// Last port is `port_min + port_span` (saturating).
    pub port_span: u16,
    /// 0: first and last port are swapped (malformed when they differ).
    pub reversed: u8,
}

/// Fuzzer input for [`descriptor_round_trip`].
#[derive(Clone, Debug, TypeGenerator)]
pub struct DescriptorInput {
    /// The signing pool peer (modulo the pool size).
    pub peer: u8,
    /// Where the relay lives.
    pub addr: AddrInput,
    /// Offered bandwidth (0 is published as 1).
    pub bandwidth: u64,
    /// Configured flags (bits beyond guard and stable are dropped).
    pub flags: u8,
    /// Region.
    pub region: u16,
    /// Exit-policy rules.
    pub rules: Vec<RuleInput>,
    /// Descriptor version.
    pub version: u64,
    /// Byte to flip in the encoding (modulo its length).
    pub flip: u32,
    /// Bit to flip in that byte.
    pub bit: u8,
}

fn host_of(rule: &RuleInput) -> HostPattern {
    let name = if rule.raw != 0 {
        const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789.-_";
        let mapped: String =
            rule.host.bytes().take(80).map(|b| ALPHABET[usize::from(b) % ALPHABET.len()] as char).collect();
        if mapped.is_empty() { "h".to_string() } else { mapped }
    } else {
        rule.host.clone()
    };
    match rule.host_kind % 3 {
        0 => HostPattern::Any,
        1 => HostPattern::Exact(name),
        _ => HostPattern::Suffix(name),
    }
}

/// `descriptor_round_trip`: a descriptor signed from fuzzer-chosen fields
/// either is refused by [`RelayDescriptor::try_sign`] for a reason the
/// fields explain (too large, malformed policy), or decodes to itself, names
/// the signing peer, carries the exit flag exactly when the policy lets
/// something out; and any single flipped bit of its encoding is refused.
pub fn descriptor_round_trip(input: &DescriptorInput) {
    let addr: Addr = match input.addr {
        AddrInput::V4(ip, port) => SocketAddr::from((Ipv4Addr::from(ip), port)),
        AddrInput::V6(ip, port) => SocketAddr::from((Ipv6Addr::from(ip), port)),
    };
    let rules = input
        .rules
        .iter()
        .map(|r| {
            let (low, high) = (r.port_min, r.port_min.saturating_add(r.port_span));
            let (port_min, port_max) = if r.reversed == 0 { (high, low) } else { (low, high) };
            Rule {
                action: if r.accept { Action::Accept } else { Action::Reject },
                host: host_of(r),
                port_min,
                port_max,
            }
        })
        .collect();
    let config = RelayConfig {
        enabled: true,
        region: input.region,
        bandwidth_bytes_per_sec: input.bandwidth,
        flags: input.flags,
        exit_policy: ExitPolicy { rules },
    };
    let peer = pool::peer(input.peer);
    let signed = RelayDescriptor::sign(&peer.identity, addr, &config, input.version);
    let encoded = signed.encode();
    let descriptor = match RelayDescriptor::try_sign(&peer.identity, addr, &config, input.version) {
        Ok(descriptor) => descriptor,
        Err(DescriptorError::TooLarge { len }) => {
            assert!(len > MAX_DESCRIPTOR_BYTES && encoded.len() == len);
            return;
        }
        Err(DescriptorError::Policy) => {
            assert!(!config.exit_policy.is_well_formed());
            return;
        }
        Err(other) => panic!("signing produced a refused descriptor: {other}"),
    };
    assert_eq!(descriptor, signed, "signing is deterministic");
    assert_eq!(RelayDescriptor::decode(&encoded).as_ref(), Ok(&descriptor));
    assert_eq!(descriptor.node_id(), peer.identity.id());
    assert_eq!(descriptor.peer().addr, addr);
    assert_eq!(descriptor.is_guard(), input.flags & FLAG_GUARD != 0);
    assert_eq!(descriptor.is_exit(), config.exit_policy.is_exit());
    let mut bad = encoded.clone();
    let at = input.flip as usize % bad.len();
    bad[at] ^= 1 << (input.bit % 8);
    assert!(RelayDescriptor::decode(&bad).is_err(), "a flipped bit at {at} went unnoticed");
}
