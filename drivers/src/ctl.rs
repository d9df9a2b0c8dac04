//! `allium-node ctl …`: a small client of the control API.

mod leader;
mod mix;
mod rewards;

pub use leader::{LeaderAction, LeaderArgs};
pub use mix::MixCtl;
pub use rewards::{RewardsAction, RewardsArgs};

use crate::runtime::{CircuitsReport, Stats};
use allium_engine::overlay::Cid;
use anyhow::Context;
use serde_json::Value;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What `ctl` can ask.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum CtlCommand {
    /// DHT records.
    #[command(subcommand)]
    Dht(DhtCtl),
    /// List routing-table contacts.
    Peers,
    /// Print this node's id (or, with --signing-key, its Ed25519 signing key
    /// for an election membership list).
    Id {
        /// Print the signing key instead of the node id.
        #[arg(long)]
        signing_key: bool,
    },
    /// Show the election groups: version, members, leader, this node's lease;
    /// or ask for a change (join, leave, remove).
    Leader(LeaderArgs),
    /// Show the rewards state: epoch, bytes per service, receipts,
    /// coordinator, last record (own payout, audit); or, with `record`,
    /// the last epoch record for a settlement system.
    Rewards(RewardsArgs),
    /// Show node statistics.
    Stats {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Publish FILE: store, pin and announce it; prints its content ID on stdout.
    Put {
        /// The file to publish.
        file: PathBuf,
        /// File name recorded in the manifest (default: FILE's name).
        #[arg(long)]
        name: Option<String>,
        /// Media type recorded in the manifest, e.g. `text/plain`.
        #[arg(long)]
        media_type: Option<String>,
    },
    /// Fetch content by ID, verifying every chunk, and write it to OUT.
    Get {
        /// Content ID (`b3:` and 64 hex digits).
        cid: String,
        /// Where to write the bytes (`-` for stdout).
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Fetch what is missing of a content ID, then keep and announce it until unpinned.
    Pin {
        /// Content ID.
        cid: String,
    },
    /// Stop pinning a content ID (it stays cached until evicted).
    Unpin {
        /// Content ID.
        cid: String,
    },
    /// List the objects in the node's content store.
    Content {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the node's onion circuits, relay directory, guards and build timeout.
    Circuits {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// The mixnet: this node's address, send, inbox, read, reply, status.
    #[command(subcommand)]
    Mix(MixCtl),
}

/// `ctl dht …`.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum DhtCtl {
    /// Publish VALUE under the name KEY.
    Put {
        /// Record name.
        key: String,
        /// Value (text).
        value: String,
    },
    /// Fetch the record named KEY and print its value.
    Get {
        /// Record name.
        key: String,
    },
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// An agent for content transfers: a large fetch may take as long as the
/// node's `overlay.fetch_timeout_secs`, and the node answers every fetch
/// itself (success, failure or time-out), so only connecting is bounded.
fn content_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// Parses a content ID before bothering the node, for a clear message.
fn parse_cid(text: &str) -> anyhow::Result<Cid> {
    text.parse::<Cid>().map_err(|e| anyhow::anyhow!("{e}"))
}

/// Reads an error answer (JSON `{"error"}`, or the text of an error the
/// HTTP layer answered itself, such as a body over the size limit) into a message.
fn failure(mut response: ureq::http::Response<ureq::Body>) -> anyhow::Error {
    let status = response.status();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let message = match serde_json::from_str::<Value>(&text) {
        Ok(body) => body.get("error").and_then(Value::as_str).unwrap_or("request failed").to_string(),
        Err(_) if !text.trim().is_empty() => text.trim().to_string(),
        Err(_) => "request failed".to_string(),
    };
    anyhow::anyhow!("{message} (HTTP {})", status.as_u16())
}

fn rate(bytes: u64, elapsed: Duration) -> String {
    let mib = bytes as f64 / (1024.0 * 1024.0);
    format!("{mib:.1} MiB in {:.2} s ({:.1} MiB/s)", elapsed.as_secs_f64(), mib / elapsed.as_secs_f64().max(1e-9))
}

fn put(
    base: &str,
    unreachable: impl Fn() -> String,
    file: &Path,
    name: Option<String>,
    media_type: Option<String>,
) -> anyhow::Result<()> {
    let data = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let name = name.or_else(|| file.file_name().map(|n| n.to_string_lossy().into_owned()));
    let started = Instant::now();
    let mut request = content_agent().post(format!("{base}/content"));
    if let Some(name) = &name {
        request = request.query("name", name);
    }
    if let Some(media_type) = &media_type {
        request = request.query("media_type", media_type);
    }
    let response = request.content_type("application/octet-stream").send(&data[..]).with_context(unreachable)?;
    let body = read(response)?;
    let cid = body["cid"].as_str().context("the node's answer has no cid")?;
    println!("{cid}");
    eprintln!(
        "published {} ({}), announced to {} peers",
        file.display(),
        rate(data.len() as u64, started.elapsed()),
        body["providers_stored"]
    );
    Ok(())
}

fn get(base: &str, unreachable: impl Fn() -> String, cid: &str, output: &Path) -> anyhow::Result<()> {
    let cid = parse_cid(cid)?;
    let started = Instant::now();
    let mut response = content_agent().get(format!("{base}/content/{cid}")).call().with_context(unreachable)?;
    if !response.status().is_success() {
        return Err(failure(response));
    }
    let mut reader = response.body_mut().as_reader();
    let written = if output == Path::new("-") {
        let mut stdout = std::io::stdout().lock();
        let n = std::io::copy(&mut reader, &mut stdout).context("writing to stdout")?;
        stdout.flush()?;
        n
    } else {
        // Written to OUT.part and renamed into place: OUT is never left half-written.
        let mut part = output.as_os_str().to_owned();
        part.push(".part");
        let part = PathBuf::from(part);
        let copied = std::fs::File::create(&part)
            .with_context(|| format!("creating {}", part.display()))
            .and_then(|mut file| {
                let n = std::io::copy(&mut reader, &mut file).context("receiving the content")?;
                file.sync_all()?;
                Ok(n)
            })
            .and_then(|n| {
                std::fs::rename(&part, output).map(|()| n).with_context(|| format!("writing {}", output.display()))
            });
        if copied.is_err() {
            let _ = std::fs::remove_file(&part);
        }
        copied?
    };
    eprintln!("fetched {cid} ({})", rate(written, started.elapsed()));
    Ok(())
}

fn read(mut response: ureq::http::Response<ureq::Body>) -> anyhow::Result<Value> {
    let status = response.status();
    if !status.is_success() {
        return Err(failure(response));
    }
    response.body_mut().read_json().context("reading the node's answer")
}

/// Prints a circuit report as a table.
fn print_circuits(report: &CircuitsReport) {
    let short = |id: &str| id.chars().take(12).collect::<String>();
    println!("directory   {} relays ({} exits)", report.directory_relays, report.directory_exits);
    println!("guards      {}", report.guards.iter().map(|g| short(g)).collect::<Vec<_>>().join(", "));
    println!("timeout     {} ms (circuit build)", report.build_timeout_ms);
    println!("relaying    {} circuits", report.relayed_circuits);
    if report.circuits.is_empty() {
        println!("no circuits of our own");
        return;
    }
    println!();
    println!(
        "{:>6}  {:<8}  {:>8}  {:>7}  {:>12}  {:>12}  {:>7}  path",
        "handle", "state", "age", "streams", "sent", "received", "rtt"
    );
    for c in &report.circuits {
        let path: Vec<String> = c.path.iter().map(|hop| format!("{}@{}", short(&hop.id), hop.addr)).collect();
        println!(
            "{:>6}  {:<8}  {:>6} s  {:>7}  {:>12}  {:>12}  {:>4} ms  {}",
            c.handle,
            c.state,
            c.age_ms / 1000,
            c.streams,
            c.bytes_sent,
            c.bytes_received,
            c.srtt_ms,
            path.join(" -> ")
        );
    }
}

/// Runs one control command against the node at `control`, printing the answer.
pub fn run(control: SocketAddr, command: CtlCommand) -> anyhow::Result<()> {
    let base = format!("http://{control}/v1");
    let agent = agent();
    let unreachable = || format!("cannot reach the node's control API at {control}; is it running?");
    match command {
        CtlCommand::Dht(DhtCtl::Put { key, value }) => {
            let response = agent
                .post(format!("{base}/dht/put"))
                .send_json(serde_json::json!({ "key": key, "value": value }))
                .with_context(unreachable)?;
            let body = read(response)?;
            println!("stored {} under {} on {} peers", key, body["key"].as_str().unwrap_or("?"), body["stored"]);
        }
        CtlCommand::Dht(DhtCtl::Get { key }) => {
            let response = agent.get(format!("{base}/dht/get")).query("key", &key).call().with_context(unreachable)?;
            let body = read(response)?;
            println!("{}", body["value"].as_str().unwrap_or_default());
        }
        CtlCommand::Peers => {
            let body = read(agent.get(format!("{base}/peers")).call().with_context(unreachable)?)?;
            for peer in body.as_array().into_iter().flatten() {
                println!("{}  {}", peer["id"].as_str().unwrap_or("?"), peer["addr"].as_str().unwrap_or("?"));
            }
        }
        CtlCommand::Stats { json } => {
            let body = read(agent.get(format!("{base}/stats")).call().with_context(unreachable)?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                let stats: Stats = serde_json::from_value(body)?;
                println!("node        {}", stats.node_id);
                println!("signing key {}", stats.signing_key);
                println!("listen      {}", stats.listen);
                println!("uptime      {} s", stats.uptime_ms / 1000);
                println!("joined      {}", stats.bootstrapped);
                println!("peers       {}", stats.peers);
                println!("records     {} values, {} providers", stats.values_held, stats.providers_held);
                println!("content     {} objects, {} bytes", stats.content_objects, stats.content_bytes);
                println!("rejected    {} datagrams", stats.metrics.get("wire.rejected").copied().unwrap_or(0));
            }
        }
        CtlCommand::Id { signing_key } => {
            let stats: Stats =
                serde_json::from_value(read(agent.get(format!("{base}/stats")).call().with_context(unreachable)?)?)?;
            println!("{}", if signing_key { stats.signing_key } else { stats.node_id });
        }
        CtlCommand::Leader(args) => leader::run(&base, &unreachable, args)?,
        CtlCommand::Rewards(args) => rewards::run(&base, &unreachable, args)?,
        CtlCommand::Put { file, name, media_type } => put(&base, unreachable, &file, name, media_type)?,
        CtlCommand::Get { cid, output } => get(&base, unreachable, &cid, &output)?,
        CtlCommand::Pin { cid } => {
            let cid = parse_cid(&cid)?;
            let response =
                content_agent().post(format!("{base}/content/{cid}/pin")).send_empty().with_context(unreachable)?;
            read(response)?;
            println!("pinned {cid}");
        }
        CtlCommand::Unpin { cid } => {
            let cid = parse_cid(&cid)?;
            let response = agent.delete(format!("{base}/content/{cid}/pin")).call().with_context(unreachable)?;
            let body = read(response)?;
            if body["was_pinned"].as_bool() == Some(true) {
                println!("unpinned {cid}");
            } else {
                println!("{cid} was not pinned");
            }
        }
        CtlCommand::Circuits { json } => {
            let body = read(agent.get(format!("{base}/circuits")).call().with_context(unreachable)?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                print_circuits(&serde_json::from_value(body)?);
            }
        }
        CtlCommand::Mix(command) => mix::run(&base, &unreachable, command)?,
        CtlCommand::Content { json } => {
            let body = read(agent.get(format!("{base}/content")).call().with_context(unreachable)?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                for entry in body.as_array().into_iter().flatten() {
                    let complete = if entry["complete"].as_bool() == Some(true) { "complete" } else { "partial" };
                    println!(
                        "{}  {:>12}  {:<7}  {:<8}  {}",
                        entry["cid"].as_str().unwrap_or("?"),
                        entry["size"],
                        entry["holding"].as_str().unwrap_or("?"),
                        complete,
                        entry["name"].as_str().unwrap_or("")
                    );
                }
            }
        }
    }
    Ok(())
}
