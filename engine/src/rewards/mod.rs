//! Rewards: accounting tokens for nodes that relay traffic and store
//! content.
//!
//! The core types are pure (no I/O, no clock, no randomness of their
//! own): what both the coordinator and every auditing node use. The
//! [`machine`] drives them in the node (sans-IO: datagrams in, outputs out).
//!
//! * [`receipt`]: consumer-signed cumulative byte receipts, and the
//!   [`ReceiptBook`] that keeps the best one per (epoch, consumer, provider).
//! * [`challenge`]: storage challenges and their BLAKE3 slice proofs.
//! * [`probe`]: bandwidth probes and the [`ProbeMeter`] estimator.
//! * [`inputs`]: [`EpochInputs`], everything a settlement is computed from.
//! * [`mod@settle`]: the payout formula ([`settle()`]).
//! * [`record`]: the signed, hash-chained [`EpochRecord`] and its audit.
//! * [`pointer`]: the signed [`RecordPointer`] a coordinator stores in the
//!   DHT for each settled epoch (the record and its inputs are overlay content).
//! * `params.rs`: [`RewardsParams`] (`[rewards]`).
//!
//! The node's part:
//!
//! * [`ledger`]: the per-peer byte ledger the node fills from its machines.
//! * [`machine`]: the [`Rewards`] machine in the node (receipts,
//!   registration, spot checks, claims, settlement, audit);
//!   [`messages`]: its datagrams.
//! * [`clock`]: [`clock::RewardsConfig`] and the shared epoch clock.
//!
//! `README.md` in this folder states the formula with a worked example
//! and argues for each rule.

pub mod challenge;
pub mod clock;
pub mod inputs;
pub mod ledger;
pub mod machine;
pub mod messages;
mod params;
pub mod pointer;
pub mod probe;
pub mod receipt;
pub mod record;
pub mod settle;

pub use challenge::{Challenge, ChallengeAnswer, ChallengeError};
pub use inputs::{ChallengeOutcome, EpochInputs, InputsError, NodeEntry};
pub use machine::{Rewards, RewardsEvent, RewardsStatus};
pub use params::{BPS_WHOLE, MAX_EMISSION, MAX_RECEIPTS_PER_CLAIM, RewardsParams};
pub use pointer::{PointerError, RecordPointer};
pub use probe::{ProbeMeter, ProbeResult};
pub use receipt::{BookError, Receipt, ReceiptBook, ReceiptError};
pub use record::{EpochRecord, Mismatch, RecordError, record_key};
pub use settle::{Payout, RejectCounts, Settlement, settle};
