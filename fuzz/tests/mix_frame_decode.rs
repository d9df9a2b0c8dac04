//! Fuzz target `mix_frame_decode`: provider deliveries and client-provider
//! control messages. See [`allium_fuzz::mix_provider::mix_frame_decode`].

use allium_fuzz::{ITERATIONS, TEST_TIME, mix_provider};

#[test]
fn mix_frame_decode() {
    bolero::check!().with_iterations(ITERATIONS).with_test_time(TEST_TIME).for_each(mix_provider::mix_frame_decode);
}
