//! Content-overlay parameters (`[overlay]` in scenario and config files).

use crate::params::{ParamError, millis, secs};
use core::time::Duration;
use serde::{Deserialize, Serialize};

/// Smallest chunk size a publisher may choose, in bytes.
pub const MIN_CHUNK_BYTES: u32 = 1024;
/// Largest chunk size, in bytes; also the largest block (chunk or manifest) on the wire.
pub const MAX_CHUNK_BYTES: u32 = 1 << 20;
/// Smallest piece (datagram payload) a requester may ask for, in bytes.
pub const MIN_PIECE_BYTES: u32 = 256;
/// Largest piece a requester may ask for, in bytes.
pub const MAX_PIECE_BYTES: u32 = 8192;

/// Content-overlay parameters. Every field has a documented default and unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OverlayParams {
    /// Size of the chunks a publisher splits content into, in bytes
    /// (1 KiB ..= 1 MiB). Default 65536.
    pub chunk_bytes: u32,
    /// Payload of one transfer datagram, in bytes (256 ..= 8192). The default
    /// keeps a datagram under 1,280 bytes, the IPv6 minimum MTU. Default 1200.
    pub piece_bytes: u32,
    /// Nodes closest to a content ID that hold a replica, besides the publisher. Default 3.
    pub replication_factor: u32,
    /// How often a holder of an object looks up the `replication_factor`
    /// nodes closest to its CID and asks any that lack it to hold a replica
    /// (repair), in seconds; each object's period is jittered ±25 %. (Provider
    /// records are re-announced by the DHT every `dht.republish_interval_secs`.)
    /// Default 3600.
    pub repair_interval_secs: u64,
    /// Largest number of chunks one fetch has in flight across its providers. Default 8.
    pub chunks_in_flight: u32,
    /// Chunks a fetch first asks of one provider at once; grows by one per
    /// clean chunk and halves on a timeout (AIMD). Default 2.
    pub provider_window: u32,
    /// Longest silence from a provider on one chunk request before the missing
    /// pieces are asked for again, in milliseconds. Default 1000.
    pub request_timeout_ms: u64,
    /// Re-requests of one chunk from one provider before the provider counts as failed. Default 3.
    pub request_retries: u32,
    /// Time after which a fetch gives up, in seconds. Default 600.
    pub fetch_timeout_secs: u64,
    /// How long a provider that served a corrupt block is not asked again, in seconds. Default 3600.
    pub ban_secs: u64,
    /// Bytes of content a node stores; cached copies and then replicas are
    /// evicted to stay under it, pinned content never is. Default 1073741824 (1 GiB).
    pub store_quota_bytes: u64,
    /// Largest object a node publishes or fetches, in bytes. Default 1073741824 (1 GiB).
    pub max_object_bytes: u64,
    /// Whether fetched content is kept in the local store (unpinned, evictable). Default true.
    pub cache_fetched: bool,
}

impl Default for OverlayParams {
    fn default() -> Self {
        OverlayParams {
            chunk_bytes: 64 * 1024,
            piece_bytes: 1200,
            replication_factor: 3,
            repair_interval_secs: 3_600,
            chunks_in_flight: 8,
            provider_window: 2,
            request_timeout_ms: 1_000,
            request_retries: 3,
            fetch_timeout_secs: 600,
            ban_secs: 3_600,
            store_quota_bytes: 1 << 30,
            max_object_bytes: 1 << 30,
            cache_fetched: true,
        }
    }
}

impl OverlayParams {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), ParamError> {
        let bad = |key: &str, reason: &str| {
            Err(ParamError::InvalidValue { key: format!("overlay.{key}"), reason: reason.to_string() })
        };
        if !(MIN_CHUNK_BYTES..=MAX_CHUNK_BYTES).contains(&self.chunk_bytes) {
            return bad("chunk_bytes", "must be between 1024 and 1048576");
        }
        if !(MIN_PIECE_BYTES..=MAX_PIECE_BYTES).contains(&self.piece_bytes) {
            return bad("piece_bytes", "must be between 256 and 8192");
        }
        if self.replication_factor > 20 {
            return bad("replication_factor", "must be at most 20");
        }
        if self.repair_interval_secs == 0 {
            return bad("repair_interval_secs", "must be positive");
        }
        if self.chunks_in_flight == 0 || self.provider_window == 0 {
            return bad("chunks_in_flight", "chunks_in_flight and provider_window must be positive");
        }
        if self.request_timeout_ms == 0 || self.fetch_timeout_secs == 0 {
            return bad("request_timeout_ms", "timeouts must be positive");
        }
        Ok(())
    }

    /// See [`OverlayParams::request_timeout_ms`].
    pub fn request_timeout(&self) -> Duration {
        millis(self.request_timeout_ms)
    }

    /// See [`OverlayParams::fetch_timeout_secs`].
    pub fn fetch_timeout(&self) -> Duration {
        secs(self.fetch_timeout_secs)
    }

    /// See [`OverlayParams::repair_interval_secs`].
    pub fn repair_interval(&self) -> Duration {
        secs(self.repair_interval_secs)
    }

    /// See [`OverlayParams::ban_secs`].
    pub fn ban(&self) -> Duration {
        secs(self.ban_secs)
    }
}
