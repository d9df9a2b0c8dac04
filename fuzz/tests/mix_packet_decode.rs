//! Fuzz target `mix_packet_decode`: Sphinx packet bytes into the decoder and
//! a mix. See [`allium_fuzz::mix::mix_packet_decode`].

use allium_fuzz::{ITERATIONS, TEST_TIME, mix};

#[test]
fn mix_packet_decode() {
    bolero::check!().with_iterations(ITERATIONS).with_test_time(TEST_TIME).for_each(mix::mix_packet_decode);
}
