//! `allium-node ctl leader …`: lease-election groups over the control API (`/v1/leader…`).

use super::{agent, read};
use crate::runtime::{LeaderInfo, Stats};
use anyhow::Context;
use std::path::PathBuf;

/// `ctl leader`: the table of groups, or a membership change.
#[derive(Clone, Debug, clap::Args)]
pub struct LeaderArgs {
    /// Print the raw JSON (`GET /v1/leader`).
    #[arg(long)]
    pub json: bool,
    /// A change to ask for instead of the table.
    #[command(subcommand)]
    pub action: Option<LeaderAction>,
}

/// `ctl leader join | leave | remove`.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum LeaderAction {
    /// Ask GROUP's leader to add this node, with a founder-signed join token.
    Join {
        /// The group (configured in `[[election.groups]]`).
        group: String,
        /// The token file (from `allium-node election token`).
        #[arg(long)]
        token: PathBuf,
    },
    /// Ask GROUP's leader to remove this node.
    Leave {
        /// The group.
        group: String,
    },
    /// At GROUP's leader: remove member ID (a node id, 64 hex digits).
    Remove {
        /// The group.
        group: String,
        /// The member's node id.
        id: String,
    },
}

/// The table `ctl leader` prints; `me` is this node's id (hex).
pub fn table(groups: &[LeaderInfo], me: &str) -> String {
    if groups.is_empty() {
        return "no election groups configured\n".to_string();
    }
    let short = |id: &str| id.chars().take(12).collect::<String>();
    let mut out = format!(
        "{:<20}  {:>7}  {:>7}  {:<6}  {:<12}  {:<9}  {:>8}\n",
        "group", "version", "members", "member", "leader", "", "lease"
    );
    for g in groups {
        let leader = g.leader.as_deref().map_or_else(|| "-".to_string(), short);
        let marker = if g.leader.as_deref() == Some(me) { "this node" } else { "" };
        let lease = g.lease_remaining_ms.map_or_else(|| "-".to_string(), |ms| format!("{ms} ms"));
        out.push_str(&format!(
            "{:<20}  {:>7}  {:>7}  {:<6}  {:<12}  {:<9}  {:>8}\n",
            g.group,
            g.version,
            g.members,
            if g.is_member { "yes" } else { "no" },
            leader,
            marker,
            lease
        ));
    }
    out
}

/// Runs `ctl leader …` against the control API at `base` (`http://…/v1`).
pub fn run(base: &str, unreachable: &dyn Fn() -> String, args: LeaderArgs) -> anyhow::Result<()> {
    let agent = agent();
    let answer = match args.action {
        None => {
            let body = read(agent.get(format!("{base}/leader")).call().with_context(unreachable)?)?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&body)?);
            } else {
                let groups: Vec<LeaderInfo> = serde_json::from_value(body)?;
                let stats: Stats = serde_json::from_value(read(
                    agent.get(format!("{base}/stats")).call().with_context(unreachable)?,
                )?)?;
                print!("{}", table(&groups, &stats.node_id));
            }
            return Ok(());
        }
        Some(LeaderAction::Join { group, token }) => {
            let hex = std::fs::read_to_string(&token).with_context(|| format!("reading {}", token.display()))?;
            agent
                .post(format!("{base}/leader/{group}/join"))
                .content_type("text/plain")
                .send(hex.trim())
                .with_context(unreachable)?
        }
        Some(LeaderAction::Leave { group }) => {
            agent.post(format!("{base}/leader/{group}/leave")).send_empty().with_context(unreachable)?
        }
        Some(LeaderAction::Remove { group, id }) => {
            agent.delete(format!("{base}/leader/{group}/members/{id}")).call().with_context(unreachable)?
        }
    };
    let body = read(answer)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        println!(
            "{} requested in group {}; it takes effect as a new membership version (see `ctl leader`)",
            body["requested"].as_str().unwrap_or("change"),
            body["group"].as_str().unwrap_or("?")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_marks_this_node_and_the_lease() {
        let me = "ab".repeat(32);
        let info = LeaderInfo {
            group: "g".into(),
            version: 2,
            members: 3,
            is_member: true,
            leader: Some(me.clone()),
            ballot: 4,
            holds_lease: true,
            lease_remaining_ms: Some(640),
            promised_to: Some(me.clone()),
        };
        let text = table(std::slice::from_ref(&info), &me);
        assert!(text.contains("this node") && text.contains("640 ms") && text.contains("abababababab"), "{text}");
        let other = LeaderInfo { leader: None, holds_lease: false, lease_remaining_ms: None, ..info };
        let text = table(&[other], &me);
        assert!(!text.contains("this node") && text.lines().nth(1).unwrap().contains(" - "), "{text}");
        assert_eq!(table(&[], &me), "no election groups configured\n");
    }
}
