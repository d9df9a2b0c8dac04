//! Rewards figures carried by trace events (`[accounting]` scenarios): a
//! settled epoch as its coordinator signed it, and each payout row with the
//! evidence the simulator found for it in the epoch's inputs, counted by
//! the simulator's own code (not the engine's settlement), with its ground
//! truth of which receipts it forged.

/// What a node does in rewards accounting (`[accounting]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Cheat {
    /// Does what the protocol says.
    Honest,
    /// Gets inflated receipts from a colluding partner.
    Inflater,
    /// Claims forged receipts.
    Forger,
    /// Discards the chunks it registered.
    Dropper,
}

impl Cheat {
    /// Stable byte code (trace encoding).
    pub fn code(self) -> u8 {
        match self {
            Cheat::Honest => 0,
            Cheat::Inflater => 1,
            Cheat::Forger => 2,
            Cheat::Dropper => 3,
        }
    }

    /// Stable name (JSON trace, metric names).
    pub fn name(self) -> &'static str {
        match self {
            Cheat::Honest => "honest",
            Cheat::Inflater => "inflater",
            Cheat::Forger => "forger",
            Cheat::Dropper => "dropper",
        }
    }
}

/// A settled epoch, from its signed record and inputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SettledFigures {
    /// The epoch's base emission, in units.
    pub emission: u64,
    /// Units carried in from the previous epoch.
    pub carried_in: u64,
    /// Units the record pays out (the sum of its rows' totals).
    pub paid: u64,
    /// Units the record carries to the next epoch.
    pub carried_out: u64,
    /// The bandwidth pool, in units (`params.rewards.bandwidth_share_bps`
    /// of emission plus carry, as the simulator computes it).
    pub bandwidth_pool: u64,
    /// Bytes credited to all providers together (per provider: valid
    /// receipts from registered consumers, capped by the probe), by the
    /// simulator's count.
    pub credited_bytes: u64,
    /// Rows in the record.
    pub payees: u32,
    /// Nodes registered for the epoch.
    pub registered: u32,
    /// Receipts in the inputs that the simulator forged.
    pub forged_claimed: u32,
    /// Failed storage challenges in the inputs.
    pub failed_challenges: u32,
    /// The record's hash.
    pub hash: [u8; 32],
}

/// One payout row and the evidence behind it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PayoutFigures {
    /// Bandwidth units paid.
    pub bandwidth: u64,
    /// Storage units paid.
    pub storage: u64,
    /// Publisher units paid.
    pub publisher: u64,
    /// Valid receipts naming the node as provider: signed by a registered
    /// node other than itself, for this epoch.
    pub valid_receipts: u32,
    /// Bytes of the best valid receipt per consumer, summed.
    pub receipted_bytes: u64,
    /// The probe cap: best probed rate × epoch length, in bytes (0 if never probed).
    pub cap_bytes: u64,
    /// `min(receipted_bytes, cap_bytes)`.
    pub credited_bytes: u64,
    /// How many more bytes it is credited with than without the receipts
    /// the simulator forged (must be 0).
    pub forged_credit_bytes: u64,
    /// Storage challenges it passed.
    pub passed: u32,
    /// Storage challenges it failed.
    pub failed: u32,
    /// Passed challenges on content it published.
    pub publisher_passes: u32,
}
