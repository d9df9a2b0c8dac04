//! The driver loop: owns the socket, the clock, the store and the timers,
//! and does nothing else. It feeds [`Node::handle_input`], drains
//! [`Node::poll_output`] (making persist writes durable before sending the
//! transmits that may acknowledge them), and sleeps until
//! [`Node::poll_timeout`]. The same code runs on tokio and under madsim.
//!
//! Content fetches are answered whole: the runtime assembles the verified
//! [`OverlayEvent::Data`] chunks of a [`Command::Fetch`] at their offsets in
//! one buffer and replies once [`OverlayEvent::FetchFinished`] arrives, so
//! a fetch holds the requested bytes in memory (bounded by
//! `overlay.max_object_bytes`). That keeps the HTTP side simple and means
//! a client never sees bytes of a fetch that later fails.
//!
//! Circuit streams (SOCKS entry and exit) are pumped by one task per TCP
//! connection, linked to the loop by a [`crate::pipe`]; the loop handles
//! their engine events in `streams` (backpressure, exit connections) and
//! reports circuits through [`CircuitsReport`].

mod election;
mod mix;
mod report;
mod rewards;
mod streams;

pub use election::LeaderInfo;
pub use mix::{
    INBOX_MAX_BYTES, INBOX_MAX_MESSAGES, InboxMessage, InboxSummary, MixReport, MixRequest, MixRequestError, SentInfo,
    SentStatus,
};
pub use report::{CircuitInfo, CircuitsReport, HopInfo};
pub use rewards::{RecordInfo, RewardsInfo, ServiceBytes};
pub use streams::{OpenError, OpenReply};

use crate::pipe::{FromTcp, RuntimeEnd, TaskEnd};
use crate::shim;
use crate::store::Store;
use allium_engine::circuit::{CircuitEvent, CircuitHandle, RelayConfig, StreamHandle};
use allium_engine::dht::{DhtEvent, PeerInfo};
use allium_engine::election::{ElectionCommand, ElectionConfig};
use allium_engine::mix::{MixAddress, MixConfig};
use allium_engine::overlay::{Cid, FetchError, FetchStats, OverlayEvent};
use allium_engine::rewards::clock::RewardsConfig;
use allium_engine::rewards::record::RecordJson;
use allium_engine::{Command, CommandId, Event, Input, Instant, Metrics, Node, NodeConfig, NodeSeed, Output, Params};
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

/// How a command ended.
#[derive(Clone, Debug)]
pub enum CommandOutcome {
    /// The DHT finished it.
    Dht(Box<DhtEvent>),
    /// The overlay finished a publish, pin or unpin ([`OverlayEvent::Published`],
    /// [`OverlayEvent::Pinned`] or [`OverlayEvent::Unpinned`]).
    Overlay(Box<OverlayEvent>),
    /// A fetch finished: on success, `bytes` are the verified bytes requested.
    Fetched {
        /// The content ID.
        cid: Cid,
        /// The requested bytes (empty on failure).
        bytes: Vec<u8>,
        /// Figures, or why it failed.
        result: Result<FetchStats, FetchError>,
    },
    /// A circuit request finished ([`CircuitEvent::Built`] or [`CircuitEvent::BuildFailed`]).
    Circuit(Box<CircuitEvent>),
    /// The node refused it (bad arguments).
    Rejected(String),
}

/// One object in the local content store, for `ctl content`.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct ContentEntry {
    /// Content ID (`b3:` + hex).
    pub cid: String,
    /// Object size, in bytes.
    pub size: u64,
    /// `pinned`, `replica` or `cached`.
    pub holding: String,
    /// Whether every chunk is held.
    pub complete: bool,
    /// Bytes held (manifest and present chunks).
    pub bytes_held: u64,
    /// File name from the manifest, if any.
    pub name: Option<String>,
    /// Media type from the manifest, if any.
    pub media_type: Option<String>,
}

/// A snapshot of the node for `ctl stats` and `/metrics`.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct Stats {
    /// Hex node identifier.
    pub node_id: String,
    /// The node's Ed25519 signing (public) key, hex: what an election
    /// membership list names it by.
    #[serde(default)]
    pub signing_key: String,
    /// UDP address.
    pub listen: SocketAddr,
    /// Milliseconds since the node started.
    pub uptime_ms: u64,
    /// Whether the node has joined the network.
    pub bootstrapped: bool,
    /// Routing-table contacts.
    pub peers: usize,
    /// Value records held for the network.
    pub values_held: usize,
    /// Provider records held for the network.
    pub providers_held: usize,
    /// Objects in the local content store (complete or not).
    #[serde(default)]
    pub content_objects: usize,
    /// Content bytes held, as counted against `overlay.store_quota_bytes`.
    #[serde(default)]
    pub content_bytes: u64,
    /// Relay descriptors in the circuit directory (a client builds circuits
    /// once it knows `circuit.hops` relays).
    #[serde(default)]
    pub directory_relays: usize,
    /// This node's own circuits (open or building).
    #[serde(default)]
    pub circuits: usize,
    /// Circuits this node carries for others as a relay.
    #[serde(default)]
    pub relayed_circuits: usize,
    /// Every engine and driver counter.
    pub metrics: BTreeMap<String, u64>,
}

/// A request to the running node from the control API or a test.
#[derive(Debug)]
pub enum Request {
    /// Run an engine command and answer when it finishes.
    Command(Command, oneshot::Sender<CommandOutcome>),
    /// Report [`Stats`].
    Stats(oneshot::Sender<Stats>),
    /// List routing-table contacts.
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    /// List the objects in the local content store.
    Content(oneshot::Sender<Vec<ContentEntry>>),
    /// Open a stream to `host:port` over a circuit; answered once it is open or has failed.
    OpenStream {
        /// Host name or address, resolved at the exit.
        host: String,
        /// Destination port.
        port: u16,
        /// Where the connection task's end of the stream's pipe goes.
        reply: OpenReply,
    },
    /// What a stream's TCP connection did.
    Stream {
        /// The stream.
        stream: StreamHandle,
        /// Bytes, end of file, or failure.
        input: FromTcp,
    },
    /// Exit side: the connection for an `ExitConnect` is up (or failed).
    ExitDialed {
        /// The exit-side stream.
        stream: StreamHandle,
        /// Whether the destination is connected.
        connected: bool,
    },
    /// Report the node's circuits.
    Circuits(oneshot::Sender<CircuitsReport>),
    /// Count one driver event under this metric name.
    Count(&'static str),
    /// Send, reply, or look at the inbox and the mixnet state.
    Mix(MixRequest),
    /// Report the election groups ([`LeaderInfo`]).
    Leader(oneshot::Sender<Vec<LeaderInfo>>),
    /// Give the election machine a command; answered with whether it took it.
    Election(ElectionCommand, oneshot::Sender<Result<(), String>>),
    /// Report the rewards state ([`RewardsInfo`]).
    Rewards(oneshot::Sender<RewardsInfo>),
    /// The last accepted epoch record, as JSON (`None`: none yet).
    RewardsRecord(oneshot::Sender<Option<RecordJson>>),
}

/// A cloneable handle for talking to a running [`NodeRuntime`].
#[derive(Clone, Debug)]
pub struct Handle {
    requests: mpsc::Sender<Request>,
}

/// The runtime has stopped.
#[derive(Clone, Copy, Debug, thiserror::Error)]
#[error("the node is not running")]
pub struct Stopped;

impl Handle {
    /// Runs `command` and waits for its outcome.
    pub async fn command(&self, command: Command) -> Result<CommandOutcome, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(Request::Command(command, tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// The node's current [`Stats`].
    pub async fn stats(&self) -> Result<Stats, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(Request::Stats(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// The node's routing-table contacts.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(Request::Peers(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// The objects in the node's local content store.
    pub async fn content(&self) -> Result<Vec<ContentEntry>, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(Request::Content(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// The node's circuits, directory and guards.
    pub async fn circuits(&self) -> Result<CircuitsReport, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(Request::Circuits(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Opens a stream to `host:port` (resolved at the exit) and waits until
    /// it is open; the returned end carries its bytes.
    pub async fn open_stream(&self, host: String, port: u16) -> Result<Result<TaskEnd, OpenError>, Stopped> {
        let (reply, rx) = oneshot::channel();
        self.requests.send(Request::OpenStream { host, port, reply }).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    async fn mix<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> MixRequest) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(Request::Mix(make(tx))).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Sends `data` through the mixnet to `recipient`, with `reply_blocks`
    /// reply blocks; answers with the message id once the engine has taken it.
    pub async fn mix_send(
        &self,
        recipient: MixAddress,
        data: Vec<u8>,
        reply_blocks: u8,
    ) -> Result<Result<CommandId, MixRequestError>, Stopped> {
        self.mix(|reply| MixRequest::Send { recipient, data, reply_blocks, reply }).await
    }

    /// Answers inbox message `index` through its reply blocks; answers with the reply's message id.
    pub async fn mix_reply(&self, index: u64, data: Vec<u8>) -> Result<Result<CommandId, MixRequestError>, Stopped> {
        self.mix(|reply| MixRequest::Reply { index, data, reply }).await
    }

    /// The status of sent message `id` (`None`: unknown). With `wait`, only
    /// once it is delivered or failed: bound the wait with a timeout.
    pub async fn mix_sent(&self, id: CommandId, wait: bool) -> Result<Option<SentInfo>, Stopped> {
        self.mix(|reply| MixRequest::Sent { id, wait, reply }).await
    }

    /// Every sent message on record.
    pub async fn mix_sent_list(&self) -> Result<Vec<SentInfo>, Stopped> {
        self.mix(MixRequest::SentList).await
    }

    /// The inbox, without the bytes.
    pub async fn mix_inbox(&self) -> Result<Vec<InboxSummary>, Stopped> {
        self.mix(MixRequest::Inbox).await
    }

    /// Inbox message `index` with its bytes (`None`: no such message).
    pub async fn mix_read(&self, index: u64) -> Result<Option<InboxMessage>, Stopped> {
        self.mix(|reply| MixRequest::Read { index, reply }).await
    }

    /// The node's mixnet state.
    pub async fn mix_status(&self) -> Result<MixReport, Stopped> {
        self.mix(MixRequest::Status).await
    }

    /// Every election group as this node sees it.
    pub async fn leader(&self) -> Result<Vec<LeaderInfo>, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(Request::Leader(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Gives the election machine `command`; `Err` holds the engine's reason
    /// when it refused it (unknown group, not the leader, bad token …).
    pub async fn election(&self, command: ElectionCommand) -> Result<Result<(), String>, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(Request::Election(command, tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// The node's rewards state: epoch, bytes, receipts, coordinator, last record.
    pub async fn rewards(&self) -> Result<RewardsInfo, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(Request::Rewards(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// The last epoch record the node accepted as its chain's head, in
    /// [`allium_engine::rewards::EpochRecord::json_view`] form (`None`: none yet).
    pub async fn rewards_record(&self) -> Result<Option<RecordJson>, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(Request::RewardsRecord(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Counts one driver event (shown in stats and `/metrics`).
    pub async fn count(&self, metric: &'static str) {
        let _ = self.requests.send(Request::Count(metric)).await;
    }
}

/// The bytes of a fetch in progress, assembled from `Data` events.
struct Assembly {
    /// Object offset of the first requested byte.
    base: u64,
    bytes: Vec<u8>,
}

impl Assembly {
    fn put(&mut self, offset: u64, data: &[u8]) {
        let Some(at) = offset.checked_sub(self.base).and_then(|a| usize::try_from(a).ok()) else { return };
        let end = at + data.len();
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        self.bytes[at..end].copy_from_slice(data);
    }
}

/// One node on one UDP socket.
pub struct NodeRuntime {
    node: Node,
    socket: UdpSocket,
    listen: SocketAddr,
    store: Store,
    start: tokio::time::Instant,
    requests: mpsc::Receiver<Request>,
    pending: BTreeMap<CommandId, oneshot::Sender<CommandOutcome>>,
    fetches: BTreeMap<CommandId, Assembly>,
    next_command: CommandId,
    metrics: Metrics,
    /// A sender of this loop's own requests, handed to stream tasks.
    requests_tx: mpsc::Sender<Request>,
    /// Stream requests waiting for `StreamOpened` or `StreamFailed`, by command.
    opening: BTreeMap<CommandId, OpenReply>,
    /// The pipes of streams with a TCP connection (entry or exit side).
    pipes: BTreeMap<StreamHandle, RuntimeEnd>,
    /// The mixnet inbox and sent messages.
    mix: mix::MixBook,
    /// Election commands waiting for the engine's verdict.
    election: election::ElectionBook,
    /// Client streams' circuits, for byte counts.
    stream_circuit: BTreeMap<StreamHandle, CircuitHandle>,
    /// Stream bytes per client circuit.
    traffic: BTreeMap<CircuitHandle, report::Traffic>,
}

/// Longest sleep when the engine asks for no timer, so the loop stays observable.
const IDLE_WAKE: Duration = Duration::from_secs(3600);

impl NodeRuntime {
    /// Binds `listen`, restores the node from `store` and returns the
    /// runtime and a handle to it. `seed` seeds the engine's random streams
    /// (from OS entropy in production, from the test seed under madsim);
    /// `relay` says whether and how the node relays circuits, `mix` what
    /// part it takes in the mixnet, `election` which election groups it is in,
    /// `rewards` its part in rewards: its `unix_ms_at_start` is replaced by
    /// the wall clock (unix milliseconds) read once here, at the instant the
    /// engine's timeline starts, which the rewards epoch clock maps to epochs
    /// (`allium_engine::rewards::clock`).
    ///
    /// Built with the `test-hooks` feature, the environment variable
    /// `ALLIUM_TEST_CORRUPT_RELAYED_CELL=N` makes the node flip one bit of
    /// the N-th cell it relays (fault injection for tests).
    #[allow(clippy::too_many_arguments)]
    pub async fn start(
        listen: SocketAddr,
        bootstrap: Vec<SocketAddr>,
        params: Params,
        relay: RelayConfig,
        mix: MixConfig,
        election: ElectionConfig,
        rewards: RewardsConfig,
        mut store: Store,
        seed: NodeSeed,
    ) -> anyhow::Result<(Self, Handle)> {
        let socket = UdpSocket::bind(listen).await?;
        let listen = socket.local_addr()?;
        if let Some(bytes) = shim::tune(&socket) {
            tracing::debug!(bytes, "UDP receive buffer");
        }
        let (identity, created) = store.load_or_create_identity()?;
        let state = store.load_state()?;
        tracing::info!(node_id = %identity.id().to_hex(), %listen, created, peers = state.peers.len(),
            records = state.values.len(), "node starting");
        let content = store.content_store()?;
        if relay.enabled {
            tracing::info!(region = relay.region, exit = relay.exit_policy.is_exit(), "relaying circuits");
        }
        for group in &election.groups {
            tracing::info!(group = %group.name, version = group.membership.version,
                members = group.membership.members.len(), joining = group.join_token.is_some(), "election group");
        }
        if mix != MixConfig::default() {
            tracing::info!(service = ?mix.service, client = mix.client, provider = ?mix.provider, "in the mixnet");
        }
        if let Some(group) = rewards.group.as_deref().filter(|_| rewards.enabled) {
            tracing::info!(group, "rewards: coordinated by the group's leader");
        } else if rewards.enabled {
            tracing::info!("rewards: counting and receipts only (no [rewards] group)");
        }
        // Instant::ZERO of the engine is `start`; the epoch clock needs the
        // wall clock of that same instant.
        let start = tokio::time::Instant::now();
        let rewards = RewardsConfig { unix_ms_at_start: rewards::unix_ms_now(), ..rewards };
        let config = NodeConfig {
            identity,
            seed,
            params,
            local_addr: listen,
            bootstrap,
            content,
            relay,
            mix,
            election,
            rewards,
        };
        #[allow(unused_mut)]
        let mut node = Node::restore(Instant::ZERO, config, state);
        #[cfg(feature = "test-hooks")]
        if let Some(n) = std::env::var("ALLIUM_TEST_CORRUPT_RELAYED_CELL").ok().and_then(|v| v.parse::<u64>().ok()) {
            tracing::warn!(n, "test hook: corrupting relayed cell {n}");
            node.circuits_mut().corrupt_relayed_cell(n);
        }
        let (tx, rx) = mpsc::channel(256);
        let runtime = NodeRuntime {
            node,
            socket,
            listen,
            store,
            start,
            requests: rx,
            pending: BTreeMap::new(),
            fetches: BTreeMap::new(),
            next_command: 1,
            metrics: Metrics::default(),
            requests_tx: tx.clone(),
            opening: BTreeMap::new(),
            pipes: BTreeMap::new(),
            stream_circuit: BTreeMap::new(),
            traffic: BTreeMap::new(),
            mix: mix::MixBook::default(),
            election: election::ElectionBook::default(),
        };
        Ok((runtime, Handle { requests: tx }))
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listen
    }

    fn now(&self) -> Instant {
        Instant::from_nanos(u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }

    fn wake_at(&self, deadline: Option<Instant>) -> tokio::time::Instant {
        let delay = match deadline {
            Some(t) => t.saturating_duration_since(self.now()).min(IDLE_WAKE),
            None => IDLE_WAKE,
        };
        tokio::time::Instant::now() + delay
    }

    /// Runs until `shutdown` resolves, then flushes and returns.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        self.command(Command::Bootstrap, None);
        self.flush().await?;
        tokio::pin!(shutdown);
        let mut buf = vec![0u8; 65_536];
        loop {
            let wake = self.wake_at(self.node.poll_timeout());
            tokio::select! {
                biased;
                () = &mut shutdown => break,
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((len, from)) => {
                        let input = Input::Datagram { from, bytes: buf[..len].to_vec() };
                        self.node.handle_input(self.now(), input);
                    }
                    Err(error) => {
                        self.metrics.incr("driver.recv_errors");
                        tracing::debug!(%error, "recv_from failed");
                    }
                },
                () = tokio::time::sleep_until(wake) => self.node.handle_input(self.now(), Input::Timeout),
                Some(request) = self.requests.recv() => self.on_request(request),
            }
            self.flush().await?;
        }
        tracing::info!("node stopping");
        self.flush().await
    }

    /// Feeds `command` to the node under a fresh id and returns the id.
    fn issue(&mut self, command: Command) -> CommandId {
        let id = self.next_command;
        self.next_command += 1;
        self.node.handle_input(self.now(), Input::Command { id, command });
        id
    }

    fn command(&mut self, command: Command, reply: Option<oneshot::Sender<CommandOutcome>>) {
        let id = self.next_command;
        self.next_command += 1;
        if let Some(reply) = reply {
            if let Command::Fetch { range, .. } = &command {
                let base = range.map_or(0, |r| r.offset);
                self.fetches.insert(id, Assembly { base, bytes: Vec::new() });
            }
            self.pending.insert(id, reply);
        }
        self.node.handle_input(self.now(), Input::Command { id, command });
    }

    fn on_request(&mut self, request: Request) {
        match request {
            Request::Command(command, reply) => self.command(command, Some(reply)),
            Request::Stats(reply) => {
                let _ = reply.send(self.stats());
            }
            Request::Peers(reply) => {
                let _ = reply.send(self.node.dht().routing_table().peers().collect());
            }
            Request::Content(reply) => {
                let entries = self
                    .node
                    .overlay()
                    .index()
                    .iter()
                    .map(|(cid, object)| ContentEntry {
                        cid: cid.to_string(),
                        size: object.meta.size,
                        holding: object.meta.holding.name().to_string(),
                        complete: object.is_complete(),
                        bytes_held: object.bytes,
                        name: object.manifest.metadata.name.clone(),
                        media_type: object.manifest.metadata.media_type.clone(),
                    })
                    .collect();
                let _ = reply.send(entries);
            }
            Request::OpenStream { host, port, reply } => self.open_stream(host, port, reply),
            Request::Stream { stream, input } => self.on_stream_input(stream, input),
            Request::ExitDialed { stream, connected } => self.on_exit_dialed(stream, connected),
            Request::Circuits(reply) => {
                let _ = reply.send(self.circuits_report());
            }
            Request::Count(metric) => self.metrics.incr(metric),
            Request::Mix(request) => self.on_mix_request(request),
            Request::Leader(reply) => {
                let _ = reply.send(self.leader_report());
            }
            Request::Election(command, reply) => self.election_command(command, reply),
            Request::Rewards(reply) => {
                let _ = reply.send(self.rewards_report());
            }
            Request::RewardsRecord(reply) => {
                let _ = reply.send(self.rewards_record());
            }
        }
    }

    fn stats(&self) -> Stats {
        let mut metrics: BTreeMap<String, u64> =
            self.node.metrics().iter().map(|(name, value)| (name.to_string(), value)).collect();
        for (name, value) in self.metrics.iter() {
            metrics.insert(name.to_string(), value);
        }
        let dht = self.node.dht();
        Stats {
            node_id: self.node.id().to_hex(),
            signing_key: allium_engine::identity::hex(&self.node.identity().public().signing_key),
            listen: self.listen,
            uptime_ms: self.now().as_millis(),
            bootstrapped: dht.is_bootstrapped(),
            peers: dht.routing_table().len(),
            values_held: dht.store().value_count(),
            providers_held: dht.store().provider_count(),
            content_objects: self.node.overlay().index().len(),
            content_bytes: self.node.overlay().index().used_bytes(),
            directory_relays: self.node.circuits().directory().len(),
            circuits: self.node.circuits().summaries(self.now()).len(),
            relayed_circuits: self.node.circuits().relayed_circuits(),
            metrics,
        }
    }

    /// Drains the engine's outputs: persists first (one transaction), then
    /// transmits, then events.
    async fn flush(&mut self) -> anyhow::Result<()> {
        let mut persist = Vec::new();
        let mut transmits = Vec::new();
        while let Some(output) = self.node.poll_output() {
            match output {
                Output::Persist(op) => persist.push(op),
                Output::Transmit { to, bytes } => transmits.push((to, bytes)),
                Output::Event(event) => self.on_event(event),
            }
        }
        // Send and reply commands the engine did not refuse in that drain were taken.
        self.answer_accepted();
        self.answer_election_accepted();
        // Durable before acknowledged: a transmit may confirm a stored record.
        self.store.apply(persist)?;
        for (to, bytes) in transmits {
            match shim::send_to(&self.socket, &bytes, to).await {
                Ok(()) => self.metrics.incr("driver.datagrams.sent"),
                Err(error) => {
                    self.metrics.incr("driver.send_errors");
                    tracing::debug!(%error, %to, "send_to failed");
                }
            }
        }
        Ok(())
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Dht(event) => {
                let id = match &event {
                    DhtEvent::LookupFinished { id, .. }
                    | DhtEvent::PutFinished { id, .. }
                    | DhtEvent::GetFinished { id, .. }
                    | DhtEvent::ProvideFinished { id, .. }
                    | DhtEvent::ProvidersFound { id, .. } => Some(*id),
                    DhtEvent::Bootstrapped { peers } => {
                        tracing::info!(peers, "joined the network");
                        None
                    }
                    DhtEvent::BootstrapFailed => {
                        tracing::warn!("no bootstrap peer answered; will retry");
                        None
                    }
                };
                if let Some(reply) = id.and_then(|id| self.pending.remove(&id)) {
                    let _ = reply.send(CommandOutcome::Dht(Box::new(event)));
                }
            }
            Event::Circuit(event) => self.on_circuit_event(event),
            Event::Overlay(event) => self.on_overlay_event(event),
            Event::Mix(event) => self.on_mix_event(event),
            Event::Election(event) => tracing::info!(?event, "election event"),
            Event::Rewards(event) => tracing::info!(?event, "rewards event"),
            Event::Rejected { from, error } => tracing::debug!(%from, %error, "rejected datagram"),
            Event::CommandRejected { id, reason } => {
                if self.on_election_rejected(id, &reason) {
                    return;
                }
                self.fetches.remove(&id);
                self.on_mix_rejected(id, reason.clone());
                if let Some(reply) = self.opening.remove(&id) {
                    let _ = reply.send(Err(OpenError::Rejected(reason.clone())));
                }
                if let Some(reply) = self.pending.remove(&id) {
                    let _ = reply.send(CommandOutcome::Rejected(reason));
                }
            }
        }
    }

    fn on_overlay_event(&mut self, event: OverlayEvent) {
        match event {
            OverlayEvent::Data { id, offset, bytes, .. } => {
                if let Some(assembly) = self.fetches.get_mut(&id) {
                    assembly.put(offset, &bytes);
                }
            }
            OverlayEvent::FetchFinished { id, cid, result } => {
                let bytes = self.fetches.remove(&id).map(|a| a.bytes).unwrap_or_default();
                let bytes = if result.is_ok() { bytes } else { Vec::new() };
                if let Some(reply) = self.pending.remove(&id) {
                    let _ = reply.send(CommandOutcome::Fetched { cid, bytes, result });
                }
            }
            OverlayEvent::Published { id, .. }
            | OverlayEvent::Pinned { id, .. }
            | OverlayEvent::Unpinned { id, .. } => {
                if let Some(reply) = self.pending.remove(&id) {
                    let _ = reply.send(CommandOutcome::Overlay(Box::new(event)));
                }
            }
            OverlayEvent::Stored { cid, holding } => tracing::debug!(%cid, holding = holding.name(), "content stored"),
            OverlayEvent::Evicted { cid } => tracing::info!(%cid, "content evicted to respect the quota"),
        }
    }
}
