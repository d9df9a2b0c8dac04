//! HTTP front-ends of a running node (not built under madsim): the
//! loopback-only control API used by `allium-node ctl`, and the Prometheus
//! and health endpoints. The control API's routes are tabled in
//! [`control`] (election: `GET /v1/leader`, and join/leave/remove in
//! [`election`]; mixnet: [`mix`]; rewards: `GET /v1/rewards` and
//! `/v1/rewards/record` in [`rewards`]).

pub mod control;
pub mod election;
pub mod metrics;
pub mod mix;
pub mod rewards;
