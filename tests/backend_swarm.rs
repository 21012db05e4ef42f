//! The swarm backend on a real three-node Docker Swarm (the harness's
//! `support/swarm.rs`: three dockerd + containerd pairs, each in a network
//! namespace of its own), driven through the host: replicas spread over the
//! nodes, a drained node's and a dead node's tasks rescheduled, a rolling
//! update to a bad image rolled back with the swarm's reason, the nodes
//! view, manager failover, and a workload's life from create to nothing left.
//!
//! Each test brings up its own swarm; they take turns (three nodes apiece
//! are enough for two cores).

use gantry::bindings::types::{
    ContainerStatus, Error, RestartKind, Workload, WorkloadPhase, WorkloadSpec,
};
use gantry_tests::gantry::Gantry;
use gantry_tests::rpc::{Rpc, busybox, frontends, running, workload};
use gantry_tests::runtimes::{TEST_IMAGE, wait_for};
use gantry_tests::swarm::Swarm;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

static ONE_SWARM_AT_A_TIME: Mutex<()> = Mutex::new(());

struct Cluster {
    g: Gantry,
    swarm: Swarm,
    _dir: tempfile::TempDir,
}

/// A swarm, and gantry driving it through `managers` (indexes into the
/// swarm's nodes; `None` names a socket nothing listens on).
fn cluster(managers: &[Option<usize>], promote: bool) -> Cluster {
    let dir = tempfile::tempdir().expect("tempdir");
    let swarm = Swarm::start(&dir.path().join("swarm")).expect("three nodes");
    if promote {
        swarm.promote_workers().expect("three managers");
    }
    let dead = dir.path().join("nobody-listens.sock");
    let socks: Vec<&Path> = managers
        .iter()
        .map(|m| match m {
            Some(i) => swarm.nodes[*i].docker_sock.as_path(),
            None => dead.as_path(),
        })
        .collect();
    let config = frontends("swarm-tests", 2, 120_000)
        .swarm_backend(&socks)
        .build();
    let g = Gantry::start_in(dir.path(), &config);
    Cluster {
        g,
        swarm,
        _dir: dir,
    }
}

fn replicated(name: &str, script: &str, replicas: u32) -> gantry::bindings::types::ContainerSpec {
    let mut c = busybox(name, script);
    c.labels = vec![("io.gantry.replicas".into(), replicas.to_string())];
    c
}

const SLEEPER: &str = "trap 'exit 0' TERM; while true; do sleep 1; done";

/// `GET path` as `sub` with `roles`: status and JSON body.
fn get(g: &Gantry, path: &str, sub: &str, roles: &[&str]) -> (u16, Value) {
    let r = reqwest::blocking::Client::new()
        .get(g.url(path))
        .bearer_auth(g.token(sub, roles))
        .send()
        .expect("request");
    (r.status().as_u16(), r.json().expect("JSON"))
}

fn set_availability(g: &Gantry, node: &str, to: &str, roles: &[&str]) -> (u16, Value) {
    let r = reqwest::blocking::Client::new()
        .post(g.url(&format!("/-/backends/swarm/nodes/{node}")))
        .bearer_auth(g.token("ops", roles))
        .json(&json!({"availability": to}))
        .send()
        .expect("request");
    (r.status().as_u16(), r.json().expect("JSON"))
}

/// The nodes of the tasks of `id` that run as desired.
fn running_on(g: &Gantry, id: &str) -> Vec<String> {
    let (status, v) = get(g, &format!("/-/workloads/{id}/tasks"), "ops", &["ADMIN"]);
    assert_eq!(status, 200, "{v}");
    v["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["state"] == "running" && t["desired"] == "running")
        .map(|t| t["node"].as_str().unwrap_or("").to_string())
        .collect()
}

/// Containers of workload `id` left on any node.
fn containers_left(swarm: &Swarm, id: &str) -> Vec<String> {
    let filter = format!("label=io.gantry.workload={id}");
    swarm
        .nodes
        .iter()
        .filter_map(|n| n.cli(&["ps", "-aq", "--filter", &filter]))
        .flat_map(|s| s.lines().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

fn services_of(swarm: &Swarm, id: &str) -> Vec<String> {
    let filter = format!("label=io.gantry.workload={id}");
    swarm
        .manager()
        .cli(&["service", "ls", "-q", "--filter", &filter])
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Delete `w` and check nothing of it is left on the swarm.
fn delete_leaves_nothing(c: &Cluster, rpc: &Rpc, id: &str) {
    rpc.delete(id).expect("delete");
    assert!(services_of(&c.swarm, id).is_empty(), "services left");
    wait_for(
        "the nodes to remove the containers",
        Duration::from_secs(30),
        || containers_left(&c.swarm, id).is_empty(),
    )
    .expect("no container left on any node");
    assert!(matches!(rpc.get(id), Err(Error::NotFound(_))));
}

#[test]
fn replicas_spread_over_three_nodes_and_a_drain_moves_them() {
    let _turn = ONE_SWARM_AT_A_TIME
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    // The first manager configured is gone: calls go to the next.
    let c = cluster(&[None, Some(0)], false);
    let rpc = Rpc::new(&c.g, "alice", &["USER"]);
    let w = rpc
        .create(
            "spread",
            workload(vec![replicated("web", SLEEPER, 3)], RestartKind::Always),
        )
        .expect("create");
    assert!(running(&w), "{w:?}");
    let on = running_on(&c.g, &w.id);
    assert_eq!(on.len(), 3, "{on:?}");
    assert_eq!(
        on.iter().collect::<HashSet<_>>().len(),
        3,
        "one per node: {on:?}"
    );

    let (status, nodes) = get(&c.g, "/-/backends/swarm/nodes", "alice", &["USER"]);
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

    let (status, body) = set_availability(&c.g, &third, "drain", &["USER"]);
    assert_eq!(status, 403, "draining needs ADMIN: {body}");
    let (status, body) = set_availability(&c.g, &third, "sideways", &["ADMIN"]);
    assert_eq!(
        (status, body["kind"].as_str()),
        (400, Some("invalid")),
        "{body}"
    );
    let (status, body) = set_availability(&c.g, &third, "drain", &["ADMIN"]);
    assert_eq!(
        (status, body["availability"].as_str()),
        (200, Some("drain")),
        "{body}"
    );
    wait_for(
        "the drained node's task to move",
        Duration::from_secs(60),
        || {
            let on = running_on(&c.g, &w.id);
            on.len() == 3 && !on.contains(&third)
        },
    )
    .expect("drain moves the task");
    let now = rpc.wait_for(&w.id, 30, "deployed after the drain", running);
    assert_eq!(now.phase, WorkloadPhase::Deployed);
    let (status, body) = set_availability(&c.g, &third, "active", &["ADMIN"]);
    assert_eq!(
        (status, body["availability"].as_str()),
        (200, Some("active")),
        "{body}"
    );

    let (status, body) = get(
        &c.g,
        &format!("/-/workloads/{}/tasks", w.id),
        "mallory",
        &["USER"],
    );
    assert_eq!(status, 403, "another user's tasks: {body}");
    delete_leaves_nothing(&c, &rpc, &w.id);
}

#[test]
fn a_dead_workers_tasks_are_rescheduled_and_the_workload_returns_to_deployed() {
    let _turn = ONE_SWARM_AT_A_TIME
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let mut c = cluster(&[Some(0)], false);
    let rpc = Rpc::new(&c.g, "bob", &["USER"]);
    let w = rpc
        .create(
            "survive",
            workload(vec![replicated("web", SLEEPER, 3)], RestartKind::Always),
        )
        .expect("create");
    assert!(running(&w), "{w:?}");
    let second = c.swarm.nodes[1].hostname().to_string();
    assert!(running_on(&c.g, &w.id).contains(&second));
    c.swarm.kill_dockerd(2);
    wait_for(
        "the dead node's task to run elsewhere",
        Duration::from_secs(90),
        || {
            let on = running_on(&c.g, &w.id);
            on.len() == 3 && !on.contains(&second)
        },
    )
    .expect("rescheduled");
    rpc.wait_for(&w.id, 60, "deployed again", running);
    let (_, nodes) = get(&c.g, "/-/backends/swarm/nodes", "bob", &["USER"]);
    let dead = nodes["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["hostname"] == second.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(dead["state"], "down", "{nodes}");
    rpc.delete(&w.id).expect("delete");
    assert!(services_of(&c.swarm, &w.id).is_empty());
}

#[test]
fn a_rolling_update_to_a_bad_image_rolls_back_and_says_why() {
    let _turn = ONE_SWARM_AT_A_TIME
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let c = cluster(&[Some(0)], false);
    let rpc = Rpc::new(&c.g, "carol", &["USER"]);
    let spec = |image: &str, env: &str| -> WorkloadSpec {
        let mut c = replicated("web", SLEEPER, 2);
        c.image = image.into();
        c.env = vec![gantry::bindings::types::EnvVar {
            name: "STEP".into(),
            value: env.into(),
            secret: false,
        }];
        workload(vec![c], RestartKind::Always)
    };
    let w = rpc.create("roll", spec(TEST_IMAGE, "one")).expect("create");
    assert!(running(&w), "{w:?}");
    let services = services_of(&c.swarm, &w.id);
    assert_eq!(services.len(), 1);

    let err = rpc
        .update(&w.id, spec("gantry-test/missing:1", "two"))
        .expect_err("a bad image cannot roll out");
    let Error::Conflict(why) = &err else {
        panic!("{err:?}")
    };
    assert!(why.contains("rolled it back"), "{why}");
    assert!(why.contains("revision 1 keeps running"), "{why}");
    let image = c
        .swarm
        .manager()
        .cli(&[
            "service",
            "inspect",
            "--format",
            "{{.Spec.TaskTemplate.ContainerSpec.Image}} {{index .Spec.Labels \"io.gantry.revision\"}}",
            &services[0],
        ])
        .unwrap_or_default();
    assert_eq!(
        image.trim(),
        format!("{TEST_IMAGE} 1"),
        "the service is back on revision 1"
    );
    let now = rpc.wait_for(&w.id, 60, "revision 1 running", running);
    assert_eq!(now.revision, 1);

    let w2 = rpc
        .update(&w.id, spec(TEST_IMAGE, "three"))
        .expect("a good update");
    assert_eq!(w2.revision, 2);
    assert!(running(&w2), "{w2:?}");
    assert_eq!(
        services_of(&c.swarm, &w.id),
        services,
        "updated in place, not replaced"
    );
    let env = c
        .swarm
        .manager()
        .cli(&[
            "service",
            "inspect",
            "--format",
            "{{.Spec.TaskTemplate.ContainerSpec.Env}} {{index .Spec.Labels \"io.gantry.revision\"}}",
            &services[0],
        ])
        .unwrap_or_default();
    assert_eq!(env.trim(), "[STEP=three] 2");
    delete_leaves_nothing(&c, &rpc, &w.id);
}

#[test]
fn a_workload_lives_on_the_swarm_from_create_to_nothing_left() {
    let _turn = ONE_SWARM_AT_A_TIME
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let c = cluster(&[Some(0)], false);
    let rpc = Rpc::new(&c.g, "dave", &["USER"]);

    // Refused before anything is created.
    let mut bad = busybox("main", SLEEPER);
    bad.privileged = true;
    let err = rpc
        .create("bad", workload(vec![bad], RestartKind::No))
        .expect_err("privileged");
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");
    let err = rpc
        .create(
            "bad",
            workload(vec![replicated("main", SLEEPER, 0)], RestartKind::No),
        )
        .expect_err("zero replicas");
    assert!(matches!(err, Error::Invalid(_)), "{err:?}");
    assert!(rpc.list().is_empty());
    assert_eq!(
        c.swarm
            .manager()
            .cli(&["service", "ls", "-q"])
            .unwrap_or_default()
            .trim(),
        "",
        "no service"
    );

    // Two containers reach each other over their overlay network, by name.
    let server = busybox(
        "server",
        "mkdir -p /www && echo pong-from-server > /www/index.html && exec httpd -f -p 8080 -h /www",
    );
    let client = busybox(
        "client",
        "echo to-stderr >&2; while true; do wget -q -O - http://server:8080/ || true; sleep 1; done",
    );
    let mut spec = workload(vec![server, client], RestartKind::Always);
    spec.containers[1].resources.memory_bytes = Some(64 << 20);
    let w = rpc.create("pod", spec).expect("create");
    assert!(running(&w), "{w:?}");
    assert_eq!(services_of(&c.swarm, &w.id).len(), 2);
    let lines: Vec<String> = rpc
        .logs(&w.id, "container=client&follow=1&wait=1000&reads=20")
        .text()
        .expect("logs")
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("pong-from-server")),
        "the client reached the server by name: {lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("to-stderr") && l.contains("stderr")),
        "stderr told apart: {lines:?}"
    );
    let err = rpc
        .call::<Value>("stats", json!([w.id, null]))
        .expect_err("no stats on a swarm");
    assert!(matches!(err, Error::Unsupported(_)), "{err:?}");

    let stopped = rpc.stop(&w.id).expect("stop");
    assert_eq!(stopped.phase, WorkloadPhase::Stopped);
    assert!(
        stopped
            .containers
            .iter()
            .all(|s| s.status == ContainerStatus::Exited),
        "{stopped:?}"
    );
    let started: Workload = rpc.call("start", json!([w.id])).expect("start");
    assert!(running(&started), "{started:?}");
    let before = running_on_tasks(&c.g, &w.id);
    let restarted: Workload = rpc.call("restart", json!([w.id])).expect("restart");
    assert!(running(&restarted), "{restarted:?}");
    assert!(
        running_on_tasks(&c.g, &w.id).is_disjoint(&before),
        "a restart runs new tasks"
    );

    let req = json!([w.id, {"container": "client", "resources": {"cpu": null, "memory_bytes": 128u64 << 20, "memory_reservation_bytes": null, "memory_swap_bytes": null, "ephemeral_storage_bytes": null, "pids_limit": null}, "restart": null}]);
    rpc.call::<Workload>("reconfigure", req)
        .expect("reconfigure");
    let services = services_of(&c.swarm, &w.id);
    let mut args = vec![
        "service",
        "inspect",
        "--format",
        "{{.Spec.TaskTemplate.Resources.Limits.MemoryBytes}}",
    ];
    args.extend(services.iter().map(String::as_str));
    let limit = c.swarm.manager().cli(&args).unwrap_or_default();
    assert!(
        limit
            .lines()
            .any(|l| l.trim() == (128u64 << 20).to_string()),
        "{limit}"
    );

    delete_leaves_nothing(&c, &rpc, &w.id);
    let nets = c
        .swarm
        .manager()
        .cli(&[
            "network",
            "ls",
            "-q",
            "--filter",
            &format!("label=io.gantry.network={}", w.id),
        ])
        .unwrap_or_default();
    assert_eq!(nets.trim(), "", "the workload's network is removed with it");
}

/// Ids of the tasks of `id` that run as desired.
fn running_on_tasks(g: &Gantry, id: &str) -> HashSet<String> {
    let (_, v) = get(g, &format!("/-/workloads/{id}/tasks"), "ops", &["ADMIN"]);
    v["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["state"] == "running" && t["desired"] == "running")
        .filter_map(|t| t["id"].as_str().map(str::to_string))
        .collect()
}

#[test]
fn calls_go_to_another_manager_when_the_leader_dies() {
    let _turn = ONE_SWARM_AT_A_TIME
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let mut c = cluster(&[Some(0), Some(1), Some(2)], true);
    let rpc = Rpc::new(&c.g, "erin", &["USER"]);
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
    let mut second = None;
    wait_for(
        "a create through the managers left",
        Duration::from_secs(90),
        || match rpc.create(
            "after",
            workload(vec![replicated("web", SLEEPER, 1)], RestartKind::Always),
        ) {
            Ok(x) => {
                second = Some(x);
                true
            }
            Err(_) => false,
        },
    )
    .expect("failover");
    let second = second.expect("created");
    let second = rpc.wait_for(&second.id, 60, "the new workload running", running);
    let (status, nodes) = get(&c.g, "/-/backends/swarm/nodes", "erin", &["USER"]);
    assert_eq!(status, 200, "{nodes}");
    let leader = nodes["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|n| n["leader"] == true)
        .and_then(|n| n["hostname"].as_str())
        .unwrap_or("")
        .to_string();
    assert_ne!(leader, c.swarm.nodes[0].hostname(), "{nodes}");
    rpc.delete(&second.id).expect("delete");
    rpc.delete(&w.id).expect("delete");
}
