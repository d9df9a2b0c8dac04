//! Node configuration, layered: built-in defaults, then the TOML file, then
//! `ALLIUM_*` environment variables, then command-line flags.

use allium_engine::Params;
use allium_engine::circuit::policy::PolicyError;
use allium_engine::circuit::{ExitPolicy, FLAG_GUARD, FLAG_STABLE, RelayConfig};
use allium_engine::election::{ElectionConfig, GroupConfig, JoinToken, Membership};
use allium_engine::identity::{NodeId, hex, parse_hex32};
use allium_engine::mix::{MixConfig, MixService};
use allium_engine::rewards::clock::RewardsConfig;
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Log output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines. Default.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The contents of `config.toml`. Every field is optional in the file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    /// UDP address the node listens on. Default `127.0.0.1:7400`.
    pub listen: SocketAddr,
    /// UDP addresses of peers to join through. Default: none (first node of a network).
    pub bootstrap: Vec<SocketAddr>,
    /// Local control API address; must be a loopback address. Default `127.0.0.1:7401`.
    pub control: SocketAddr,
    /// Prometheus `/metrics`, `/healthz`, `/readyz` address. Default `127.0.0.1:7402`.
    pub metrics: SocketAddr,
    /// Directory holding the node's database. Default: the directory of the config file.
    pub data_dir: Option<PathBuf>,
    /// Log format. Default `text`.
    pub log_format: LogFormat,
    /// Keep everything in memory, write nothing to disk, use an ephemeral identity. Default false.
    pub amnesia: bool,
    /// Crypto suite; a node only runs `real`. Default `real`.
    pub crypto_suite: allium_engine::CryptoSuite,
    /// How this node relays others' circuits (`[relay]`). Default: not a relay.
    pub relay: RelayFileConfig,
    /// The SOCKS5 entry point (`[socks]`). Default: no listener.
    pub socks: SocksFileConfig,
    /// The node's part in the mixnet (`[mix]`). Default: none.
    pub mix: MixFileConfig,
    /// Lease-election groups (`[[election.groups]]`). Default: none. The
    /// protocol's timing is under `[params.election]`.
    pub election: ElectionFileConfig,
    /// The node's part in rewards (`[rewards]`). Default: off. The
    /// protocol's parameters (epoch length, emission, …) are under
    /// `[params.rewards]`.
    pub rewards: RewardsFileConfig,
    /// Engine parameters (`[params.dht]` …); see allium-engine's `Params`.
    pub params: Params,
}

/// A relay capability flag, as written in `[relay] flags`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayFlag {
    /// Willing to be a client's first hop.
    Guard,
    /// Expects long uptime.
    Stable,
}

/// The `[relay]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RelayFileConfig {
    /// Relay others' circuits and publish a relay descriptor. Default false.
    pub enabled: bool,
    /// Operator-declared network region; path selection keeps the hops of a
    /// circuit in different regions. Default 0.
    pub region: u16,
    /// Bandwidth offered, in bytes per second; clients pick relays in
    /// proportion to it. Default 1000000.
    pub bandwidth_bytes_per_sec: u64,
    /// Capability flags. Default `["guard", "stable"]`.
    pub flags: Vec<RelayFlag>,
    /// Exit policy: ordered `accept|reject HOST:PORTS` rules, first match
    /// decides, no match refuses (`HOST` is `*`, a name or IP address, or
    /// `*.suffix`; `PORTS` is `*`, `N` or `LOW-HIGH`). The exit checks the
    /// name the client asked for and every address it resolves to.
    /// Default `[]`: not an exit.
    pub exit_policy: Vec<String>,
}

impl Default for RelayFileConfig {
    fn default() -> Self {
        let engine = RelayConfig::default();
        RelayFileConfig {
            enabled: engine.enabled,
            region: engine.region,
            bandwidth_bytes_per_sec: engine.bandwidth_bytes_per_sec,
            flags: vec![RelayFlag::Guard, RelayFlag::Stable],
            exit_policy: Vec::new(),
        }
    }
}

/// A `[relay]` table that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RelaySettingsError {
    /// An exit-policy rule does not parse.
    #[error("relay.exit_policy: {0}")]
    ExitPolicy(#[from] PolicyError),
    /// A relay must offer some bandwidth.
    #[error("relay.bandwidth_bytes_per_sec must be above 0")]
    ZeroBandwidth,
}

impl RelayFileConfig {
    /// The engine's relay configuration, or why the table is unusable.
    pub fn to_engine(&self) -> Result<RelayConfig, RelaySettingsError> {
        if self.bandwidth_bytes_per_sec == 0 {
            return Err(RelaySettingsError::ZeroBandwidth);
        }
        let flags = self.flags.iter().fold(0, |bits, flag| {
            bits | match flag {
                RelayFlag::Guard => FLAG_GUARD,
                RelayFlag::Stable => FLAG_STABLE,
            }
        });
        Ok(RelayConfig {
            enabled: self.enabled,
            region: self.region,
            bandwidth_bytes_per_sec: self.bandwidth_bytes_per_sec,
            flags,
            exit_policy: ExitPolicy::parse(&self.exit_policy)?,
        })
    }
}

/// The `[socks]` table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SocksFileConfig {
    /// TCP address of the SOCKS5 listener, e.g. `127.0.0.1:9050`. Default:
    /// none (no listener). Anyone who can reach it can use the node's
    /// circuits, so keep it on a loopback address.
    pub listen: Option<SocketAddr>,
}

/// A node's mixnet service, as written in `[mix] role`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MixRole {
    /// Neither mix nor provider. Default.
    #[default]
    None,
    /// A mix of one stratified layer.
    Mix,
    /// A provider (gateway) for clients.
    Provider,
}

/// The `[mix]` table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MixFileConfig {
    /// `none`, `mix` or `provider`. Default `none`.
    pub role: MixRole,
    /// A mix's layer, 0-based and below `params.mix.layers`. Default: taken
    /// from the node id, which spreads mixes evenly over the layers. Only
    /// with `role = "mix"`.
    pub layer: Option<u8>,
    /// Be a mixnet client: subscribe to a provider, send cover traffic, send
    /// and receive messages. Default false.
    pub client: bool,
    /// The client's provider, as a node id (64 hex digits). Default: the
    /// provider whose id is closest to this node's. Only with `client = true`.
    pub provider: Option<String>,
}

/// A `[mix]` table that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MixSettingsError {
    /// `layer` is not below `params.mix.layers`.
    #[error("mix.layer = {layer} but there are {layers} layers (0 ..= {})", layers.saturating_sub(1))]
    LayerOutOfRange {
        /// The layer asked for.
        layer: u8,
        /// `params.mix.layers`.
        layers: u8,
    },
    /// `layer` given for a node that is not a mix.
    #[error("mix.layer is only for role = \"mix\"")]
    LayerWithoutMix,
    /// `provider` is not a node id.
    #[error("mix.provider: expected a node id of 64 hex digits, got {0:?}")]
    BadProvider(String),
    /// `provider` given for a node that is not a client.
    #[error("mix.provider is only for client = true")]
    ProviderWithoutClient,
}

impl MixFileConfig {
    /// The engine's mixnet configuration for a network of `layers` mix
    /// layers (`params.mix.layers`), or why the table is unusable.
    pub fn to_engine(&self, layers: u8) -> Result<MixConfig, MixSettingsError> {
        let service = match (self.role, self.layer) {
            (MixRole::Mix, Some(layer)) if layer >= layers => {
                return Err(MixSettingsError::LayerOutOfRange { layer, layers });
            }
            (MixRole::Mix, layer) => MixService::Mix { layer },
            (_, Some(_)) => return Err(MixSettingsError::LayerWithoutMix),
            (MixRole::Provider, None) => MixService::Provider,
            (MixRole::None, None) => MixService::None,
        };
        let provider = match &self.provider {
            None => None,
            Some(_) if !self.client => return Err(MixSettingsError::ProviderWithoutClient),
            Some(text) => Some(NodeId(parse_hex32(text).ok_or_else(|| MixSettingsError::BadProvider(text.clone()))?)),
        };
        Ok(MixConfig { service, client: self.client, provider })
    }
}

/// The `[election]` table: the lease-election groups this node takes part in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ElectionFileConfig {
    /// The groups, one `[[election.groups]]` table each. Default: none.
    pub groups: Vec<ElectionGroupFile>,
}

/// One `[[election.groups]]` table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElectionGroupFile {
    /// The group's name (1 ..= 64 bytes); must be the membership's. Required.
    pub name: String,
    /// The founder's Ed25519 public key, 64 hex digits (what
    /// `allium-node election founder-key` prints). Required.
    pub founder_key: String,
    /// File holding the founder-signed membership list, in hex (what
    /// `allium-node election membership` writes); a relative path is taken
    /// from the config file's directory. Required.
    pub membership: PathBuf,
    /// This node's priority when it joins with `join_token`, 0 ..= 255 (as
    /// a listed member its priority is the membership's). Default 0.
    #[serde(default)]
    pub priority: u8,
    /// File holding a founder-signed join token, in hex (what
    /// `allium-node election token` writes; relative to the config file's
    /// directory): the node asks the group's leader to add it. Default: none.
    #[serde(default)]
    pub join_token: Option<PathBuf>,
}

/// An `[[election.groups]]` table that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ElectionSettingsError {
    /// `founder_key` is not 64 hex digits.
    #[error("election group {group:?}: founder_key must be 64 hex digits, got {value:?}")]
    BadFounderKey {
        /// The group.
        group: String,
        /// What was written.
        value: String,
    },
    /// A membership or token file cannot be read.
    #[error("election group {group:?}: cannot read {}: {reason}", path.display())]
    Unreadable {
        /// The group.
        group: String,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// A membership or token file does not hold hex.
    #[error("election group {group:?}: {} does not hold hex", path.display())]
    BadHex {
        /// The group.
        group: String,
        /// The file.
        path: PathBuf,
    },
    /// The membership does not decode, or its signature or shape is invalid.
    #[error("election group {group:?}: {} is not a valid membership list: {reason}", path.display())]
    BadMembership {
        /// The group.
        group: String,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The membership is signed by someone other than `founder_key`.
    #[error("election group {group:?}: the membership is signed by {signer}, not by the founder key")]
    NotFounderSigned {
        /// The group.
        group: String,
        /// The signer's public key, hex.
        signer: String,
    },
    /// The membership is another group's.
    #[error("election group {group:?}: the membership is for group {found:?}")]
    WrongGroup {
        /// The group configured.
        group: String,
        /// The membership's group.
        found: String,
    },
    /// The join token does not decode or does not verify against the founder for this group.
    #[error("election group {group:?}: {} is not a valid join token: {reason}", path.display())]
    BadToken {
        /// The group.
        group: String,
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Two tables name the same group.
    #[error("election group {0:?} is configured twice")]
    DuplicateGroup(String),
}

/// Parses hex digits (any case, surrounding whitespace ignored) into bytes.
pub fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let digits = text.trim().as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks_exact(2)
        .map(|pair| {
            let hi = (pair[0] as char).to_digit(16)?;
            let lo = (pair[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

impl ElectionGroupFile {
    /// Reads the hex file at `path` (relative to `dir`).
    fn read_hex(&self, dir: &Path, path: &Path) -> Result<(PathBuf, Vec<u8>), ElectionSettingsError> {
        let path = dir.join(path);
        let text = std::fs::read_to_string(&path).map_err(|e| ElectionSettingsError::Unreadable {
            group: self.name.clone(),
            path: path.clone(),
            reason: e.to_string(),
        })?;
        match parse_hex(&text) {
            Some(bytes) => Ok((path, bytes)),
            None => Err(ElectionSettingsError::BadHex { group: self.name.clone(), path }),
        }
    }

    /// The engine's group configuration, with files relative to `dir`.
    pub fn to_engine(&self, dir: &Path) -> Result<GroupConfig, ElectionSettingsError> {
        let group = || self.name.clone();
        let founder_key = parse_hex32(self.founder_key.trim())
            .ok_or_else(|| ElectionSettingsError::BadFounderKey { group: group(), value: self.founder_key.clone() })?;
        let (path, bytes) = self.read_hex(dir, &self.membership)?;
        let membership = Membership::decode(&bytes).map_err(|e| ElectionSettingsError::BadMembership {
            group: group(),
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if membership.group != self.name {
            return Err(ElectionSettingsError::WrongGroup { group: group(), found: membership.group });
        }
        if membership.signer != founder_key {
            return Err(ElectionSettingsError::NotFounderSigned { group: group(), signer: hex(&membership.signer) });
        }
        let join_token = match &self.join_token {
            None => None,
            Some(token_path) => {
                let (path, bytes) = self.read_hex(dir, token_path)?;
                let bad =
                    |reason: String| ElectionSettingsError::BadToken { group: group(), path: path.clone(), reason };
                let token: JoinToken = allium_engine::wire::decode_body(&bytes).map_err(|e| bad(e.to_string()))?;
                // Group and founder signature; expiry is the leader's to judge.
                token.verify(&self.name, &founder_key, 0).map_err(|e| bad(e.to_string()))?;
                Some(token)
            }
        };
        Ok(GroupConfig { name: self.name.clone(), founder_key, membership, priority: self.priority, join_token })
    }
}

impl ElectionFileConfig {
    /// The engine's election configuration, with files relative to `dir`
    /// (the config file's directory), or why a group is unusable.
    pub fn to_engine(&self, dir: &Path) -> Result<ElectionConfig, ElectionSettingsError> {
        let mut groups: Vec<GroupConfig> = Vec::with_capacity(self.groups.len());
        for file in &self.groups {
            if groups.iter().any(|g| g.name == file.name) {
                return Err(ElectionSettingsError::DuplicateGroup(file.name.clone()));
            }
            groups.push(file.to_engine(dir)?);
        }
        Ok(ElectionConfig { groups })
    }
}

/// The `[rewards]` table: whether this node takes part in rewards, and
/// which election group's leader coordinates them. The parameters every
/// member of the group must share (epoch length, emission, receipt
/// interval, probes, challenges, …) are `[params.rewards]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RewardsFileConfig {
    /// Count the bytes served to and received from each peer, sign
    /// receipts for what peers served, register with the coordinator,
    /// claim, and audit the published records. Default false.
    pub enabled: bool,
    /// The election group whose leader (the lease holder) is the rewards
    /// coordinator; must be the `name` of an `[[election.groups]]` table.
    /// Default: none (bytes are counted and receipted, but no coordinator
    /// is known, so nothing is settled).
    pub group: Option<String>,
    /// Fetch each settled epoch's record and inputs from the DHT and the
    /// overlay and recompute it (with `params.rewards.audit`). Default true.
    pub audit: bool,
}

impl Default for RewardsFileConfig {
    fn default() -> Self {
        RewardsFileConfig { enabled: false, group: None, audit: true }
    }
}

/// A `[rewards]` table that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RewardsSettingsError {
    /// `group` names no `[[election.groups]]` table.
    #[error(
        "rewards.group = {group:?} is not a configured election group (configured: {}); add an [[election.groups]] table named {group:?} or fix the name",
        if configured.is_empty() { "none".to_string() } else { configured.iter().map(|g| format!("{g:?}")).collect::<Vec<_>>().join(", ") }
    )]
    UnknownGroup {
        /// The group named.
        group: String,
        /// The groups configured under `[[election.groups]]`.
        configured: Vec<String>,
    },
}

impl RewardsFileConfig {
    /// The engine's rewards configuration, checked against the election
    /// groups configured. `unix_ms_at_start` is left at its default: the
    /// runtime reads the wall clock when it starts
    /// ([`crate::NodeRuntime::start`]).
    pub fn to_engine(&self, election: &ElectionConfig) -> Result<RewardsConfig, RewardsSettingsError> {
        if let Some(group) = &self.group
            && !election.groups.iter().any(|g| &g.name == group)
        {
            return Err(RewardsSettingsError::UnknownGroup {
                group: group.clone(),
                configured: election.groups.iter().map(|g| g.name.clone()).collect(),
            });
        }
        Ok(RewardsConfig {
            enabled: self.enabled,
            group: self.group.clone(),
            audit: self.audit,
            ..RewardsConfig::default()
        })
    }
}

impl Default for FileConfig {
    fn default() -> Self {
        FileConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 7400)),
            bootstrap: Vec::new(),
            control: SocketAddr::from(([127, 0, 0, 1], 7401)),
            metrics: SocketAddr::from(([127, 0, 0, 1], 7402)),
            data_dir: None,
            log_format: LogFormat::Text,
            amnesia: false,
            crypto_suite: allium_engine::CryptoSuite::Real,
            relay: RelayFileConfig::default(),
            socks: SocksFileConfig::default(),
            mix: MixFileConfig::default(),
            election: ElectionFileConfig::default(),
            rewards: RewardsFileConfig::default(),
            params: Params::default(),
        }
    }
}

/// Flags (and their `ALLIUM_*` environment variables) of `allium-node run`.
/// Each one, when given, overrides the config file.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct RunFlags {
    /// Config file to read.
    #[arg(long, env = "ALLIUM_CONFIG")]
    pub config: Option<PathBuf>,
    /// UDP listen address.
    #[arg(long, env = "ALLIUM_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Bootstrap peers (comma-separated in the environment).
    #[arg(long, env = "ALLIUM_BOOTSTRAP", value_delimiter = ',')]
    pub bootstrap: Option<Vec<SocketAddr>>,
    /// Control API address (loopback only).
    #[arg(long, env = "ALLIUM_CONTROL")]
    pub control: Option<SocketAddr>,
    /// Metrics and health address.
    #[arg(long, env = "ALLIUM_METRICS")]
    pub metrics: Option<SocketAddr>,
    /// Data directory.
    #[arg(long, env = "ALLIUM_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "ALLIUM_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// In-memory only, ephemeral identity, nothing written to disk.
    #[arg(long, env = "ALLIUM_AMNESIA")]
    pub amnesia: bool,
    /// Engine parameter override, e.g. `--set dht.k=16` (repeatable; `;`-separated in the environment).
    #[arg(long = "set", env = "ALLIUM_SET", value_delimiter = ';')]
    pub set: Vec<String>,
    /// SOCKS5 listen address (overrides `[socks] listen`).
    #[arg(long, env = "ALLIUM_SOCKS")]
    pub socks: Option<SocketAddr>,
    /// Relay others' circuits (sets `[relay] enabled = true`).
    #[arg(long, env = "ALLIUM_RELAY")]
    pub relay: bool,
}

/// The configuration a node runs with, after layering.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeSettings {
    /// UDP listen address.
    pub listen: SocketAddr,
    /// Bootstrap peers.
    pub bootstrap: Vec<SocketAddr>,
    /// Control API address (loopback).
    pub control: SocketAddr,
    /// Metrics and health address.
    pub metrics: SocketAddr,
    /// Data directory (unused in amnesia mode).
    pub data_dir: PathBuf,
    /// Log format.
    pub log_format: LogFormat,
    /// In-memory only.
    pub amnesia: bool,
    /// Engine parameters.
    pub params: Params,
    /// Relay settings for the engine.
    pub relay: RelayConfig,
    /// SOCKS5 listen address, if any.
    pub socks: Option<SocketAddr>,
    /// The node's part in the mixnet.
    pub mix: MixConfig,
    /// The election groups, read and checked from `[[election.groups]]`.
    pub election: ElectionConfig,
    /// The node's part in rewards, from `[rewards]` (its group checked
    /// against the election groups); the runtime sets `unix_ms_at_start`.
    pub rewards: RewardsConfig,
}

impl FileConfig {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }
}

impl NodeSettings {
    /// Layers defaults, the config file (if any), environment and flags.
    pub fn resolve(flags: &RunFlags) -> anyhow::Result<Self> {
        let file = match &flags.config {
            Some(path) => FileConfig::load(path)?,
            None => FileConfig::default(),
        };
        if file.crypto_suite != allium_engine::CryptoSuite::Real {
            bail!("allium-node only runs the real crypto suite (config says {:?})", file.crypto_suite.name());
        }
        let config_dir = flags.config.as_ref().and_then(|p| p.parent().map(Path::to_path_buf));
        let data_dir = flags
            .data_dir
            .clone()
            .or(file.data_dir.clone())
            .or(config_dir.clone())
            .unwrap_or_else(|| PathBuf::from("."));
        let mut params = file.params.clone();
        for assignment in &flags.set {
            params.set(assignment).with_context(|| format!("--set {assignment}"))?;
        }
        params.validate()?;
        let mut relay = file.relay.to_engine()?;
        relay.enabled |= flags.relay;
        let mix = file.mix.to_engine(params.mix.layers)?;
        let election = file.election.to_engine(config_dir.as_deref().unwrap_or(Path::new(".")))?;
        let rewards = file.rewards.to_engine(&election)?;
        let settings = NodeSettings {
            listen: flags.listen.unwrap_or(file.listen),
            bootstrap: flags.bootstrap.clone().unwrap_or(file.bootstrap),
            control: flags.control.unwrap_or(file.control),
            metrics: flags.metrics.unwrap_or(file.metrics),
            data_dir,
            log_format: flags.log_format.unwrap_or(file.log_format),
            amnesia: flags.amnesia || file.amnesia,
            params,
            relay,
            socks: flags.socks.or(file.socks.listen),
            mix,
            election,
            rewards,
        };
        if !settings.control.ip().is_loopback() {
            bail!("the control API must listen on a loopback address, not {}", settings.control);
        }
        Ok(settings)
    }
}

/// The commented `config.toml` that `allium-node init` writes.
pub fn commented_config(listen: SocketAddr, control: SocketAddr, metrics: SocketAddr) -> String {
    let params = toml::to_string(&Params::default()).unwrap_or_default();
    let mut commented_params = String::new();
    for line in params.lines() {
        if let Some(section) = line.strip_prefix('[') {
            commented_params.push_str(&format!("# [params.{section}\n"));
        } else if !line.is_empty() {
            commented_params.push_str(&format!("# {line}\n"));
        }
    }
    format!(
        r#"# Allium node configuration.
# Every setting can also be given as an ALLIUM_* environment variable or a
# flag of `allium-node run` (flags win over the environment, which wins over
# this file). See `allium-node run --help`.

# UDP address the node listens on for peers.
listen = "{listen}"

# Peers to join the network through, e.g. ["203.0.113.7:7400"].
# Leave empty on the first node of a new network.
bootstrap = []

# Local control API used by `allium-node ctl`. Must be a loopback address.
control = "{control}"

# Prometheus /metrics, /healthz and /readyz.
metrics = "{metrics}"

# Where the node's database (identity, routing table, records) lives.
# Default: the directory of this file.
# data_dir = "/var/lib/allium"

# "text" or "json".
log_format = "text"

# Keep everything in memory, write nothing to disk, use an ephemeral identity.
amnesia = false

# Only "real" is accepted by allium-node.
crypto_suite = "real"

# Relaying others' onion circuits. Uncomment to serve as a relay.
# [relay]
# Relay circuits and publish a relay descriptor in the DHT (flag --relay,
# env ALLIUM_RELAY). Default false.
# enabled = false
# Operator-declared region number; a circuit's hops are kept in different
# regions. Default 0.
# region = 0
# Bandwidth offered, in bytes per second; clients pick relays in proportion
# to it. Default 1000000.
# bandwidth_bytes_per_sec = 1000000
# "guard" (willing to be a first hop), "stable" (long uptime). Default both.
# flags = ["guard", "stable"]
# Exit policy: "accept|reject HOST:PORTS" rules, first match decides, no
# match refuses. HOST is *, a name or IP address, or *.suffix; PORTS is *,
# N or LOW-HIGH. The name asked for and every address it resolves to are
# checked. Default [] (not an exit). Example:
# exit_policy = ["reject 127.0.0.1:*", "accept *:80", "accept *:443"]

# A SOCKS5 entry point for local applications (CONNECT, no authentication):
# curl --socks5-hostname 127.0.0.1:9050 http://example.internal/
# [socks]
# TCP listen address (flag --socks, env ALLIUM_SOCKS). Default: none, no
# listener. Keep it on a loopback address.
# listen = "127.0.0.1:9050"

# The mixnet (Loopix): send and receive messages that an observer of every
# link cannot link to their sender (`allium-node ctl mix …`). Every client
# needs a provider, and the network three mix layers (see [params.mix]).
# [mix]
# "none", "mix" (mix packets in one layer) or "provider" (the first and
# last hop of clients, holding their messages while they are away).
# Default "none".
# role = "none"
# A mix's layer, 0 to params.mix.layers - 1. Default: from the node id.
# layer = 0
# Be a client: send and receive messages (with cover traffic at the
# params.mix rates). Default false.
# client = false
# The client's provider's node id. Default: the provider closest to this node.
# provider = "<64 hex digits>"

# Lease election: groups of nodes that keep at most one leader at a time
# (`allium-node ctl leader`). Make the founder key, the membership list and
# join tokens with `allium-node election founder-key | membership | token`;
# every member is configured with the same founder key and list. Timing is
# under [params.election] below. One table per group:
# [[election.groups]]
# The group's name, as in the membership list.
# name = "publishers"
# The founder's Ed25519 public key (64 hex digits).
# founder_key = "<64 hex digits>"
# File with the founder-signed membership list (hex), relative to this file.
# membership = "publishers.membership"
# This node's priority when it joins with a token, 0 to 255. Default 0.
# priority = 0
# File with a founder-signed join token (hex): ask the leader to add this
# node. Default: none.
# join_token = "publishers.token"

# Rewards: count the bytes this node serves and receives per peer, sign
# receipts for what peers served it, and take part in the epoch settlement
# coordinated by an election group's leader (`allium-node ctl rewards`).
# The parameters every member must share (epoch length, emission, receipt
# interval, probes, challenges) are under [params.rewards] below.
# [rewards]
# Take part in rewards. Default false.
# enabled = false
# The [[election.groups]] name whose leader coordinates (settles each epoch
# into a signed record). Default: none (nothing is settled).
# group = "publishers"

# Protocol parameters, shown with their defaults. Uncomment to override, or
# use `--set dht.k=16` on the command line.
{commented_params}"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_commented_config_parses_to_the_defaults() {
        let text = commented_config(
            FileConfig::default().listen,
            FileConfig::default().control,
            FileConfig::default().metrics,
        );
        let parsed: FileConfig = toml::from_str(&text).unwrap();
        assert_eq!(parsed, FileConfig::default());
        // Uncommenting the parameter block gives valid parameters too.
        let uncommented: String = text
            .lines()
            .map(|l| l.strip_prefix("# ").filter(|_| l.contains(" = ") || l.starts_with("# [")).unwrap_or(l))
            .collect::<Vec<_>>()
            .join("\n");
        let parsed: FileConfig = toml::from_str(&uncommented).unwrap();
        assert_eq!(parsed.params, Params::default());
        assert_eq!(parsed.socks.listen, Some("127.0.0.1:9050".parse().unwrap()));
        assert_eq!(parsed.mix.role, MixRole::None);
        assert_eq!(parsed.mix.provider.as_deref(), Some("<64 hex digits>"));
        let group = &parsed.election.groups[0];
        assert_eq!((group.name.as_str(), group.priority), ("publishers", 0));
        assert_eq!(group.join_token.as_deref(), Some(Path::new("publishers.token")));
        assert_eq!((parsed.rewards.enabled, parsed.rewards.group.as_deref()), (false, Some("publishers")));
        let relay = RelayFileConfig { exit_policy: parsed.relay.exit_policy.clone(), ..RelayFileConfig::default() };
        assert_eq!(parsed.relay, relay);
        assert!(parsed.relay.to_engine().unwrap().exit_policy.allows("example.org", 443));
    }

    #[test]
    fn relay_and_socks_tables_map_to_the_engine_and_bad_policies_are_typed_errors() {
        let text = "[relay]\nenabled = true\nregion = 3\nflags = [\"stable\"]\nexit_policy = [\"accept 127.0.0.1:*\"]\n[socks]\nlisten = \"127.0.0.1:9050\"\n";
        let file: FileConfig = toml::from_str(text).unwrap();
        let relay = file.relay.to_engine().unwrap();
        assert!(relay.enabled && relay.exit_policy.allows("127.0.0.1", 80));
        assert_eq!((relay.region, relay.flags), (3, FLAG_STABLE));
        assert_eq!(file.socks.listen.map(|a| a.port()), Some(9050));
        let bad = RelayFileConfig { exit_policy: vec!["allow *:80".into()], ..RelayFileConfig::default() };
        assert!(matches!(bad.to_engine(), Err(RelaySettingsError::ExitPolicy(PolicyError::Syntax(_)))));
        let zero = RelayFileConfig { bandwidth_bytes_per_sec: 0, ..RelayFileConfig::default() };
        assert_eq!(zero.to_engine(), Err(RelaySettingsError::ZeroBandwidth));
        assert!(toml::from_str::<FileConfig>("[relay]\nflags = [\"fast\"]\n").is_err());
        assert!(toml::from_str::<FileConfig>("[socks]\nport = 1\n").is_err());
    }

    #[test]
    fn the_mix_table_maps_to_the_engine_and_bad_values_are_typed_errors() {
        let engine = |text: &str| toml::from_str::<FileConfig>(text).unwrap().mix.to_engine(3);
        assert_eq!(engine("").unwrap(), MixConfig::default());
        let mix = engine("[mix]\nrole = \"mix\"\nlayer = 2\n").unwrap();
        assert_eq!((mix.service, mix.client), (MixService::Mix { layer: Some(2) }, false));
        assert_eq!(engine("[mix]\nrole = \"mix\"\n").unwrap().service, MixService::Mix { layer: None });
        let provider = engine("[mix]\nrole = \"provider\"\nclient = true\n").unwrap();
        assert_eq!((provider.service, provider.client, provider.provider), (MixService::Provider, true, None));
        let id = "ab".repeat(32);
        let client = engine(&format!("[mix]\nclient = true\nprovider = \"{}\"\n", id.to_uppercase())).unwrap();
        assert_eq!(client.provider, Some(NodeId([0xab; 32])));
        assert_eq!(
            engine("[mix]\nrole = \"mix\"\nlayer = 3\n"),
            Err(MixSettingsError::LayerOutOfRange { layer: 3, layers: 3 })
        );
        assert_eq!(engine("[mix]\nrole = \"provider\"\nlayer = 0\n"), Err(MixSettingsError::LayerWithoutMix));
        assert_eq!(
            engine("[mix]\nclient = true\nprovider = \"abc\"\n"),
            Err(MixSettingsError::BadProvider("abc".into()))
        );
        assert_eq!(engine(&format!("[mix]\nprovider = \"{id}\"\n")), Err(MixSettingsError::ProviderWithoutClient));
        assert!(toml::from_str::<FileConfig>("[mix]\nrole = \"gateway\"\n").is_err());
        assert!(toml::from_str::<FileConfig>("[mix]\nlayers = 1\n").is_err());
        // The layer is checked against the configured number of layers.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[mix]\nrole = \"mix\"\nlayer = 1\n[params.mix]\nlayers = 1\n").unwrap();
        let flags = RunFlags { config: Some(path), ..RunFlags::default() };
        let error = NodeSettings::resolve(&flags).unwrap_err();
        assert!(error.to_string().contains("mix.layer = 1 but there are 1 layers"), "{error:#}");
    }

    mod election {
        use super::*;
        use allium_engine::election::Member;
        use allium_engine::{CryptoSuite, Identity, NodeSeed};

        fn id(i: u64) -> Identity {
            Identity::from_seed(&NodeSeed::derive(5, i), CryptoSuite::Real)
        }

        fn members() -> Vec<Member> {
            (1..=3).map(|i| Member::of(&id(i), SocketAddr::from(([127, 0, 0, 1], 7400 + i as u16)), 10)).collect()
        }

        /// A config dir with `m.hex` (group "g", founder id(0)) and `t.hex` (a token for id(4)).
        fn setup() -> (tempfile::TempDir, String) {
            let dir = tempfile::tempdir().unwrap();
            let founder = id(0);
            let membership = Membership::founder(&founder, "g", members());
            std::fs::write(dir.path().join("m.hex"), hex(&membership.encode())).unwrap();
            let token = JoinToken::sign(&founder, "g", id(4).public().signing_key, 7, None);
            std::fs::write(dir.path().join("t.hex"), format!("{}\n", hex(&allium_engine::wire::encode_plain(&token))))
                .unwrap();
            (dir, hex(&founder.public().signing_key))
        }

        fn group(founder_key: &str) -> ElectionGroupFile {
            ElectionGroupFile {
                name: "g".into(),
                founder_key: founder_key.into(),
                membership: "m.hex".into(),
                priority: 0,
                join_token: None,
            }
        }

        #[test]
        fn groups_resolve_through_the_config_file() {
            let (dir, founder_key) = setup();
            let path = dir.path().join("config.toml");
            let text = format!(
                "[[election.groups]]\nname = \"g\"\nfounder_key = \"{founder_key}\"\nmembership = \"m.hex\"\npriority = 7\njoin_token = \"t.hex\"\n"
            );
            std::fs::write(&path, text).unwrap();
            let flags = RunFlags { config: Some(path.clone()), ..RunFlags::default() };
            let settings = NodeSettings::resolve(&flags).unwrap();
            let g = &settings.election.groups[0];
            assert_eq!((g.name.as_str(), g.priority, g.membership.version), ("g", 7, 1));
            assert_eq!(g.membership.members.len(), 3);
            assert_eq!(g.founder_key, id(0).public().signing_key);
            assert_eq!(g.join_token.as_ref().map(|t| t.priority), Some(7));
            // No groups: the engine's default.
            std::fs::write(&path, "").unwrap();
            assert_eq!(NodeSettings::resolve(&flags).unwrap().election, ElectionConfig::default());
            // A bad group is an error of its own type.
            std::fs::write(&path, "[[election.groups]]\nname = \"g\"\nfounder_key = \"00\"\nmembership = \"m.hex\"\n")
                .unwrap();
            let error = NodeSettings::resolve(&flags).unwrap_err();
            assert!(error.downcast_ref::<ElectionSettingsError>().is_some(), "{error:#}");
            // Unknown keys and out-of-range priorities do not parse.
            assert!(toml::from_str::<FileConfig>("[[election.groups]]\nname = \"g\"\nfounder = \"x\"\n").is_err());
            let bad_priority = format!(
                "[[election.groups]]\nname = \"g\"\nfounder_key = \"{founder_key}\"\nmembership = \"m\"\npriority = 256\n"
            );
            assert!(toml::from_str::<FileConfig>(&bad_priority).is_err());
        }

        #[test]
        fn bad_groups_are_typed_errors() {
            let (dir, founder_key) = setup();
            let d = dir.path();
            let g = || "g".to_string();
            assert!(group(&founder_key).to_engine(d).is_ok());
            assert_eq!(
                group("xyz").to_engine(d),
                Err(ElectionSettingsError::BadFounderKey { group: g(), value: "xyz".into() })
            );
            let missing = ElectionGroupFile { membership: "nope.hex".into(), ..group(&founder_key) };
            assert!(matches!(missing.to_engine(d), Err(ElectionSettingsError::Unreadable { .. })));
            std::fs::write(d.join("junk.hex"), "not hex").unwrap();
            let junk = ElectionGroupFile { membership: "junk.hex".into(), ..group(&founder_key) };
            assert_eq!(junk.to_engine(d), Err(ElectionSettingsError::BadHex { group: g(), path: d.join("junk.hex") }));
            std::fs::write(d.join("short.hex"), "0102").unwrap();
            let short = ElectionGroupFile { membership: "short.hex".into(), ..group(&founder_key) };
            assert!(matches!(short.to_engine(d), Err(ElectionSettingsError::BadMembership { .. })));
            // Tampered: the signature no longer verifies.
            let mut tampered = Membership::founder(&id(0), "g", members());
            tampered.members[0].priority = 99;
            std::fs::write(d.join("tampered.hex"), hex(&tampered.encode())).unwrap();
            let tampered = ElectionGroupFile { membership: "tampered.hex".into(), ..group(&founder_key) };
            assert!(matches!(tampered.to_engine(d), Err(ElectionSettingsError::BadMembership { .. })));
            // Signed by someone else.
            let other = hex(&id(9).public().signing_key);
            assert_eq!(
                group(&other).to_engine(d),
                Err(ElectionSettingsError::NotFounderSigned { group: g(), signer: founder_key.clone() })
            );
            // Another group's list.
            let wrong = ElectionGroupFile { name: "h".into(), ..group(&founder_key) };
            assert_eq!(wrong.to_engine(d), Err(ElectionSettingsError::WrongGroup { group: "h".into(), found: g() }));
            // Tokens: a good one, one for another group, one by another founder, junk.
            let with = |file: &str| ElectionGroupFile { join_token: Some(file.into()), ..group(&founder_key) };
            assert!(with("t.hex").to_engine(d).unwrap().join_token.is_some());
            let foreign = JoinToken::sign(&id(0), "h", id(4).public().signing_key, 7, None);
            std::fs::write(d.join("foreign.hex"), hex(&allium_engine::wire::encode_plain(&foreign))).unwrap();
            assert!(matches!(with("foreign.hex").to_engine(d), Err(ElectionSettingsError::BadToken { .. })));
            let forged = JoinToken::sign(&id(9), "g", id(4).public().signing_key, 7, None);
            std::fs::write(d.join("forged.hex"), hex(&allium_engine::wire::encode_plain(&forged))).unwrap();
            assert!(matches!(with("forged.hex").to_engine(d), Err(ElectionSettingsError::BadToken { .. })));
            assert!(matches!(with("m.hex").to_engine(d), Err(ElectionSettingsError::BadToken { .. })));
            assert!(matches!(with("none.hex").to_engine(d), Err(ElectionSettingsError::Unreadable { .. })));
            // The same group twice.
            let twice = ElectionFileConfig { groups: vec![group(&founder_key), group(&founder_key)] };
            assert_eq!(twice.to_engine(d), Err(ElectionSettingsError::DuplicateGroup(g())));
        }

        #[test]
        fn the_rewards_group_must_be_a_configured_election_group() {
            let (dir, founder_key) = setup();
            let path = dir.path().join("config.toml");
            let flags = RunFlags { config: Some(path.clone()), ..RunFlags::default() };
            let group =
                format!("[[election.groups]]\nname = \"g\"\nfounder_key = \"{founder_key}\"\nmembership = \"m.hex\"\n");
            // Off by default; the wall clock is the runtime's to fill in.
            std::fs::write(&path, &group).unwrap();
            let settings = NodeSettings::resolve(&flags).unwrap();
            assert_eq!((settings.rewards.enabled, settings.rewards.group.as_deref()), (false, None));
            assert_eq!(settings.rewards.unix_ms_at_start, 0);
            // A configured group.
            std::fs::write(&path, format!("{group}[rewards]\nenabled = true\ngroup = \"g\"\n")).unwrap();
            let settings = NodeSettings::resolve(&flags).unwrap();
            assert_eq!((settings.rewards.enabled, settings.rewards.group.as_deref()), (true, Some("g")));
            // Enabled without a group: counting and receipts only.
            std::fs::write(&path, "[rewards]\nenabled = true\n").unwrap();
            let settings = NodeSettings::resolve(&flags).unwrap();
            assert_eq!((settings.rewards.enabled, settings.rewards.group), (true, None));
            // An unknown group is a typed error that names it and the configured ones.
            std::fs::write(&path, format!("{group}[rewards]\nenabled = true\ngroup = \"nope\"\n")).unwrap();
            let error = NodeSettings::resolve(&flags).unwrap_err();
            assert_eq!(
                error.downcast_ref::<RewardsSettingsError>(),
                Some(&RewardsSettingsError::UnknownGroup { group: "nope".into(), configured: vec!["g".into()] })
            );
            let message = error.to_string();
            assert!(message.contains("\"nope\"") && message.contains("configured: \"g\""), "{message}");
            std::fs::write(&path, "[rewards]\ngroup = \"nope\"\n").unwrap();
            let message = NodeSettings::resolve(&flags).unwrap_err().to_string();
            assert!(message.contains("\"nope\"") && message.contains("configured: none"), "{message}");
            // Unknown keys do not parse; [params.rewards] is read and --set reaches it.
            assert!(toml::from_str::<FileConfig>("[rewards]\nepoch_secs = 10\n").is_err());
            std::fs::write(&path, "[params.rewards]\nepoch_secs = 10\nsettle_delay_secs = 3\n").unwrap();
            let flags = RunFlags { set: vec!["rewards.receipt_interval_ms=1000".into()], ..flags };
            let params = NodeSettings::resolve(&flags).unwrap().params.rewards;
            assert_eq!((params.epoch_secs, params.settle_delay_secs, params.receipt_interval_ms), (10, 3, 1000));
        }

        #[test]
        fn hex_parses_both_cases_and_refuses_junk() {
            assert_eq!(parse_hex(" 0aFf\n"), Some(vec![0x0a, 0xff]));
            assert_eq!(parse_hex(""), Some(vec![]));
            assert_eq!(parse_hex("abc"), None);
            assert_eq!(parse_hex("zz"), None);
        }
    }

    #[test]
    fn flags_override_the_file_and_control_must_be_loopback() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\n[params.dht]\nk = 10\n").unwrap();
        let mut flags = RunFlags { config: Some(path.clone()), ..RunFlags::default() };
        let s = NodeSettings::resolve(&flags).unwrap();
        assert_eq!((s.listen.port(), s.params.dht.k, s.data_dir.as_path()), (9000, 10, dir.path()));
        flags.listen = Some("127.0.0.1:9001".parse().unwrap());
        flags.set = vec!["dht.k=12".into()];
        let s = NodeSettings::resolve(&flags).unwrap();
        assert_eq!((s.listen.port(), s.params.dht.k), (9001, 12));
        flags.control = Some("0.0.0.0:7401".parse().unwrap());
        assert!(NodeSettings::resolve(&flags).is_err());
        flags.control = None;
        flags.set = vec!["dht.nonsense=1".into()];
        assert!(NodeSettings::resolve(&flags).is_err());
        flags.set.clear();
        flags.socks = Some("127.0.0.1:9999".parse().unwrap());
        flags.relay = true;
        let s = NodeSettings::resolve(&flags).unwrap();
        assert_eq!((s.socks.map(|a| a.port()), s.relay.enabled), (Some(9999), true));
        std::fs::write(&path, "[relay]\nexit_policy = [\"accept *:http\"]\n").unwrap();
        let error = NodeSettings::resolve(&flags).unwrap_err();
        assert!(error.downcast_ref::<RelaySettingsError>().is_some(), "{error:#}");
        std::fs::write(&path, "crypto_suite = \"sim-fast\"\n").unwrap();
        flags.set.clear();
        assert!(NodeSettings::resolve(&flags).unwrap_err().to_string().contains("real"));
    }
}
