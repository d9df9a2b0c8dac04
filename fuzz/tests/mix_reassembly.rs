//! Fuzz target `mix_reassembly`: a script of fragments and time steps into
//! a bounded reassembly. See [`allium_fuzz::mix_message::mix_reassembly`].

use allium_fuzz::mix_message::{self, ReassemblyInput};
use allium_fuzz::{STRUCTURED_ITERATIONS, TEST_TIME};

#[test]
fn mix_reassembly() {
    bolero::check!()
        .with_type::<ReassemblyInput>()
        .with_iterations(STRUCTURED_ITERATIONS)
        .with_test_time(TEST_TIME)
        .for_each(mix_message::mix_reassembly);
}
