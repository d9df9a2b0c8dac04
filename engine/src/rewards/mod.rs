//! Rewards (minimal module file of the rewards-proto branch; rewards-core owns mod.rs).

pub mod clock;
pub mod ledger;
