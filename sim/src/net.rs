//! The network model: per-region latency matrix plus seeded jitter, loss
//! per IP fragment, per-node uplink bandwidth (serialisation delay) and MTU.
//!
//! A datagram occupies its sender's uplink for `wire_bytes * 8 / uplink`
//! and departs at `max(now, busy_until) + that`; it arrives after the
//! one-way latency between the two regions plus a uniform jitter. A datagram
//! larger than the MTU is IP-fragmented: it costs its full size (plus one IP
//! header per fragment) on the uplink and is lost if any fragment is lost.
//! Datagrams above 65,507 bytes (the UDP limit) are dropped at the sender.

use crate::rng::{Prob, SimRng, below};

/// Largest UDP payload, in bytes.
pub const MAX_UDP_PAYLOAD: usize = 65_507;
const IP_HEADER: usize = 20;
const UDP_HEADER: usize = 8;

/// Why a datagram did not arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DropCause {
    /// A fragment was lost to the base loss rate.
    Loss,
    /// A fragment was lost to a loss burst.
    LossBurst,
    /// The endpoints were on opposite sides of an active partition.
    Partition,
    /// Larger than the UDP limit.
    Oversize,
    /// The receiver was down (crashed or gone) when the datagram arrived.
    NodeDown,
    /// The destination address belongs to no node.
    NoRoute,
}

impl DropCause {
    /// Every cause, in code order.
    pub const ALL: [DropCause; 6] = [
        DropCause::Loss,
        DropCause::LossBurst,
        DropCause::Partition,
        DropCause::Oversize,
        DropCause::NodeDown,
        DropCause::NoRoute,
    ];

    /// Stable name, used in metrics (`net.dropped.<name>`) and JSON traces.
    pub fn name(self) -> &'static str {
        match self {
            DropCause::Loss => "loss",
            DropCause::LossBurst => "loss_burst",
            DropCause::Partition => "partition",
            DropCause::Oversize => "oversize",
            DropCause::NodeDown => "node_down",
            DropCause::NoRoute => "no_route",
        }
    }

    /// Stable one-byte code, used in the binary trace encoding.
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Number of IP fragments a UDP payload of `payload` bytes needs with this MTU.
pub fn fragments(payload: usize, mtu: u32) -> u32 {
    let mtu = mtu as usize;
    if payload + UDP_HEADER + IP_HEADER <= mtu {
        return 1;
    }
    // Fragment payloads are multiples of 8 bytes.
    let per_fragment = ((mtu - IP_HEADER) / 8 * 8).max(8);
    (payload + UDP_HEADER).div_ceil(per_fragment) as u32
}

/// Bytes a datagram occupies on the wire, headers included.
pub fn wire_bytes(payload: usize, fragments: u32) -> u64 {
    (payload + UDP_HEADER + IP_HEADER * fragments as usize) as u64
}

/// A node's uplink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Uplink {
    /// When the uplink finishes sending what it has queued, in nanoseconds.
    pub busy_until: u64,
    /// Capacity, in Mbit/s.
    pub mbps: u64,
}

/// The network model with its own random stream.
pub struct Network {
    regions: usize,
    latency_ns: Vec<u64>,
    jitter_ns_max: u64,
    loss: Prob,
    mtu: u32,
    rng: SimRng,
}

/// What happened to a datagram on its way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    /// It arrives at this time (nanoseconds).
    Arrives(u64),
    /// It is lost.
    Lost(DropCause),
}

impl Network {
    /// A network with the given one-way latency matrix (milliseconds), jitter, loss and MTU.
    pub fn new(latency_ms: &[Vec<u64>], jitter_us_max: u64, loss: f64, mtu: u32, rng: SimRng) -> Self {
        let regions = latency_ms.len();
        let latency_ns = latency_ms.iter().flatten().map(|ms| ms.saturating_mul(1_000_000)).collect();
        Network {
            regions,
            latency_ns,
            jitter_ns_max: jitter_us_max.saturating_mul(1_000),
            loss: Prob::from_f64(loss),
            mtu,
            rng,
        }
    }

    /// Sends a datagram of `payload` bytes at `now` over `uplink` from region
    /// `from` to region `to`, with `extra_loss` per fragment on top of the base loss.
    pub fn send(
        &mut self,
        now: u64,
        uplink: &mut Uplink,
        from: u16,
        to: u16,
        payload: usize,
        extra_loss: Prob,
    ) -> Fate {
        if payload > MAX_UDP_PAYLOAD {
            return Fate::Lost(DropCause::Oversize);
        }
        let frags = fragments(payload, self.mtu);
        let serialisation = wire_bytes(payload, frags) * 8_000 / uplink.mbps.max(1);
        let depart = uplink.busy_until.max(now) + serialisation;
        uplink.busy_until = depart;
        for _ in 0..frags {
            if self.loss.sample(&mut self.rng) {
                return Fate::Lost(DropCause::Loss);
            }
            if extra_loss.sample(&mut self.rng) {
                return Fate::Lost(DropCause::LossBurst);
            }
        }
        let jitter = if self.jitter_ns_max > 0 { below(&mut self.rng, self.jitter_ns_max + 1) } else { 0 };
        let base = self.latency_ns.get(usize::from(from) * self.regions + usize::from(to)).copied().unwrap_or(0);
        Fate::Arrives(depart + base + jitter)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    #[test]
    fn fragmentation_follows_the_mtu() {
        assert_eq!(fragments(1472, 1500), 1);
        assert_eq!(fragments(1473, 1500), 2);
        assert_eq!(fragments(2952, 1500), 2);
        assert_eq!(fragments(2953, 1500), 3);
        assert_eq!(wire_bytes(100, 1), 128);
    }

    #[test]
    fn uplink_serialises_back_to_back_datagrams() {
        let mut net = Network::new(&[vec![10]], 0, 0.0, 1500, stream(1, "t"));
        let mut up = Uplink { busy_until: 0, mbps: 8 };
        // 972 + 28 = 1000 bytes = 8000 bits at 8 Mbit/s = 1 ms.
        assert_eq!(net.send(0, &mut up, 0, 0, 972, Prob::ZERO), Fate::Arrives(11_000_000));
        assert_eq!(net.send(0, &mut up, 0, 0, 972, Prob::ZERO), Fate::Arrives(12_000_000));
        assert_eq!(up.busy_until, 2_000_000);
        assert_eq!(net.send(0, &mut up, 0, 0, MAX_UDP_PAYLOAD + 1, Prob::ZERO), Fate::Lost(DropCause::Oversize));
    }

    #[test]
    fn fragmented_datagrams_are_lost_more_often() {
        let mut net = Network::new(&[vec![1]], 100, 0.1, 1500, stream(2, "t"));
        let mut up = Uplink { busy_until: 0, mbps: 1_000_000 };
        let mut count = |payload| {
            (0..20_000).filter(|_| matches!(net.send(0, &mut up, 0, 0, payload, Prob::ZERO), Fate::Arrives(_))).count()
        };
        let one = count(100);
        let four = count(5000);
        // (0.9)^1 = 0.9, (0.9)^4 = 0.656.
        assert!((17_500..18_500).contains(&one), "{one}");
        assert!((12_700..13_500).contains(&four), "{four}");
    }
}
