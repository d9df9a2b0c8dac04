//! Relay descriptors: what a relay publishes about itself so that clients
//! can put it on a path.
//!
//! A relay stores its descriptor in the DHT as a value record under
//! [`descriptor_name`] (the DHT key is [`crate::dht::key_for_name`] of that
//! name). The DHT signs the record with the publisher's identity, but the
//! descriptor is signed by the relay's Ed25519 key as well, so it stands
//! alone wherever it travels.
//!
//! Encoding: the bincode encoding (standard varint configuration, via
//! [`crate::wire::encode_plain`]) of every field in declaration order; the
//! signature, a fixed 64-byte array, comes last, so the *unsigned part* is
//! the encoding minus its last 64 bytes. The signature covers
//! [`SIGNING_CONTEXT`] followed by the unsigned part exactly as it appears
//! in the bytes, and a decoder also insists that the bytes are the
//! canonical encoding of what they decode to, so `decode(b).encode() == b`.

use super::api::{FLAG_GUARD, FLAG_STABLE, RelayConfig};
use super::policy::ExitPolicy;
use crate::crypto::KxPublic;
use crate::dht::{PeerInfo, ValueRecord, key_for_name};
use crate::identity::{Identity, NodeId, SIGNATURE_LEN, verify_signature};
use crate::node::Addr;
use crate::wire::{self, WireError};

/// Bit of [`RelayDescriptor::flags`]: the exit policy lets something out.
/// Set by [`RelayDescriptor::sign`] from the policy; a descriptor whose
/// flag disagrees with its policy is refused.
pub const FLAG_EXIT: u8 = 4;
/// Every flag bit a descriptor may carry; any other bit is refused.
pub const KNOWN_FLAGS: u8 = FLAG_GUARD | FLAG_STABLE | FLAG_EXIT;
/// Largest encoded descriptor a decoder accepts, in bytes. (The DHT's own
/// `dht.max_value_bytes`, default 1024, is the tighter bound in practice.)
pub const MAX_DESCRIPTOR_BYTES: usize = 4096;
/// Domain separation for descriptor signatures.
pub const SIGNING_CONTEXT: &[u8] = b"allium relay descriptor v1";
/// Prefix of every descriptor's DHT name.
pub const NAME_PREFIX: &[u8] = b"allium/relay/v1/";
/// The bincode decode limit. bincode counts the *in-memory* size of what a
/// length prefix announces against it (a 64-rule policy claims more than its
/// wire size), so it is looser than [`MAX_DESCRIPTOR_BYTES`], which the
/// input length is checked against first; it still caps what a lying length
/// prefix can make the decoder allocate.
const DECODE_LIMIT: usize = 64 * 1024;

/// A relay's signed self-description.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct RelayDescriptor {
    /// The relay's Ed25519 public key; its node id is
    /// [`NodeId::from_public_key`] of this.
    pub signing_key: [u8; 32],
    /// Where the relay takes datagrams.
    pub addr: Addr,
    /// The relay's onion (key-agreement) public key, for the circuit handshake.
    pub onion_key: KxPublic,
    /// Bandwidth the relay offers, in bytes per second (never 0); path
    /// selection weights relays by it.
    pub bandwidth_bytes_per_sec: u64,
    /// [`FLAG_GUARD`] | [`FLAG_STABLE`] | [`FLAG_EXIT`]; no other bits.
    pub flags: u8,
    /// The relay's declared region.
    pub region: u16,
    /// Where streams may leave through this relay.
    pub exit_policy: ExitPolicy,
    /// Publication counter; a newer descriptor has a higher version.
    pub version: u64,
    /// Ed25519 signature over [`SIGNING_CONTEXT`] and the unsigned part.
    pub signature: [u8; SIGNATURE_LEN],
}

/// Why a descriptor (or the DHT record carrying it) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DescriptorError {
    /// The bytes do not decode.
    #[error("descriptor does not decode: {0}")]
    Decode(#[from] WireError),
    /// Longer than [`MAX_DESCRIPTOR_BYTES`].
    #[error("descriptor of {len} bytes exceeds the maximum")]
    TooLarge {
        /// Length, in bytes.
        len: usize,
    },
    /// The bytes decode but are not the canonical encoding of the result.
    #[error("descriptor encoding is not canonical")]
    NonCanonical,
    /// Bandwidth 0.
    #[error("descriptor offers no bandwidth")]
    ZeroBandwidth,
    /// A flag bit outside [`KNOWN_FLAGS`].
    #[error("unknown flag bits {0:#04x}")]
    UnknownFlags(u8),
    /// [`FLAG_EXIT`] disagrees with whether the policy lets anything out.
    #[error("exit flag disagrees with the exit policy")]
    ExitFlag,
    /// The exit policy breaks the structural limits.
    #[error("exit policy is malformed")]
    Policy,
    /// The signature does not verify against `signing_key`.
    #[error("bad descriptor signature")]
    Signature,
    /// The DHT record is not stored under the relay's descriptor key.
    #[error("record stored under the wrong key")]
    RecordKey,
    /// The DHT record was published by someone other than the relay.
    #[error("record published by another node")]
    RecordPublisher,
    /// The descriptor describes another relay than the one asked for.
    #[error("descriptor of another relay")]
    WrongRelay,
}

impl From<DescriptorError> for WireError {
    fn from(e: DescriptorError) -> Self {
        match e {
            DescriptorError::Decode(inner) => inner,
            DescriptorError::TooLarge { .. } => WireError::LimitExceeded,
            DescriptorError::NonCanonical => WireError::Protocol("non-canonical descriptor"),
            DescriptorError::ZeroBandwidth => WireError::Protocol("descriptor without bandwidth"),
            DescriptorError::UnknownFlags(_) => WireError::Protocol("unknown descriptor flags"),
            DescriptorError::ExitFlag => WireError::Protocol("descriptor exit flag"),
            DescriptorError::Policy => WireError::Protocol("malformed exit policy"),
            DescriptorError::Signature => WireError::Protocol("bad descriptor signature"),
            DescriptorError::RecordKey => WireError::Protocol("descriptor record key"),
            DescriptorError::RecordPublisher => WireError::Protocol("descriptor record publisher"),
            DescriptorError::WrongRelay => WireError::Protocol("descriptor of another relay"),
        }
    }
}

/// The DHT name a relay's descriptor is stored under:
/// `b"allium/relay/v1/"` followed by the 32 id bytes.
pub fn descriptor_name(id: &NodeId) -> Vec<u8> {
    let mut name = Vec::with_capacity(NAME_PREFIX.len() + 32);
    name.extend_from_slice(NAME_PREFIX);
    name.extend_from_slice(id.as_bytes());
    name
}

impl RelayDescriptor {
    /// Builds and signs the descriptor of the relay `identity`, reachable at
    /// `addr`, as configured by `config`. Flags outside
    /// [`FLAG_GUARD`] | [`FLAG_STABLE`] are dropped, [`FLAG_EXIT`] is set
    /// exactly when the policy lets something out, and a bandwidth of 0 is
    /// published as 1. It does not check the policy's size: use
    /// [`RelayDescriptor::try_sign`] to learn whether decoders will accept it.
    pub fn sign(identity: &Identity, addr: Addr, config: &RelayConfig, version: u64) -> RelayDescriptor {
        let exit = if config.exit_policy.is_exit() { FLAG_EXIT } else { 0 };
        let mut descriptor = RelayDescriptor {
            signing_key: identity.public().signing_key,
            addr,
            onion_key: identity.public().onion_key,
            bandwidth_bytes_per_sec: config.bandwidth_bytes_per_sec.max(1),
            flags: (config.flags & (FLAG_GUARD | FLAG_STABLE)) | exit,
            region: config.region,
            exit_policy: config.exit_policy.clone(),
            version,
            signature: [0; SIGNATURE_LEN],
        };
        let encoded = descriptor.encode();
        descriptor.signature = identity.sign(&signing_message(&encoded));
        descriptor
    }

    /// [`RelayDescriptor::sign`], then the checks a decoder makes (size,
    /// policy limits): the error says why peers would refuse it.
    pub fn try_sign(
        identity: &Identity,
        addr: Addr,
        config: &RelayConfig,
        version: u64,
    ) -> Result<RelayDescriptor, DescriptorError> {
        let descriptor = Self::sign(identity, addr, config, version);
        let len = descriptor.encode().len();
        if len > MAX_DESCRIPTOR_BYTES {
            return Err(DescriptorError::TooLarge { len });
        }
        descriptor.check_fields()?;
        Ok(descriptor)
    }

    /// The encoding (see the module documentation).
    pub fn encode(&self) -> Vec<u8> {
        wire::encode_plain(self)
    }

    /// Decodes and verifies a descriptor: size limit, whole input consumed,
    /// canonical encoding, bandwidth above 0, no unknown flag bits, the exit
    /// flag matching the policy, a well-formed policy, and a valid signature.
    pub fn decode(bytes: &[u8]) -> Result<RelayDescriptor, DescriptorError> {
        if bytes.len() > MAX_DESCRIPTOR_BYTES {
            return Err(DescriptorError::TooLarge { len: bytes.len() });
        }
        let (descriptor, used): (RelayDescriptor, usize) = wire::decode_prefix_limited::<_, DECODE_LIMIT>(bytes)?;
        if used != bytes.len() {
            return Err(WireError::TrailingBytes { extra: bytes.len() - used }.into());
        }
        descriptor.check_fields()?;
        if descriptor.encode() != bytes {
            return Err(DescriptorError::NonCanonical);
        }
        let message = signing_message(bytes);
        if !verify_signature(&descriptor.signing_key, &message, &descriptor.signature) {
            return Err(DescriptorError::Signature);
        }
        Ok(descriptor)
    }

    /// The relay's node id.
    pub fn node_id(&self) -> NodeId {
        NodeId::from_public_key(&self.signing_key)
    }

    /// The relay as a contact.
    pub fn peer(&self) -> PeerInfo {
        PeerInfo { id: self.node_id(), addr: self.addr }
    }

    /// Whether streams may leave through this relay at all.
    pub fn is_exit(&self) -> bool {
        self.exit_policy.is_exit()
    }

    /// Whether the relay is willing to be a first hop ([`FLAG_GUARD`]).
    pub fn is_guard(&self) -> bool {
        self.flags & FLAG_GUARD != 0
    }

    /// Whether the relay expects long uptime ([`FLAG_STABLE`]).
    pub fn is_stable(&self) -> bool {
        self.flags & FLAG_STABLE != 0
    }

    fn check_fields(&self) -> Result<(), DescriptorError> {
        if self.bandwidth_bytes_per_sec == 0 {
            return Err(DescriptorError::ZeroBandwidth);
        }
        if self.flags & !KNOWN_FLAGS != 0 {
            return Err(DescriptorError::UnknownFlags(self.flags & !KNOWN_FLAGS));
        }
        if !self.exit_policy.is_well_formed() {
            return Err(DescriptorError::Policy);
        }
        if (self.flags & FLAG_EXIT != 0) != self.exit_policy.is_exit() {
            return Err(DescriptorError::ExitFlag);
        }
        Ok(())
    }
}

/// Decodes the descriptor carried by a DHT value record fetched for the
/// relay `expected`, and checks that the record is stored under that
/// relay's descriptor key and that the record's publisher, the descriptor's
/// signer and `expected` are one node. (The DHT verified the record's own
/// signature when it accepted it; the descriptor's is verified here.)
pub fn descriptor_from_record(record: &ValueRecord, expected: &NodeId) -> Result<RelayDescriptor, DescriptorError> {
    if record.key != key_for_name(&descriptor_name(expected)) {
        return Err(DescriptorError::RecordKey);
    }
    if record.publisher_id() != *expected {
        return Err(DescriptorError::RecordPublisher);
    }
    let descriptor = RelayDescriptor::decode(&record.value)?;
    if descriptor.node_id() != *expected {
        return Err(DescriptorError::WrongRelay);
    }
    Ok(descriptor)
}

/// What the descriptor's signature covers.
fn signing_message(encoded: &[u8]) -> Vec<u8> {
    crate::identity::signed_part_message(SIGNING_CONTEXT, encoded)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CryptoSuite, NodeSeed};
    use std::net::{Ipv4Addr, SocketAddr};

    fn identity(i: u64) -> Identity {
        Identity::from_seed(&NodeSeed::derive(3, i), CryptoSuite::Real)
    }

    fn addr() -> Addr {
        SocketAddr::from((Ipv4Addr::new(192, 0, 2, 7), 4000))
    }

    fn exit_config() -> RelayConfig {
        RelayConfig {
            exit_policy: ExitPolicy::parse(&["accept *.internal:80-443", "reject *:*"]).unwrap(),
            region: 3,
            ..RelayConfig::default()
        }
    }

    #[test]
    fn signed_descriptors_round_trip_and_describe_the_relay() {
        let id = identity(1);
        let d = RelayDescriptor::sign(&id, addr(), &exit_config(), 5);
        let bytes = d.encode();
        assert!(bytes.len() < 300, "a typical descriptor fits a DHT value: {} bytes", bytes.len());
        assert_eq!(RelayDescriptor::decode(&bytes), Ok(d.clone()));
        assert_eq!(d.node_id(), id.id());
        assert_eq!(d.peer(), PeerInfo { id: id.id(), addr: addr() });
        assert_eq!(d.onion_key, id.public().onion_key);
        assert!(d.is_exit() && d.is_guard() && d.is_stable());
        assert_eq!(d.flags, FLAG_GUARD | FLAG_STABLE | FLAG_EXIT);

        let relay_only = RelayDescriptor::sign(&id, addr(), &RelayConfig::default(), 1);
        assert!(!relay_only.is_exit());
        assert_eq!(relay_only.flags & FLAG_EXIT, 0);
        assert_eq!(RelayDescriptor::decode(&relay_only.encode()), Ok(relay_only));
    }

    #[test]
    fn sign_sanitises_what_decoders_would_refuse() {
        let config = RelayConfig { bandwidth_bytes_per_sec: 0, flags: 0xFF, ..RelayConfig::default() };
        let d = RelayDescriptor::sign(&identity(1), addr(), &config, 1);
        assert_eq!(d.bandwidth_bytes_per_sec, 1);
        assert_eq!(d.flags, FLAG_GUARD | FLAG_STABLE);
        assert!(RelayDescriptor::decode(&d.encode()).is_ok());
    }

    /// Re-signs a tampered descriptor honestly, so only the rule under test fails.
    fn resign(mut d: RelayDescriptor, id: &Identity) -> Vec<u8> {
        let encoded = d.encode();
        d.signature = id.sign(&signing_message(&encoded));
        d.encode()
    }

    #[test]
    fn every_rule_is_enforced() {
        let id = identity(2);
        let good = RelayDescriptor::sign(&id, addr(), &exit_config(), 9);
        let bytes = good.encode();

        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            RelayDescriptor::decode(&trailing),
            Err(DescriptorError::Decode(WireError::TrailingBytes { extra: 1 }))
        );
        assert!(matches!(RelayDescriptor::decode(&bytes[..bytes.len() - 1]), Err(DescriptorError::Decode(_))));
        assert_eq!(
            RelayDescriptor::decode(&vec![0; MAX_DESCRIPTOR_BYTES + 1]),
            Err(DescriptorError::TooLarge { len: MAX_DESCRIPTOR_BYTES + 1 })
        );

        let zero = RelayDescriptor { bandwidth_bytes_per_sec: 0, ..good.clone() };
        assert_eq!(RelayDescriptor::decode(&resign(zero, &id)), Err(DescriptorError::ZeroBandwidth));
        let flags = RelayDescriptor { flags: good.flags | 0x40, ..good.clone() };
        assert_eq!(RelayDescriptor::decode(&resign(flags, &id)), Err(DescriptorError::UnknownFlags(0x40)));
        let no_exit_flag = RelayDescriptor { flags: FLAG_GUARD, ..good.clone() };
        assert_eq!(RelayDescriptor::decode(&resign(no_exit_flag, &id)), Err(DescriptorError::ExitFlag));
        let mut policy = good.exit_policy.clone();
        policy.rules[0].port_min = 500;
        let bad_policy = RelayDescriptor { exit_policy: policy, ..good.clone() };
        assert_eq!(RelayDescriptor::decode(&resign(bad_policy, &id)), Err(DescriptorError::Policy));

        let moved = RelayDescriptor { region: 4, ..good.clone() };
        assert_eq!(RelayDescriptor::decode(&moved.encode()), Err(DescriptorError::Signature));
        let other = identity(3);
        let stolen = RelayDescriptor { signing_key: other.public().signing_key, ..good.clone() };
        assert_eq!(RelayDescriptor::decode(&stolen.encode()), Err(DescriptorError::Signature));
        let mut bad_sig = good.clone();
        bad_sig.signature[10] ^= 1;
        assert_eq!(RelayDescriptor::decode(&bad_sig.encode()), Err(DescriptorError::Signature));

        // A non-canonical varint (bandwidth 1,000,000 written with the u64 tag)
        // decodes to the same value but is not the signed encoding.
        let mut long_form = good.clone();
        long_form.bandwidth_bytes_per_sec = 1_000_000;
        let canonical = long_form.encode();
        let bw = 1_000_000u32.to_le_bytes();
        let at = canonical.windows(5).position(|w| w[0] == 252 && w[1..] == bw).unwrap();
        let mut stretched = canonical[..at].to_vec();
        stretched.push(253);
        stretched.extend_from_slice(&1_000_000u64.to_le_bytes());
        stretched.extend_from_slice(&canonical[at + 5..]);
        // (bincode itself accepts the long form.)
        let (value, _): (RelayDescriptor, usize) =
            wire::decode_prefix_limited::<_, MAX_DESCRIPTOR_BYTES>(&stretched).unwrap();
        assert_eq!(value, long_form);
        assert_eq!(RelayDescriptor::decode(&stretched), Err(DescriptorError::NonCanonical));
    }

    #[test]
    fn too_large_policies_are_reported_by_try_sign() {
        let long_host = "a".repeat(200);
        let rules: Vec<String> = (0..30).map(|i| format!("accept {long_host}{i}:80")).collect();
        let config = RelayConfig { exit_policy: ExitPolicy::parse(&rules).unwrap(), ..RelayConfig::default() };
        let id = identity(4);
        assert!(matches!(RelayDescriptor::try_sign(&id, addr(), &config, 1), Err(DescriptorError::TooLarge { .. })));
        let big = RelayDescriptor::sign(&id, addr(), &config, 1);
        assert!(matches!(RelayDescriptor::decode(&big.encode()), Err(DescriptorError::TooLarge { .. })));
        assert!(RelayDescriptor::try_sign(&id, addr(), &exit_config(), 1).is_ok());
    }

    #[test]
    fn the_largest_policies_that_fit_decode() {
        // 64 rules with hosts sized so the encoding is just under the limit
        // (bincode's own limit counts memory, not wire bytes: found by fuzzing).
        let id = identity(4);
        let mut best = None;
        for host_len in 1..80 {
            let host = "h".repeat(host_len);
            let rules: Vec<String> =
                (0..crate::circuit::policy::MAX_RULES).map(|_| format!("accept {host}:80")).collect();
            let config = RelayConfig { exit_policy: ExitPolicy::parse(&rules).unwrap(), ..RelayConfig::default() };
            match RelayDescriptor::try_sign(&id, addr(), &config, 1) {
                Ok(d) => best = Some(d),
                Err(DescriptorError::TooLarge { .. }) => break,
                Err(other) => panic!("{other}"),
            }
        }
        let d = best.unwrap();
        let bytes = d.encode();
        assert!(bytes.len() > MAX_DESCRIPTOR_BYTES - 100, "{} bytes", bytes.len());
        assert_eq!(RelayDescriptor::decode(&bytes), Ok(d));
    }

    #[test]
    fn records_must_come_from_the_relay_under_its_own_key() {
        let id = identity(5);
        let d = RelayDescriptor::sign(&id, addr(), &exit_config(), 2);
        let key = key_for_name(&descriptor_name(&id.id()));
        assert!(descriptor_name(&id.id()).starts_with(b"allium/relay/v1/"));
        assert_eq!(descriptor_name(&id.id()).len(), NAME_PREFIX.len() + 32);

        let record = ValueRecord::sign(&id, key, d.encode(), 1, 3600);
        assert_eq!(descriptor_from_record(&record, &id.id()), Ok(d.clone()));

        let other = identity(6);
        assert_eq!(descriptor_from_record(&record, &other.id()), Err(DescriptorError::RecordKey));
        let wrong_key = ValueRecord::sign(&id, key_for_name(b"elsewhere"), d.encode(), 1, 3600);
        assert_eq!(descriptor_from_record(&wrong_key, &id.id()), Err(DescriptorError::RecordKey));
        // Someone else republishes the relay's (validly signed) descriptor.
        let replayed = ValueRecord::sign(&other, key, d.encode(), 1, 3600);
        assert_eq!(descriptor_from_record(&replayed, &id.id()), Err(DescriptorError::RecordPublisher));
        // The relay publishes another relay's descriptor under its own name.
        let foreign = RelayDescriptor::sign(&other, addr(), &exit_config(), 1);
        let swapped = ValueRecord::sign(&id, key, foreign.encode(), 1, 3600);
        assert_eq!(descriptor_from_record(&swapped, &id.id()), Err(DescriptorError::WrongRelay));
        let garbage = ValueRecord::sign(&id, key, vec![1, 2, 3], 1, 3600);
        assert!(matches!(descriptor_from_record(&garbage, &id.id()), Err(DescriptorError::Decode(_))));
        let wire: WireError = DescriptorError::Signature.into();
        assert_eq!(wire.label(), "protocol");
    }
}
