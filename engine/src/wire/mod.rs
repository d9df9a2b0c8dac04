//! Datagram framing and the control-message codec.
//!
//! Every datagram is `[version: u8][kind: u8][body…]`. Control-message
//! bodies are bincode 2 (`standard()` varint configuration) with a hard size
//! limit on every decode; the whole body must be consumed and be the
//! canonical encoding of what it decodes to (no long-form varints). Fixed-layout
//! kinds (onion cells, mix packets) will parse their bodies by hand.
//!
//! Everything about the encoding lives in this module so that it can be
//! replaced in one place.

mod error;

pub use error::WireError;

use bincode::config::{Configuration, Limit, LittleEndian, Varint};

/// The protocol version carried in byte 0 of every datagram.
pub const VERSION: u8 = 1;

/// Largest datagram the engine will emit or accept, in bytes.
pub const MAX_DATAGRAM: usize = 65_507;

/// Largest control-message body a decoder will read (bincode limit), in bytes.
pub const MAX_BODY: usize = 64 * 1024;

/// Length of the `[version][kind]` header, in bytes.
pub const HEADER_LEN: usize = 2;

/// What a datagram carries; byte 1 of every datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum MessageKind {
    /// A Kademlia request or response.
    Dht = 1,
    /// A content-overlay transfer or replication message.
    Overlay = 2,
    /// An onion cell: fixed size, laid out by hand (see `circuit::cell`).
    Circuit = 3,
    /// A Sphinx mix packet: fixed size, laid out by hand (see `mix::packet`).
    Mix = 4,
    /// A provider's delivery to its client: the same size as a mix packet
    /// (see `mix::frame`).
    MixDelivery = 5,
    /// A client's subscription to its provider, and the answer.
    MixControl = 6,
    /// A lease-election message (see `election::messages`).
    Election = 7,
    /// A rewards message (see `rewards::messages`).
    Rewards = 8,
}

impl MessageKind {
    /// The kind for a header byte, if known.
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(MessageKind::Dht),
            2 => Some(MessageKind::Overlay),
            3 => Some(MessageKind::Circuit),
            4 => Some(MessageKind::Mix),
            5 => Some(MessageKind::MixDelivery),
            6 => Some(MessageKind::MixControl),
            7 => Some(MessageKind::Election),
            8 => Some(MessageKind::Rewards),
            _ => None,
        }
    }
}

type Codec = Configuration<LittleEndian, Varint, Limit<MAX_BODY>>;

fn codec() -> Codec {
    bincode::config::standard().with_limit::<MAX_BODY>()
}

/// Encodes `message` as a complete datagram of the given kind.
pub fn encode<T: bincode::Encode>(kind: MessageKind, message: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.push(VERSION);
    out.push(kind as u8);
    // Writing into a Vec cannot fail short of allocation failure; a message
    // over the limit is a local bug that the datagram size check reports.
    let _ = bincode::encode_into_std_write(message, &mut out, codec());
    out
}

/// Splits a datagram into its kind and body, checking version and size.
pub fn split(datagram: &[u8]) -> Result<(MessageKind, &[u8]), WireError> {
    if datagram.len() > MAX_DATAGRAM {
        return Err(WireError::Oversized { len: datagram.len() });
    }
    match datagram {
        [] | [_] => Err(WireError::Truncated),
        [version, ..] if *version != VERSION => Err(WireError::UnsupportedVersion(*version)),
        [_, kind, body @ ..] => {
            let kind = MessageKind::from_byte(*kind).ok_or(WireError::UnknownKind(*kind))?;
            Ok((kind, body))
        }
    }
}

/// Decodes a control-message body, which must be consumed exactly and be
/// the canonical encoding of what it decodes to.
///
/// bincode accepts the long forms of its varints (`fb 03 00` for 3), so
/// without the canonical check one message would have many encodings: a
/// relay could re-encode what it forwards, and a value's bytes would not
/// identify it. A long form is refused as an invalid field.
pub fn decode_body<T: bincode::Encode + bincode::Decode<()>>(body: &[u8]) -> Result<T, WireError> {
    let (value, used) = bincode::decode_from_slice(body, codec()).map_err(WireError::from)?;
    if used != body.len() {
        return Err(WireError::TrailingBytes { extra: body.len() - used });
    }
    if !encodes_to(&value, body) {
        return Err(NON_CANONICAL);
    }
    Ok(value)
}

/// The error for bytes that decode but are not the canonical encoding.
pub const NON_CANONICAL: WireError = WireError::InvalidField("non-canonical encoding");

/// Whether `value` encodes (under the control-message codec) to exactly
/// `bytes`; compares while encoding, without allocating.
pub fn encodes_to<T: bincode::Encode>(value: &T, bytes: &[u8]) -> bool {
    let mut compare = CompareWriter { expected: bytes, at: 0 };
    bincode::encode_into_writer(value, &mut compare, codec()).is_ok() && compare.at == bytes.len()
}

/// A bincode writer that checks each write against the expected bytes and
/// stops at the first difference.
struct CompareWriter<'a> {
    /// The bytes the encoding must reproduce.
    expected: &'a [u8],
    /// How many of them the encoding has matched so far.
    at: usize,
}

impl bincode::enc::write::Writer for &mut CompareWriter<'_> {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        let end = self.at.saturating_add(bytes.len());
        if self.expected.get(self.at..end) != Some(bytes) {
            return Err(bincode::error::EncodeError::Other("differs from the decoded bytes"));
        }
        self.at = end;
        Ok(())
    }
}

/// Decodes a value from the front of `bytes` under a caller-chosen size
/// limit (for structures larger than a control message, such as manifests),
/// returning it and the number of bytes it used.
pub fn decode_prefix_limited<T: bincode::Decode<()>, const LIMIT: usize>(
    bytes: &[u8],
) -> Result<(T, usize), WireError> {
    let config = bincode::config::standard().with_limit::<LIMIT>();
    bincode::decode_from_slice(bytes, config).map_err(WireError::from)
}

/// Encodes a value without a datagram header (for structures stored or
/// hashed rather than sent as one datagram, such as manifests).
pub fn encode_plain<T: bincode::Encode>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let _ = bincode::encode_into_std_write(value, &mut out, bincode::config::standard());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, bincode::Encode, bincode::Decode)]
    struct Sample {
        a: u64,
        b: Vec<u8>,
    }

    #[test]
    fn round_trip_and_rejections() {
        let msg = Sample { a: 42, b: vec![1, 2, 3] };
        let datagram = encode(MessageKind::Dht, &msg);
        let (kind, body) = split(&datagram).unwrap();
        assert_eq!(kind, MessageKind::Dht);
        assert_eq!(decode_body::<Sample>(body).unwrap(), msg);

        assert_eq!(split(&[]), Err(WireError::Truncated));
        assert_eq!(split(&[9, 1]), Err(WireError::UnsupportedVersion(9)));
        assert_eq!(split(&[VERSION, 200]), Err(WireError::UnknownKind(200)));
        let mut trailing = body.to_vec();
        trailing.push(0);
        assert_eq!(decode_body::<Sample>(&trailing), Err(WireError::TrailingBytes { extra: 1 }));
        assert!(decode_body::<Sample>(&body[..body.len() - 1]).is_err());
    }

    #[test]
    fn long_form_varints_are_refused() {
        let msg = Sample { a: 3, b: vec![7] };
        let datagram = encode(MessageKind::Dht, &msg);
        let (_, body) = split(&datagram).unwrap();
        assert_eq!(body, [3, 1, 7]);
        // bincode itself takes `fb 03 00` (a u16 varint) for 3.
        let long: &[u8] = &[0xfb, 3, 0, 1, 7];
        let (raw, _): (Sample, usize) = bincode::decode_from_slice(long, codec()).unwrap();
        assert_eq!(raw, msg);
        assert_eq!(decode_body::<Sample>(long), Err(WireError::InvalidField("non-canonical encoding")));
        // The length prefix too, and the long forms of wider varints.
        assert!(decode_body::<Sample>(&[3, 0xfb, 1, 0, 7]).is_err());
        assert!(decode_body::<Sample>(&[0xfc, 3, 0, 0, 0, 1, 7]).is_err());
        assert_eq!(decode_body::<Sample>(&[3, 1, 7]), Ok(msg));
    }

    #[test]
    fn huge_length_prefixes_are_refused_without_allocating() {
        // a = 0, then a Vec length prefix of u64::MAX (varint tag 253 + 8 bytes).
        let mut body = vec![0u8, 253];
        body.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(decode_body::<Sample>(&body), Err(WireError::LimitExceeded)));
    }
}
