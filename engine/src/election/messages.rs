//! Election datagrams (`MessageKind::Election`): bincode bodies, decoded
//! under the wire module's size limit, every one signed by its sender.

use super::membership::{JoinToken, MAX_GROUP_NAME, MAX_MEMBERS, Membership};
use crate::identity::{Identity, NodeId, SIGNATURE_LEN, verify_signature};
use crate::wire::{self, MessageKind, WireError};

const SIGNATURE_CONTEXT: &[u8] = b"allium 2026-11 election message v1";

/// A lease request: "grant me a lease of `duration_ms` for `group`".
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Request {
    /// The group.
    pub group: String,
    /// The attempt's ballot (greater than any the candidate has seen).
    pub ballot: u64,
    /// Random per attempt, echoed in replies: a reply to an earlier attempt
    /// (or an earlier run of the candidate) never counts for this one.
    pub nonce: [u8; 16],
    /// The candidate's Ed25519 public key.
    pub candidate: [u8; 32],
    /// The lease asked for, in milliseconds.
    pub duration_ms: u32,
    /// The candidate's membership version.
    pub version: u64,
    /// The digest of the candidate's membership list (see [`Membership::digest`]).
    pub digest: [u8; 32],
    /// Whether the candidate holds the lease and is renewing it (a heartbeat).
    pub renewal: bool,
    /// The candidate's membership list, attached for members it believes
    /// are behind (not covered by this signature: it carries its own).
    pub membership: Option<Membership>,
    /// The candidate's signature.
    pub signature: [u8; SIGNATURE_LEN],
}

/// A member's answer to a [`Request`]: a grant or a refusal.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Reply {
    /// The group.
    pub group: String,
    /// The request's ballot.
    pub ballot: u64,
    /// The request's nonce.
    pub nonce: [u8; 16],
    /// The candidate's id.
    pub candidate: NodeId,
    /// The replying member's Ed25519 public key.
    pub member: [u8; 32],
    /// The replying member's membership version.
    pub version: u64,
    /// The member's signature.
    pub signature: [u8; SIGNATURE_LEN],
}

/// A higher-priority member asks the leader to let its lease lapse.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Preempt {
    /// The group.
    pub group: String,
    /// The asking member's Ed25519 public key.
    pub member: [u8; 32],
    /// The leader asked.
    pub leader: NodeId,
    /// The ballot of the leader's renewal that prompted it.
    pub ballot: u64,
    /// The member's signature.
    pub signature: [u8; SIGNATURE_LEN],
}

/// A join request, with the founder's token, signed by the joining key.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Join {
    /// The token (names the group and the joining key).
    pub token: JoinToken,
    /// The joining node's signature.
    pub signature: [u8; SIGNATURE_LEN],
}

/// A member asks the leader to remove it.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub struct Leave {
    /// The group.
    pub group: String,
    /// The leaving member's Ed25519 public key.
    pub member: [u8; 32],
    /// The member's membership version when it asked.
    pub version: u64,
    /// The member's signature.
    pub signature: [u8; SIGNATURE_LEN],
}

/// Every election datagram body.
#[derive(Clone, Debug, PartialEq, Eq, bincode::Encode, bincode::Decode)]
pub enum ElectionMessage {
    /// A lease request or renewal.
    Request(Request),
    /// A grant.
    Grant(Reply),
    /// A refusal (promised to another, quiet after a restart, other version).
    Refuse(Reply),
    /// A preemption request.
    Preempt(Preempt),
    /// A new membership version pushed by the leader (self-signed).
    Update(Membership),
    /// A join request.
    Join(Join),
    /// A leave request.
    Leave(Leave),
}

fn signed<T: bincode::Encode>(tag: u8, fields: &T) -> Vec<u8> {
    let mut out = SIGNATURE_CONTEXT.to_vec();
    out.push(tag);
    out.extend(wire::encode_plain(fields));
    out
}

impl Request {
    fn signed_bytes(&self) -> Vec<u8> {
        let fields = (&self.group, self.ballot, &self.nonce, &self.candidate, self.duration_ms, self.version);
        signed(1, &(fields, &self.digest, self.renewal))
    }

    /// Signs the request with the candidate's key (sets `candidate` too).
    pub fn sign(mut self, identity: &Identity) -> Request {
        self.candidate = identity.public().signing_key;
        self.signature = identity.sign(&self.signed_bytes());
        self
    }

    /// Whether the candidate's signature verifies.
    pub fn verify(&self) -> bool {
        verify_signature(&self.candidate, &self.signed_bytes(), &self.signature)
    }
}

impl Reply {
    fn signed_bytes(&self, grant: bool) -> Vec<u8> {
        let fields = (&self.group, self.ballot, &self.nonce, &self.candidate, &self.member, self.version);
        signed(if grant { 2 } else { 3 }, &fields)
    }

    /// Signs the reply (a grant when `grant`) with the member's key.
    pub fn sign(mut self, identity: &Identity, grant: bool) -> Reply {
        self.member = identity.public().signing_key;
        self.signature = identity.sign(&self.signed_bytes(grant));
        self
    }

    /// Whether the member's signature verifies (for a grant when `grant`).
    pub fn verify(&self, grant: bool) -> bool {
        verify_signature(&self.member, &self.signed_bytes(grant), &self.signature)
    }
}

impl Preempt {
    fn signed_bytes(&self) -> Vec<u8> {
        signed(4, &(&self.group, &self.member, &self.leader, self.ballot))
    }

    /// Signs with the member's key.
    pub fn sign(mut self, identity: &Identity) -> Preempt {
        self.member = identity.public().signing_key;
        self.signature = identity.sign(&self.signed_bytes());
        self
    }

    /// Whether the member's signature verifies.
    pub fn verify(&self) -> bool {
        verify_signature(&self.member, &self.signed_bytes(), &self.signature)
    }
}

impl Join {
    fn signed_bytes(token: &JoinToken) -> Vec<u8> {
        signed(5, &(&token.group, &token.node, &token.signature))
    }

    /// A join request for `token`, signed by the joining node.
    pub fn new(identity: &Identity, token: JoinToken) -> Join {
        let signature = identity.sign(&Join::signed_bytes(&token));
        Join { token, signature }
    }

    /// Whether the joining key's signature verifies (the token is checked separately).
    pub fn verify(&self) -> bool {
        verify_signature(&self.token.node, &Join::signed_bytes(&self.token), &self.signature)
    }
}

impl Leave {
    fn signed_bytes(&self) -> Vec<u8> {
        signed(6, &(&self.group, &self.member, self.version))
    }

    /// Signs with the member's key.
    pub fn sign(mut self, identity: &Identity) -> Leave {
        self.member = identity.public().signing_key;
        self.signature = identity.sign(&self.signed_bytes());
        self
    }

    /// Whether the member's signature verifies.
    pub fn verify(&self) -> bool {
        verify_signature(&self.member, &self.signed_bytes(), &self.signature)
    }
}

impl ElectionMessage {
    /// The whole datagram.
    pub fn encode(&self) -> Vec<u8> {
        wire::encode(MessageKind::Election, self)
    }

    /// Decodes a body (after the 2-byte header) under the wire size limit;
    /// also refuses group names over 64 bytes and lists over 64 members.
    /// Signatures are checked by the machine, not here.
    pub fn decode(body: &[u8]) -> Result<ElectionMessage, WireError> {
        let message: ElectionMessage = wire::decode_body(body)?;
        let group_ok = |g: &str| !g.is_empty() && g.len() <= MAX_GROUP_NAME;
        let list_ok = |m: &Membership| group_ok(&m.group) && m.members.len() <= MAX_MEMBERS;
        let ok = match &message {
            ElectionMessage::Request(r) => group_ok(&r.group) && r.membership.as_ref().is_none_or(list_ok),
            ElectionMessage::Grant(r) | ElectionMessage::Refuse(r) => group_ok(&r.group),
            ElectionMessage::Preempt(p) => group_ok(&p.group),
            ElectionMessage::Update(m) => list_ok(m),
            ElectionMessage::Join(j) => group_ok(&j.token.group),
            ElectionMessage::Leave(l) => group_ok(&l.group),
        };
        if !ok {
            return Err(WireError::Protocol("election group name or list size"));
        }
        Ok(message)
    }

    /// The group the message is about.
    pub fn group(&self) -> &str {
        match self {
            ElectionMessage::Request(r) => &r.group,
            ElectionMessage::Grant(r) | ElectionMessage::Refuse(r) => &r.group,
            ElectionMessage::Preempt(p) => &p.group,
            ElectionMessage::Update(m) => &m.group,
            ElectionMessage::Join(j) => &j.token.group,
            ElectionMessage::Leave(l) => &l.group,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::CryptoSuite;
    use crate::election::membership::Member;
    use crate::rng::NodeSeed;

    fn id(i: u64) -> Identity {
        Identity::from_seed(&NodeSeed::derive(5, i), CryptoSuite::Real)
    }

    fn request() -> Request {
        Request {
            group: "g".into(),
            ballot: 7,
            nonce: [3; 16],
            candidate: [0; 32],
            duration_ms: 3000,
            version: 1,
            digest: [9; 32],
            renewal: true,
            membership: None,
            signature: [0; SIGNATURE_LEN],
        }
    }

    #[test]
    fn every_message_round_trips_and_signatures_bind() {
        let a = id(1);
        let founder = id(0);
        let members = vec![Member::of(&a, ([127, 0, 0, 1], 1).into(), 5)];
        let list = Membership::founder(&founder, "g", members);
        let token = JoinToken::sign(&founder, "g", id(2).public().signing_key, 3, None);
        let reply = Reply {
            group: "g".into(),
            ballot: 7,
            nonce: [3; 16],
            candidate: a.id(),
            member: [0; 32],
            version: 1,
            signature: [0; SIGNATURE_LEN],
        };
        let messages = vec![
            ElectionMessage::Request(request().sign(&a)),
            ElectionMessage::Request(Request { membership: Some(list.clone()), ..request() }.sign(&a)),
            ElectionMessage::Grant(reply.clone().sign(&a, true)),
            ElectionMessage::Refuse(reply.clone().sign(&a, false)),
            ElectionMessage::Preempt(
                Preempt { group: "g".into(), member: [0; 32], leader: a.id(), ballot: 1, signature: [0; 64] }.sign(&a),
            ),
            ElectionMessage::Update(list),
            ElectionMessage::Join(Join::new(&id(2), token)),
            ElectionMessage::Leave(
                Leave { group: "g".into(), member: [0; 32], version: 1, signature: [0; 64] }.sign(&a),
            ),
        ];
        for m in messages {
            let bytes = m.encode();
            let (kind, body) = wire::split(&bytes).unwrap();
            assert_eq!(kind, MessageKind::Election);
            assert_eq!(ElectionMessage::decode(body).as_ref(), Ok(&m));
            assert_eq!(m.group(), "g");
            let mut trailing = body.to_vec();
            trailing.push(0);
            assert!(ElectionMessage::decode(&trailing).is_err());
        }
        let r = request().sign(&a);
        assert!(r.verify());
        assert!(!Request { ballot: 8, ..r.clone() }.verify());
        assert!(!Request { renewal: false, ..r.clone() }.verify());
        let g = reply.clone().sign(&a, true);
        assert!(g.verify(true) && !g.verify(false), "a grant is not a refusal");
        assert!(!Reply { version: 2, ..g }.verify(true));
    }

    #[test]
    fn long_group_names_are_refused() {
        let r = Request { group: "x".repeat(65), ..request() }.sign(&id(1));
        let bytes = ElectionMessage::Request(r).encode();
        assert_eq!(ElectionMessage::decode(&bytes[2..]), Err(WireError::Protocol("election group name or list size")));
        assert!(ElectionMessage::decode(&[]).is_err());
        assert!(ElectionMessage::decode(&[200]).is_err());
    }
}
