//! Real TCP for circuit streams (not under madsim): the byte pump shared by
//! the SOCKS entry and the exit, and the exit's resolve-check-connect step.

use crate::pipe::{FromTcp, Inbox, Reporter, TaskEnd, ToTcp};
use crate::runtime::Request;
use allium_engine::circuit::{ExitPolicy, StreamEnd};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Largest read from a TCP connection, in bytes (a few dozen circuit cells'
/// worth per message to the node loop).
const READ_CHUNK: usize = 32 * 1024;

/// Most queued stream bytes gathered into one TCP write, in bytes.
const WRITE_BATCH: usize = 256 * 1024;

/// How long an exit waits for name resolution, and then for the TCP
/// connect, each: 10 seconds.
pub const EXIT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Pumps bytes between `tcp` and its stream until the stream ends: TCP
/// reads become stream bytes (only while the read gate is open), stream
/// bytes are written to TCP. `early` holds bytes already read from the
/// connection (sent before the handshake finished).
pub async fn pump(tcp: TcpStream, end: TaskEnd, early: Vec<u8>) {
    let _ = tcp.set_nodelay(true);
    let (reader, writer) = tcp.into_split();
    let TaskEnd { reporter, inbox, .. } = end;
    let failed = reporter.requests().clone();
    let stream = end.stream;
    let read = read_side(reader, reporter, early);
    let write = write_side(writer, inbox);
    tokio::pin!(read);
    tokio::pin!(write);
    let mut reading = true;
    loop {
        tokio::select! {
            () = &mut read, if reading => reading = false,
            ok = &mut write => {
                if !ok {
                    let _ = failed.send(Request::Stream { stream, input: FromTcp::Failed }).await;
                }
                break;
            }
        }
    }
}

/// TCP → stream, gated; returns at end of file, on error or when the stream is gone.
async fn read_side(mut reader: OwnedReadHalf, mut reporter: Reporter, early: Vec<u8>) {
    if !early.is_empty() && !reporter.report(FromTcp::Data(early)).await {
        return;
    }
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        if !reporter.readable().await {
            return;
        }
        let input = match reader.read(&mut buf).await {
            Ok(0) => FromTcp::Eof,
            Ok(n) => FromTcp::Data(buf[..n].to_vec()),
            Err(error) => {
                tracing::debug!(%error, "stream connection read failed");
                FromTcp::Failed
            }
        };
        let last = !matches!(input, FromTcp::Data(_));
        if !reporter.report(input).await || last {
            return;
        }
    }
}

/// Stream → TCP; returns `true` when the stream ended, `false` when writing failed.
async fn write_side(mut writer: OwnedWriteHalf, mut inbox: Inbox) -> bool {
    let mut batch = Vec::new();
    loop {
        let Some(message) = inbox.recv().await else { return true };
        let mut next = Some(message);
        // Gather what is already queued into one write.
        while let Some(message) = next.take() {
            match message {
                ToTcp::Data(data) => {
                    batch.extend_from_slice(&data);
                    if batch.len() < WRITE_BATCH {
                        next = inbox.try_recv();
                    }
                }
                other => {
                    if !flush(&mut writer, &mut batch, &inbox).await {
                        return false;
                    }
                    match other {
                        ToTcp::Finish => {
                            let _ = writer.shutdown().await;
                        }
                        ToTcp::Close(reason) => {
                            if reason != StreamEnd::Finished {
                                tracing::debug!(?reason, "stream closed");
                            }
                            return true;
                        }
                        ToTcp::Data(_) => {}
                    }
                }
            }
        }
        if !flush(&mut writer, &mut batch, &inbox).await {
            return false;
        }
    }
}

async fn flush(writer: &mut OwnedWriteHalf, batch: &mut Vec<u8>, inbox: &Inbox) -> bool {
    if batch.is_empty() {
        return true;
    }
    let result = writer.write_all(batch).await;
    inbox.written(batch.len());
    batch.clear();
    if let Err(error) = &result {
        tracing::debug!(%error, "stream connection write failed");
    }
    result.is_ok()
}

/// Why an exit did not connect.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    /// The name did not resolve (or not in time).
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// Every resolved address is refused by the exit policy.
    #[error("{0} resolves only to addresses the exit policy refuses")]
    Refused(String),
    /// No allowed address accepted a connection in time.
    #[error("cannot connect to {0}")]
    Connect(String),
}

/// Resolves `host`, keeps only the addresses `policy` allows (the policy is
/// checked on every resolved IP, not only on the name the client gave),
/// and connects to the first that answers.
pub async fn dial(host: &str, port: u16, policy: &ExitPolicy) -> Result<TcpStream, DialError> {
    let resolved: Vec<SocketAddr> =
        match tokio::time::timeout(EXIT_CONNECT_TIMEOUT, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(addrs)) => addrs.collect(),
            _ => return Err(DialError::Resolve(host.to_string())),
        };
    let allowed: Vec<SocketAddr> =
        resolved.iter().copied().filter(|addr| policy.allows(&addr.ip().to_string(), port)).collect();
    if allowed.is_empty() {
        return Err(if resolved.is_empty() {
            DialError::Resolve(host.to_string())
        } else {
            DialError::Refused(host.to_string())
        });
    }
    for addr in allowed {
        if let Ok(Ok(tcp)) = tokio::time::timeout(EXIT_CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            return Ok(tcp);
        }
    }
    Err(DialError::Connect(format!("{host}:{port}")))
}

/// Exit side of one stream: dial, tell the node loop the outcome, then pump.
pub async fn exit_stream(host: String, port: u16, policy: ExitPolicy, end: TaskEnd) {
    let stream = end.stream;
    let dialed = dial(&host, port, &policy).await;
    if let Err(error) = &dialed {
        tracing::info!(%error, "exit connection failed");
    }
    let requests = end.reporter.requests().clone();
    let connected = dialed.is_ok();
    if requests.send(Request::ExitDialed { stream, connected }).await.is_err() {
        return;
    }
    if let Ok(tcp) = dialed {
        pump(tcp, end, Vec::new()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_policy_is_checked_on_the_resolved_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let only_ten = ExitPolicy::parse(&["accept 10.0.0.0:*", "accept localhost:*"]).unwrap();
        // The name is allowed, but it resolves to 127.0.0.1, which is not.
        assert_eq!(dial("localhost", port, &only_ten).await.unwrap_err(), DialError::Refused("localhost".into()));
        let loopback = ExitPolicy::parse(&["accept 127.0.0.1:*"]).unwrap();
        assert!(dial("127.0.0.1", port, &loopback).await.is_ok());
        assert!(matches!(dial("no-such-host.invalid", port, &loopback).await, Err(DialError::Resolve(_))));
    }
}
