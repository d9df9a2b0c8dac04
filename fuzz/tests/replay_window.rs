//! Fuzz target `replay_window`: a walk of sequence numbers against a
//! reference model. See [`allium_fuzz::circuit::replay_window`].

use allium_fuzz::circuit::{self, SeqStep};
use allium_fuzz::{STRUCTURED_ITERATIONS, TEST_TIME};

#[test]
fn replay_window() {
    bolero::check!()
        .with_type::<Vec<SeqStep>>()
        .with_iterations(STRUCTURED_ITERATIONS)
        .with_test_time(TEST_TIME)
        .for_each(|steps: &Vec<SeqStep>| circuit::replay_window(steps));
}
