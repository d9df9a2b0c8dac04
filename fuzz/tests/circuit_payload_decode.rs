//! Fuzz target `circuit_payload_decode`: arbitrary plaintexts. See [`allium_fuzz::circuit_relay::circuit_payload_decode`].

use allium_fuzz::{ITERATIONS, TEST_TIME, circuit_relay};

#[test]
fn circuit_payload_decode() {
    bolero::check!()
        .with_iterations(ITERATIONS)
        .with_test_time(TEST_TIME)
        .for_each(circuit_relay::circuit_payload_decode);
}
