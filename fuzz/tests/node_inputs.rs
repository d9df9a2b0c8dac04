//! Fuzz target `node_inputs`: a node fed an arbitrary sequence of
//! datagrams, timeouts and commands. See [`allium_fuzz::node`] for the
//! properties checked after every input.

use allium_fuzz::node::{self, Script};
use allium_fuzz::{MAX_LEN, NODE_ITERATIONS, TEST_TIME};

#[test]
fn node_inputs() {
    bolero::check!()
        .with_type::<Script>()
        .with_iterations(NODE_ITERATIONS)
        .with_max_len(MAX_LEN)
        .with_test_time(TEST_TIME)
        .for_each(node::node_inputs);
}
