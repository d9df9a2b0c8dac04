//! # allium-node
//!
//! The production node: a thin driver that owns a UDP socket, the clock,
//! OS entropy, timers and a redb database, and runs the sans-IO
//! [`allium_engine::Node`]. All protocol logic lives in the engine.
//!
//! * [`runtime`]: the driver loop (runs on tokio, and on madsim for
//!   deterministic tests with `RUSTFLAGS="--cfg madsim"`).
//! * [`store`]: redb persistence of the identity and the engine's writes.
//! * [`content`]: the engine's content store (blocks and object records) in
//!   the same redb file.
//! * [`config`]: layered configuration (file, `ALLIUM_*` env, flags),
//!   including `[rewards]` (on/off and the coordinating election group;
//!   the runtime passes the wall clock at start for the epoch clock).
//! * [`election`]: `allium-node election …`, founder keys, membership
//!   lists and join tokens for lease-election groups (`ctl leader` shows them).
//! * `http` (not under madsim): the loopback control API and Prometheus.
//! * `ctl` (not under madsim): the `allium-node ctl` client (`dht put/get`,
//!   `peers`, `stats`, `circuits`, content: `put`, `get`, `pin`,
//!   `unpin`, `content`, and the mixnet: `mix address`, `send`, `inbox`,
//!   `read`, `reply`, `sent`, `status`; `id`, and the election groups:
//!   `leader`, `leader join`, `leave`, `remove`; rewards: `rewards`,
//!   `rewards record`).
//! * [`socks`]: the SOCKS5 entry point (a sans-IO codec, and a TCP
//!   listener when not under madsim); [`pipe`] links each stream's TCP
//!   connection to the node loop, and `tcp` (not under madsim) pumps its
//!   bytes and makes the exit's connections.
//!
//! The mixnet (`[mix]` in the config) is the engine's; the runtime keeps
//! the inbox of received messages and the outcome of sent ones (see
//! `runtime/mix.rs`).
//!
//! Content commands go to the engine's overlay through [`Handle::command`];
//! a fetch is answered once, whole and verified
//! ([`CommandOutcome::Fetched`]), see [`runtime`].
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod config;
pub mod content;
#[cfg(not(madsim))]
pub mod ctl;
pub mod election;
#[cfg(not(madsim))]
pub mod http;
pub mod pipe;
pub mod runtime;
mod shim;
pub mod socks;
pub mod store;
#[cfg(not(madsim))]
pub mod tcp;

pub use runtime::{CommandOutcome, Handle, NodeRuntime, Stats};
