//! Fuzz target `rewards_pointer_decode`. See
//! [`allium_fuzz::rewards::rewards_pointer_decode`].

use allium_fuzz::{ITERATIONS, TEST_TIME, rewards};

#[test]
fn rewards_pointer_decode() {
    bolero::check!().with_iterations(ITERATIONS).with_test_time(TEST_TIME).for_each(rewards::rewards_pointer_decode);
}
