//! Fuzz target `overlay_node`: a node replicating an object from a provider
//! (the harness) that serves it honestly, corruptly or not at all. See
//! [`allium_fuzz::overlay::overlay_node`].

use allium_fuzz::overlay::{self, OverlayStep};
use allium_fuzz::{MAX_LEN, NODE_ITERATIONS, TEST_TIME};

#[test]
fn overlay_node() {
    bolero::check!()
        .with_type::<Vec<OverlayStep>>()
        .with_iterations(NODE_ITERATIONS)
        .with_max_len(MAX_LEN)
        .with_test_time(TEST_TIME)
        .for_each(overlay::overlay_node);
}
