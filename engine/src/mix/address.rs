//! Mix addresses: where a mix message goes.
//!
//! A [`MixAddress`] names the recipient, the X25519 key messages to it are
//! sealed to end to end (its onion key), and the provider that holds its
//! messages. Byte form ([`MixAddress::LEN`] = 96 bytes):
//!
//! ```text
//! offset  len  field
//! 0       32   recipient node id
//! 32      32   recipient's X25519 public key
//! 64      32   provider node id
//! ```
//!
//! Text form: `<recipient hex>.<key hex>@<provider hex>`, 64 lowercase hex
//! digits each (parsing accepts either case).

use crate::crypto::KxPublic;
use crate::identity::{NodeId, hex, parse_hex32};
use core::fmt;
use core::str::FromStr;

/// Where a mix message goes: the recipient, its end-to-end key, and its provider.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MixAddress {
    /// The node the message is for.
    pub recipient: NodeId,
    /// The recipient's X25519 public key (its onion key); messages are sealed to it.
    pub key: KxPublic,
    /// The provider that receives and holds the recipient's messages.
    pub provider: NodeId,
}

/// Why bytes or text are not a [`MixAddress`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    /// The byte form is not exactly [`MixAddress::LEN`] bytes.
    #[error("address of {len} bytes, expected {}", MixAddress::LEN)]
    WrongLength {
        /// The length received, in bytes.
        len: usize,
    },
    /// The text is not `<hex>.<hex>@<hex>` (a separator missing or repeated).
    #[error("address syntax: expected <recipient>.<key>@<provider>")]
    Syntax,
    /// A hex field of the text form is not 64 digits long.
    #[error("hex field of {len} characters, expected 64")]
    HexLength {
        /// The field's length, in bytes of text.
        len: usize,
    },
    /// A hex field holds a character that is not a hex digit.
    #[error("invalid hex digit")]
    BadHex,
}

impl MixAddress {
    /// Bytes of the byte form: recipient, key, provider (32 each).
    pub const LEN: usize = 96;

    /// The byte form: recipient | key | provider.
    pub fn to_bytes(&self) -> [u8; 96] {
        let mut out = [0u8; Self::LEN];
        out[..32].copy_from_slice(&self.recipient.0);
        out[32..64].copy_from_slice(&self.key.0);
        out[64..].copy_from_slice(&self.provider.0);
        out
    }

    /// Parses the byte form.
    ///
    /// * `bytes`: exactly [`MixAddress::LEN`] bytes, else [`AddressError::WrongLength`].
    pub fn from_bytes(bytes: &[u8]) -> Result<MixAddress, AddressError> {
        let wrong = AddressError::WrongLength { len: bytes.len() };
        let fixed: &[u8; Self::LEN] = bytes.try_into().map_err(|_| wrong)?;
        let mut parts = [[0u8; 32]; 3];
        for (part, chunk) in parts.iter_mut().zip(fixed.chunks_exact(32)) {
            part.copy_from_slice(chunk);
        }
        let [recipient, key, provider] = parts;
        Ok(MixAddress { recipient: NodeId(recipient), key: KxPublic(key), provider: NodeId(provider) })
    }
}

impl fmt::Display for MixAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}@{}", hex(&self.recipient.0), hex(&self.key.0), hex(&self.provider.0))
    }
}

/// Parses one 64-digit hex field of the text form.
fn field(s: &str) -> Result<[u8; 32], AddressError> {
    if s.len() != 64 {
        return Err(AddressError::HexLength { len: s.len() });
    }
    parse_hex32(s).ok_or(AddressError::BadHex)
}

impl FromStr for MixAddress {
    type Err = AddressError;

    /// Parses `<recipient hex>.<key hex>@<provider hex>`, hex in either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (left, provider) = s.split_once('@').ok_or(AddressError::Syntax)?;
        let (recipient, key) = left.split_once('.').ok_or(AddressError::Syntax)?;
        if key.contains('.') || provider.contains(['@', '.']) {
            return Err(AddressError::Syntax);
        }
        Ok(MixAddress {
            recipient: NodeId(field(recipient)?),
            key: KxPublic(field(key)?),
            provider: NodeId(field(provider)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> MixAddress {
        MixAddress { recipient: NodeId([0xAB; 32]), key: KxPublic([0x01; 32]), provider: NodeId([0xF0; 32]) }
    }

    #[test]
    fn text_form_is_lowercase_hex_with_separators() {
        let text = sample().to_string();
        assert_eq!(text, format!("{}.{}@{}", "ab".repeat(32), "01".repeat(32), "f0".repeat(32)));
        assert_eq!(text.parse::<MixAddress>(), Ok(sample()));
        assert_eq!(text.to_ascii_uppercase().parse::<MixAddress>(), Ok(sample()));
    }

    #[test]
    fn byte_form_round_trips_and_refuses_wrong_lengths() {
        let bytes = sample().to_bytes();
        assert_eq!(&bytes[..32], &[0xAB; 32]);
        assert_eq!(&bytes[32..64], &[0x01; 32]);
        assert_eq!(&bytes[64..], &[0xF0; 32]);
        assert_eq!(MixAddress::from_bytes(&bytes), Ok(sample()));
        assert_eq!(MixAddress::from_bytes(&bytes[..95]), Err(AddressError::WrongLength { len: 95 }));
        assert_eq!(MixAddress::from_bytes(&[0; 97]), Err(AddressError::WrongLength { len: 97 }));
        assert_eq!(MixAddress::from_bytes(&[]), Err(AddressError::WrongLength { len: 0 }));
    }

    #[test]
    fn text_rejections() {
        let (r, k, p) = ("ab".repeat(32), "01".repeat(32), "f0".repeat(32));
        let cases = [
            (String::new(), AddressError::Syntax),
            (format!("{r}{k}@{p}"), AddressError::Syntax),
            (format!("{r}.{k}{p}"), AddressError::Syntax),
            (format!("{r}.{k}.{k}@{p}"), AddressError::Syntax),
            (format!("{r}.{k}@{p}@{p}"), AddressError::Syntax),
            (format!("{r}.{k}@{p}.{p}"), AddressError::Syntax),
            (format!("{r}a.{k}@{p}"), AddressError::HexLength { len: 65 }),
            (format!("{r}.{}@{p}", &k[1..]), AddressError::HexLength { len: 63 }),
            (format!(" {r}.{k}@{p}"), AddressError::HexLength { len: 65 }),
            (format!("{r}.{k}@{}zz", &p[2..]), AddressError::BadHex),
            (format!("{}g.{k}@{p}", &r[1..]), AddressError::BadHex),
            // 64 bytes of text but not 64 hex digits (a two-byte character).
            (format!("é{}.{k}@{p}", &r[2..]), AddressError::BadHex),
        ];
        for (text, want) in cases {
            assert_eq!(text.parse::<MixAddress>(), Err(want), "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn round_trips(r in any::<[u8; 32]>(), k in any::<[u8; 32]>(), p in any::<[u8; 32]>()) {
            let a = MixAddress { recipient: NodeId(r), key: KxPublic(k), provider: NodeId(p) };
            prop_assert_eq!(MixAddress::from_bytes(&a.to_bytes()), Ok(a));
            prop_assert_eq!(a.to_string().parse::<MixAddress>(), Ok(a));
        }
    }
}
