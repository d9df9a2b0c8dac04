//! Lease election with real processes on 127.0.0.1: three `init`'ed nodes,
//! a founder key and a membership list made with `allium-node election`,
//! `params.election.lease_ms = 1000`.
//!
//! The group agrees on one leader that holds the lease (the highest
//! priority member, with `preempt = true`); killing it (SIGKILL) gives a
//! new leader among the survivors, agreed by both, within 10 s; restarted
//! with the same data directory, the old leader rejoins and, being the
//! highest priority, takes the role back (the engine's README:
//! "Preemption"). Timings go to stderr (`--nocapture`).
#![cfg(not(madsim))]

mod common;

use common::{NodeProcess, cli, election_group, eventually, field, text};
use serde_json::Value;
use std::time::{Duration, Instant};

const GROUP: &str = "publishers";
/// Priorities of nodes 0, 1, 2: node 0 is the one preemption favours.
const PRIORITIES: [u8; 3] = [30, 20, 10];

/// This node's entry for the group in `ctl leader --json`, if it answers.
fn group_view(node: &NodeProcess) -> Option<Value> {
    let out = node.ctl(&["leader", "--json"]);
    if !out.status.success() {
        return None;
    }
    let list: Value = serde_json::from_slice(&out.stdout).ok()?;
    list.as_array()?.iter().find(|g| g["group"] == GROUP).cloned()
}

/// The leader (an index into `ids`) that every node of `nodes` (index,
/// process) agrees on, once that leader, one of them, reports holding the lease.
fn agreed_leader(nodes: &[(usize, &NodeProcess)], ids: &[String]) -> Option<usize> {
    let views: Vec<(usize, Value)> =
        nodes.iter().map(|&(i, n)| group_view(n).map(|v| (i, v))).collect::<Option<_>>()?;
    let leader = views[0].1["leader"].as_str()?;
    if views.iter().any(|(_, v)| v["leader"].as_str() != Some(leader) || v["is_member"] != true) {
        return None;
    }
    let index = ids.iter().position(|id| id == leader)?;
    let (_, own) = views.iter().find(|(i, _)| *i == index)?;
    (own["holds_lease"] == true && own["lease_remaining_ms"].as_u64().is_some()).then_some(index)
}

/// A group of `PRIORITIES.len()` members, plus `outsiders` nodes configured
/// with the group but not in its list, all running.
struct Group {
    root: tempfile::TempDir,
    nodes: Vec<NodeProcess>,
    ids: Vec<String>,
    keys: Vec<String>,
    founder: std::path::PathBuf,
}

impl Group {
    fn start(outsiders: usize) -> Group {
        let root = tempfile::tempdir().unwrap();
        let extra = ["--set", "election.lease_ms=1000"];
        let mut nodes: Vec<NodeProcess> = Vec::new();
        let (mut ids, mut keys) = (Vec::new(), Vec::new());
        for i in 0..PRIORITIES.len() + outsiders {
            let dir = root.path().join(format!("n{i}"));
            let bootstrap: Vec<_> = nodes.first().map(|n: &NodeProcess| n.listen).into_iter().collect();
            let (node, init) = NodeProcess::init(&dir, &bootstrap, &extra, &[]);
            ids.push(field(&init, "node id"));
            keys.push(field(&init, "signing"));
            nodes.push(node);
        }

        // The founder key and the membership, with the CLI; every node configured with them.
        let members: Vec<_> =
            PRIORITIES.iter().enumerate().map(|(i, &priority)| (keys[i].clone(), nodes[i].listen, priority)).collect();
        let (founder, _) = election_group(root.path(), GROUP, &members, &nodes.iter().collect::<Vec<_>>());
        for node in &mut nodes {
            node.restart();
        }
        for (i, node) in nodes.iter().enumerate() {
            let out = eventually(Duration::from_secs(10), || {
                let out = node.ctl(&["id", "--signing-key"]);
                out.status.success().then_some(out)
            })
            .unwrap_or_else(|| panic!("node {i} never answered; log:\n{}", node.log()));
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), keys[i], "ctl id --signing-key");
        }
        Group { root, nodes, ids, keys, founder }
    }

    /// The members' (index, process) pairs.
    fn members(&self) -> Vec<(usize, &NodeProcess)> {
        self.nodes.iter().enumerate().take(PRIORITIES.len()).collect()
    }
}

fn dump(nodes: &[NodeProcess]) -> String {
    nodes.iter().map(|n| format!("{:?}\n{}", group_view(n), n.log())).collect::<Vec<_>>().join("\n----\n")
}

#[test]
fn a_group_elects_fails_over_and_the_restarted_leader_takes_the_role_back() {
    let Group { root: _root, mut nodes, ids, .. } = Group::start(0);

    // One leader, agreed by all, holding the lease: the highest priority.
    let started = Instant::now();
    let first = eventually(Duration::from_secs(20), || {
        agreed_leader(&nodes.iter().enumerate().collect::<Vec<_>>(), &ids).filter(|&leader| leader == 0)
    });
    assert_eq!(first, Some(0), "no agreed leader; views and logs:\n{}", dump(&nodes));
    eprintln!("leader n0 agreed after {:.2} s", started.elapsed().as_secs_f64());
    let table = node_table(&nodes[0]);
    assert!(table.contains("this node") && table.contains(GROUP), "{table}");
    assert!(!node_table(&nodes[1]).contains("this node"));
    let view = group_view(&nodes[1]).unwrap();
    assert_eq!((view["version"].as_u64(), view["members"].as_u64()), (Some(1), Some(3)));
    assert_eq!(view["holds_lease"], false);

    // Kill the leader: a survivor takes over within 10 s, agreed by both.
    nodes[0].kill9();
    let killed = Instant::now();
    let next = eventually(Duration::from_secs(10), || agreed_leader(&[(1, &nodes[1]), (2, &nodes[2])], &ids));
    let next = next.unwrap_or_else(|| panic!("no failover within 10 s; views and logs:\n{}", dump(&nodes[1..])));
    assert_ne!(next, 0);
    eprintln!("failover to n{next} after {:.2} s", killed.elapsed().as_secs_f64());

    // Restart the old leader: it rejoins and, with preempt = true and the
    // highest priority, takes the role back.
    nodes[0].restart();
    let restarted = Instant::now();
    let back = eventually(Duration::from_secs(20), || {
        agreed_leader(&nodes.iter().enumerate().collect::<Vec<_>>(), &ids).filter(|&leader| leader == 0)
    });
    assert_eq!(back, Some(0), "n0 did not take the role back; views and logs:\n{}", dump(&nodes));
    eprintln!("n0 leads again {:.2} s after its restart", restarted.elapsed().as_secs_f64());
    // Exactly one node believes it holds the lease.
    let holders = nodes.iter().filter(|n| group_view(n).is_some_and(|v| v["holds_lease"] == true)).count();
    assert_eq!(holders, 1);
}

fn node_table(node: &NodeProcess) -> String {
    let out = node.ctl(&["leader"]);
    assert!(out.status.success(), "ctl leader: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_node_joins_with_a_token_through_the_leader_and_the_leader_removes_it() {
    let group = Group::start(1);
    let (nodes, ids) = (&group.nodes, &group.ids);
    let leader =
        eventually(Duration::from_secs(20), || agreed_leader(&group.members(), ids).filter(|&leader| leader == 0));
    assert_eq!(leader, Some(0), "no agreed leader; views and logs:\n{}", dump(nodes));
    let outsider = group_view(&nodes[3]).unwrap();
    assert_eq!((outsider["is_member"].as_bool(), outsider["version"].as_u64()), (Some(false), Some(1)));

    // A founder-signed token for node 3, made with the CLI, given through ctl.
    let token = group.root.path().join("n3.token");
    cli(&[
        "election",
        "token",
        "--founder",
        group.founder.to_str().unwrap(),
        "--group",
        GROUP,
        "--key",
        &group.keys[3],
        "--priority",
        "5",
        "--out",
        token.to_str().unwrap(),
    ]);
    let out = nodes[3].ctl(&["leader", "join", GROUP, "--token", token.to_str().unwrap()]);
    assert!(out.status.success(), "ctl leader join: {}", text(&out));
    let unknown = nodes[3].ctl(&["leader", "join", "nope", "--token", token.to_str().unwrap()]);
    assert!(!unknown.status.success(), "joining an unconfigured group must fail: {}", text(&unknown));
    let everyone: Vec<(usize, &NodeProcess)> = nodes.iter().enumerate().collect();
    let joined = eventually(Duration::from_secs(15), || {
        let views: Vec<Value> = everyone.iter().map(|(_, n)| group_view(n)).collect::<Option<_>>()?;
        views.iter().all(|v| v["version"] == 2 && v["members"] == 4 && v["is_member"] == true).then_some(())
    });
    assert!(joined.is_some(), "node 3 did not join; views and logs:\n{}", dump(nodes));

    // Only the leader removes a member.
    let refused = nodes[1].ctl(&["leader", "remove", GROUP, &ids[3]]);
    assert!(!refused.status.success(), "a follower must refuse a removal: {}", text(&refused));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("lease"), "{}", text(&refused));
    let leader = agreed_leader(&everyone, ids).expect("a leader");
    let out = nodes[leader].ctl(&["leader", "remove", GROUP, &ids[3]]);
    assert!(out.status.success(), "ctl leader remove: {}", text(&out));
    let removed = eventually(Duration::from_secs(15), || {
        let views: Vec<Value> = group.members().iter().map(|(_, n)| group_view(n)).collect::<Option<_>>()?;
        views.iter().all(|v| v["version"] == 3 && v["members"] == 3).then_some(())
    });
    assert!(removed.is_some(), "node 3 was not removed; views and logs:\n{}", dump(nodes));
}
