//! Fuzz target `persist_round_trip`: persisted state built from
//! fuzzer-chosen operations, encoded, decoded and restored. See
//! [`allium_fuzz::codec::persist_round_trip`].

use allium_fuzz::model::FuzzPersistOp;
use allium_fuzz::{MAX_LEN, PERSIST_ITERATIONS, TEST_TIME, codec};

#[test]
fn persist_round_trip() {
    bolero::check!()
        .with_type::<Vec<FuzzPersistOp>>()
        .with_iterations(PERSIST_ITERATIONS)
        .with_max_len(MAX_LEN)
        .with_test_time(TEST_TIME)
        .for_each(|ops| codec::persist_round_trip(ops));
}
