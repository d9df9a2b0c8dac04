//! Fuzz target `persist_decode`: `PersistOp` and `PersistedState` from
//! arbitrary bytes, as a node loads them from its database. See
//! [`allium_fuzz::codec::persist_decode`].

use allium_fuzz::{ITERATIONS, TEST_TIME, codec};

#[test]
fn persist_decode() {
    bolero::check!().with_iterations(ITERATIONS).with_test_time(TEST_TIME).for_each(codec::persist_decode);
}
