//! The mixnet (issue 6): message-based anonymity against an observer who
//! sees every link, after Loopix.
//!
//! This module so far holds the packet format only:
//!
//! * [`packet`]: Sphinx packets of one fixed size at every hop
//!   ([`packet::PACKET_LEN`] bytes), per-hop X25519 key agreement with a
//!   blinded group element, a header MAC, sender-chosen per-hop delays, a
//!   wide-block (Lioness) payload cipher, replay tags with a per-epoch
//!   [`packet::ReplayFilter`], and single-use reply blocks
//!   ([`packet::Surb`]).
//!
//! Mixing strategies, topology, cover traffic and the node's mix role come
//! later. `README.md` in this folder lays out the packet and argues why the
//! construction is sound.

pub mod address;
pub mod descriptor;
pub mod message;
pub mod packet;
pub mod reassembly;
pub mod strategy;
