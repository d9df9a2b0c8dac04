//! Signed membership lists and join tokens.
//!
//! Version 1 of a group's membership is signed by the founder, whose
//! public key every member is configured with. A later version is signed
//! by the member that led the group when it made the change (or by the
//! founder again). A join token is the founder's permission for one key
//! to join at one priority.

use crate::identity::{Identity, NodeId, SIGNATURE_LEN, verify_signature};
use crate::node::Addr;
use crate::wire;

/// Most members of one group.
pub const MAX_MEMBERS: usize = 64;

/// Longest group name, in bytes.
pub const MAX_GROUP_NAME: usize = 64;

const MEMBERSHIP_CONTEXT: &[u8] = b"allium 2026-11 election membership v1";
const TOKEN_CONTEXT: &[u8] = b"allium 2026-11 election join token v1";

/// Why a membership list or a join token was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MembershipError {
    /// The group name is empty or longer than [`MAX_GROUP_NAME`].
    #[error("group name must be 1 ..= 64 bytes")]
    BadGroupName,
    /// No members, or more than [`MAX_MEMBERS`].
    #[error("a membership lists 1 ..= 64 members")]
    BadSize,
    /// Members are not in strictly increasing id order (or one is listed twice).
    #[error("members must be sorted by id without duplicates")]
    NotSorted,
    /// A member's id is not the hash of its signing key.
    #[error("member id does not match its key")]
    IdMismatch,
    /// Version 0 is not a version.
    #[error("version must be at least 1")]
    BadVersion,
    /// The signature does not verify, or the signer is not allowed to sign.
    #[error("bad signature or signer")]
    BadSignature,
    /// The token or list is for another group.
    #[error("wrong group")]
    WrongGroup,
    /// The token's `expires_version` has passed.
    #[error("token expired")]
    Expired,
}

/// One member of a group.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Member {
    /// The member's node id (BLAKE3 of `signing_key`).
    pub id: NodeId,
    /// The member's Ed25519 public key: its requests and grants verify against it.
    pub signing_key: [u8; 32],
    /// Where the member takes election datagrams.
    pub addr: Addr,
    /// Takeover priority: higher stands sooner (and, with preemption, takes
    /// the role back). 0 ..= 255.
    pub priority: u8,
}

impl Member {
    /// A member entry for `identity` reachable at `addr`.
    pub fn of(identity: &Identity, addr: Addr, priority: u8) -> Member {
        let signing_key = identity.public().signing_key;
        Member { id: identity.id(), signing_key, addr, priority }
    }
}

/// One version of a group's membership, signed.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Membership {
    /// The group's name (1 ..= 64 bytes).
    pub group: String,
    /// The version, from 1; each later version differs from the one before
    /// by one member added or removed.
    pub version: u64,
    /// The members, sorted by id.
    pub members: Vec<Member>,
    /// The signer's Ed25519 public key (the founder, or the leader that made the change).
    pub signer: [u8; 32],
    /// Signature over everything above.
    pub signature: [u8; SIGNATURE_LEN],
}

impl Membership {
    /// Builds and signs a membership (members are sorted and de-duplicated by id).
    pub fn sign(signer: &Identity, group: &str, version: u64, mut members: Vec<Member>) -> Membership {
        members.sort_by_key(|a| a.id);
        members.dedup_by(|a, b| a.id == b.id);
        let mut m = Membership {
            group: group.to_string(),
            version,
            members,
            signer: signer.public().signing_key,
            signature: [0; SIGNATURE_LEN],
        };
        m.signature = signer.sign(&m.signed_bytes());
        m
    }

    /// Version 1 signed by the founder: what every member's configuration carries.
    pub fn founder(founder: &Identity, group: &str, members: Vec<Member>) -> Membership {
        Membership::sign(founder, group, 1, members)
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = MEMBERSHIP_CONTEXT.to_vec();
        out.extend(wire::encode_plain(&(&self.group, self.version, &self.members, &self.signer)));
        out
    }

    /// Checks the shape and the signature (by whoever `signer` names; the
    /// caller decides whether that signer may sign).
    pub fn verify(&self) -> Result<(), MembershipError> {
        if self.group.is_empty() || self.group.len() > MAX_GROUP_NAME {
            return Err(MembershipError::BadGroupName);
        }
        if self.version == 0 {
            return Err(MembershipError::BadVersion);
        }
        if self.members.is_empty() || self.members.len() > MAX_MEMBERS {
            return Err(MembershipError::BadSize);
        }
        if self.members.windows(2).any(|w| w[0].id >= w[1].id) {
            return Err(MembershipError::NotSorted);
        }
        if self.members.iter().any(|m| NodeId::from_public_key(&m.signing_key) != m.id) {
            return Err(MembershipError::IdMismatch);
        }
        if !verify_signature(&self.signer, &self.signed_bytes(), &self.signature) {
            return Err(MembershipError::BadSignature);
        }
        Ok(())
    }

    /// The member with id `id`.
    pub fn member(&self, id: &NodeId) -> Option<&Member> {
        self.members.binary_search_by(|m| m.id.cmp(id)).ok().map(|i| &self.members[i])
    }

    /// The member whose signing key is `key`.
    pub fn member_by_key(&self, key: &[u8; 32]) -> Option<&Member> {
        self.member(&NodeId::from_public_key(key))
    }

    /// Grants needed for a lease: a strict majority of the members.
    pub fn quorum(&self) -> usize {
        self.members.len() / 2 + 1
    }

    /// A digest of the whole signed list (two lists of one version that
    /// differ have different digests).
    pub fn digest(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new_derive_key("allium 2026-11 election membership digest v1");
        hasher.update(&self.signed_bytes()).update(&self.signature);
        *hasher.finalize().as_bytes()
    }

    /// Whether `next` differs from `self` by exactly one member added or
    /// removed (the ids), whatever else changed.
    pub fn one_change_from(&self, next: &Membership) -> bool {
        let (a, b) = (&self.members, &next.members);
        let (small, large) = if a.len() < b.len() { (a, b) } else { (b, a) };
        large.len() == small.len() + 1 && small.iter().all(|m| large.iter().any(|n| n.id == m.id))
    }

    /// The bincode encoding (to export or store a list).
    pub fn encode(&self) -> Vec<u8> {
        wire::encode_plain(self)
    }

    /// Decodes and verifies a list from [`Membership::encode`]'s bytes.
    pub fn decode(bytes: &[u8]) -> Result<Membership, crate::wire::WireError> {
        let m: Membership = wire::decode_body(bytes)?;
        m.verify().map_err(|_| crate::wire::WireError::Protocol("invalid membership"))?;
        Ok(m)
    }
}

/// The founder's permission for the node with `node` as signing key to join `group`.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct JoinToken {
    /// The group.
    pub group: String,
    /// The joining node's Ed25519 public key.
    pub node: [u8; 32],
    /// The priority it joins with.
    pub priority: u8,
    /// The token is refused for a membership version above this one
    /// (bounds replays after a removal); `None` never expires.
    pub expires_version: Option<u64>,
    /// The founder's signature over everything above.
    pub signature: [u8; SIGNATURE_LEN],
}

impl JoinToken {
    /// A token signed by `founder`.
    pub fn sign(
        founder: &Identity,
        group: &str,
        node: [u8; 32],
        priority: u8,
        expires_version: Option<u64>,
    ) -> JoinToken {
        let mut t =
            JoinToken { group: group.to_string(), node, priority, expires_version, signature: [0; SIGNATURE_LEN] };
        t.signature = founder.sign(&t.signed_bytes());
        t
    }

    fn signed_bytes(&self) -> Vec<u8> {
        let mut out = TOKEN_CONTEXT.to_vec();
        out.extend(wire::encode_plain(&(&self.group, &self.node, self.priority, self.expires_version)));
        out
    }

    /// Checks the token for `group` against `founder`, for a membership
    /// that would get version `next_version`.
    pub fn verify(&self, group: &str, founder: &[u8; 32], next_version: u64) -> Result<(), MembershipError> {
        if self.group != group {
            return Err(MembershipError::WrongGroup);
        }
        if self.expires_version.is_some_and(|v| next_version > v) {
            return Err(MembershipError::Expired);
        }
        if !verify_signature(founder, &self.signed_bytes(), &self.signature) {
            return Err(MembershipError::BadSignature);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::CryptoSuite;
    use crate::rng::NodeSeed;

    fn id(i: u64) -> Identity {
        Identity::from_seed(&NodeSeed::derive(9, i), CryptoSuite::Real)
    }

    fn addr(i: u16) -> Addr {
        ([127, 0, 0, 1], 4000 + i).into()
    }

    #[test]
    fn sign_verify_and_tamper() {
        let founder = id(0);
        let members: Vec<Member> = (1..=3).map(|i| Member::of(&id(i), addr(i as u16), 200)).collect();
        let m = Membership::founder(&founder, "g", members.clone());
        assert_eq!(m.verify(), Ok(()));
        assert_eq!(m.signer, founder.public().signing_key);
        assert_eq!(m.quorum(), 2);
        assert!(m.member(&id(2).id()).is_some());
        assert!(m.member_by_key(&id(3).public().signing_key).is_some());
        assert!(m.member(&id(4).id()).is_none());
        assert_eq!(Membership::decode(&m.encode()), Ok(m.clone()));

        let mut bad = m.clone();
        bad.members[0].priority = 1;
        assert_eq!(bad.verify(), Err(MembershipError::BadSignature));
        let mut bad = m.clone();
        bad.version = 2;
        assert_eq!(bad.verify(), Err(MembershipError::BadSignature));
        let mut bad = m.clone();
        bad.members.swap(0, 1);
        assert_eq!(bad.verify(), Err(MembershipError::NotSorted));
        let mut bad = m.clone();
        bad.members[0].id = NodeId([0; 32]);
        assert!(bad.verify().is_err());
        assert_eq!(Membership::sign(&founder, "", 1, members.clone()).verify(), Err(MembershipError::BadGroupName));
        assert_eq!(Membership::sign(&founder, "g", 0, members.clone()).verify(), Err(MembershipError::BadVersion));
        assert_eq!(Membership::sign(&founder, "g", 1, vec![]).verify(), Err(MembershipError::BadSize));

        let mut four = members.clone();
        four.push(Member::of(&id(4), addr(4), 1));
        let next = Membership::sign(&id(1), "g", 2, four.clone());
        assert!(m.one_change_from(&next) && next.one_change_from(&m));
        assert_ne!(m.digest(), next.digest());
        let mut five = four;
        five.push(Member::of(&id(5), addr(5), 1));
        assert!(!m.one_change_from(&Membership::sign(&id(1), "g", 2, five)));
        assert!(!m.one_change_from(&m));
    }

    #[test]
    fn tokens() {
        let founder = id(0);
        let t = JoinToken::sign(&founder, "g", id(7).public().signing_key, 9, Some(3));
        let key = founder.public().signing_key;
        assert_eq!(t.verify("g", &key, 3), Ok(()));
        assert_eq!(t.verify("g", &key, 4), Err(MembershipError::Expired));
        assert_eq!(t.verify("h", &key, 2), Err(MembershipError::WrongGroup));
        assert_eq!(t.verify("g", &id(1).public().signing_key, 2), Err(MembershipError::BadSignature));
        let mut forged = t.clone();
        forged.priority = 255;
        assert_eq!(forged.verify("g", &key, 2), Err(MembershipError::BadSignature));
    }
}
