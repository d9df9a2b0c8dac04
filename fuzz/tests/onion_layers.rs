//! Fuzz target `onion_layers`: layered encryption through 1 to 4 hops, with
//! an optional flipped bit. See [`allium_fuzz::circuit::onion_layers`].

use allium_fuzz::circuit::{self, OnionInput};
use allium_fuzz::{STRUCTURED_ITERATIONS, TEST_TIME};

#[test]
fn onion_layers() {
    bolero::check!()
        .with_type::<OnionInput>()
        .with_iterations(STRUCTURED_ITERATIONS)
        .with_test_time(TEST_TIME)
        .for_each(circuit::onion_layers);
}
