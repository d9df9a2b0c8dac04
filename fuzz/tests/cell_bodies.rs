//! Fuzz target `cell_bodies`: CREATE, CREATED and DESTROY bodies. See
//! [`allium_fuzz::circuit::cell_bodies`].

use allium_fuzz::{ITERATIONS, TEST_TIME, circuit};

#[test]
fn cell_bodies() {
    bolero::check!().with_iterations(ITERATIONS).with_test_time(TEST_TIME).for_each(circuit::cell_bodies);
}
