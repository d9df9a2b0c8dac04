//! The one place where tokio and madsim differ for this driver:
//! `UdpSocket::send_to` takes `(buf, addr)` in tokio and `(addr, buf)` in
//! madsim, and only a real socket has kernel buffers to size.

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

/// Receive buffer the node asks the kernel for. A content transfer arrives
/// in bursts (up to `overlay.chunks_in_flight` chunks of about 55 pieces
/// each, roughly half a MiB); Linux's default of 208 KiB drops part of such
/// a burst, which costs a request time-out per lost piece. The kernel caps
/// the request at `net.core.rmem_max`.
#[cfg(not(madsim))]
const RECV_BUFFER_BYTES: usize = 4 << 20;

/// Enlarges the socket's receive buffer (best effort); returns the size the kernel granted.
#[cfg(not(madsim))]
pub fn tune(socket: &UdpSocket) -> Option<usize> {
    let socket = socket2::SockRef::from(socket);
    let _ = socket.set_recv_buffer_size(RECV_BUFFER_BYTES);
    socket.recv_buffer_size().ok()
}

/// Simulated sockets have no kernel buffers.
#[cfg(madsim)]
pub fn tune(_socket: &UdpSocket) -> Option<usize> {
    None
}
