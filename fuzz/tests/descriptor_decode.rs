//! Fuzz target `descriptor_decode`: arbitrary bytes, alone and spliced into a
//! valid descriptor. See [`allium_fuzz::circuit_directory::descriptor_decode`].

use allium_fuzz::{ITERATIONS, TEST_TIME, circuit_directory};

#[test]
fn descriptor_decode() {
    bolero::check!()
        .with_iterations(ITERATIONS)
        .with_test_time(TEST_TIME)
        .for_each(circuit_directory::descriptor_decode);
}
