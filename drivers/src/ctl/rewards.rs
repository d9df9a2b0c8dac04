//! `allium-node ctl rewards …`: the rewards state and the last epoch record
//! over the control API (`/v1/rewards…`).

use super::{agent, read};
use crate::runtime::{RewardsInfo, ServiceBytes, Stats};
use anyhow::Context;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// `ctl rewards`: the summary, or the last record.
#[derive(Clone, Debug, clap::Args)]
pub struct RewardsArgs {
    /// Print the raw JSON (`GET /v1/rewards`).
    #[arg(long)]
    pub json: bool,
    /// Show the last record instead of the summary.
    #[command(subcommand)]
    pub action: Option<RewardsAction>,
}

/// `ctl rewards record`.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum RewardsAction {
    /// The last epoch record this node accepted (payouts, carry, hashes,
    /// coordinator signature): a table of payouts, or JSON for a settlement system.
    Record {
        /// Print the record's JSON (`GET /v1/rewards/record`).
        #[arg(long)]
        json: bool,
        /// Write the record's JSON to FILE (written whole, then renamed into place).
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
    },
}

/// A byte count with a binary-prefixed unit.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {} ({n} B)", UNITS[unit])
}

fn per_service(b: &ServiceBytes) -> String {
    format!("relayed cells {}, mix packets {}, chunks {}", bytes(b.relayed_cell), bytes(b.mix_packet), bytes(b.chunk))
}

fn short(id: &str) -> String {
    id.chars().take(12).collect()
}

/// What `ctl rewards` prints.
pub fn summary(info: &RewardsInfo) -> String {
    if !info.enabled {
        return "rewards are off on this node ([rewards] enabled = false)\n".to_string();
    }
    let mut out = String::new();
    let group = info.group.as_deref().map_or_else(|| "none (nothing is settled)".to_string(), |g| g.to_string());
    out.push_str(&format!("group        {group}\n"));
    out.push_str(&format!(
        "epoch        {} ({:.1} s left of {} s)\n",
        info.epoch,
        info.epoch_remaining_ms as f64 / 1000.0,
        info.epoch_secs
    ));
    let coordinator = match (&info.coordinator, info.coordinating) {
        (Some(id), true) => format!("{} (this node)", short(id)),
        (Some(id), false) => short(id),
        (None, _) => "none known for this epoch".to_string(),
    };
    out.push_str(&format!("coordinator  {coordinator}\n"));
    out.push_str(&format!("received     {}\n", per_service(&info.received)));
    out.push_str(&format!("sent         {}\n", per_service(&info.sent)));
    out.push_str(&format!("peers        {}\n", info.peers));
    out.push_str(&format!(
        "receipts     {} held ({} receipted), {} signed and sent\n",
        info.receipts_held,
        bytes(info.receipted_bytes),
        info.receipts_sent
    ));
    match &info.last_record {
        None => out.push_str("last record  none yet\n"),
        Some(r) => {
            let audit = match &r.mismatch {
                Some(what) => format!("{} ({what})", r.audit),
                None => r.audit.clone(),
            };
            out.push_str(&format!(
                "last record  epoch {}, hash {}, own payout {} units, audit {audit}\n",
                r.epoch,
                short(&r.hash),
                r.payout
            ));
        }
    }
    out
}

/// What `ctl rewards record` prints: the record's header and a table of
/// payouts (`me`, this node's id in hex, is marked).
pub fn record_table(record: &Value, me: &str) -> String {
    let text = |key: &str| record[key].as_str().map_or_else(|| "-".to_string(), str::to_string);
    let number = |key: &str| record[key].as_u64().unwrap_or(0);
    let mut out = String::new();
    out.push_str(&format!("group        {}\n", text("group")));
    out.push_str(&format!("epoch        {}\n", number("epoch")));
    out.push_str(&format!("hash         {}\n", text("hash")));
    out.push_str(&format!("prev         {}\n", text("prev")));
    out.push_str(&format!("coordinator  {}\n", text("coordinator")));
    out.push_str(&format!(
        "emission     {} + {} carried in; {} carried out (units)\n",
        number("emission"),
        number("carried_in"),
        number("carried_out")
    ));
    let rejected: Vec<String> = record["rejected"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    out.push_str(&format!(
        "rejected     {}\n",
        if rejected.is_empty() { "nothing".to_string() } else { rejected.join(", ") }
    ));
    let payouts = record["payouts"].as_array().cloned().unwrap_or_default();
    if payouts.is_empty() {
        out.push_str("no payouts (every pool carried)\n");
        return out;
    }
    out.push('\n');
    out.push_str(&format!(
        "{:<64}  {:>14}  {:>14}  {:>14}  {:>14}\n",
        "node", "bandwidth", "storage", "publisher", "total"
    ));
    let mut sum = 0u64;
    for p in &payouts {
        let node = p["node"].as_str().unwrap_or("?");
        let total = p["total"].as_u64().unwrap_or(0);
        sum = sum.saturating_add(total);
        out.push_str(&format!(
            "{node:<64}  {:>14}  {:>14}  {:>14}  {:>14}{}\n",
            p["bandwidth"].as_u64().unwrap_or(0),
            p["storage"].as_u64().unwrap_or(0),
            p["publisher"].as_u64().unwrap_or(0),
            total,
            if node == me { "  (this node)" } else { "" }
        ));
    }
    out.push_str(&format!("{:<64}  {:>14}  {:>14}  {:>14}  {:>14}\n", "paid", "", "", "", sum));
    out
}

/// Writes `json` to `path` through `path.part`, so `path` is never half-written.
fn export(path: &Path, json: &str) -> anyhow::Result<()> {
    let mut part = path.as_os_str().to_owned();
    part.push(".part");
    let part = PathBuf::from(part);
    let written = std::fs::write(&part, format!("{json}\n"))
        .with_context(|| format!("writing {}", part.display()))
        .and_then(|()| std::fs::rename(&part, path).with_context(|| format!("writing {}", path.display())));
    if written.is_err() {
        let _ = std::fs::remove_file(&part);
    }
    written
}

/// Runs `ctl rewards …` against the control API at `base` (`http://…/v1`).
pub fn run(base: &str, unreachable: &dyn Fn() -> String, args: RewardsArgs) -> anyhow::Result<()> {
    let agent = agent();
    match args.action {
        None => {
            let body = read(agent.get(format!("{base}/rewards")).call().with_context(unreachable)?)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                print!("{}", summary(&serde_json::from_value(body)?));
            }
        }
        Some(RewardsAction::Record { json, export: file }) => {
            let record = read(agent.get(format!("{base}/rewards/record")).call().with_context(unreachable)?)?;
            let pretty = serde_json::to_string_pretty(&record)?;
            if let Some(path) = &file {
                export(path, &pretty)?;
                eprintln!(
                    "wrote the record of epoch {} (hash {}) to {}",
                    record["epoch"],
                    record["hash"].as_str().unwrap_or("?"),
                    path.display()
                );
            }
            if json || args.json {
                println!("{pretty}");
            } else if file.is_none() {
                let stats: Stats = serde_json::from_value(read(
                    agent.get(format!("{base}/stats")).call().with_context(unreachable)?,
                )?)?;
                print!("{}", record_table(&record, &stats.node_id));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::RecordInfo;
    use serde_json::json;

    fn info() -> RewardsInfo {
        RewardsInfo {
            enabled: true,
            group: Some("g".into()),
            epoch: 7,
            epoch_secs: 10,
            epoch_remaining_ms: 2_500,
            received: ServiceBytes { relayed_cell: 0, mix_packet: 0, chunk: 3 << 20 },
            sent: ServiceBytes::default(),
            peers: 2,
            receipts_held: 1,
            receipted_bytes: 2048,
            receipts_sent: 4,
            coordinating: true,
            coordinator: Some("ab".repeat(32)),
            last_record: Some(RecordInfo {
                epoch: 6,
                hash: "cd".repeat(32),
                payout: 99,
                audit: "mismatch".into(),
                mismatch: Some("payouts".into()),
            }),
        }
    }

    #[test]
    fn the_summary_shows_epoch_bytes_coordinator_and_the_last_record() {
        let text = summary(&info());
        for expected in [
            "epoch        7 (2.5 s left of 10 s)",
            "coordinator  abababababab (this node)",
            "chunks 3.0 MiB (3145728 B)",
            "1 held (2.0 KiB (2048 B) receipted), 4 signed and sent",
            "epoch 6, hash cdcdcdcdcdcd, own payout 99 units, audit mismatch (payouts)",
        ] {
            assert!(text.contains(expected), "{expected:?} not in\n{text}");
        }
        let other = RewardsInfo { coordinating: false, coordinator: None, last_record: None, ..info() };
        let text = summary(&other);
        assert!(text.contains("none known") && text.contains("last record  none yet"), "{text}");
        let off = RewardsInfo { enabled: false, ..info() };
        assert!(summary(&off).contains("rewards are off"));
    }

    #[test]
    fn the_record_table_lists_payouts_marks_this_node_and_sums() {
        let me = "11".repeat(32);
        let record = json!({
            "group": "g", "epoch": 6, "hash": "cd", "prev": "00", "coordinator": "ab",
            "emission": 1000, "carried_in": 10, "carried_out": 100,
            "rejected": {"forged_receipts": 0, "capped_bytes": 5},
            "payouts": [
                {"node": me, "bandwidth": 700, "storage": 0, "publisher": 0, "total": 700},
                {"node": "22".repeat(32), "bandwidth": 0, "storage": 200, "publisher": 10, "total": 210},
            ],
        });
        let text = record_table(&record, &me);
        assert!(text.contains("1000 + 10 carried in; 100 carried out"), "{text}");
        assert!(text.contains("rejected     capped_bytes 5\n"), "{text}");
        let mine = text.lines().find(|l| l.starts_with(&me)).unwrap();
        assert!(mine.contains("700") && mine.ends_with("(this node)"), "{mine}");
        let other = text.lines().find(|l| l.starts_with("2222")).unwrap();
        assert!(other.contains("210") && !other.contains("this node"), "{other}");
        assert!(text.lines().last().unwrap().starts_with("paid") && text.trim_end().ends_with("910"), "{text}");
        let empty = json!({"epoch": 1, "payouts": [], "rejected": {}});
        assert!(record_table(&empty, &me).contains("no payouts"));
    }

    #[test]
    fn export_writes_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("record.json");
        export(&path, "{\"epoch\": 1}").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"epoch\": 1}\n");
        assert!(!dir.path().join("record.json.part").exists());
        assert!(export(&dir.path().join("missing/record.json"), "{}").is_err());
    }
}
