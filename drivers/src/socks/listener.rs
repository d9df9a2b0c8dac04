//! The SOCKS5 listener: one task per client connection runs the handshake,
//! asks the node for a stream to the requested destination and, once it is
//! open, pumps bytes both ways (see [`crate::tcp::pump`]).

use super::codec::{self, CMD_CONNECT, METHOD_NO_AUTH, METHOD_NONE_ACCEPTABLE, Reply, SocksError};
use crate::runtime::{CommandOutcome, Handle, OpenError};
use allium_engine::Command;
use allium_engine::circuit::{CircuitEvent, StreamEnd};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long a client has to finish the greeting and the request: 10 seconds.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a connection ended before its stream opened.
#[derive(Debug, thiserror::Error)]
enum HandshakeError {
    #[error("client closed the connection during the handshake")]
    Closed,
    #[error("handshake took longer than {HANDSHAKE_TIMEOUT:?}")]
    Timeout,
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error("bad greeting: {0}")]
    Greeting(SocksError),
    #[error("bad request: {0}")]
    Request(SocksError),
    #[error("the client offers no acceptable authentication method")]
    NoAcceptableMethod,
    #[error("command {0:#04x} is not supported")]
    Command(u8),
    #[error("{0}")]
    Open(OpenError),
    #[error("the node is not running")]
    Stopped,
}

/// The reply code for a stream that could not be opened.
pub fn reply_for(error: &OpenError) -> Reply {
    match error {
        OpenError::NotAllowed(_) | OpenError::Stream(StreamEnd::Refused) => Reply::NotAllowed,
        OpenError::Stream(StreamEnd::Unreachable) => Reply::HostUnreachable,
        OpenError::Stream(StreamEnd::Timeout) => Reply::TtlExpired,
        OpenError::Stream(_) | OpenError::Rejected(_) => Reply::GeneralFailure,
    }
}

/// Pause between preemptive build attempts.
const WARM_UP_RETRY: Duration = Duration::from_secs(5);
/// Preemptive build attempts before the listener gives up warming up.
const WARM_UP_TRIES: u32 = 6;

/// Once the node has joined and knows at least `min_peers` peers (a path
/// needs `circuit.hops` relays), builds one circuit to an exit for port 80
/// ahead of the first client (as Tor builds preemptive circuits). This also
/// starts filling the relay directory, which a client-only node otherwise
/// does at its first stream. Retried a few times while the directory fills.
pub async fn warm_up(handle: Handle, min_peers: usize) {
    let mut tries = 0;
    while tries < WARM_UP_TRIES {
        match handle.stats().await {
            Ok(stats) if stats.bootstrapped && stats.peers >= min_peers => {}
            Ok(_) => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
            Err(_) => return,
        }
        tries += 1;
        match handle.command(Command::BuildCircuit { exit_port: Some(80) }).await {
            Ok(CommandOutcome::Circuit(event)) if matches!(*event, CircuitEvent::Built { .. }) => return,
            Ok(outcome) => tracing::debug!(?outcome, "preemptive circuit not built yet"),
            Err(_) => return,
        }
        tokio::time::sleep(WARM_UP_RETRY).await;
    }
}

/// Accepts SOCKS5 clients on `addr` until the process stops, after
/// starting [`warm_up`] with `hops` (`circuit.hops`) as its peer count.
pub async fn serve(addr: SocketAddr, handle: Handle, hops: usize) -> anyhow::Result<()> {
    let listener = TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "SOCKS5 listening");
    tokio::spawn(warm_up(handle.clone(), hops));
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::debug!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            handle.count("driver.socks.connections").await;
            if let Err(error) = connection(tcp, &handle).await {
                handle.count("driver.socks.failures").await;
                tracing::info!(%peer, %error, "SOCKS connection failed");
            }
        });
    }
}

/// Reads until `parse` gives a whole message, and removes it from `buf`.
/// A message is at most 262 bytes, so `buf` stays small.
async fn read_message<T>(
    tcp: &mut TcpStream,
    buf: &mut Vec<u8>,
    parse: fn(&[u8]) -> codec::Parsed<T>,
    malformed: fn(SocksError) -> HandshakeError,
) -> Result<T, HandshakeError> {
    let mut chunk = [0u8; 512];
    loop {
        if let Some((message, used)) = parse(buf).map_err(malformed)? {
            buf.drain(..used);
            return Ok(message);
        }
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            return Err(HandshakeError::Closed);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The handshake, then the stream.
async fn connection(mut tcp: TcpStream, handle: &Handle) -> Result<(), HandshakeError> {
    let mut buf = Vec::new();
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&mut tcp, &mut buf)).await;
    let request = match handshake {
        Ok(Ok(request)) => request,
        Ok(Err(error)) => {
            if let Some(reply) = request_stage_reply(&error) {
                let _ = tcp.write_all(&reply.encode()).await;
            }
            return Err(error);
        }
        Err(_) => return Err(HandshakeError::Timeout),
    };
    let host = request.target.host();
    let port = request.target.port();
    tracing::debug!(%host, port, "SOCKS CONNECT");
    match handle.open_stream(host, port).await {
        Ok(Ok(end)) => {
            tcp.write_all(&Reply::Succeeded.encode()).await?;
            crate::tcp::pump(tcp, end, buf).await;
            Ok(())
        }
        Ok(Err(error)) => {
            let _ = tcp.write_all(&reply_for(&error).encode()).await;
            Err(HandshakeError::Open(error))
        }
        Err(_) => {
            let _ = tcp.write_all(&Reply::GeneralFailure.encode()).await;
            Err(HandshakeError::Stopped)
        }
    }
}

/// Greeting, method choice, request. Leaves in `buf` any bytes the client sent after the request.
async fn handshake(tcp: &mut TcpStream, buf: &mut Vec<u8>) -> Result<codec::Request, HandshakeError> {
    let greeting = read_message(tcp, buf, codec::parse_greeting, HandshakeError::Greeting).await?;
    if !greeting.offers_no_auth() {
        tcp.write_all(&codec::method_choice(METHOD_NONE_ACCEPTABLE)).await?;
        return Err(HandshakeError::NoAcceptableMethod);
    }
    tcp.write_all(&codec::method_choice(METHOD_NO_AUTH)).await?;
    let request = read_message(tcp, buf, codec::parse_request, HandshakeError::Request).await?;
    if request.command != CMD_CONNECT {
        return Err(HandshakeError::Command(request.command));
    }
    Ok(request)
}

/// The reply owed for a handshake failure at the request stage, if any.
fn request_stage_reply(error: &HandshakeError) -> Option<Reply> {
    match error {
        HandshakeError::Command(_) => Some(Reply::CommandNotSupported),
        HandshakeError::Request(e) => Some(e.reply()),
        _ => None,
    }
}
