//! The SOCKS5 entry point: local applications (curl, browsers) connect to
//! the node's SOCKS listener, and each CONNECT becomes a stream over an
//! onion circuit.
//!
//! * [`codec`]: the sans-IO message parser and encoder (RFC 1928, CONNECT
//!   only, no authentication).

pub mod codec;

pub use codec::{Reply, SocksError};
