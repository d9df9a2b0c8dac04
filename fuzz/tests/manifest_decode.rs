//! Fuzz target `manifest_decode`: arbitrary bytes. See [`allium_fuzz::overlay::manifest_decode`].

use allium_fuzz::{ITERATIONS, TEST_TIME, overlay};

#[test]
fn manifest_decode() {
    bolero::check!().with_iterations(ITERATIONS).with_test_time(TEST_TIME).for_each(overlay::manifest_decode);
}
