//! Fuzz target `cell_parse`: the fixed cell layout. See [`allium_fuzz::circuit::cell_parse`].

use allium_fuzz::{ITERATIONS, TEST_TIME, circuit};

#[test]
fn cell_parse() {
    bolero::check!().with_iterations(ITERATIONS).with_test_time(TEST_TIME).for_each(circuit::cell_parse);
}
