//! Fuzz target `dht_message_decode`: DHT message bodies from arbitrary
//! bytes. See [`allium_fuzz::codec::dht_message_decode`].

use allium_fuzz::{ITERATIONS, TEST_TIME, codec};

#[test]
fn dht_message_decode() {
    bolero::check!().with_iterations(ITERATIONS).with_test_time(TEST_TIME).for_each(codec::dht_message_decode);
}
