//! Targets for the election machine: its message decoder fed arbitrary
//! bytes, and a single member driven by a script of datagrams and time.
//! Each function panics if a property is broken.

use allium_engine::election::messages::{Reply, Request};
use allium_engine::election::{ElectionConfig, ElectionMessage, ElectionParams, GroupConfig, Member, Membership};
use allium_engine::rng::NodeSeed;
use allium_engine::wire::{self, MessageKind, WireError};
use allium_engine::{Addr, CryptoSuite, Identity, Instant};
use bolero::TypeGenerator;
use core::time::Duration;

/// `election_decode`: arbitrary bytes into [`ElectionMessage::decode`]:
/// it never panics; what decodes re-encodes to exactly the same body and
/// decodes again to itself; errors are typed body errors.
pub fn election_decode(bytes: &[u8]) {
    match ElectionMessage::decode(bytes) {
        Ok(message) => {
            let datagram = message.encode();
            let (kind, body) = wire::split(&datagram).expect("own datagram frames");
            assert_eq!(kind, MessageKind::Election);
            assert_eq!(body, bytes, "re-encoding differs");
            assert_eq!(ElectionMessage::decode(body).as_ref(), Ok(&message));
        }
        Err(e) => assert!(
            matches!(
                e,
                WireError::Truncated
                    | WireError::LimitExceeded
                    | WireError::InvalidField(_)
                    | WireError::TrailingBytes { .. }
                    | WireError::Protocol(_)
            ),
            "{e:?}"
        ),
    }
}

fn identity(i: u64) -> Identity {
    Identity::from_seed(&NodeSeed::derive(4242, i), CryptoSuite::Real)
}

fn addr(i: u8) -> Addr {
    ([10, 9, 0, i], 4000).into()
}

/// One step of the `election_member` script.
#[derive(Clone, Debug, TypeGenerator)]
pub enum Step {
    /// A lease request signed by member `from % 3 + 1` (or a stranger when `from` ≥ 200).
    Request {
        /// Signer.
        from: u8,
        /// Ballot.
        ballot: u8,
        /// Duration asked for, in ms.
        duration_ms: u16,
        /// Renewal flag.
        renewal: bool,
        /// Whether to flip a byte of the encoding (at this position).
        flip: Option<u8>,
    },
    /// A grant or refusal for the node's current attempt (or a made-up one).
    Reply {
        /// Signer.
        from: u8,
        /// Grant or refusal.
        grant: bool,
        /// Whether to echo the node's real ballot and nonce.
        echo: bool,
    },
    /// Raw bytes as an election body.
    Raw(Vec<u8>),
    /// Time passes, in ms; then due timers fire.
    Wait(u16),
}

/// `election_member`: member 0 of a 4-member group (the harness signs for
/// the other three) driven by a script. It never panics, never rejects a
/// well-signed request from a member, and never holds a lease without a
/// majority of grants: it may only believe in a lease while three of the
/// four members (itself included) granted a request, and no longer than
/// the lease from when that request left.
pub fn election_member(steps: &[Step]) {
    run_member(steps);
}

/// Runs the script; returns whether the node held a lease at some point.
fn run_member(steps: &[Step]) -> bool {
    let mut held = false;
    let founder = identity(0);
    let ids: Vec<Identity> = (1..=4).map(identity).collect();
    let members = ids.iter().enumerate().map(|(i, id)| Member::of(id, addr(i as u8), 255 - i as u8)).collect();
    let membership = Membership::founder(&founder, "g", members);
    let config = ElectionConfig {
        groups: vec![GroupConfig {
            name: "g".into(),
            founder_key: founder.public().signing_key,
            membership: membership.clone(),
            priority: 0,
            join_token: None,
        }],
    };
    let params = ElectionParams { lease_ms: 600, grace_ms: 200, ..Default::default() };
    let mut node = allium_engine::election::Election::new(
        Instant::ZERO,
        &ids[0],
        params,
        config,
        &Default::default(),
        NodeSeed::derive(1, 1).stream("election"),
    );
    let mut now = Instant::ZERO;
    let mut last_request: Option<(Request, Instant)> = None;
    let mut harness_grants = 0usize;
    // The latest end a lease could have from requests the harness granted
    // twice (the machine counts distinct members, the harness sends).
    let mut backed_until = Instant::ZERO;
    let stranger = identity(99);
    for step in steps {
        match step {
            Step::Request { from, ballot, duration_ms, renewal, flip } => {
                let signer = if *from >= 200 { &stranger } else { &ids[usize::from(*from % 3) + 1] };
                let request = Request {
                    group: "g".into(),
                    ballot: u64::from(*ballot),
                    nonce: [*ballot; 16],
                    candidate: [0; 32],
                    duration_ms: u32::from(*duration_ms),
                    version: 1,
                    digest: membership.digest(),
                    renewal: *renewal,
                    membership: None,
                    signature: [0; 64],
                }
                .sign(signer);
                let mut bytes = ElectionMessage::Request(request).encode();
                let flipped = flip.map(|at| usize::from(at) % (bytes.len() - 2) + 2);
                if let Some(at) = flipped {
                    bytes[at] ^= 0x5a;
                }
                let result = node.handle_datagram(now, addr(9), &bytes[2..]);
                if *from < 200 && flipped.is_none() {
                    assert_eq!(result, Ok(()), "a member's request is handled");
                }
                if *from >= 200 && flipped.is_none() {
                    assert!(result.is_err(), "a stranger's request is refused");
                }
            }
            Step::Reply { from, grant, echo } => {
                let signer = &ids[usize::from(*from % 3) + 1];
                let (ballot, nonce) = match (&last_request, echo) {
                    (Some((r, _)), true) => (r.ballot, r.nonce),
                    _ => (u64::from(*from), [*from; 16]),
                };
                let reply = Reply {
                    group: "g".into(),
                    ballot,
                    nonce,
                    candidate: ids[0].id(),
                    member: [0; 32],
                    version: 1,
                    signature: [0; 64],
                }
                .sign(signer, *grant);
                if let (true, true, Some((_, sent))) = (*grant, *echo, &last_request) {
                    harness_grants += 1;
                    if harness_grants >= 2 {
                        backed_until = backed_until.max(*sent + Duration::from_millis(600));
                    }
                }
                let message = if *grant { ElectionMessage::Grant(reply) } else { ElectionMessage::Refuse(reply) };
                let bytes = message.encode();
                assert_eq!(node.handle_datagram(now, addr(9), &bytes[2..]), Ok(()));
            }
            Step::Raw(bytes) => {
                let _ = node.handle_datagram(now, addr(9), bytes);
            }
            Step::Wait(ms) => {
                now += Duration::from_millis(u64::from(*ms));
                node.handle_timeout(now);
                if let Some(next) = node.poll_timeout() {
                    assert!(next > now, "a handled timeout leaves no timer due");
                }
            }
        }
        while let Some(output) = node.poll_output() {
            if let allium_engine::Output::Transmit { bytes, .. } = output {
                let (kind, body) = wire::split(&bytes).expect("frames");
                assert_eq!(kind, MessageKind::Election);
                if let Ok(ElectionMessage::Request(r)) = ElectionMessage::decode(body) {
                    if last_request.as_ref().is_none_or(|(l, _)| l.nonce != r.nonce) {
                        harness_grants = 0;
                    }
                    last_request = Some((r, now));
                }
            }
        }
        let status = node.status("g").expect("group");
        held |= status.holds_lease(now);
        if let Some(until) = status.lease_valid_until {
            assert!(until <= backed_until, "a lease beyond what a majority granted: {status:?}");
        }
    }
    held
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The script reaches a lease (so the oracle is exercised) and keeps
    /// it through renewals the harness grants.
    #[test]
    fn the_harness_reaches_a_lease() {
        let grant = |from| Step::Reply { from, grant: true, echo: true };
        let steps = vec![Step::Wait(2000), grant(0), grant(1), Step::Wait(1), grant(0), grant(1), Step::Wait(100)];
        assert!(run_member(&steps), "the script reaches a lease");
        let bytes = ElectionMessage::Update(Membership::founder(&identity(0), "g", vec![])).encode();
        election_decode(&bytes[2..]);
        election_decode(&[]);
    }
}
