//! Fuzz target `circuit_relay`: a relay driven by a script. See [`allium_fuzz::circuit_relay::circuit_relay`].

use allium_fuzz::{MAX_LEN, NODE_ITERATIONS, TEST_TIME, circuit_relay};

#[test]
fn circuit_relay() {
    bolero::check!()
        .with_type::<Vec<circuit_relay::RelayStep>>()
        .with_iterations(NODE_ITERATIONS)
        .with_max_len(MAX_LEN)
        .with_test_time(TEST_TIME)
        .for_each(|script: &Vec<circuit_relay::RelayStep>| circuit_relay::circuit_relay(script));
}
