//! Fuzz target `rewards_message_decode`: arbitrary bytes into the rewards
//! message decoder (`allium_engine::rewards::messages::RewardsMessage::decode`):
//! it never panics; what decodes re-encodes to exactly the same body and
//! decodes again to itself; a decoded receipt's, announcement's or registration's signature check never panics;
//! errors are typed body errors.

use allium_engine::rewards::messages::RewardsMessage;
use allium_engine::wire::{self, MessageKind, WireError};
use allium_fuzz::{ITERATIONS, TEST_TIME};

fn rewards_message_decode(bytes: &[u8]) {
    match RewardsMessage::decode(bytes) {
        Ok(message) => {
            let datagram = message.encode();
            let (kind, body) = wire::split(&datagram).expect("own datagram frames");
            assert_eq!(kind, MessageKind::Rewards);
            assert_eq!(body, bytes, "re-encoding differs");
            assert_eq!(RewardsMessage::decode(body).as_ref(), Ok(&message));
            match &message {
                RewardsMessage::Receipt(receipt) => {
                    let _ = receipt.verify();
                }
                RewardsMessage::Announce(a) => {
                    let _ = (a.verify(), a.coordinator());
                }
                RewardsMessage::Register(r) => {
                    let _ = (r.verify(), r.node());
                }
                _ => {}
            }
        }
        Err(e) => assert!(
            matches!(
                e,
                WireError::Truncated
                    | WireError::LimitExceeded
                    | WireError::InvalidField(_)
                    | WireError::TrailingBytes { .. }
                    | WireError::Protocol(_)
            ),
            "{e:?}"
        ),
    }
}

#[test]
fn rewards_message_decode_target() {
    bolero::check!().with_iterations(ITERATIONS).with_test_time(TEST_TIME).for_each(rewards_message_decode);
}
