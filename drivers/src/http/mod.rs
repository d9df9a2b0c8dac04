//! HTTP front-ends of a running node (not built under madsim): the
//! loopback-only control API used by `allium-node ctl`, and the Prometheus
//! and health endpoints.

pub mod control;
pub mod metrics;
pub mod mix;
