//! Fuzz target `wire_split`: datagram framing. See [`allium_fuzz::codec::wire_split`].

use allium_fuzz::{ITERATIONS, TEST_TIME, codec};

#[test]
fn wire_split() {
    bolero::check!().with_iterations(ITERATIONS).with_test_time(TEST_TIME).for_each(codec::wire_split);
}
