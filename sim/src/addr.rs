//! Virtual transport addresses. Node index `i` lives at
//! `10.(i>>16).(i>>8).(i):(4000 + (i>>24))`; no socket is ever opened, and
//! the simulator maps an address back to its node by decoding it.

use allium_engine::Addr;
use std::net::{Ipv4Addr, SocketAddr};

const BASE_PORT: u16 = 4000;

/// The address of node `index`.
pub fn addr_of(index: u32) -> Addr {
    let [hi, a, b, c] = index.to_be_bytes();
    SocketAddr::from((Ipv4Addr::new(10, a, b, c), BASE_PORT + u16::from(hi)))
}

/// The node index an address belongs to, if it is a simulator address.
pub fn index_of(addr: &Addr) -> Option<u32> {
    match addr {
        SocketAddr::V4(v4) => {
            let [ten, a, b, c] = v4.ip().octets();
            let hi = v4.port().checked_sub(BASE_PORT).filter(|hi| *hi < 256)?;
            (ten == 10).then(|| u32::from_be_bytes([hi as u8, a, b, c]))
        }
        SocketAddr::V6(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        for i in [0u32, 1, 255, 256, 65_535, 1 << 20, (1 << 24) + 7, u32::MAX] {
            assert_eq!(index_of(&addr_of(i)), Some(i));
        }
        assert_eq!(index_of(&"127.0.0.1:4000".parse().unwrap()), None);
        assert_eq!(index_of(&"10.0.0.1:80".parse().unwrap()), None);
    }
}
