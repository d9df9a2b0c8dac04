//! Fuzz target `overlay_message_decode`: arbitrary bytes. See [`allium_fuzz::overlay::overlay_message_decode`].

use allium_fuzz::{ITERATIONS, TEST_TIME, overlay};

#[test]
fn overlay_message_decode() {
    bolero::check!().with_iterations(ITERATIONS).with_test_time(TEST_TIME).for_each(overlay::overlay_message_decode);
}
