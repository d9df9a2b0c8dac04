//! Fuzz target `descriptor_round_trip`: descriptors signed from
//! fuzzer-chosen fields, then one bit flipped. See
//! [`allium_fuzz::circuit_directory::descriptor_round_trip`].

use allium_fuzz::circuit_directory::{self, DescriptorInput};
use allium_fuzz::{MAX_LEN, STRUCTURED_ITERATIONS, TEST_TIME};

#[test]
fn descriptor_round_trip() {
    bolero::check!()
        .with_type::<DescriptorInput>()
        .with_iterations(STRUCTURED_ITERATIONS)
        .with_max_len(MAX_LEN)
        .with_test_time(TEST_TIME)
        .for_each(circuit_directory::descriptor_round_trip);
}
