//! Rewards: accounting tokens for nodes that relay traffic and store
//! content.
//!
//! * [`receipt`]: consumer-signed cumulative byte receipts, and the
//!   [`ReceiptBook`] that keeps the best one per (epoch, consumer, provider).
//! * `params.rs`: [`RewardsParams`] (`[rewards]`).

mod params;
pub mod receipt;

pub use params::{BPS_WHOLE, MAX_EMISSION, MAX_RECEIPTS_PER_CLAIM, RewardsParams};
pub use receipt::{BookError, Receipt, ReceiptBook, ReceiptError};
