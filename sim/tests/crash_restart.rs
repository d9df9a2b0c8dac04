//! A crashed node that restarts keeps exactly what it persisted: the
//! records it held for the network and its routing contacts; it rejoins
//! and the run's checkers still hold.

mod common;

use allium_sim::scenario::NANOS;
use allium_sim::{RunOptions, World};

#[test]
fn a_restarted_node_keeps_its_persisted_records() {
    let scenario = common::small("quickstart.toml", &["workload.puts_per_sec=3.0"]);
    let options = RunOptions { keep_persisted_state: true, ..RunOptions::default() };
    let mut world = World::new(&scenario, 21, options).expect("valid scenario");
    // Run into the safety phase, until puts have landed.
    world.run_until(scenario.safety_start() + 60 * NANOS);
    let holder = (0..world.node_count())
        .max_by_key(|&i| world.node(i).map_or(0, |n| n.dht().store().value_count()))
        .expect("nodes exist");
    let node = world.node(holder).expect("holder is up");
    let held: Vec<_> = node.dht().store().values().map(|r| r.key).collect();
    let contacts = node.dht().routing_table().len();
    assert!(!held.is_empty(), "some node holds records by now");
    assert_eq!(world.persisted(holder).expect("persisted").values.len(), held.len());

    assert!(world.crash_node(holder));
    assert!(world.node(holder).is_none());
    assert!(!world.crash_node(holder), "already down");
    world.run_until(world.now() + 5 * NANOS);

    assert!(world.restart_node(holder));
    let restarted = world.node(holder).expect("restarted");
    let restored: Vec<_> = restarted.dht().store().values().map(|r| r.key).collect();
    assert_eq!(restored, held, "the restarted node holds exactly what it persisted");
    assert!(restarted.dht().routing_table().len() >= contacts.min(1), "contacts restored");

    let (finished, summary) = world.run_to_end();
    assert_eq!(summary.checkers.violations, 0, "{:?}", summary.checkers.first);
    assert_eq!(summary.metrics["sim.nodes.restarted"], 1.0);
    assert!(finished.events > 0);
}

#[test]
fn crash_faults_restart_nodes_and_checkers_hold() {
    let scenario = common::small("quickstart.toml", &[]);
    let mut scenario = scenario;
    scenario.faults.crashes.push(allium_sim::scenario::CrashFault {
        at_secs: 10,
        fraction: 0.2,
        restart_after_secs: 20,
    });
    scenario.faults.crashes.push(allium_sim::scenario::CrashFault {
        at_secs: 40,
        fraction: 0.1,
        restart_after_secs: 0,
    });
    let report = common::run(&scenario, 4);
    common::assert_no_violations(&report);
    // 20% then 10% of the live nodes; the second group only restarts when
    // the liveness phase heals everything.
    assert!(report.metric("sim.nodes.crashed") >= 8.0 + 3.0);
    assert_eq!(report.metric("sim.nodes.restarted"), report.metric("sim.nodes.crashed"));
    assert!(report.metric("dht.lookup.success_rate.liveness_window") >= 0.95);
}
