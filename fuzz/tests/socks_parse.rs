//! Fuzz target `socks_parse`: the node's SOCKS5 greeting and request
//! parsers on raw bytes. See [`allium_fuzz::socks::socks_parse`].

use allium_fuzz::{ITERATIONS, TEST_TIME, socks};

#[test]
fn socks_parse() {
    bolero::check!().with_iterations(ITERATIONS).with_test_time(TEST_TIME).for_each(socks::socks_parse);
}
