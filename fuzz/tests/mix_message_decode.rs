//! Fuzz target `mix_message_decode`: arbitrary bytes into the mix message
//! layer's decoders (inner messages, message bodies, addresses) and
//! end-to-end opening. See [`allium_fuzz::mix_message::mix_message_decode`].

use allium_fuzz::{ITERATIONS, TEST_TIME, mix_message};

#[test]
fn mix_message_decode() {
    bolero::check!().with_iterations(ITERATIONS).with_test_time(TEST_TIME).for_each(mix_message::mix_message_decode);
}
