//! Fuzz target `manifest_round_trip`: manifests built from fuzzer-chosen
//! content, then one bit flipped. See [`allium_fuzz::overlay::manifest_round_trip`].

use allium_fuzz::overlay::{self, ManifestInput};
use allium_fuzz::{MAX_LEN, STRUCTURED_ITERATIONS, TEST_TIME};

#[test]
fn manifest_round_trip() {
    bolero::check!()
        .with_type::<ManifestInput>()
        .with_iterations(STRUCTURED_ITERATIONS)
        .with_max_len(MAX_LEN)
        .with_test_time(TEST_TIME)
        .for_each(overlay::manifest_round_trip);
}
