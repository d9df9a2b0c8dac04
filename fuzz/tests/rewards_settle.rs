//! Fuzz target `rewards_settle`: arbitrary small epoch inputs into the
//! settlement. See [`allium_fuzz::rewards::rewards_settle`].

use allium_fuzz::{MAX_LEN, STRUCTURED_ITERATIONS, TEST_TIME, rewards};

#[test]
fn rewards_settle() {
    bolero::check!()
        .with_type::<rewards::SettleInput>()
        .with_iterations(STRUCTURED_ITERATIONS)
        .with_test_time(TEST_TIME)
        .with_max_len(MAX_LEN)
        .for_each(rewards::rewards_settle);
}
