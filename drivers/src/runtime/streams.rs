//! Circuit events and stream traffic in the node loop: SOCKS stream
//! requests, the pipes of open streams, backpressure and exit connections.

use super::{CommandOutcome, NodeRuntime};
use crate::pipe::{self, FromTcp, TaskEnd, ToTcp};
use allium_engine::Command;
use allium_engine::circuit::{CircuitEvent, StreamEnd, StreamHandle};
use tokio::sync::oneshot;

/// Why a stream could not be opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// The engine reported the stream failed (refused, unreachable, timed out, no circuit).
    #[error("stream failed: {0:?}")]
    Stream(StreamEnd),
    /// The directory knows exits, and none of their policies allows the destination.
    #[error("no known exit allows {0}")]
    NotAllowed(String),
    /// The node refused the request (bad host name).
    #[error("the node refused the request: {0}")]
    Rejected(String),
}

/// The answer to a stream request: the connection task's end of the pipe.
pub type OpenReply = oneshot::Sender<Result<TaskEnd, OpenError>>;

impl NodeRuntime {
    /// A SOCKS client wants `host:port`. Refused at once when the directory
    /// knows exits and every one's policy refuses the destination (the
    /// engine would otherwise wait for a path that cannot exist).
    pub(super) fn open_stream(&mut self, host: String, port: u16, reply: OpenReply) {
        let refused = {
            let mut exits = self.node.circuits().directory().iter().filter(|d| d.is_exit()).peekable();
            exits.peek().is_some() && !exits.any(|d| d.exit_policy.allows(&host, port))
        };
        if refused {
            let _ = reply.send(Err(OpenError::NotAllowed(format!("{host}:{port}"))));
            return;
        }
        let id = self.issue(Command::OpenStream { host, port });
        self.opening.insert(id, reply);
    }

    /// Bytes, end of file or failure from a stream's TCP connection.
    pub(super) fn on_stream_input(&mut self, stream: StreamHandle, input: FromTcp) {
        if !self.pipes.contains_key(&stream) {
            return;
        }
        match input {
            FromTcp::Data(data) => {
                let len = data.len();
                if let Some(traffic) = self.stream_circuit.get(&stream).and_then(|c| self.traffic.get_mut(c)) {
                    traffic.sent += len as u64;
                }
                self.issue(Command::StreamSend { stream, data });
                let limit = self.node.params().circuit.stream_send_buffer_bytes as usize;
                let full = self.node.circuits().stream_buffered(stream).is_some_and(|b| b >= limit);
                if let Some(pipe) = self.pipes.get(&stream) {
                    // A full send buffer closes the gate until StreamWritable.
                    pipe.input_handled(len, full);
                }
                if full {
                    self.metrics.incr("driver.streams.read_paused");
                }
            }
            FromTcp::Eof => {
                self.issue(Command::StreamClose { stream });
            }
            FromTcp::Failed => self.abort_stream(stream),
        }
    }

    /// Exit side: the connection for an `ExitConnect` is up, or is not.
    pub(super) fn on_exit_dialed(&mut self, stream: StreamHandle, connected: bool) {
        if !self.pipes.contains_key(&stream) {
            return;
        }
        if connected {
            self.issue(Command::ExitConnected { stream });
        } else {
            self.metrics.incr("driver.exit.failures");
            self.abort_stream(stream);
        }
    }

    fn abort_stream(&mut self, stream: StreamHandle) {
        self.pipes.remove(&stream);
        self.stream_circuit.remove(&stream);
        self.issue(Command::StreamAbort { stream });
    }

    pub(super) fn on_circuit_event(&mut self, event: CircuitEvent) {
        match event {
            CircuitEvent::StreamOpened { id, stream, circuit } => {
                let Some(reply) = self.opening.remove(&id) else {
                    self.issue(Command::StreamAbort { stream });
                    return;
                };
                let (runtime_end, task_end) = pipe::pipe(stream, self.requests_tx.clone());
                if reply.send(Ok(task_end)).is_ok() {
                    self.pipes.insert(stream, runtime_end);
                    self.stream_circuit.insert(stream, circuit);
                    self.traffic.entry(circuit).or_default();
                } else {
                    // The SOCKS client left while the stream was opening.
                    self.issue(Command::StreamAbort { stream });
                }
            }
            CircuitEvent::StreamFailed { id, reason } => {
                if let Some(reply) = self.opening.remove(&id) {
                    let _ = reply.send(Err(OpenError::Stream(reason)));
                }
            }
            CircuitEvent::StreamData { stream, data } => {
                if let Some(traffic) = self.stream_circuit.get(&stream).and_then(|c| self.traffic.get_mut(c)) {
                    traffic.received += data.len() as u64;
                }
                let delivered = self.pipes.get(&stream).map(|pipe| pipe.deliver(data));
                if let Some(Err(_)) = delivered {
                    self.metrics.incr("driver.streams.overflow");
                    tracing::info!(stream = stream.0, "connection too slow to drain its stream; aborting it");
                    self.abort_stream(stream);
                }
            }
            CircuitEvent::StreamFinished { stream } => {
                if let Some(pipe) = self.pipes.get(&stream) {
                    pipe.signal(ToTcp::Finish);
                }
            }
            CircuitEvent::StreamWritable { stream } => {
                if let Some(pipe) = self.pipes.get(&stream) {
                    pipe.set_readable(true);
                }
            }
            CircuitEvent::StreamClosed { stream, reason } => {
                self.stream_circuit.remove(&stream);
                if let Some(pipe) = self.pipes.remove(&stream) {
                    pipe.signal(ToTcp::Close(reason));
                }
            }
            CircuitEvent::ExitConnect { stream, host, port } => {
                self.metrics.incr("driver.exit.connections");
                self.start_exit(stream, host, port);
            }
            CircuitEvent::Closed { circuit, reason } => {
                self.traffic.remove(&circuit);
                tracing::info!(circuit = circuit.0, ?reason, "circuit closed");
            }
            CircuitEvent::Built { id, circuit, ref path, build_ms, attempts, .. } => {
                let hops: Vec<String> = path.iter().map(|p| p.addr.to_string()).collect();
                tracing::info!(circuit = circuit.0, ?hops, build_ms, attempts, "circuit built");
                self.traffic.entry(circuit).or_default();
                if let Some(reply) = self.pending.remove(&id) {
                    let _ = reply.send(CommandOutcome::Circuit(Box::new(event)));
                }
            }
            CircuitEvent::BuildFailed { id, ref error, attempts } => {
                tracing::warn!(%error, attempts, "circuit build failed");
                if let Some(reply) = self.pending.remove(&id) {
                    let _ = reply.send(CommandOutcome::Circuit(Box::new(event)));
                }
            }
            other => tracing::debug!(event = ?other, "circuit event"),
        }
    }

    /// Exit side: resolve, check the policy on the resolved addresses, connect.
    #[cfg(not(madsim))]
    fn start_exit(&mut self, stream: StreamHandle, host: String, port: u16) {
        let (runtime_end, task_end) = pipe::pipe(stream, self.requests_tx.clone());
        self.pipes.insert(stream, runtime_end);
        let policy = self.node.circuits().relay_config().exit_policy.clone();
        tokio::spawn(crate::tcp::exit_stream(host, port, policy, task_end));
    }

    /// Under madsim there is no real TCP to leave to: every exit stream is unreachable.
    #[cfg(madsim)]
    fn start_exit(&mut self, stream: StreamHandle, _host: String, _port: u16) {
        self.metrics.incr("driver.exit.failures");
        self.issue(Command::StreamAbort { stream });
    }
}
