//! SOCKS5 messages (RFC 1928), sans-IO: the client's greeting and request,
//! and the server's method choice and reply.
//!
//! The parsers are incremental: given the bytes received so far they answer
//! `Ok(None)` while a message is incomplete, and `Ok(Some((message, used)))`
//! once it is whole, where `used` is exactly the length of that message
//! (bytes after it belong to whatever follows). They never panic and never
//! read past one message.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

/// The protocol version byte, `5`.
pub const VERSION: u8 = 5;
/// Authentication method "no authentication required", the only one accepted.
pub const METHOD_NO_AUTH: u8 = 0x00;
/// Method-selection answer "no acceptable methods".
pub const METHOD_NONE_ACCEPTABLE: u8 = 0xFF;
/// Request command CONNECT, the only one supported.
pub const CMD_CONNECT: u8 = 0x01;
/// Address type: an IPv4 address (4 bytes).
pub const ATYP_IPV4: u8 = 0x01;
/// Address type: a domain name (a length byte, then the name).
pub const ATYP_DOMAIN: u8 = 0x03;
/// Address type: an IPv6 address (16 bytes).
pub const ATYP_IPV6: u8 = 0x04;

/// Why bytes from a client are not a valid SOCKS5 message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SocksError {
    /// The version byte is not 5 (SOCKS4 or not SOCKS at all).
    #[error("not SOCKS5 (version byte {0})")]
    Version(u8),
    /// A greeting offering zero methods.
    #[error("the greeting offers no authentication method")]
    NoMethods,
    /// The reserved byte of a request is not zero.
    #[error("reserved byte is {0}, not 0")]
    Reserved(u8),
    /// An address type other than IPv4, domain name or IPv6.
    #[error("unknown address type {0}")]
    AddressType(u8),
    /// A domain name of length zero.
    #[error("empty domain name")]
    EmptyDomain,
    /// A domain name that is not UTF-8 text.
    #[error("domain name is not UTF-8")]
    DomainNotText,
}

impl SocksError {
    /// The reply to send before closing, if the request stage was reached
    /// (the greeting stage has no reply code other than "no method").
    pub fn reply(&self) -> Reply {
        match self {
            SocksError::AddressType(_) => Reply::AddressTypeNotSupported,
            _ => Reply::GeneralFailure,
        }
    }
}

/// The client's first message: the authentication methods it offers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Greeting {
    /// Method codes, 1 to 255 of them.
    pub methods: Vec<u8>,
}

impl Greeting {
    /// Whether the client offers "no authentication", the only method served.
    pub fn offers_no_auth(&self) -> bool {
        self.methods.contains(&METHOD_NO_AUTH)
    }

    /// The wire form (for tests and clients).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION, self.methods.len() as u8];
        out.extend_from_slice(&self.methods);
        out
    }
}

/// The server's answer to a greeting: the chosen method
/// ([`METHOD_NO_AUTH`] or [`METHOD_NONE_ACCEPTABLE`]).
pub fn method_choice(method: u8) -> [u8; 2] {
    [VERSION, method]
}

/// Where a request wants to go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// An IP address and port.
    Addr(SocketAddr),
    /// A domain name, kept as the client wrote it (never resolved locally), and a port.
    Domain(String, u16),
}

impl Target {
    /// The host part as text (an IP address without brackets, or the name).
    pub fn host(&self) -> String {
        match self {
            Target::Addr(addr) => addr.ip().to_string(),
            Target::Domain(name, _) => name.clone(),
        }
    }

    /// The destination port.
    pub fn port(&self) -> u16 {
        match self {
            Target::Addr(addr) => addr.port(),
            Target::Domain(_, port) => *port,
        }
    }
}

/// The client's request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The command byte; only [`CMD_CONNECT`] is served, others get
    /// [`Reply::CommandNotSupported`].
    pub command: u8,
    /// The destination.
    pub target: Target,
}

impl Request {
    /// The wire form (for tests and clients). A domain name longer than 255
    /// bytes is cut to 255 (the length field is one byte).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![VERSION, self.command, 0];
        match &self.target {
            Target::Addr(SocketAddr::V4(addr)) => {
                out.push(ATYP_IPV4);
                out.extend_from_slice(&addr.ip().octets());
            }
            Target::Addr(SocketAddr::V6(addr)) => {
                out.push(ATYP_IPV6);
                out.extend_from_slice(&addr.ip().octets());
            }
            Target::Domain(name, _) => {
                let name = &name.as_bytes()[..name.len().min(255)];
                out.push(ATYP_DOMAIN);
                out.push(name.len() as u8);
                out.extend_from_slice(name);
            }
        }
        out.extend_from_slice(&self.target.port().to_be_bytes());
        out
    }
}

/// The reply codes of RFC 1928 section 6 that this server sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// 0x00: the stream is open.
    Succeeded,
    /// 0x01: anything not covered below (no circuit, node stopping, …).
    GeneralFailure,
    /// 0x02: the exit policy refused the destination.
    NotAllowed,
    /// 0x04: the exit could not resolve or connect to the destination.
    HostUnreachable,
    /// 0x06: no answer in time.
    TtlExpired,
    /// 0x07: a command other than CONNECT.
    CommandNotSupported,
    /// 0x08: an unknown address type.
    AddressTypeNotSupported,
}

impl Reply {
    /// The REP byte.
    pub fn code(self) -> u8 {
        match self {
            Reply::Succeeded => 0x00,
            Reply::GeneralFailure => 0x01,
            Reply::NotAllowed => 0x02,
            Reply::HostUnreachable => 0x04,
            Reply::TtlExpired => 0x06,
            Reply::CommandNotSupported => 0x07,
            Reply::AddressTypeNotSupported => 0x08,
        }
    }

    /// The whole reply message. The bound address is reported as
    /// `0.0.0.0:0`: the stream leaves from the exit, whose address the client
    /// has no use for.
    pub fn encode(self) -> [u8; 10] {
        [VERSION, self.code(), 0, ATYP_IPV4, 0, 0, 0, 0, 0, 0]
    }
}

/// What a parser makes of the bytes received so far: `None` while the
/// message is incomplete, else the message and its length in bytes.
pub type Parsed<T> = Result<Option<(T, usize)>, SocksError>;

/// Parses a greeting from the start of `buf`.
pub fn parse_greeting(buf: &[u8]) -> Parsed<Greeting> {
    let Some(&version) = buf.first() else { return Ok(None) };
    if version != VERSION {
        return Err(SocksError::Version(version));
    }
    let Some(&count) = buf.get(1) else { return Ok(None) };
    if count == 0 {
        return Err(SocksError::NoMethods);
    }
    let used = 2 + usize::from(count);
    match buf.get(2..used) {
        Some(methods) => Ok(Some((Greeting { methods: methods.to_vec() }, used))),
        None => Ok(None),
    }
}

/// Parses a request from the start of `buf`. A request with an unsupported
/// command still parses (its reply is [`Reply::CommandNotSupported`]); an
/// unknown address type does not, since its length is unknown.
pub fn parse_request(buf: &[u8]) -> Parsed<Request> {
    let Some(&version) = buf.first() else { return Ok(None) };
    if version != VERSION {
        return Err(SocksError::Version(version));
    }
    let (Some(&command), Some(&reserved), Some(&atyp)) = (buf.get(1), buf.get(2), buf.get(3)) else {
        return Ok(None);
    };
    if reserved != 0 {
        return Err(SocksError::Reserved(reserved));
    }
    let (addr_start, addr_len) = match atyp {
        ATYP_IPV4 => (4, 4),
        ATYP_IPV6 => (4, 16),
        ATYP_DOMAIN => match buf.get(4) {
            None => return Ok(None),
            Some(0) => return Err(SocksError::EmptyDomain),
            Some(&len) => (5, usize::from(len)),
        },
        other => return Err(SocksError::AddressType(other)),
    };
    let port_at = addr_start + addr_len;
    let (Some(addr), Some(port)) = (buf.get(addr_start..port_at), buf.get(port_at..port_at + 2)) else {
        return Ok(None);
    };
    let port = u16::from_be_bytes([port[0], port[1]]);
    let target = match atyp {
        ATYP_IPV4 => {
            let octets: [u8; 4] = addr.try_into().map_err(|_| SocksError::AddressType(atyp))?;
            Target::Addr(SocketAddr::from((Ipv4Addr::from(octets), port)))
        }
        ATYP_IPV6 => {
            let octets: [u8; 16] = addr.try_into().map_err(|_| SocksError::AddressType(atyp))?;
            Target::Addr(SocketAddr::from((Ipv6Addr::from(octets), port)))
        }
        _ => {
            let name = std::str::from_utf8(addr).map_err(|_| SocksError::DomainNotText)?;
            Target::Domain(name.to_string(), port)
        }
    };
    Ok(Some((Request { command, target }, port_at + 2)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_greeting_parses_only_when_whole_and_consumes_exactly_itself() {
        let bytes = [5, 2, 0x02, 0x00, 0xAA];
        for cut in 0..4 {
            assert_eq!(parse_greeting(&bytes[..cut]), Ok(None), "prefix of {cut}");
        }
        let (greeting, used) = parse_greeting(&bytes).unwrap().unwrap();
        assert_eq!((greeting.methods.as_slice(), used), (&[2u8, 0][..], 4));
        assert!(greeting.offers_no_auth());
        assert!(!Greeting { methods: vec![2] }.offers_no_auth());
        assert_eq!(parse_greeting(&[4, 1, 0]), Err(SocksError::Version(4)));
        assert_eq!(parse_greeting(&[5, 0]), Err(SocksError::NoMethods));
    }

    #[test]
    fn requests_of_every_address_type_parse_incrementally() {
        let requests = [
            Request { command: CMD_CONNECT, target: Target::Addr("10.1.2.3:80".parse().unwrap()) },
            Request { command: CMD_CONNECT, target: Target::Addr("[2001:db8::1]:443".parse().unwrap()) },
            Request { command: CMD_CONNECT, target: Target::Domain("example.internal".into(), 8080) },
            Request { command: 0x02, target: Target::Domain("bind.example".into(), 1) },
        ];
        for request in requests {
            let mut bytes = request.encode();
            let len = bytes.len();
            for cut in 0..len {
                assert_eq!(parse_request(&bytes[..cut]), Ok(None), "{request:?} cut at {cut}");
            }
            bytes.extend_from_slice(b"GET / HTTP/1.0\r\n");
            assert_eq!(parse_request(&bytes), Ok(Some((request, len))));
        }
    }

    #[test]
    fn bad_requests_are_typed_errors_with_the_right_reply() {
        assert_eq!(parse_request(&[4, 1, 0, 1]), Err(SocksError::Version(4)));
        assert_eq!(parse_request(&[5, 1, 7, 1]), Err(SocksError::Reserved(7)));
        let atyp = parse_request(&[5, 1, 0, 9, 1, 2]).unwrap_err();
        assert_eq!((atyp.clone(), atyp.reply().code()), (SocksError::AddressType(9), 0x08));
        assert_eq!(parse_request(&[5, 1, 0, 3, 0, 0, 80]), Err(SocksError::EmptyDomain));
        assert_eq!(parse_request(&[5, 1, 0, 3, 1, 0xFF, 0, 80]), Err(SocksError::DomainNotText));
        assert_eq!(SocksError::Version(4).reply(), Reply::GeneralFailure);
    }

    #[test]
    fn replies_carry_the_rfc_codes() {
        let codes = [
            (Reply::Succeeded, 0),
            (Reply::GeneralFailure, 1),
            (Reply::NotAllowed, 2),
            (Reply::HostUnreachable, 4),
            (Reply::TtlExpired, 6),
            (Reply::CommandNotSupported, 7),
            (Reply::AddressTypeNotSupported, 8),
        ];
        for (reply, code) in codes {
            assert_eq!(reply.encode(), [5, code, 0, 1, 0, 0, 0, 0, 0, 0]);
        }
        assert_eq!(method_choice(METHOD_NONE_ACCEPTABLE), [5, 0xFF]);
    }
}
