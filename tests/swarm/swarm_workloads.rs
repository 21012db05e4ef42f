//! Workloads on the swarm backend, on a real three-node Docker Swarm (see
//! `backend_swarm.rs`): a rolling update to a bad image rolled back with
//! the swarm's reason, a two-container workload's life from create to
//! nothing left, and the REST, ARM and Kanto main flows.
//!
//! Each test brings up its own swarm; they take turns.

use gantry::bindings::types::{
    ContainerStatus, Error, RestartKind, Workload, WorkloadPhase, WorkloadSpec,
};
use gantry_tests::cluster::{Cluster, SLEEPER, replicated, turn};
use gantry_tests::mqtt::TestClient;
use gantry_tests::rpc::{Rpc, busybox, running, workload};
use gantry_tests::runtimes::{TEST_IMAGE, wait_for};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

fn start(managers: &[Option<usize>], promote: bool) -> Cluster {
    Cluster::start(managers, promote).expect("a swarm and gantry")
}

#[test]
fn a_rolling_update_to_a_bad_image_rolls_back_and_says_why() {
    let _turn = turn();
    let c = start(&[Some(0)], false);
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
    // The swarm's reason is an image no node has: not found, as on one machine.
    let Error::NotFound(why) = &err else {
        panic!("{err:?}")
    };
    assert!(why.contains("No such image"), "{why}");
    assert!(why.contains("rolled it back"), "{why}");
    assert!(why.contains("revision 1 keeps running"), "{why}");
    let image = c.inspect_services(
        "{{.Spec.TaskTemplate.ContainerSpec.Image}} {{index .Spec.Labels \"io.gantry.revision\"}}",
        &services[..1],
    );
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
    let env = c.inspect_services(
        "{{.Spec.TaskTemplate.ContainerSpec.Env}} {{index .Spec.Labels \"io.gantry.revision\"}}",
        &services[..1],
    );
    assert_eq!(env.trim(), "[STEP=three] 2");
    c.delete_leaves_nothing(&rpc, &w.id);
}

#[test]
fn a_workload_lives_on_the_swarm_from_create_to_nothing_left() {
    let _turn = turn();
    let c = start(&[Some(0)], false);
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
    let lines = rpc.log_lines(&w.id, "container=client&follow=1&wait=1000&reads=10");
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
    let limit = c.inspect_services(
        "{{.Spec.TaskTemplate.Resources.Limits.MemoryBytes}}",
        &services,
    );
    assert!(
        limit
            .lines()
            .any(|l| l.trim() == (128u64 << 20).to_string()),
        "{limit}"
    );

    c.delete_leaves_nothing(&rpc, &w.id);
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
fn rest_arm_and_kanto_main_flows_run_on_the_swarm() {
    let _turn = turn();
    let c = start(&[Some(0)], false);
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
    let limit = c.inspect_services(
        "{{.Spec.TaskTemplate.Resources.Limits.MemoryBytes}}",
        &svc[..1],
    );
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
