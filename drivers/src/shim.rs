//! The one place where tokio and madsim differ for this driver:
//! `UdpSocket::send_to` takes `(buf, addr)` in tokio and `(addr, buf)` in madsim.

use std::io;
use std::net::SocketAddr;
use tokio::net::UdpSocket;

/// Sends one datagram.
#[cfg(not(madsim))]
pub async fn send_to(socket: &UdpSocket, buf: &[u8], to: SocketAddr) -> io::Result<()> {
    socket.send_to(buf, to).await.map(|_| ())
}

/// Sends one datagram.
#[cfg(madsim)]
pub async fn send_to(socket: &UdpSocket, buf: &[u8], to: SocketAddr) -> io::Result<()> {
    socket.send_to(to, buf).await
}
