//! Kademlia parameters (`[dht]` in scenario and config files).

use crate::params::{ParamError, millis, secs};
use core::time::Duration;
use serde::{Deserialize, Serialize};

/// Kademlia parameters. Every field has a documented default and unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DhtParams {
    /// Bucket size and replication factor. Default 20.
    pub k: usize,
    /// Requests in flight per lookup. Default 3.
    pub alpha: usize,
    /// Disjoint lookup paths (S/Kademlia `d`); 1 is plain Kademlia. Default 1.
    pub disjoint_paths: usize,
    /// Longest wait for one response to one attempt, in milliseconds; the
    /// actual wait follows measured round trips (RFC 6298). Default 2000.
    pub request_timeout_ms: u64,
    /// Shortest wait for one response to one attempt, in milliseconds. Default 250.
    pub min_request_timeout_ms: u64,
    /// Retransmissions of an unanswered request before the peer counts as failed. Default 1.
    pub request_retries: u32,
    /// Time after which a lookup ends with the partial results it has, in milliseconds. Default 20000.
    pub lookup_timeout_ms: u64,
    /// Consecutive failed requests after which a contact is stale (replaced by the next newcomer). Default 2.
    pub max_failures: u32,
    /// A full bucket's oldest contact heard from within this many seconds is
    /// not pinged to make room for a newcomer (the newcomer is dropped). Default 900,
    /// BEP 5's definition of a good node.
    pub recently_seen_secs: u64,
    /// Required leading zero bits of a node's proof-of-work (S/Kademlia dynamic puzzle); 0 disables. Default 0.
    pub pow_difficulty: u32,
    /// Lifetime of a value or provider record at its holders, in seconds. Default 86400.
    pub record_ttl_secs: u32,
    /// Largest TTL a holder honours, in seconds. Default 172800.
    pub max_record_ttl_secs: u32,
    /// How often a publisher re-stores its own records, in seconds. Default 3600.
    pub republish_interval_secs: u64,
    /// How long a bucket may go without a lookup before it is refreshed, in seconds. Default 3600.
    pub refresh_interval_secs: u64,
    /// Delay before retrying a bootstrap that reached no one, in seconds. Default 30.
    pub bootstrap_retry_secs: u64,
    /// Largest value a record may carry, in bytes. Default 1024.
    pub max_value_bytes: usize,
    /// Most records (values plus providers) a node holds for others. Default 65536.
    pub max_records: usize,
    /// Most provider records held per key. Default 20.
    pub max_providers_per_key: usize,
}

impl Default for DhtParams {
    fn default() -> Self {
        DhtParams {
            k: 20,
            alpha: 3,
            disjoint_paths: 1,
            request_timeout_ms: 2_000,
            min_request_timeout_ms: 250,
            request_retries: 1,
            lookup_timeout_ms: 20_000,
            max_failures: 2,
            recently_seen_secs: 900,
            pow_difficulty: 0,
            record_ttl_secs: 86_400,
            max_record_ttl_secs: 172_800,
            republish_interval_secs: 3_600,
            refresh_interval_secs: 3_600,
            bootstrap_retry_secs: 30,
            max_value_bytes: 1_024,
            max_records: 65_536,
            max_providers_per_key: 20,
        }
    }
}

impl DhtParams {
    /// Checks ranges.
    pub fn validate(&self) -> Result<(), ParamError> {
        let bad = |key: &str, reason: &str| {
            Err(ParamError::InvalidValue { key: format!("dht.{key}"), reason: reason.to_string() })
        };
        if self.k == 0 || self.k > super::message::MAX_PEERS_PER_MESSAGE {
            return bad("k", "must be between 1 and 64");
        }
        if self.alpha == 0 {
            return bad("alpha", "must be at least 1");
        }
        if self.disjoint_paths == 0 || self.disjoint_paths > self.k {
            return bad("disjoint_paths", "must be between 1 and k");
        }
        if self.min_request_timeout_ms == 0 || self.request_timeout_ms < self.min_request_timeout_ms {
            return bad("request_timeout_ms", "must be at least min_request_timeout_ms, which must be positive");
        }
        if self.lookup_timeout_ms < self.request_timeout_ms {
            return bad("lookup_timeout_ms", "must be at least request_timeout_ms");
        }
        if self.request_retries > 4 {
            return bad("request_retries", "must be at most 4");
        }
        if self.pow_difficulty > 24 {
            // 2^24 hashes take seconds at start-up; more is a mistake.
            return bad("pow_difficulty", "must be at most 24");
        }
        if self.republish_interval_secs == 0 || self.refresh_interval_secs == 0 || self.bootstrap_retry_secs == 0 {
            return bad("republish_interval_secs", "intervals must be positive");
        }
        if self.max_value_bytes > 16 * 1024 {
            return bad("max_value_bytes", "must be at most 16384");
        }
        Ok(())
    }

    /// [`Self::request_timeout_ms`] as a span.
    pub fn request_timeout(&self) -> Duration {
        millis(self.request_timeout_ms)
    }

    /// [`Self::min_request_timeout_ms`] as a span.
    pub fn min_request_timeout(&self) -> Duration {
        millis(self.min_request_timeout_ms)
    }

    /// [`Self::lookup_timeout_ms`] as a span.
    pub fn lookup_timeout(&self) -> Duration {
        millis(self.lookup_timeout_ms)
    }

    /// [`Self::recently_seen_secs`] as a span.
    pub fn recently_seen(&self) -> Duration {
        secs(self.recently_seen_secs)
    }

    /// [`Self::republish_interval_secs`] as a span.
    pub fn republish_interval(&self) -> Duration {
        secs(self.republish_interval_secs)
    }

    /// [`Self::refresh_interval_secs`] as a span.
    pub fn refresh_interval(&self) -> Duration {
        secs(self.refresh_interval_secs)
    }

    /// [`Self::bootstrap_retry_secs`] as a span.
    pub fn bootstrap_retry(&self) -> Duration {
        secs(self.bootstrap_retry_secs)
    }
}
