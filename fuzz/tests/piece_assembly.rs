//! Fuzz target `piece_assembly`: a block reassembled from arbitrary pieces.
//! See [`allium_fuzz::overlay::piece_assembly`].

use allium_fuzz::overlay::{self, PieceInput};
use allium_fuzz::{ITERATIONS, MAX_LEN, TEST_TIME};

#[test]
fn piece_assembly() {
    bolero::check!()
        .with_type::<(u16, Option<u16>, Vec<PieceInput>)>()
        .with_iterations(ITERATIONS)
        .with_max_len(MAX_LEN)
        .with_test_time(TEST_TIME)
        .for_each(overlay::piece_assembly);
}
