//! The swarm harness (`tests/support/swarm.rs`) itself, checked with the
//! docker CLI on the nodes: three nodes in one swarm, the test image on each,
//! a three-replica `dnsrr` service spread over the three, a drained node's
//! task moved; and after it is dropped, nothing of it left on the machine.

use gantry_tests::runtimes::{TEST_IMAGE, wait_for};
use gantry_tests::swarm::Swarm;
use std::collections::HashSet;
use std::process::Command;
use std::time::Duration;

fn text(cmd: &mut Command) -> String {
    let out = cmd.output().expect("the docker CLI");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Node ids of the service's tasks that run and are meant to.
fn running_on(swarm: &Swarm, service: &str) -> Vec<String> {
    text(swarm.manager().docker().args([
        "service",
        "ps",
        service,
        "--filter",
        "desired-state=running",
        "--format",
        "{{.Node}} {{.CurrentState}}",
    ]))
    .lines()
    .filter(|l| l.split_whitespace().nth(1) == Some("Running"))
    .filter_map(|l| l.split_whitespace().next().map(str::to_string))
    .collect()
}

#[test]
fn three_nodes_form_a_swarm_and_leave_nothing_behind() {
    let _turn = gantry_tests::cluster::turn();
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("swarm");
    let swarm = Swarm::start(&root).expect("three nodes");
    let prefix = swarm.nodes[0].netns.trim_end_matches("-n1").to_string();

    let nodes = text(swarm.manager().docker().args([
        "node",
        "ls",
        "--format",
        "{{.Hostname}} {{.Status}} {{.Availability}} {{.ManagerStatus}}",
    ]));
    let lines: Vec<&str> = nodes.lines().collect();
    assert_eq!(lines.len(), 3, "{nodes}");
    assert!(lines.iter().all(|l| l.contains(" Ready Active")), "{nodes}");
    assert_eq!(
        lines.iter().filter(|l| l.ends_with("Leader")).count(),
        1,
        "{nodes}"
    );
    let hostnames: HashSet<&str> = lines.iter().filter_map(|l| l.split(' ').next()).collect();
    assert_eq!(
        hostnames.len(),
        3,
        "each node has its own hostname: {nodes}"
    );
    for n in &swarm.nodes {
        text(n.docker().args(["image", "inspect", TEST_IMAGE]));
    }

    text(swarm.manager().docker().args([
        "service",
        "create",
        "--detach",
        "--name",
        "spread",
        "--replicas",
        "3",
        "--endpoint-mode",
        "dnsrr",
        "--no-resolve-image",
        "--stop-grace-period",
        "1s",
        "--restart-delay",
        "0s",
        TEST_IMAGE,
        "sleep",
        "600",
    ]));
    wait_for(
        "three tasks on three nodes",
        Duration::from_secs(60),
        || {
            let on = running_on(&swarm, "spread");
            on.len() == 3 && on.iter().collect::<HashSet<_>>().len() == 3
        },
    )
    .expect("spread");
    let third = format!("{prefix}-n3");
    text(
        swarm
            .manager()
            .docker()
            .args(["node", "update", "--availability", "drain", &third]),
    );
    wait_for(
        "the drained node's task moved",
        Duration::from_secs(60),
        || {
            let on = running_on(&swarm, "spread");
            on.len() == 3 && !on.contains(&third)
        },
    )
    .expect("drain");

    drop(swarm);
    let netns = text(Command::new("ip").args(["netns", "list"]));
    assert!(!netns.contains(&prefix), "namespaces left: {netns}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    assert!(!mounts.contains(&root.display().to_string()), "mounts left");
    assert!(!root.exists(), "the directory is removed");
    let ps = text(Command::new("ps").args(["-eo", "args"]));
    assert!(
        !ps.contains(&root.display().to_string()),
        "processes left: {ps}"
    );
}
