//! `allium-node ctl mix …`: the mixnet over the control API (`/v1/mix…`).

use super::{agent, failure, read};
use crate::runtime::{InboxSummary, MixReport, SentInfo, SentStatus};
use allium_engine::mix::MixAddress;
use allium_engine::mix::message::MAX_REPLY_SURBS;
use anyhow::{Context, bail};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// How long one `sent/{id}` request waits for the outcome before asking again, in milliseconds.
const WAIT_SLICE_MS: u64 = 30_000;

/// `ctl mix …`.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum MixCtl {
    /// Print this node's mix address (for others to send to), or fail if it has none yet.
    Address,
    /// Send FILE (`-` for stdin) to RECIPIENT through the mixnet; prints the message id.
    Send {
        /// The recipient's mix address, as `ctl mix address` prints it on its node.
        recipient: String,
        /// The message (`-` for stdin).
        file: PathBuf,
        /// Reply blocks to include, so the recipient can answer (each carries one reply packet).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=MAX_REPLY_SURBS as i64))]
        reply_blocks: u8,
        /// Wait until the message is delivered (every fragment acknowledged) or fails.
        #[arg(long)]
        wait: bool,
    },
    /// List received messages: index, length, whether it can be answered, what it answers.
    Inbox {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write the bytes of inbox message INDEX.
    Read {
        /// The message's index (from `ctl mix inbox`).
        index: u64,
        /// Where to write them (default: stdout).
        #[arg(short, long)]
        out: Option<PathBuf>,
    },
    /// Answer inbox message INDEX with FILE (`-` for stdin), through its reply blocks; prints the reply's id.
    Reply {
        /// The message's index (from `ctl mix inbox`).
        index: u64,
        /// The answer (`-` for stdin).
        file: PathBuf,
        /// Wait until the reply is delivered or fails.
        #[arg(long)]
        wait: bool,
    },
    /// Show sent messages and replies, or one of them.
    Sent {
        /// A message id (as `send` or `reply` printed it); default all.
        id: Option<u64>,
        /// Wait until that message is delivered or fails.
        #[arg(long, requires = "id")]
        wait: bool,
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show the node's mixnet state: role, address, topology, queues.
    Status {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Reads FILE, or stdin for `-`.
fn read_input(file: &Path) -> anyhow::Result<Vec<u8>> {
    if file == Path::new("-") {
        let mut data = Vec::new();
        std::io::stdin().lock().read_to_end(&mut data).context("reading stdin")?;
        Ok(data)
    } else {
        std::fs::read(file).with_context(|| format!("reading {}", file.display()))
    }
}

fn show_sent(info: &SentInfo) -> String {
    match info.status {
        SentStatus::Pending => format!("pending ({} ms so far)", info.elapsed_ms),
        SentStatus::Delivered => format!("delivered in {} ms", info.elapsed_ms),
        SentStatus::Failed => {
            format!("failed after {} ms: {}", info.elapsed_ms, info.reason.as_deref().unwrap_or("unknown reason"))
        }
    }
}

/// Waits for message `id`'s outcome; an error (non-zero exit) when it failed.
fn wait_for(base: &str, unreachable: &dyn Fn() -> String, id: u64) -> anyhow::Result<SentInfo> {
    loop {
        let response = agent()
            .get(format!("{base}/mix/sent/{id}"))
            .query("wait_ms", WAIT_SLICE_MS.to_string())
            .call()
            .with_context(unreachable)?;
        let info: SentInfo = serde_json::from_value(read(response)?)?;
        if info.status != SentStatus::Pending {
            return Ok(info);
        }
    }
}

/// Prints the outcome of a waited-for message; fails when it failed.
fn report_outcome(info: &SentInfo) -> anyhow::Result<()> {
    match info.status {
        SentStatus::Delivered => {
            println!("{}", show_sent(info));
            Ok(())
        }
        _ => bail!("message {}: {}", info.id, show_sent(info)),
    }
}

fn print_status(report: &MixReport) {
    let role = match (report.role.as_str(), report.layer) {
        ("mix", Some(layer)) => format!("mix (layer {layer})"),
        (role, _) => role.to_string(),
    };
    let client = match (report.client, &report.address) {
        (false, _) => "no".to_string(),
        (true, Some(_)) => "yes, ready".to_string(),
        (true, None) => "yes, not ready (no provider or topology yet)".to_string(),
    };
    println!("role        {role}");
    println!("client      {client}");
    if let Some(address) = &report.address {
        println!("address     {address}");
    }
    println!("topology    mixes per layer {:?}, {} providers", report.layers, report.providers);
    println!("mix queue   {} packets", report.queued);
    println!("replay tags {}", report.replay_tags);
    if report.role == "provider" {
        println!("clients     {} subscribed, {} messages held", report.clients, report.held);
    }
    if report.client {
        println!("send queue  {} packets, {} messages in flight", report.send_queue, report.in_flight);
        println!("inbox       {} messages", report.inbox);
        println!("pending     {} sent messages", report.sent_pending);
    }
}

fn print_inbox(inbox: &[InboxSummary]) {
    if inbox.is_empty() {
        println!("inbox empty");
        return;
    }
    println!("{:>6}  {:>8}  {:<5}  {:<11}  received", "index", "bytes", "reply", "in-reply-to");
    for m in inbox {
        let answers = m.in_reply_to.map_or_else(|| "-".to_string(), |id| id.to_string());
        let reply = if m.has_reply { "yes" } else { "no" };
        println!(
            "{:>6}  {:>8}  {:<5}  {:<11}  {:.1} s",
            m.index,
            m.len,
            reply,
            answers,
            m.received_at_ms as f64 / 1000.0
        );
    }
}

/// Runs one `ctl mix` command against the control API at `base` (`http://…/v1`).
pub fn run(base: &str, unreachable: &dyn Fn() -> String, command: MixCtl) -> anyhow::Result<()> {
    let agent = agent();
    match command {
        MixCtl::Address => {
            let body = read(agent.get(format!("{base}/mix/address")).call().with_context(unreachable)?)?;
            println!("{}", body["address"].as_str().context("the node's answer has no address")?);
        }
        MixCtl::Send { recipient, file, reply_blocks, wait } => {
            let recipient: MixAddress =
                recipient.parse().map_err(|e| anyhow::anyhow!("recipient {recipient:?}: {e}"))?;
            let data = read_input(&file)?;
            let started = Instant::now();
            let response = agent
                .post(format!("{base}/mix/send"))
                .query("recipient", recipient.to_string())
                .query("reply_blocks", reply_blocks.to_string())
                .content_type("application/octet-stream")
                .send(&data[..])
                .with_context(unreachable)?;
            let id = read(response)?["id"].as_u64().context("the node's answer has no id")?;
            println!("{id}");
            if wait {
                let info = wait_for(base, unreachable, id)?;
                eprintln!("{} bytes, waited {:.2} s", data.len(), started.elapsed().as_secs_f64());
                report_outcome(&info)?;
            }
        }
        MixCtl::Reply { index, file, wait } => {
            let data = read_input(&file)?;
            let started = Instant::now();
            let response = agent
                .post(format!("{base}/mix/inbox/{index}/reply"))
                .content_type("application/octet-stream")
                .send(&data[..])
                .with_context(unreachable)?;
            let id = read(response)?["id"].as_u64().context("the node's answer has no id")?;
            println!("{id}");
            if wait {
                let info = wait_for(base, unreachable, id)?;
                eprintln!("{} bytes, waited {:.2} s", data.len(), started.elapsed().as_secs_f64());
                report_outcome(&info)?;
            }
        }
        MixCtl::Inbox { json } => {
            let body = read(agent.get(format!("{base}/mix/inbox")).call().with_context(unreachable)?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                print_inbox(&serde_json::from_value::<Vec<InboxSummary>>(body)?);
            }
        }
        MixCtl::Read { index, out } => {
            let mut response = agent.get(format!("{base}/mix/inbox/{index}")).call().with_context(unreachable)?;
            if !response.status().is_success() {
                return Err(failure(response));
            }
            let mut data = Vec::new();
            response.body_mut().as_reader().read_to_end(&mut data).context("receiving the message")?;
            match out {
                None => {
                    let mut stdout = std::io::stdout().lock();
                    stdout.write_all(&data).context("writing to stdout")?;
                    stdout.flush()?;
                }
                Some(path) if path == Path::new("-") => {
                    let mut stdout = std::io::stdout().lock();
                    stdout.write_all(&data).context("writing to stdout")?;
                    stdout.flush()?;
                }
                Some(path) => std::fs::write(&path, &data).with_context(|| format!("writing {}", path.display()))?,
            }
        }
        MixCtl::Sent { id: Some(id), wait, json } => {
            let info = if wait {
                wait_for(base, unreachable, id)?
            } else {
                let response = agent.get(format!("{base}/mix/sent/{id}")).call().with_context(unreachable)?;
                serde_json::from_value(read(response)?)?
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
            } else if wait {
                report_outcome(&info)?;
            } else {
                println!("{}", show_sent(&info));
            }
        }
        MixCtl::Sent { id: None, json, .. } => {
            let body = read(agent.get(format!("{base}/mix/sent")).call().with_context(unreachable)?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                let list: Vec<SentInfo> = serde_json::from_value(body)?;
                if list.is_empty() {
                    println!("nothing sent");
                }
                for info in &list {
                    let mut to: String = info.to.chars().take(16).collect();
                    if to.len() < info.to.len() {
                        to.push('…');
                    }
                    println!("{:>6}  {:<7}  {:>8} B  to {to:<17}  {}", info.id, info.kind, info.bytes, show_sent(info));
                }
            }
        }
        MixCtl::Status { json } => {
            let body = read(agent.get(format!("{base}/mix")).call().with_context(unreachable)?)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                print_status(&serde_json::from_value(body)?);
            }
        }
    }
    Ok(())
}
