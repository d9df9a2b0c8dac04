//! The simulated destinations behind exits, and their ground truth.
//!
//! A stream's client sends one request line, `GET <len> <nonce>\n`, then
//! half-closes; the destination answers with `len` bytes of
//! [`response_bytes`] for that nonce, then closes. The content is a BLAKE3
//! extendable output keyed by the nonce, so a checker can recompute any
//! slice of any response on its own, without storing it.

/// The host name of destination `n`.
pub fn host(n: u32) -> String {
    format!("svc-{n}.sim")
}

/// Whether `host` names one of the first `count` destinations.
pub fn is_destination(host: &str, count: u32) -> bool {
    host.strip_prefix("svc-")
        .and_then(|rest| rest.strip_suffix(".sim"))
        .and_then(|n| n.parse::<u32>().ok())
        .is_some_and(|n| n < count)
}

/// The request line asking for `len` bytes of the response named `nonce`.
pub fn request(len: u64, nonce: u64) -> Vec<u8> {
    format!("GET {len} {nonce}\n").into_bytes()
}

/// Parses a complete request line (without its newline): `(len, nonce)`.
pub fn parse_request(line: &[u8]) -> Option<(u64, u64)> {
    let line = std::str::from_utf8(line).ok()?;
    let mut words = line.strip_prefix("GET ")?.split(' ');
    let len = words.next()?.parse().ok()?;
    let nonce = words.next()?.parse().ok()?;
    words.next().is_none().then_some((len, nonce))
}

/// Fills `out` with the response bytes named `nonce`, starting at `offset`.
pub fn response_bytes(nonce: u64, offset: u64, out: &mut [u8]) {
    let mut hasher = blake3::Hasher::new_derive_key("allium-sim destination response");
    hasher.update(&nonce.to_le_bytes());
    let mut reader = hasher.finalize_xof();
    reader.set_position(offset);
    reader.fill(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_garbage_is_refused() {
        let line = request(123_456, 99);
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(parse_request(&line[..line.len() - 1]), Some((123_456, 99)));
        for bad in [&b"GET 1"[..], b"PUT 1 2", b"GET x 2", b"GET 1 2 3", b"\xff"] {
            assert_eq!(parse_request(bad), None);
        }
    }

    #[test]
    fn any_slice_matches_the_whole() {
        let mut whole = vec![0u8; 5000];
        response_bytes(7, 0, &mut whole);
        let mut part = vec![0u8; 1000];
        response_bytes(7, 1234, &mut part);
        assert_eq!(&whole[1234..2234], &part[..]);
        let mut other = vec![0u8; 1000];
        response_bytes(8, 1234, &mut other);
        assert_ne!(part, other);
    }

    #[test]
    fn destination_names() {
        assert!(is_destination(&host(3), 16));
        assert!(!is_destination(&host(16), 16));
        assert!(!is_destination("svc-1.example", 16));
    }
}
