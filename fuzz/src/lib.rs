//! # allium-fuzz
//!
//! bolero harnesses for every decoder of the Allium engine and for a
//! [`Node`](allium_engine::Node) fed arbitrary input sequences.
//!
//! The crate follows str0m's layout: the logic of every target lives here,
//! as a plain function that takes the fuzzer's input and panics on a broken
//! property, and each file in `tests/` is a thin `bolero::check!()` around
//! one of these functions. The same targets therefore run
//!
//! * under `cargo test -p allium-fuzz`, as bounded random tests (see
//!   [`ITERATIONS`] and [`TEST_TIME`]; a failure prints
//!   `BOLERO_RANDOM_SEED=…` to replay it), and
//! * under `cargo bolero test <target> -p allium-fuzz`, as coverage-guided
//!   fuzzers (libFuzzer, AFL, …), where the bounds are ignored.
//!
//! See `fuzz/README.md` for the list of targets and the exact commands.
//!
//! ## Modules
//!
//! * [`circuit_relay`]: the circuit payload decoder, and a relay driven by
//!   a harness playing its client and next hop.
//! * [`circuit_directory`]: relay descriptors (decoding, signing and
//!   damaging them).
//! * [`circuit`]: targets for onion circuits' cells, control bodies,
//!   layered encryption and replay window.
//! * [`circuit_channel`]: the `channel_frames` target (circuit channel
//!   payloads into fresh and primed channels).
//! * [`codec`]: targets for the byte-level decoders (framing, DHT messages,
//!   persisted state).
//! * [`election`]: the election message decoder, and one group member
//!   driven by a script.
//! * [`mix`]: the mixnet's Sphinx packets (decoder, processing, round
//!   trips with SURB replies).
//! * [`mix_provider`]: provider-to-client frames, and a mixnet provider
//!   driven by a script of packets, subscriptions and time.
//! * [`model`]: fuzzer-generated descriptions of DHT messages, turned into
//!   structurally valid engine values.
//! * [`node`]: the `node_inputs` target, a node driven by a script of
//!   datagrams, timeouts and commands, with the oracles it checks.
//! * [`socks`]: the node's SOCKS5 codec (parsing arbitrary bytes, and
//!   round-tripping fuzzer-built requests).
//! * [`rewards`]: the rewards decoders (receipts, challenges and answers,
//!   epoch records and inputs) and the settlement fed arbitrary inputs.
//! * [`pool`]: the node under test and the fixed pool of fake peers the
//!   harness impersonates.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod circuit;
pub mod circuit_channel;
pub mod circuit_directory;
pub mod circuit_relay;
pub mod codec;
pub mod election;
pub mod mix;
pub mod mix_descriptor;
pub mod mix_message;
pub mod mix_provider;
pub mod model;
pub mod node;
pub mod overlay;
pub mod pool;
pub mod rewards;
pub mod socks;

use core::time::Duration;

/// Iterations of a byte-level decoder target under `cargo test`.
///
/// Overridden by the `BOLERO_RANDOM_ITERATIONS` environment variable.
pub const ITERATIONS: usize = 20_000;

/// Iterations (whole scripts) of the `node_inputs` target under `cargo test`.
///
/// Overridden by the `BOLERO_RANDOM_ITERATIONS` environment variable.
pub const NODE_ITERATIONS: usize = 2_000;

/// Iterations of `dht_message_round_trip` under `cargo test` (some inputs
/// sign a record, so it is slower than the byte targets).
///
/// Overridden by the `BOLERO_RANDOM_ITERATIONS` environment variable.
pub const STRUCTURED_ITERATIONS: usize = 10_000;

/// Iterations of `persist_round_trip` under `cargo test`: each input
/// restores a node and publishes under every name, a few milliseconds each.
///
/// Overridden by the `BOLERO_RANDOM_ITERATIONS` environment variable.
pub const PERSIST_ITERATIONS: usize = 500;

/// Most bytes of fuzzer entropy one structured input (a script, a message)
/// may draw under `cargo test`; bolero's default of 4 KiB cuts long scripts
/// short.
///
/// Overridden by the `BOLERO_RANDOM_MAX_LEN` environment variable.
pub const MAX_LEN: usize = 64 * 1024;

/// Wall-clock cap of any one target under `cargo test`, whichever of this
/// and the iteration count comes first, so that a slow debug build still
/// finishes in a few seconds.
///
/// Overridden by the `BOLERO_RANDOM_TEST_TIME_MS` environment variable.
pub const TEST_TIME: Duration = Duration::from_secs(4);
