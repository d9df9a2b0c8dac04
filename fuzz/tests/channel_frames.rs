//! Fuzz target `channel_frames`: arbitrary channel payloads. See [`allium_fuzz::circuit_channel::channel_frames`].

use allium_fuzz::{ITERATIONS, TEST_TIME, circuit_channel};

#[test]
fn channel_frames() {
    bolero::check!().with_iterations(ITERATIONS).with_test_time(TEST_TIME).for_each(circuit_channel::channel_frames);
}
