//! `allium-node ctl …`: a small client of the control API.

use crate::runtime::Stats;
use anyhow::{Context, bail};
use serde_json::Value;
use std::net::SocketAddr;

/// What `ctl` can ask.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum CtlCommand {
    /// DHT records.
    #[command(subcommand)]
    Dht(DhtCtl),
    /// List routing-table contacts.
    Peers,
    /// Show node statistics.
    Stats {
        /// Print the raw JSON.
        #[arg(long)]
        json: bool,
    },
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
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .http_status_as_error(false)
        .build()
        .into()
}

fn read(mut response: ureq::http::Response<ureq::Body>) -> anyhow::Result<Value> {
    let status = response.status();
    let body: Value = response.body_mut().read_json().context("reading the node's answer")?;
    if !status.is_success() {
        let message = body.get("error").and_then(Value::as_str).unwrap_or("request failed");
        bail!("{message} (HTTP {})", status.as_u16());
    }
    Ok(body)
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
                println!("listen      {}", stats.listen);
                println!("uptime      {} s", stats.uptime_ms / 1000);
                println!("joined      {}", stats.bootstrapped);
                println!("peers       {}", stats.peers);
                println!("records     {} values, {} providers", stats.values_held, stats.providers_held);
                println!("rejected    {} datagrams", stats.metrics.get("wire.rejected").copied().unwrap_or(0));
            }
        }
    }
    Ok(())
}
