//! Fuzz target `mix_queue`: a mixing queue (Poisson or pool) driven by a
//! script of pushes, clock moves and pops. See
//! [`allium_fuzz::mix_descriptor::mix_queue`].

use allium_fuzz::mix_descriptor::{self, QueueInput};
use allium_fuzz::{MAX_LEN, STRUCTURED_ITERATIONS, TEST_TIME};

#[test]
fn mix_queue() {
    bolero::check!()
        .with_type::<QueueInput>()
        .with_iterations(STRUCTURED_ITERATIONS)
        .with_max_len(MAX_LEN)
        .with_test_time(TEST_TIME)
        .for_each(mix_descriptor::mix_queue);
}
