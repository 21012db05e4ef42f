//! The swarm backend on a real three-node Docker Swarm (the harness's
//! `support/swarm.rs`: three dockerd + containerd pairs, each in a network
//! namespace of its own), driven through the host, about its nodes:
//! replicas spread over them, a drained node's and a dead node's tasks
//! rescheduled, the nodes view, and manager failover. Workloads' own life
//! on the swarm is `swarm_workloads.rs`.
//!
//! Each test brings up its own swarm; they take turns.

use gantry::bindings::types::{RestartKind, WorkloadPhase};
use gantry_tests::cluster::{Cluster, SLEEPER, replicated, turn};
use gantry_tests::rpc::{Rpc, running, workload};
use gantry_tests::runtimes::wait_for;
use serde_json::json;
use std::collections::HashSet;
use std::time::Duration;

fn start(managers: &[Option<usize>], promote: bool) -> Cluster {
    Cluster::start(managers, promote).expect("a swarm and gantry")
}

#[test]
fn replicas_spread_over_three_nodes_and_a_drain_moves_them() {
    let _turn = turn();
    // The first manager configured is gone: calls go to the next.
    let c = start(&[None, Some(0)], false);
    let rpc = Rpc::new(&c.api.g, "alice", &["USER"]);
    let w = rpc
        .create(
            "spread",
            workload(vec![replicated("web", SLEEPER, 3)], RestartKind::Always),
        )
        .expect("create");
    assert!(running(&w), "{w:?}");
    let on = c.running_on(&w.id);
    assert_eq!(on.len(), 3, "{on:?}");
    assert_eq!(
        on.iter().collect::<HashSet<_>>().len(),
        3,
        "one per node: {on:?}"
    );

    let (status, profile) = c.get("/-/backends/swarm", "alice", &["USER"]);
    assert_eq!(
        (
            status,
            &profile["cluster"],
            &profile["shared_network_namespace"]
        ),
        (200, &json!(true), &json!(false)),
        "a cluster backend: {profile}"
    );
    let (status, nodes) = c.get("/-/backends/swarm/nodes", "alice", &["USER"]);
    assert_eq!(status, 200, "{nodes}");
    let list = nodes["nodes"].as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 3, "{nodes}");
    assert_eq!(list.iter().filter(|n| n["leader"] == true).count(), 1);
    assert!(
        list.iter()
            .all(|n| n["state"] == "ready" && n["availability"] == "active")
    );
    assert!(
        list.iter()
            .all(|n| n["resources"]["memory_bytes"].as_u64() > Some(0))
    );
    let hostnames: HashSet<String> = list
        .iter()
        .filter_map(|n| n["hostname"].as_str().map(str::to_string))
        .collect();
    let third = c.swarm.nodes[2].hostname().to_string();
    assert!(hostnames.contains(&third), "{hostnames:?}");

    let (status, body) = c.set_availability(&third, "drain", &["USER"]);
    assert_eq!(status, 403, "draining needs ADMIN: {body}");
    let (status, body) = c.set_availability(&third, "sideways", &["ADMIN"]);
    assert_eq!(
        (status, body["kind"].as_str()),
        (400, Some("invalid")),
        "{body}"
    );
    let (status, body) = c.set_availability(&third, "drain", &["ADMIN"]);
    assert_eq!(
        (status, body["availability"].as_str()),
        (200, Some("drain")),
        "{body}"
    );
    c.three_running_off(&w.id, &third, "the drained node's task to move");
    let now = rpc.wait_for(&w.id, 30, "deployed after the drain", running);
    assert_eq!(now.phase, WorkloadPhase::Deployed);
    let (status, body) = c.set_availability(&third, "active", &["ADMIN"]);
    assert_eq!(
        (status, body["availability"].as_str()),
        (200, Some("active")),
        "{body}"
    );

    let (status, body) = c.get(
        &format!("/-/workloads/{}/tasks", w.id),
        "mallory",
        &["USER"],
    );
    assert_eq!(status, 403, "another user's tasks: {body}");
    c.delete_leaves_nothing(&rpc, &w.id);
}

#[test]
fn a_dead_workers_tasks_are_rescheduled_and_the_workload_returns_to_deployed() {
    let _turn = turn();
    let mut c = start(&[Some(0)], false);
    let rpc = Rpc::new(&c.api.g, "bob", &["USER"]);
    let w = rpc
        .create(
            "survive",
            workload(vec![replicated("web", SLEEPER, 3)], RestartKind::Always),
        )
        .expect("create");
    assert!(running(&w), "{w:?}");
    let second = c.swarm.nodes[1].hostname().to_string();
    assert!(c.running_on(&w.id).contains(&second));
    c.swarm.kill_dockerd(2);
    c.three_running_off(&w.id, &second, "the dead node's task to run elsewhere");
    rpc.wait_for(&w.id, 60, "deployed again", running);
    let (_, nodes) = c.get("/-/backends/swarm/nodes", "bob", &["USER"]);
    let dead = nodes["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["hostname"] == second.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(dead["state"], "down", "{nodes}");
    rpc.delete(&w.id).expect("delete");
    assert!(c.services_of(&w.id).is_empty());
}

#[test]
fn calls_go_to_another_manager_when_the_leader_dies() {
    let _turn = turn();
    let mut c = start(&[Some(0), Some(1), Some(2)], true);
    let rpc = Rpc::new(&c.api.g, "erin", &["USER"]);
    let w = rpc
        .create(
            "steady",
            workload(vec![replicated("web", SLEEPER, 2)], RestartKind::Always),
        )
        .expect("create");
    assert!(running(&w), "{w:?}");
    c.swarm.kill_dockerd(1);
    // A new leader is elected among the two left (about ten seconds); the
    // plugin passes over the dead manager.
    let first = c.swarm.nodes[0].hostname().to_string();
    let mut leader = String::new();
    wait_for(
        "a new leader, through the managers left",
        Duration::from_secs(90),
        || {
            let (status, nodes) = c.get("/-/backends/swarm/nodes", "erin", &["USER"]);
            leader = nodes["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|n| n["leader"] == true)
                .and_then(|n| n["hostname"].as_str())
                .unwrap_or("")
                .to_string();
            status == 200 && !leader.is_empty() && leader != first
        },
    )
    .expect("failover");
    // Changes go through the new leader too: a delete leaves no service.
    rpc.delete(&w.id).expect("delete through the managers left");
    let left = c.swarm.nodes[1]
        .cli(&[
            "service",
            "ls",
            "-q",
            "--filter",
            &format!("label=io.gantry.workload={}", w.id),
        ])
        .expect("node 2, a manager, answers");
    assert_eq!(
        left.trim(),
        "",
        "removed, as the new leader ({leader}) sees it"
    );
}
