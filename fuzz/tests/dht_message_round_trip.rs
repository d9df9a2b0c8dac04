//! Fuzz target `dht_message_round_trip`: structurally valid DHT messages
//! built from fuzzer-chosen fields. See
//! [`allium_fuzz::codec::dht_message_round_trip`].

use allium_fuzz::model::FuzzMessage;
use allium_fuzz::{MAX_LEN, STRUCTURED_ITERATIONS, TEST_TIME, codec};

#[test]
fn dht_message_round_trip() {
    bolero::check!()
        .with_type::<FuzzMessage>()
        .with_iterations(STRUCTURED_ITERATIONS)
        .with_max_len(MAX_LEN)
        .with_test_time(TEST_TIME)
        .for_each(codec::dht_message_round_trip);
}
