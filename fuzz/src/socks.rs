//! Targets for the node's SOCKS5 codec (`allium_node::socks::codec`): the
//! greeting and request parsers on arbitrary bytes, and requests built from
//! fuzzer-chosen fields encoded and parsed back.

use allium_node::socks::SocksError;
use allium_node::socks::codec::{self, Greeting, Parsed, Request, Target};
use bolero::TypeGenerator;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// `socks_parse`: neither parser panics on any input; a message that parses
/// consumed at most the input, re-encodes to exactly the bytes it consumed,
/// parses the same from those bytes alone, and every shorter prefix is
/// "incomplete" (so the parser consumes exactly one message and decides
/// nothing before it is whole). The bytes are also read as the server reads
/// a connection: a greeting, then a request from what follows it. Random
/// bytes rarely start like SOCKS5, so each is also tried with the version
/// byte set to 5 and (for requests) the reserved byte set to 0.
pub fn socks_parse(bytes: &[u8]) {
    let mut shaped = bytes.to_vec();
    if let Some(version) = shaped.first_mut() {
        *version = codec::VERSION;
    }
    check(bytes, codec::parse_greeting, Greeting::encode);
    check(&shaped, codec::parse_greeting, Greeting::encode);
    check(bytes, codec::parse_request, Request::encode);
    if let Some(reserved) = shaped.get_mut(2) {
        *reserved = 0;
    }
    check(&shaped, codec::parse_request, Request::encode);
    if let Ok(Some((_, used))) = codec::parse_greeting(bytes) {
        check(&bytes[used..], codec::parse_request, Request::encode);
    }
}

fn check<T: PartialEq + core::fmt::Debug>(bytes: &[u8], parse: fn(&[u8]) -> Parsed<T>, encode: fn(&T) -> Vec<u8>) {
    let Ok(Some((message, used))) = parse(bytes) else { return };
    assert!(used <= bytes.len(), "consumed {used} of {} bytes", bytes.len());
    assert_eq!(encode(&message), &bytes[..used], "the encoding is the consumed bytes");
    assert_eq!(parse(&bytes[..used]), Ok(Some((message, used))));
    for cut in 0..used {
        assert_eq!(parse(&bytes[..cut]), Ok(None), "a prefix of {cut} bytes is incomplete");
    }
}

/// A destination chosen by the fuzzer.
#[derive(Clone, Debug, TypeGenerator)]
pub enum TargetModel {
    /// An IPv4 address and port.
    V4([u8; 4], u16),
    /// An IPv6 address and port.
    V6([u8; 16], u16),
    /// A domain name (cut to 255 bytes at a character boundary) and port.
    Domain(String, u16),
}

/// A request chosen by the fuzzer, with bytes that follow it on the connection.
#[derive(Clone, Debug, TypeGenerator)]
pub struct RequestModel {
    /// The command byte (CONNECT or not).
    pub command: u8,
    /// The destination.
    pub target: TargetModel,
    /// Bytes after the request (application data sent early).
    pub trailing: Vec<u8>,
}

/// `socks_round_trip`: an encoded request parses back to itself and
/// consumes exactly its own bytes, whatever follows; only an empty domain
/// name is refused (`EmptyDomain`). Greetings of 1..=255 methods round-trip
/// the same way.
pub fn socks_round_trip(model: &RequestModel) {
    let target = match &model.target {
        TargetModel::V4(ip, port) => Target::Addr(SocketAddr::from((Ipv4Addr::from(*ip), *port))),
        TargetModel::V6(ip, port) => Target::Addr(SocketAddr::from((Ipv6Addr::from(*ip), *port))),
        TargetModel::Domain(name, port) => {
            let mut end = name.len().min(255);
            while !name.is_char_boundary(end) {
                end -= 1;
            }
            Target::Domain(name[..end].to_string(), *port)
        }
    };
    let request = Request { command: model.command, target };
    let encoded = request.encode();
    let mut bytes = encoded.clone();
    bytes.extend_from_slice(&model.trailing);
    match codec::parse_request(&bytes) {
        Ok(Some((parsed, used))) => {
            assert_eq!(parsed, request);
            assert_eq!(used, encoded.len(), "consumes exactly the request");
        }
        other => {
            assert!(matches!(&request.target, Target::Domain(name, _) if name.is_empty()), "{request:?}: {other:?}");
            assert_eq!(other, Err(SocksError::EmptyDomain));
        }
    }
    let methods: Vec<u8> = model.trailing.iter().copied().take(255).collect();
    if !methods.is_empty() {
        let greeting = Greeting { methods };
        let mut bytes = greeting.encode();
        let len = bytes.len();
        bytes.extend_from_slice(&encoded);
        assert_eq!(codec::parse_greeting(&bytes), Ok(Some((greeting, len))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_targets_accept_real_client_bytes() {
        // curl --socks5-hostname: greeting offering no-auth, then CONNECT to a name.
        let mut bytes = vec![5, 1, 0];
        bytes.extend_from_slice(&[5, 1, 0, 3, 9]);
        bytes.extend_from_slice(b"127.0.0.1");
        bytes.extend_from_slice(&8080u16.to_be_bytes());
        socks_parse(&bytes);
        let model = RequestModel { command: 1, target: TargetModel::Domain(String::new(), 80), trailing: vec![0] };
        socks_round_trip(&model);
        let model = RequestModel { command: 2, target: TargetModel::V6([1; 16], 443), trailing: b"GET".to_vec() };
        socks_round_trip(&model);
    }
}
