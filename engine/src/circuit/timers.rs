//! What the circuit machine's deadlines are for.

use super::CircuitHandle;

/// What a deadline is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum TimerKey {
    /// A client circuit's build attempt deadline.
    Build(CircuitHandle),
    /// A client circuit's channel (retransmission, delayed ack, connect timeout).
    ClientChannel(CircuitHandle),
    /// An exit-side channel, by relayed-circuit key.
    ExitChannel(u64),
    /// A relay's wait for CREATED from the next hop.
    Extend(u64),
    /// A circuit request waiting for the directory gives up.
    Request(u64),
    /// Idle expiry, rotation, descriptor publication, directory refresh.
    Housekeeping,
}

/// The circuit machine's deadlines.
pub(super) type Timers = crate::timers::Timers<TimerKey>;
