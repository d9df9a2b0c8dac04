//! Fuzz target `election_decode`: arbitrary bytes into the election
//! message decoder. See [`allium_fuzz::election::election_decode`].

use allium_fuzz::{ITERATIONS, TEST_TIME, election};

#[test]
fn election_decode() {
    bolero::check!().with_iterations(ITERATIONS).with_test_time(TEST_TIME).for_each(election::election_decode);
}
