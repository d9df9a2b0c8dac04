//! Fuzz target `mix_packet_round_trip`: Sphinx packets (and SURB replies)
//! along 1 to 5 hops. See [`allium_fuzz::mix::mix_packet_round_trip`].

use allium_fuzz::mix::{self, RoundTripInput};
use allium_fuzz::{STRUCTURED_ITERATIONS, TEST_TIME};

#[test]
fn mix_packet_round_trip() {
    bolero::check!()
        .with_type::<RoundTripInput>()
        .with_iterations(STRUCTURED_ITERATIONS)
        .with_test_time(TEST_TIME)
        .for_each(mix::mix_packet_round_trip);
}
