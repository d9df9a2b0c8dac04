//! The link between the node loop and one TCP connection that carries a
//! circuit stream (a SOCKS client at the entry, a destination at the exit).
//!
//! The node loop never waits on a connection. Towards TCP it queues bytes on
//! an unbounded channel whose size is counted in bytes ([`RuntimeEnd::deliver`]
//! refuses once [`MAX_UNWRITTEN_BYTES`] are unwritten, and the loop then
//! aborts the stream); from TCP it holds a read gate the connection task
//! waits on before every read, closed while the stream's send buffer is at
//! `circuit.stream_send_buffer_bytes` and opened again on `StreamWritable`.
//! The task also stops reading while [`MAX_INPUT_IN_FLIGHT`] bytes it read
//! are still on their way to the loop, so it never reads far ahead of what
//! the loop has seen.

use crate::runtime::Request;
use allium_engine::circuit::{StreamEnd, StreamHandle};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::{mpsc, watch};

/// Bytes received from a circuit stream that may wait for a slow TCP peer
/// before the stream is aborted, per stream, in bytes: 8 MiB. The engine
/// delivers in-order bytes as they arrive and has no "stop delivering"
/// control, so the driver bounds what it holds instead.
pub const MAX_UNWRITTEN_BYTES: usize = 8 << 20;

/// Bytes read from TCP and not yet handled by the node loop, per stream,
/// above which the connection task waits before reading more: 64 KiB.
pub const MAX_INPUT_IN_FLIGHT: usize = 64 * 1024;

/// What the node loop tells a connection task.
#[derive(Debug)]
pub enum ToTcp {
    /// Write these bytes.
    Data(Vec<u8>),
    /// The peer finished sending: shut down the write half once the bytes before are written.
    Finish,
    /// The stream ended; close the connection after the bytes before.
    Close(StreamEnd),
}

/// What a connection task tells the node loop.
#[derive(Debug)]
pub enum FromTcp {
    /// Bytes read from the connection.
    Data(Vec<u8>),
    /// The connection's reader reached end of file (half-close).
    Eof,
    /// Reading or writing failed; abort the stream.
    Failed,
}

/// The node loop's end of a pipe.
#[derive(Debug)]
pub struct RuntimeEnd {
    to_tcp: mpsc::UnboundedSender<ToTcp>,
    read_gate: watch::Sender<bool>,
    unwritten: Arc<AtomicUsize>,
    in_flight: Arc<AtomicUsize>,
}

/// Bytes could not be queued: the connection is gone or too far behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the connection is gone or has more than MAX_UNWRITTEN_BYTES unwritten")]
pub struct Overflow;

impl RuntimeEnd {
    /// Queues stream bytes for the connection.
    pub fn deliver(&self, data: Vec<u8>) -> Result<(), Overflow> {
        let len = data.len();
        if self.unwritten.load(Ordering::Acquire) + len > MAX_UNWRITTEN_BYTES {
            return Err(Overflow);
        }
        self.unwritten.fetch_add(len, Ordering::AcqRel);
        self.to_tcp.send(ToTcp::Data(data)).map_err(|_| Overflow)
    }

    /// Passes a half-close or close on (ignored if the task is gone).
    pub fn signal(&self, message: ToTcp) {
        let _ = self.to_tcp.send(message);
    }

    /// Opens (`true`) or closes the read gate.
    pub fn set_readable(&self, readable: bool) {
        self.read_gate.send_replace(readable);
    }

    /// The loop handled `len` bytes the task read; `full` closes the read
    /// gate (only `set_readable(true)` opens it). Wakes the task either way.
    pub fn input_handled(&self, len: usize, full: bool) {
        self.in_flight.fetch_sub(len.min(self.in_flight.load(Ordering::Acquire)), Ordering::AcqRel);
        self.read_gate.send_modify(|open| *open &= !full);
    }
}

/// The connection task's end of a pipe.
#[derive(Debug)]
pub struct TaskEnd {
    /// The stream this connection carries.
    pub stream: StreamHandle,
    /// Reports to the node loop, and the read gate.
    pub reporter: Reporter,
    /// Messages from the node loop.
    pub inbox: Inbox,
}

/// The reading half of a connection task's end: reports what TCP gave and
/// waits on the read gate.
#[derive(Debug)]
pub struct Reporter {
    stream: StreamHandle,
    read_gate: watch::Receiver<bool>,
    requests: mpsc::Sender<Request>,
    in_flight: Arc<AtomicUsize>,
}

impl Reporter {
    /// Reports what the connection did; `false` once the node loop is gone.
    pub async fn report(&self, input: FromTcp) -> bool {
        if let FromTcp::Data(data) = &input {
            self.in_flight.fetch_add(data.len(), Ordering::AcqRel);
        }
        self.requests.send(Request::Stream { stream: self.stream, input }).await.is_ok()
    }

    /// Waits until the task may read from TCP: the gate is open and fewer
    /// than [`MAX_INPUT_IN_FLIGHT`] bytes wait for the loop. `false` once
    /// the stream is gone.
    pub async fn readable(&mut self) -> bool {
        loop {
            // Marks the gate's value seen, so a later change wakes `changed`.
            let open = *self.read_gate.borrow_and_update();
            if open && self.in_flight.load(Ordering::Acquire) < MAX_INPUT_IN_FLIGHT {
                return true;
            }
            if self.read_gate.changed().await.is_err() {
                return false;
            }
        }
    }

    /// The node loop's request channel (for reports other than stream input).
    pub fn requests(&self) -> &mpsc::Sender<Request> {
        &self.requests
    }
}

/// The writing half of a connection task's end: what the node loop sends.
#[derive(Debug)]
pub struct Inbox {
    from_runtime: mpsc::UnboundedReceiver<ToTcp>,
    unwritten: Arc<AtomicUsize>,
}

impl Inbox {
    /// The next message; `None` once the node loop dropped the stream.
    pub async fn recv(&mut self) -> Option<ToTcp> {
        self.from_runtime.recv().await
    }

    /// The next message if one is queued.
    pub fn try_recv(&mut self) -> Option<ToTcp> {
        self.from_runtime.try_recv().ok()
    }

    /// Counts `len` queued bytes as written.
    pub fn written(&self, len: usize) {
        self.unwritten.fetch_sub(len, Ordering::AcqRel);
    }
}

/// A new pipe for `stream`, with the read gate open.
pub fn pipe(stream: StreamHandle, requests: mpsc::Sender<Request>) -> (RuntimeEnd, TaskEnd) {
    let (to_tcp, from_runtime) = mpsc::unbounded_channel();
    let (read_gate, gate_rx) = watch::channel(true);
    let unwritten = Arc::new(AtomicUsize::new(0));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let runtime = RuntimeEnd { to_tcp, read_gate, unwritten: unwritten.clone(), in_flight: in_flight.clone() };
    let task = TaskEnd {
        stream,
        reporter: Reporter { stream, read_gate: gate_rx, requests, in_flight },
        inbox: Inbox { from_runtime, unwritten },
    };
    (runtime, task)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_is_bounded_by_unwritten_bytes() {
        let (requests, _rx) = mpsc::channel(1);
        let (runtime, mut task) = pipe(StreamHandle(1), requests);
        assert!(runtime.deliver(vec![0; MAX_UNWRITTEN_BYTES - 1]).is_ok());
        assert_eq!(runtime.deliver(vec![0; 2]), Err(Overflow));
        assert!(matches!(task.inbox.try_recv(), Some(ToTcp::Data(d)) if d.len() == MAX_UNWRITTEN_BYTES - 1));
        task.inbox.written(MAX_UNWRITTEN_BYTES - 1);
        assert!(runtime.deliver(vec![0; 2]).is_ok());
        runtime.set_readable(false);
        assert!(!*task.reporter.read_gate.borrow());
        drop(runtime);
        assert!(task.inbox.try_recv().is_some(), "queued bytes survive the sender");
    }

    #[tokio::test]
    async fn the_reader_waits_for_the_gate_and_for_the_loop_to_catch_up() {
        let (requests, mut rx) = mpsc::channel(8);
        let (runtime, task) = pipe(StreamHandle(1), requests);
        let mut reporter = task.reporter;
        assert!(reporter.readable().await);
        assert!(reporter.report(FromTcp::Data(vec![0; MAX_INPUT_IN_FLIGHT])).await);
        assert!(rx.recv().await.is_some());
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), reporter.readable()).await;
        assert!(waiting.is_err(), "a full chunk in flight blocks the next read");
        runtime.input_handled(MAX_INPUT_IN_FLIGHT, true);
        let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), reporter.readable()).await;
        assert!(waiting.is_err(), "the send buffer is full: the gate is closed");
        runtime.set_readable(true);
        assert!(reporter.readable().await);
        assert!(reporter.report(FromTcp::Data(vec![0; MAX_INPUT_IN_FLIGHT])).await);
        drop(runtime);
        assert!(!reporter.readable().await, "a reader waiting on a dropped stream gives up");
    }
}
