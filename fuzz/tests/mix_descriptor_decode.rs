//! Fuzz target `mix_descriptor_decode`: arbitrary bytes, and valid mix
//! descriptors damaged by them. See
//! [`allium_fuzz::mix_descriptor::mix_descriptor_decode`].

use allium_fuzz::{ITERATIONS, TEST_TIME, mix_descriptor};

#[test]
fn mix_descriptor_decode() {
    bolero::check!()
        .with_iterations(ITERATIONS)
        .with_test_time(TEST_TIME)
        .for_each(mix_descriptor::mix_descriptor_decode);
}
