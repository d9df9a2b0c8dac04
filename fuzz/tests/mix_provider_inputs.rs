//! Fuzz target `mix_provider_inputs`: a mixnet provider driven by a script
//! of packets, subscriptions, raw datagrams and time. See
//! [`allium_fuzz::mix_provider::mix_provider_inputs`].

use allium_fuzz::{NODE_ITERATIONS, TEST_TIME, mix_provider};

#[test]
fn mix_provider_inputs() {
    bolero::check!()
        .with_type::<Vec<mix_provider::Step>>()
        .with_iterations(NODE_ITERATIONS)
        .with_test_time(TEST_TIME)
        .for_each(|steps| mix_provider::mix_provider_inputs(steps));
}
