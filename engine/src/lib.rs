//! # allium-engine
//!
//! The sans-IO protocol core of Allium. Nothing in this crate performs I/O,
//! reads a clock, spawns a thread or draws ambient randomness: time is an
//! argument ([`Instant`]), randomness comes from per-node ChaCha20 streams
//! seeded by the caller ([`rng`]), and every effect is an [`Output`] value.
//! The same code therefore runs inside the deterministic simulator
//! (`allium-sim`) and inside the real node (`allium-node`).
//!
//! ## The contract
//!
//! A [`Node`] is driven through three method groups, in the manner of
//! quinn-proto's `Connection`:
//!
//! 1. **Input**: [`Node::handle_input`]`(now, input)` with a datagram from a
//!    transport address, a timeout, or a local [`Command`].
//! 2. **Output**: [`Node::poll_output`] returns transmits
//!    ([`Output::Transmit`]), durable writes ([`Output::Persist`]) and
//!    application events ([`Output::Event`]).
//! 3. **Timers**: [`Node::poll_timeout`] returns the earliest instant at
//!    which the node wants `handle_input(now, Input::Timeout)`.
//!
//! ### Polling order
//!
//! After **every** call to `handle_input`:
//!
//! 1. drain `poll_output` until it returns `None`, applying outputs in the
//!    order given: a `Persist` must be durable before any later `Transmit`
//!    is sent, because that transmit may acknowledge it;
//! 2. then call `poll_timeout` and arm a single timer for the instant it
//!    returns (replacing any earlier one). An instant at or before `now`
//!    means "call me again right away".
//!
//! Timeouts may be delivered late but never early; a spurious
//! `Input::Timeout` is harmless.
//!
//! ### Errors
//!
//! A misbehaving peer can never make `handle_input` panic or fail: a
//! malformed or forged datagram becomes an [`Event::Rejected`] and a
//! `wire.rejected.*` counter in [`Node::metrics`]. Misuse of the local API
//! (for example a value over the size limit) becomes
//! [`Event::CommandRejected`].
//!
//! ## Layout
//!
//! * [`dht`]: Kademlia (routing table, lookups, records, providers).
//! * [`overlay`]: content-addressed objects (chunks, manifests, fetch, replication).
//! * [`circuit`]: onion circuits and streams (relays, cells, handshakes, exits).
//! * [`mix`]: the mixnet (Sphinx packets so far).
//! * [`election`]: lease-based leader election in signed membership groups.
//! * [`rewards`]: receipts, storage challenges, bandwidth probes and the
//!   signed epoch settlement.
//! * [`wire`]: datagram framing and the control-message codec.
//! * [`crypto`]: the [`CryptoSuite`], AEAD, key agreement, KDF.
//! * [`identity`]: Ed25519 identity and [`NodeId`].
//! * [`params`]: every protocol parameter with its default.
//! * [`persist`]: the write-ahead operations a driver makes durable.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod circuit;
pub mod crypto;
pub mod dht;
pub mod election;
pub mod identity;
pub mod metrics;
pub mod mix;
pub mod node;
pub mod overlay;
pub mod params;
pub mod persist;
pub mod rewards;
pub mod rng;
pub mod time;
pub mod timers;
pub mod wire;

pub use crypto::CryptoSuite;
pub use identity::{Identity, NodeId};
pub use metrics::Metrics;
pub use node::{Addr, Command, CommandId, Event, Input, Node, NodeConfig, Output};
pub use params::Params;
pub use persist::{PersistOp, PersistedState};
pub use rng::NodeSeed;
pub use time::Instant;
