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
use gantry_tests::cluster::{Cluster, SLEEPER, replicated};
use gantry_tests::gantry::Gantry;
use gantry_tests::mqtt::TestClient;
use gantry_tests::rpc::{Rpc, busybox, running, workload};
use gantry_tests::runtimes::{TEST_IMAGE, wait_for};
use gantry_tests::swarm::Swarm;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

static ONE_SWARM_AT_A_TIME: Mutex<()> = Mutex::new(());

fn cluster(managers: &[Option<usize>], promote: bool) -> Cluster {
    Cluster::start(managers, promote).expect("a swarm and gantry")
}

fn get(c: &Cluster, path: &str, sub: &str, roles: &[&str]) -> (u16, Value) {
    c.get(path, sub, roles)
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
fn running_on(c: &Cluster, id: &str) -> Vec<String> {
    c.running_tasks(id)
        .into_iter()
        .map(|(_, node)| node)
        .collect()
}

/// Wait until three tasks of `id` run, none on node `off`.
fn three_running_off(c: &Cluster, id: &str, off: &str, what: &str) {
    wait_for(what, Duration::from_secs(90), || {
        let on = running_on(c, id);
        on.len() == 3 && !on.iter().any(|n| n == off)
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", running_on(c, id)));
}

/// Containers of workload `id` left on any node.
fn containers_left(swarm: &Swarm, id: &str) -> Vec<String> {
    let filter = format!("label=io.gantry.workload={id}");
    swarm
        .nodes
        .iter()
        .map(|n| {
            n.cli(&["ps", "-aq", "--filter", &filter])
                .expect("every node lists its containers")
        })
        .flat_map(|s| s.lines().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

/// Delete `w` and check nothing of it is left on the swarm.
fn delete_leaves_nothing(c: &Cluster, rpc: &Rpc, id: &str) {
    rpc.delete(id).expect("delete");
    assert!(c.services_of(id).is_empty(), "services left");
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
    let rpc = Rpc::new(&c.api.g, "alice", &["USER"]);
    let w = rpc
        .create(
            "spread",
            workload(vec![replicated("web", SLEEPER, 3)], RestartKind::Always),
        )
        .expect("create");
    assert!(running(&w), "{w:?}");
    let on = running_on(&c, &w.id);
    assert_eq!(on.len(), 3, "{on:?}");
    assert_eq!(
        on.iter().collect::<HashSet<_>>().len(),
        3,
        "one per node: {on:?}"
    );

    let (status, nodes) = get(&c, "/-/backends/swarm/nodes", "alice", &["USER"]);
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

    let (status, body) = set_availability(&c.api.g, &third, "drain", &["USER"]);
    assert_eq!(status, 403, "draining needs ADMIN: {body}");
    let (status, body) = set_availability(&c.api.g, &third, "sideways", &["ADMIN"]);
    assert_eq!(
        (status, body["kind"].as_str()),
        (400, Some("invalid")),
        "{body}"
    );
    let (status, body) = set_availability(&c.api.g, &third, "drain", &["ADMIN"]);
    assert_eq!(
        (status, body["availability"].as_str()),
        (200, Some("drain")),
        "{body}"
    );
    three_running_off(&c, &w.id, &third, "the drained node's task to move");
    let now = rpc.wait_for(&w.id, 30, "deployed after the drain", running);
    assert_eq!(now.phase, WorkloadPhase::Deployed);
    let (status, body) = set_availability(&c.api.g, &third, "active", &["ADMIN"]);
    assert_eq!(
        (status, body["availability"].as_str()),
        (200, Some("active")),
        "{body}"
    );

    let (status, body) = get(
        &c,
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
    let rpc = Rpc::new(&c.api.g, "bob", &["USER"]);
    let w = rpc
        .create(
            "survive",
            workload(vec![replicated("web", SLEEPER, 3)], RestartKind::Always),
        )
        .expect("create");
    assert!(running(&w), "{w:?}");
    let second = c.swarm.nodes[1].hostname().to_string();
    assert!(running_on(&c, &w.id).contains(&second));
    c.swarm.kill_dockerd(2);
    three_running_off(&c, &w.id, &second, "the dead node's task to run elsewhere");
    rpc.wait_for(&w.id, 60, "deployed again", running);
    let (_, nodes) = get(&c, "/-/backends/swarm/nodes", "bob", &["USER"]);
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
fn a_rolling_update_to_a_bad_image_rolls_back_and_says_why() {
    let _turn = ONE_SWARM_AT_A_TIME
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let c = cluster(&[Some(0)], false);
    let rpc = Rpc::new(&c.api.g, "carol", &["USER"]);
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
    let services = c.services_of(&w.id);
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
        c.services_of(&w.id),
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
    let rpc = Rpc::new(&c.api.g, "dave", &["USER"]);

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
            .expect("the manager lists services")
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
    assert_eq!(c.services_of(&w.id).len(), 2);
    let lines: Vec<String> = rpc
        .logs(&w.id, "container=client&follow=1&wait=1000&reads=10")
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
    let before = c
        .running_tasks(&w.id)
        .into_iter()
        .map(|(id, _)| id)
        .collect::<HashSet<_>>();
    let restarted: Workload = rpc.call("restart", json!([w.id])).expect("restart");
    assert!(running(&restarted), "{restarted:?}");
    assert!(
        c.running_tasks(&w.id)
            .into_iter()
            .map(|(id, _)| id)
            .collect::<HashSet<_>>()
            .is_disjoint(&before),
        "a restart runs new tasks"
    );

    let req = json!([w.id, {"container": "client", "resources": {"cpu": null, "memory_bytes": 128u64 << 20, "memory_reservation_bytes": null, "memory_swap_bytes": null, "ephemeral_storage_bytes": null, "pids_limit": null}, "restart": null}]);
    rpc.call::<Workload>("reconfigure", req)
        .expect("reconfigure");
    let services = c.services_of(&w.id);
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
        .expect("the manager lists networks");
    assert_eq!(nets.trim(), "", "the workload's network is removed with it");
}

#[test]
fn calls_go_to_another_manager_when_the_leader_dies() {
    let _turn = ONE_SWARM_AT_A_TIME
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let mut c = cluster(&[Some(0), Some(1), Some(2)], true);
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
            let (status, nodes) = get(&c, "/-/backends/swarm/nodes", "erin", &["USER"]);
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

#[test]
fn rest_arm_and_kanto_main_flows_run_on_the_swarm() {
    let _turn = ONE_SWARM_AT_A_TIME
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    let c = cluster(&[Some(0)], false);
    let api = &c.api;
    let token = api.token("frank", "USER");

    // REST: create, read deployed, delete.
    let (id, _) = gantry_tests::bench::rest_post_to_running(api, &token, "rest-on-swarm")
        .expect("REST create → deployed");
    assert_eq!(c.services_of(&id).len(), 1);
    let (s, body) = api.send(
        "DELETE",
        &format!("/v1/containers/{id}?force=true"),
        Some(&token),
        None,
    );
    assert!((200..300).contains(&s), "{s} {body}");
    assert!(
        c.services_of(&id).is_empty(),
        "REST delete removes the service"
    );

    // ARM: PUT a container group, its instance view Running, DELETE.
    let group = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/swarm/providers/Microsoft.ContainerInstance/containerGroups/arm-on-swarm?api-version=2023-05-01";
    let (s, body) = api.send(
        "PUT",
        group,
        Some(&token),
        Some(json!({
            "location": "westeurope",
            "properties": {
                "osType": "Linux",
                "containers": [{"name": "main", "properties": {
                    "image": TEST_IMAGE,
                    "command": ["sh", "-c", SLEEPER],
                    "resources": {"requests": {"cpu": 0.5, "memoryInGB": 0.25}}
                }}]
            }
        })),
    );
    assert!(s == 200 || s == 201, "{s} {body}");
    let mut state = Value::Null;
    wait_for("the ARM group running", Duration::from_secs(90), || {
        let (_, v) = api.send("GET", group, Some(&token), None);
        state = v["properties"]["instanceView"]["state"].clone();
        state == "Running"
    })
    .unwrap_or_else(|e| panic!("{e}: {state}"));
    let rpc = Rpc::new(&c.api.g, "frank", &["USER"]);
    let arm_id = rpc
        .list()
        .first()
        .map(|w| w.id.clone())
        .expect("the group's workload");
    let svc = c.services_of(&arm_id);
    assert_eq!(svc.len(), 1);
    let limit = c
        .swarm
        .manager()
        .cli(&[
            "service",
            "inspect",
            "--format",
            "{{.Spec.TaskTemplate.Resources.Limits.MemoryBytes}}",
            &svc[0],
        ])
        .unwrap_or_default();
    assert_eq!(
        limit.trim(),
        (256u64 << 20).to_string(),
        "memoryInGB as the service's limit"
    );
    let (s, body) = api.send("DELETE", group, Some(&token), None);
    assert!((200..300).contains(&s), "{s} {body}");
    wait_for(
        "the group's service removed",
        Duration::from_secs(60),
        || c.services_of(&arm_id).is_empty(),
    )
    .expect("ARM delete removes the service");

    // Kanto: createWithConfig over MQTT, RUNNING in the twin, remove.
    let client = TestClient::connect(c.kanto_port, "cloud-swarm", &["command//+/res/#", "e/#"]);
    let thing = "edge:device:edge:containers";
    let env = client.kanto_command(
        thing,
        ("k1", "ContainerFactory", "createWithConfig"),
        json!({"imageRef": TEST_IMAGE, "name": "kanto-on-swarm", "start": true,
               "config": {"cmd": ["sh", "-c", SLEEPER], "restartPolicy": {"type": "no"}}}),
        Duration::from_secs(90),
    );
    assert_eq!(env["status"], 200, "{env}");
    let kid = env["value"]
        .as_str()
        .expect("the container's id")
        .to_string();
    let path = format!("/features/Container:{kid}/properties/status/state");
    client.wait_for("RUNNING in the twin", Duration::from_secs(90), |t, v| {
        t.starts_with("e/t1/") && v["path"] == path.as_str() && v["value"]["status"] == "RUNNING"
    });
    assert_eq!(c.services_of(&kid).len(), 1);
    let env = client.kanto_command(
        thing,
        ("k2", &format!("Container:{kid}"), "remove"),
        json!(true),
        Duration::from_secs(90),
    );
    assert_eq!(env["status"], 204, "{env}");
    wait_for(
        "the Kanto container's service removed",
        Duration::from_secs(60),
        || c.services_of(&kid).is_empty(),
    )
    .expect("Kanto remove removes the service");
}
