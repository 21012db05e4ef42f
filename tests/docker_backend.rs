//! The Docker backend plugin against the harness's real dockerd, through the
//! host (control plane + control-rpc fixture frontend). What the engine really
//! holds is checked independently with bollard.

use bollard::query_parameters::ListContainersOptions;
use gantry::bindings::types::{ContainerStatus, Error, Resources, RestartKind, WorkloadPhase};
use gantry_tests::gantry::Gantry;
use gantry_tests::rpc::{Rpc, busybox, docker_config, running, workload};
use gantry_tests::runtimes::runtimes;
use serde_json::json;
use std::io::BufRead;
use std::time::{Duration, Instant};

fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn engine_containers(workload_id: &str) -> Vec<bollard::models::ContainerSummary> {
    runtimes().containers_of(workload_id)
}

fn engine_inspect(id: &str) -> bollard::models::ContainerInspectResponse {
    block(async {
        runtimes()
            .docker()
            .await
            .inspect_container(
                id,
                None::<bollard::query_parameters::InspectContainerOptions>,
            )
            .await
            .expect("inspect")
    })
}

fn start(resync: u64) -> (tempfile::TempDir, Gantry) {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = Gantry::start_in(dir.path(), &docker_config(resync));
    (dir, g)
}

#[test]
fn one_container_workload_full_lifecycle() {
    let (_dir, g) = start(30);
    let rpc = Rpc::new(&g, "alice", &["USER"]);
    let mut c = busybox("main", "trap 'exit 0' TERM; while true; do sleep 1; done");
    c.resources = Resources {
        cpu: Some(0.5),
        memory_bytes: Some(64 << 20),
        pids_limit: Some(64),
        ..Resources::default()
    };
    c.env = vec![gantry::bindings::types::EnvVar {
        name: "FOO".into(),
        value: "bar".into(),
        secret: false,
    }];
    let w = rpc
        .create("lifecycle", workload(vec![c], RestartKind::No))
        .expect("create");
    assert!(running(&w), "{w:?}");
    let id = w.id.clone();
    let engine = engine_containers(&id);
    assert_eq!(engine.len(), 1);
    let cid = engine[0].id.clone().expect("id");
    let info = engine_inspect(&cid);
    let hc = info.host_config.expect("host config");
    assert_eq!(
        (hc.nano_cpus, hc.memory, hc.pids_limit),
        (Some(500_000_000), Some(64 << 20), Some(64))
    );
    assert_eq!(hc.network_mode.as_deref(), Some("none"));
    assert!(
        info.config
            .expect("config")
            .env
            .expect("env")
            .contains(&"FOO=bar".to_string())
    );

    let stats: serde_json::Value = rpc.call("stats", json!([id, null])).expect("stats");
    assert!(
        stats["memory_used_bytes"].as_u64().unwrap_or(0) > 0,
        "{stats}"
    );
    assert_eq!(stats["memory_limit_bytes"].as_u64(), Some(64 << 20));

    assert!(
        matches!(
            rpc.call::<serde_json::Value>("start", json!([id])),
            Err(Error::Conflict(_))
        ),
        "start on a running workload is a conflict"
    );
    let w = rpc
        .call::<gantry::bindings::types::Workload>("pause", json!([id]))
        .expect("pause");
    assert_eq!(w.phase, WorkloadPhase::Paused);
    assert_eq!(
        engine_inspect(&cid).state.and_then(|s| s.paused),
        Some(true)
    );
    let w = rpc
        .call::<gantry::bindings::types::Workload>("resume", json!([id]))
        .expect("resume");
    assert!(running(&w), "{w:?}");

    let w = rpc.stop(&id).expect("stop");
    assert_eq!(w.phase, WorkloadPhase::Stopped);
    assert_eq!(w.containers[0].status, ContainerStatus::Exited);
    assert_eq!(
        engine_inspect(&cid).state.and_then(|s| s.running),
        Some(false)
    );
    assert!(
        matches!(rpc.stop(&id), Err(Error::Conflict(_))),
        "stop on a stopped workload is a conflict"
    );
    let w = rpc
        .call::<gantry::bindings::types::Workload>("start", json!([id]))
        .expect("start");
    assert!(running(&w), "{w:?}");
    let before = engine_inspect(&cid).state.and_then(|s| s.started_at);
    let w = rpc
        .call::<gantry::bindings::types::Workload>("restart", json!([id]))
        .expect("restart");
    assert!(running(&w), "{w:?}");
    assert_ne!(
        engine_inspect(&cid).state.and_then(|s| s.started_at),
        before,
        "restart starts the container anew"
    );

    let w = rpc
        .call::<gantry::bindings::types::Workload>("rename", json!([id, "renamed"]))
        .expect("rename");
    assert_eq!(w.name, "renamed");
    let name = engine_inspect(&cid).name.unwrap_or_default();
    assert!(name.starts_with("/gantry-renamed-"), "{name}");

    let req = json!([id, {"container": null, "resources": {"cpu": 1.0, "memory_bytes": 128u64 << 20, "memory_reservation_bytes": null, "memory_swap_bytes": null, "ephemeral_storage_bytes": null, "pids_limit": null}, "restart": null}]);
    rpc.call::<gantry::bindings::types::Workload>("reconfigure", req)
        .expect("reconfigure");
    let hc = engine_inspect(&cid).host_config.expect("hc");
    assert_eq!(
        (hc.nano_cpus, hc.memory),
        (Some(1_000_000_000), Some(128 << 20))
    );

    rpc.delete(&id).expect("delete");
    assert!(
        engine_containers(&id).is_empty(),
        "delete removes the container"
    );
    assert!(matches!(rpc.get(&id), Err(Error::NotFound(_))));
}

#[test]
fn two_containers_share_one_network_namespace() {
    let (_dir, g) = start(30);
    let rpc = Rpc::new(&g, "bob", &["USER"]);
    let server = busybox(
        "server",
        "mkdir -p /www && echo pong-from-server > /www/index.html && exec httpd -f -p 8080 -h /www",
    );
    let client = busybox(
        "client",
        "for i in $(seq 1 50); do if wget -q -O - http://127.0.0.1:8080/; then break; fi; sleep 0.2; done; exec sleep 3600",
    );
    let w = rpc
        .create("pod", workload(vec![server, client], RestartKind::No))
        .expect("create");
    assert!(running(&w), "{w:?}");
    let engine = engine_containers(&w.id);
    assert_eq!(engine.len(), 2);
    let holder = w.containers[0].runtime_id.clone().expect("holder id");
    let joined = engine_inspect(w.containers[1].runtime_id.as_deref().expect("client id"));
    assert_eq!(
        joined.host_config.and_then(|h| h.network_mode),
        Some(format!("container:{holder}"))
    );
    let resp = rpc.logs(&w.id, "container=client&follow=1&wait=1000&reads=15");
    let lines: Vec<String> = resp
        .text()
        .expect("logs")
        .lines()
        .map(str::to_string)
        .collect();
    assert!(
        lines.iter().any(|l| l.contains("pong-from-server")),
        "client reached the server over localhost: {lines:?}"
    );
    rpc.delete(&w.id).expect("delete");
    assert!(engine_containers(&w.id).is_empty());
}

#[test]
fn logs_follow_sees_a_line_printed_after_the_call_started() {
    let (_dir, g) = start(30);
    let rpc = Rpc::new(&g, "carol", &["USER"]);
    let w = rpc
        .create(
            "chatty",
            workload(
                vec![busybox(
                    "main",
                    "echo early; sleep 3; echo late-line; exec sleep 3600",
                )],
                RestartKind::No,
            ),
        )
        .expect("create");
    let opened = Instant::now();
    let resp = rpc.logs(&w.id, "follow=1&timestamps=1&wait=1000&reads=8");
    let mut reader = std::io::BufReader::new(resp);
    let mut seen = Vec::new();
    let mut line = String::new();
    while reader.read_line(&mut line).expect("read") > 0 {
        let v: serde_json::Value = serde_json::from_str(line.trim()).expect("json line");
        seen.push((
            v["line"].as_str().unwrap_or("").to_string(),
            opened.elapsed(),
        ));
        if v["line"] == "late-line" {
            break;
        }
        line.clear();
    }
    let late = seen
        .iter()
        .find(|(l, _)| l == "late-line")
        .unwrap_or_else(|| panic!("late-line never arrived: {seen:?}"));
    assert!(seen.iter().any(|(l, _)| l == "early"), "{seen:?}");
    assert!(
        late.1 > Duration::from_millis(500),
        "late-line arrived while following, not in the initial read: {seen:?}"
    );
    rpc.delete(&w.id).expect("delete");
}

#[test]
fn exited_containers_are_restarted_by_always_and_not_by_no() {
    let (_dir, g) = start(600);
    let rpc = Rpc::new(&g, "dave", &["USER"]);
    let script = "sleep 1; exit 3";
    let always = rpc
        .create(
            "crashy-always",
            workload(vec![busybox("main", script)], RestartKind::Always),
        )
        .expect("create always");
    let never = rpc
        .create(
            "crashy-no",
            workload(vec![busybox("main", script)], RestartKind::No),
        )
        .expect("create no");
    // Resync is 600 s here: only the Engine's event stream can tell the host these exited.
    let a = rpc.wait_for(&always.id, 60, "two restarts by policy", |w| {
        w.containers[0].restart_count >= 2
    });
    assert_eq!(a.desired, gantry::bindings::types::DesiredState::Running);
    let n = rpc.wait_for(&never.id, 30, "the `no` workload to be seen exited", |w| {
        w.containers[0].status == ContainerStatus::Exited
    });
    assert_eq!(n.containers[0].exit_code, Some(3));
    assert_eq!(n.phase, WorkloadPhase::Failed);
    std::thread::sleep(Duration::from_secs(3));
    let n = rpc.get(&never.id).expect("get");
    assert_eq!(
        (n.containers[0].restart_count, n.containers[0].status),
        (0, ContainerStatus::Exited),
        "`no` never restarts"
    );
    let engine = engine_containers(&never.id);
    assert_eq!(engine.len(), 1);
    assert_eq!(
        engine[0].state.as_ref().map(|s| s.to_string()).as_deref(),
        Some("exited")
    );
    for id in [&always.id, &never.id] {
        rpc.delete(id).expect("delete");
    }
}

#[test]
fn bad_input_is_a_typed_error_and_leaves_nothing_behind() {
    let (_dir, g) = start(30);
    let rpc = Rpc::new(&g, "erin", &["USER"]);
    let mut missing = busybox("main", "true");
    missing.image = "gantry-test/does-not-exist:9.9".into();
    match rpc.create("no-such-image", workload(vec![missing], RestartKind::No)) {
        Err(Error::NotFound(msg)) => assert!(msg.contains("does-not-exist"), "{msg}"),
        other => panic!("expected not-found, got {other:?}"),
    }
    let mut tiny = busybox("main", "sleep 3600");
    tiny.resources.memory_bytes = Some(1024);
    match rpc.create("too-small", workload(vec![tiny], RestartKind::No)) {
        Err(Error::Invalid(i)) => assert!(i.message.to_lowercase().contains("memory"), "{i:?}"),
        other => panic!("expected invalid, got {other:?}"),
    }
    // A two-container workload whose second image is missing: the first container is removed too.
    let mut second = busybox("second", "true");
    second.image = "gantry-test/also-missing:1.0".into();
    assert!(matches!(
        rpc.create(
            "half",
            workload(
                vec![busybox("first", "sleep 3600"), second],
                RestartKind::No
            )
        ),
        Err(Error::NotFound(_))
    ));
    let dup = workload(
        vec![busybox("same", "true"), busybox("same", "true")],
        RestartKind::No,
    );
    assert!(matches!(rpc.create("dup", dup), Err(Error::Invalid(_))));
    assert!(
        rpc.list().is_empty(),
        "no record of a failed create remains"
    );
    let leftovers = block(async {
        let docker = runtimes().docker().await;
        docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                ..Default::default()
            }))
            .await
            .expect("list")
    });
    for c in leftovers {
        let names = c.names.unwrap_or_default().join(",");
        for bad in ["no-such-image", "too-small", "half", "dup"] {
            assert!(
                !names.contains(&format!("gantry-{bad}-")),
                "orphaned container {names}"
            );
        }
    }
}

#[test]
fn owners_and_admins_are_the_only_ones_who_see_a_workload() {
    let (_dir, g) = start(30);
    let alice = Rpc::new(&g, "owner-1", &["USER"]);
    let mallory = Rpc::new(&g, "other-1", &["USER"]);
    let admin = Rpc::new(&g, "root-1", &["ADMIN"]);
    let w = alice
        .create(
            "private",
            workload(vec![busybox("main", "exec sleep 3600")], RestartKind::No),
        )
        .expect("create");
    assert!(matches!(mallory.get(&w.id), Err(Error::Forbidden(_))));
    assert!(matches!(mallory.delete(&w.id), Err(Error::Forbidden(_))));
    assert!(mallory.list().is_empty());
    assert_eq!(admin.get(&w.id).expect("admin get").owner, "owner-1");
    let revs: serde_json::Value = admin
        .call("revisions", json!([w.id, {"page": 1, "rows": 10}]))
        .expect("revisions");
    assert_eq!(revs["total"], 1);
    admin.delete(&w.id).expect("admin delete");
    assert!(engine_containers(&w.id).is_empty());
}

#[test]
fn update_deploys_a_new_revision_and_removes_the_old_one() {
    let (_dir, g) = start(30);
    let rpc = Rpc::new(&g, "frank", &["USER"]);
    let w = rpc
        .create(
            "versioned",
            workload(
                vec![busybox("main", "echo v1; exec sleep 3600")],
                RestartKind::No,
            ),
        )
        .expect("create");
    let old = w.containers[0].runtime_id.clone().expect("id");
    let w2 = rpc
        .update(
            &w.id,
            workload(
                vec![busybox("main", "echo v2; exec sleep 3600")],
                RestartKind::No,
            ),
        )
        .expect("update");
    assert_eq!(w2.revision, 2);
    assert!(running(&w2), "{w2:?}");
    let engine = engine_containers(&w.id);
    assert_eq!(engine.len(), 1, "only the new revision's container remains");
    assert_ne!(engine[0].id.as_deref(), Some(old.as_str()));
    assert_eq!(
        engine[0]
            .labels
            .as_ref()
            .and_then(|l| l.get("io.gantry.revision"))
            .map(String::as_str),
        Some("2")
    );
    let revs: serde_json::Value = rpc
        .call("revisions", json!([w.id, {"page": 1, "rows": 10}]))
        .expect("revisions");
    assert_eq!(revs["items"][0]["number"], 2);
    assert_eq!(revs["items"][1]["number"], 1);
    // A failed update changes nothing.
    let mut broken = busybox("main", "true");
    broken.image = "gantry-test/missing:0".into();
    assert!(matches!(
        rpc.update(&w.id, workload(vec![broken], RestartKind::No)),
        Err(Error::NotFound(_))
    ));
    let after = rpc.get(&w.id).expect("get");
    assert_eq!(after.revision, 2);
    assert_eq!(engine_containers(&w.id).len(), 1);
    rpc.delete(&w.id).expect("delete");
}
