//! Fuzz target `election_member`: one group member driven by a script of
//! requests, replies, raw bodies and time. See
//! [`allium_fuzz::election::election_member`].

use allium_fuzz::{MAX_LEN, NODE_ITERATIONS, TEST_TIME, election};

#[test]
fn election_member() {
    bolero::check!()
        .with_type::<Vec<election::Step>>()
        .with_iterations(NODE_ITERATIONS)
        .with_test_time(TEST_TIME)
        .with_max_len(MAX_LEN)
        .for_each(|steps| election::election_member(steps));
}
