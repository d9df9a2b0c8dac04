//! The header: group element alpha, routing information beta, MAC gamma.
//!
//! Beta holds [`MAX_HOPS`] routing blocks of [`ROUTING_BLOCK_LEN`] bytes,
//! each layer encrypted under one hop's ChaCha20 stream:
//!
//! ```text
//! routing block (53 bytes)
//! offset  len  field
//! 0       1    flag: 1 forward, 2 deliver to recipient, 3 deliver a SURB reply
//! 1       32   forward: next hop's NodeId; deliver / reply: the recipient's NodeId
//! 33      4    this hop's delay in microseconds, little-endian (unused at the last hop)
//! 37      16   forward: the next hop's gamma; reply: the SURB id; deliver: zero
//! ```
//!
//! A mix checks gamma over beta, appends [`ROUTING_BLOCK_LEN`] zero bytes,
//! XORs with its stream, reads its block off the front and passes the next
//! [`BETA_LEN`] bytes on. The sender precomputes the *filler*: what those
//! appended bytes become after each hop's stream, so that every MAC it
//! computes covers exactly what the later hop will see, and beta keeps its
//! length at every hop.

use super::keys::HopKeys;
use super::{Hop, MAC_LEN, MAX_HOPS, PacketError, SurbId};
use crate::identity::NodeId;
use chacha20::ChaCha20;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use rand_core::CryptoRng;

/// Bytes of one hop's routing block in beta: flag (1), address (32),
/// delay (4), next MAC or SURB id (16).
pub const ROUTING_BLOCK_LEN: usize = 1 + 32 + 4 + MAC_LEN;

/// Bytes of beta: room for [`MAX_HOPS`] routing blocks (265).
pub const BETA_LEN: usize = MAX_HOPS * ROUTING_BLOCK_LEN;

/// Bytes of the header: alpha (32), beta, gamma ([`MAC_LEN`]): 313.
pub const HEADER_LEN: usize = 32 + BETA_LEN + MAC_LEN;

const FLAG_FORWARD: u8 = 1;
const FLAG_DELIVER: u8 = 2;
const FLAG_REPLY: u8 = 3;

/// A Sphinx header. Fixed size ([`HEADER_LEN`] bytes on the wire).
#[derive(Clone, PartialEq, Eq)]
pub struct Header {
    /// The hop's group element (an X25519 u-coordinate).
    pub(crate) alpha: [u8; 32],
    /// The layered routing information.
    pub(crate) beta: [u8; BETA_LEN],
    /// Keyed BLAKE3 of beta under this hop's MAC key, truncated.
    pub(crate) gamma: [u8; MAC_LEN],
}

impl core::fmt::Debug for Header {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Header").field("alpha", &self.alpha).finish_non_exhaustive()
    }
}

/// What the last hop does with a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Final {
    /// Decrypt the payload and hand the message to `recipient`.
    Deliver(NodeId),
    /// Hand the still-encrypted reply payload to `recipient` with the SURB id.
    Reply(NodeId, SurbId),
}

/// One hop's decrypted routing block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Routing {
    /// Send on to `next` after `delay_us`, with gamma `mac`.
    Forward { next: NodeId, delay_us: u32, mac: [u8; MAC_LEN] },
    /// This hop is the last one.
    Final(Final),
}

impl Header {
    /// Writes the header to `out` (exactly [`HEADER_LEN`] bytes).
    pub(crate) fn write(&self, out: &mut [u8]) {
        out[..32].copy_from_slice(&self.alpha);
        out[32..32 + BETA_LEN].copy_from_slice(&self.beta);
        out[32 + BETA_LEN..HEADER_LEN].copy_from_slice(&self.gamma);
    }

    /// Reads a header from exactly [`HEADER_LEN`] bytes.
    pub(crate) fn read(bytes: &[u8; HEADER_LEN]) -> Self {
        let mut h = Header { alpha: [0; 32], beta: [0; BETA_LEN], gamma: [0; MAC_LEN] };
        h.alpha.copy_from_slice(&bytes[..32]);
        h.beta.copy_from_slice(&bytes[32..32 + BETA_LEN]);
        h.gamma.copy_from_slice(&bytes[32 + BETA_LEN..]);
        h
    }

    /// Builds the header for `hops` (1..=[`MAX_HOPS`], already checked) with
    /// the sender's precomputed `keys` and the alpha of the first hop.
    pub(crate) fn build(
        rng: &mut impl CryptoRng,
        alpha0: [u8; 32],
        hops: &[Hop],
        keys: &[HopKeys],
        last: Final,
    ) -> Self {
        let n = hops.len();
        // The filler: what the zero bytes appended by hops 0..n-1 have become.
        let mut filler = [0u8; BETA_LEN];
        let mut stream = [0u8; BETA_LEN + ROUTING_BLOCK_LEN];
        for (i, k) in keys.iter().enumerate().take(n - 1) {
            // After hop i the filler covers (i + 1) blocks.
            let len = (i + 1) * ROUTING_BLOCK_LEN;
            keystream(&k.routing, &mut stream);
            let from = BETA_LEN + ROUTING_BLOCK_LEN - len;
            for (f, s) in filler[..len].iter_mut().zip(&stream[from..]) {
                *f ^= s;
            }
        }
        let filler_len = (n - 1) * ROUTING_BLOCK_LEN;

        // The last hop: its block, random padding, then the filler.
        let mut beta = [0u8; BETA_LEN];
        let (flag, address, tail) = match last {
            Final::Deliver(recipient) => (FLAG_DELIVER, recipient, [0u8; MAC_LEN]),
            Final::Reply(recipient, id) => (FLAG_REPLY, recipient, id.0),
        };
        write_block(&mut beta, flag, &address, hops[n - 1].delay_us, &tail);
        rng.fill_bytes(&mut beta[ROUTING_BLOCK_LEN..BETA_LEN - filler_len]);
        keystream(&keys[n - 1].routing, &mut stream);
        xor(&mut beta[..BETA_LEN - filler_len], &stream);
        beta[BETA_LEN - filler_len..].copy_from_slice(&filler[..filler_len]);
        let mut gamma = mac(&keys[n - 1].mac, &beta);

        // Earlier hops, last to first: prepend a block, drop the tail, encrypt.
        for i in (0..n - 1).rev() {
            let mut next = [0u8; BETA_LEN];
            write_block(&mut next, FLAG_FORWARD, &hops[i + 1].id, hops[i].delay_us, &gamma);
            next[ROUTING_BLOCK_LEN..].copy_from_slice(&beta[..BETA_LEN - ROUTING_BLOCK_LEN]);
            keystream(&keys[i].routing, &mut stream);
            xor(&mut next, &stream);
            beta = next;
            gamma = mac(&keys[i].mac, &beta);
        }
        Header { alpha: alpha0, beta, gamma }
    }

    /// A mix's step: checks gamma (constant time), then decrypts its routing
    /// block and returns it with the next hop's beta. The next alpha
    /// ([`HopKeys::blind`]) is left to the caller, who needs it only when
    /// forwarding.
    pub(crate) fn unwrap(&self, keys: &HopKeys) -> Result<(Routing, [u8; BETA_LEN]), PacketError> {
        if !crate::crypto::ct_eq(&mac(&keys.mac, &self.beta), &self.gamma) {
            return Err(PacketError::BadMac);
        }
        let mut buf = [0u8; BETA_LEN + ROUTING_BLOCK_LEN];
        buf[..BETA_LEN].copy_from_slice(&self.beta);
        let mut cipher = ChaCha20::new(&keys.routing.into(), &[0u8; 12].into());
        cipher.apply_keystream(&mut buf);
        let mut address = [0u8; 32];
        address.copy_from_slice(&buf[1..33]);
        let address = NodeId(address);
        let delay_us = u32::from_le_bytes([buf[33], buf[34], buf[35], buf[36]]);
        let mut tail = [0u8; MAC_LEN];
        tail.copy_from_slice(&buf[37..ROUTING_BLOCK_LEN]);
        let routing = match buf[0] {
            FLAG_FORWARD => Routing::Forward { next: address, delay_us, mac: tail },
            FLAG_DELIVER => Routing::Final(Final::Deliver(address)),
            FLAG_REPLY => Routing::Final(Final::Reply(address, SurbId(tail))),
            other => return Err(PacketError::BadRoutingFlag(other)),
        };
        let mut next = [0u8; BETA_LEN];
        next.copy_from_slice(&buf[ROUTING_BLOCK_LEN..]);
        Ok((routing, next))
    }
}

/// Fills `out` with the ChaCha20 keystream of `key` (nonce zero: each
/// routing key is used for one header only).
fn keystream(key: &[u8; 32], out: &mut [u8]) {
    out.fill(0);
    let mut cipher = ChaCha20::new(&(*key).into(), &[0u8; 12].into());
    cipher.apply_keystream(out);
}

fn xor(out: &mut [u8], with: &[u8]) {
    for (o, w) in out.iter_mut().zip(with) {
        *o ^= w;
    }
}

fn write_block(out: &mut [u8], flag: u8, address: &NodeId, delay_us: u32, tail: &[u8; MAC_LEN]) {
    out[0] = flag;
    out[1..33].copy_from_slice(&address.0);
    out[33..37].copy_from_slice(&delay_us.to_le_bytes());
    out[37..ROUTING_BLOCK_LEN].copy_from_slice(tail);
}

/// Keyed BLAKE3 of beta, truncated to [`MAC_LEN`] bytes.
fn mac(key: &[u8; 32], beta: &[u8; BETA_LEN]) -> [u8; MAC_LEN] {
    let full = blake3::keyed_hash(key, beta);
    let mut out = [0u8; MAC_LEN];
    out.copy_from_slice(&full.as_bytes()[..MAC_LEN]);
    out
}
