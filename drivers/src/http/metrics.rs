//! Prometheus `/metrics`, `/healthz` and `/readyz`.
//!
//! Engine counters have dotted names (`dht.requests.sent`); they are
//! exported as counters with dots turned into underscores under the
//! `allium_` prefix (`allium_dht_requests_sent_total`).

use crate::runtime::{Handle, Stats};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::time::Duration;

/// How long a health probe waits for the node loop to answer.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Renders a stats snapshot in the Prometheus text format.
pub fn render(stats: &Stats) -> String {
    let mut registry = Registry::with_prefix("allium");
    for (name, value) in &stats.metrics {
        let counter = Counter::<u64>::default();
        counter.inc_by(*value);
        let metric_name = name.replace(['.', '-'], "_");
        registry.register(metric_name, format!("engine counter {name}"), counter);
    }
    let gauges = [
        ("routing_table_peers", "contacts in the routing table", stats.peers as i64),
        ("records_held", "value records held for the network", stats.values_held as i64),
        ("providers_held", "provider records held for the network", stats.providers_held as i64),
        ("content_objects", "objects in the local content store", stats.content_objects as i64),
        ("content_bytes", "content bytes held, counted against overlay.store_quota_bytes", stats.content_bytes as i64),
        ("directory_relays", "relay descriptors in the circuit directory", stats.directory_relays as i64),
        ("circuits", "this node's own circuits, open or building", stats.circuits as i64),
        ("relayed_circuits", "circuits carried for others as a relay", stats.relayed_circuits as i64),
        ("bootstrapped", "1 once the node has joined the network", i64::from(stats.bootstrapped)),
        ("uptime_seconds", "seconds since the node started", (stats.uptime_ms / 1000) as i64),
    ];
    for (name, help, value) in gauges {
        let gauge = Gauge::<i64>::default();
        gauge.set(value);
        registry.register(name, help, gauge);
    }
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = encode(&mut out, &registry);
    out
}

async fn metrics(State(handle): State<Handle>) -> Response {
    match tokio::time::timeout(PROBE_TIMEOUT, handle.stats()).await {
        Ok(Ok(stats)) => {
            ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], render(&stats))
                .into_response()
        }
        _ => (StatusCode::SERVICE_UNAVAILABLE, "node loop not answering\n").into_response(),
    }
}

async fn healthz(State(handle): State<Handle>) -> Response {
    match tokio::time::timeout(PROBE_TIMEOUT, handle.stats()).await {
        Ok(Ok(_)) => (StatusCode::OK, "ok\n").into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "node loop not answering\n").into_response(),
    }
}

async fn readyz(State(handle): State<Handle>) -> Response {
    match tokio::time::timeout(PROBE_TIMEOUT, handle.stats()).await {
        Ok(Ok(stats)) if stats.bootstrapped => (StatusCode::OK, "ready\n").into_response(),
        Ok(Ok(_)) => (StatusCode::SERVICE_UNAVAILABLE, "not yet joined\n").into_response(),
        _ => (StatusCode::SERVICE_UNAVAILABLE, "node loop not answering\n").into_response(),
    }
}

/// Serves `/metrics`, `/healthz` and `/readyz` on `addr`.
pub async fn serve(addr: SocketAddr, handle: Handle) -> anyhow::Result<()> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(handle);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "metrics listening");
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_gauges_render_in_prometheus_format() {
        let stats = Stats {
            node_id: "ab".into(),
            signing_key: "cd".into(),
            listen: "127.0.0.1:1".parse().unwrap(),
            uptime_ms: 5_000,
            bootstrapped: true,
            peers: 3,
            values_held: 2,
            providers_held: 0,
            content_objects: 2,
            content_bytes: 4096,
            directory_relays: 3,
            circuits: 1,
            relayed_circuits: 0,
            metrics: [("wire.rejected".to_string(), 7u64)].into_iter().collect(),
        };
        let text = render(&stats);
        assert!(text.contains("allium_wire_rejected_total 7"), "{text}");
        assert!(text.contains("allium_routing_table_peers 3"), "{text}");
        assert!(text.contains("allium_directory_relays 3"), "{text}");
        assert!(text.contains("allium_bootstrapped 1"), "{text}");
        assert!(text.contains("allium_content_bytes 4096"), "{text}");
        assert!(text.trim_end().ends_with("# EOF"));
    }
}
