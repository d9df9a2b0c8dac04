//! The SOCKS5 entry point: local applications (curl, browsers) connect to
//! the node's SOCKS listener, and each CONNECT becomes a stream over an
//! onion circuit.
//!
//! * [`codec`]: the sans-IO message parser and encoder (RFC 1928, CONNECT
//!   only, no authentication).
//! * `listener` (not under madsim): the TCP listener that runs the
//!   handshake for each connection, asks the node for a stream and pumps
//!   bytes both ways.

pub mod codec;
#[cfg(not(madsim))]
pub mod listener;

pub use codec::{Reply, SocksError};
