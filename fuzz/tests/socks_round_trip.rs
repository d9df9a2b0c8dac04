//! Fuzz target `socks_round_trip`: SOCKS5 requests and greetings built from
//! fuzzer-chosen fields, encoded and parsed back. See
//! [`allium_fuzz::socks::socks_round_trip`].

use allium_fuzz::socks::{self, RequestModel};
use allium_fuzz::{STRUCTURED_ITERATIONS, TEST_TIME};

#[test]
fn socks_round_trip() {
    bolero::check!()
        .with_type::<RequestModel>()
        .with_iterations(STRUCTURED_ITERATIONS)
        .with_test_time(TEST_TIME)
        .for_each(socks::socks_round_trip);
}
