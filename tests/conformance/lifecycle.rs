//! A workload's life on the runtime: one container through every operation, and a pod.

use super::{assert_running, call, declared, refused, runtime_id, start};
use gantry::bindings::types::{
    ContainerStatus, EnvVar, Error, Resources, RestartKind, Workload, WorkloadPhase,
};
use gantry_tests::backends::Backend;
use gantry_tests::rpc::{Rpc, busybox, running, workload};
use serde_json::json;

/// Create, inspect, stats, start conflict, pause/resume, stop, start,
/// restart, rename, reconfigure, delete — each checked on the runtime, or
/// refused where the backend declares it absent.
pub fn one_container_workload_full_lifecycle(backend: Backend) {
    let (_dir, g) = start(backend, 30);
    let rpc = Rpc::new(&g, "alice", &["USER"]);
    let can = declared(&g, backend);
    let mut c = busybox("main", "trap 'exit 0' TERM; while true; do sleep 1; done");
    c.resources = Resources {
        cpu: Some(0.5),
        memory_bytes: Some(64 << 20),
        pids_limit: Some(64),
        ..Resources::default()
    };
    c.env = vec![EnvVar {
        name: "FOO".into(),
        value: "bar".into(),
        secret: false,
    }];
    let w = rpc
        .create("lifecycle", workload(vec![c], RestartKind::No))
        .expect("create");
    assert_running(backend, &w);
    let id = w.id.clone();
    let members = backend.members_of(&id);
    assert_eq!(members.len(), 1, "{members:?}");
    let cid = runtime_id(&w, 0);
    assert_eq!(members[0].id, cid);
    let limits = backend.limits(&cid);
    assert_eq!(
        (limits.nano_cpus, limits.memory, limits.pids),
        (Some(500_000_000), Some(64 << 20), Some(64))
    );
    assert!(
        backend.environment(&cid).contains(&"FOO=bar".to_string()),
        "{:?}",
        backend.environment(&cid)
    );
    let host_ns = std::fs::read_link("/proc/self/ns/net")
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    assert_ne!(
        backend.network_namespace(&cid),
        host_ns,
        "a private network namespace by default"
    );

    if can.stats {
        let stats: serde_json::Value = rpc.call("stats", json!([id, null])).expect("stats");
        assert!(
            stats["memory_used_bytes"].as_u64().unwrap_or(0) > 0,
            "{stats}"
        );
        assert_eq!(stats["memory_limit_bytes"].as_u64(), Some(64 << 20));
    } else {
        refused(&rpc, "stats", json!([id, null]));
    }

    assert!(
        matches!(
            rpc.call::<serde_json::Value>("start", json!([id])),
            Err(Error::Conflict(_))
        ),
        "start on a running workload is a conflict"
    );
    if can.pause {
        let w = call(&rpc, "pause", &id);
        assert_eq!(w.phase, WorkloadPhase::Paused);
        assert_eq!(backend.observe(&cid).state, "paused");
        let w = call(&rpc, "resume", &id);
        assert_running(backend, &w);
    } else {
        refused(&rpc, "pause", json!([id]));
        assert_running(backend, &rpc.get(&id).expect("get"));
    }
    assert_eq!(backend.observe(&cid).state, "running");

    let w = rpc.stop(&id).expect("stop");
    assert_eq!(w.phase, WorkloadPhase::Stopped);
    assert_eq!(w.containers[0].status, ContainerStatus::Exited);
    assert_eq!(backend.observe(&cid).state, "exited");
    assert!(
        matches!(rpc.stop(&id), Err(Error::Conflict(_))),
        "stop on a stopped workload is a conflict"
    );
    let w = call(&rpc, "start", &id);
    assert_running(backend, &w);
    let before = backend.observe(&cid).pid;
    let w = call(&rpc, "restart", &id);
    assert_running(backend, &w);
    let after = backend.observe(&cid).pid;
    assert!(
        after.is_some() && after != before,
        "restart runs the container anew"
    );
    assert_eq!(
        backend.limits(&cid).memory,
        Some(64 << 20),
        "limits survive a restart"
    );

    if can.rename {
        let w = rpc
            .call::<Workload>("rename", json!([id, "renamed"]))
            .expect("rename");
        assert_eq!(w.name, "renamed");
        let name = backend.observe(&cid).name;
        assert!(name.contains("renamed"), "{name}");
    } else {
        refused(&rpc, "rename", json!([id, "renamed"]));
        assert_eq!(rpc.get(&id).expect("get").name, "lifecycle");
    }

    let req = json!([id, {"container": null, "resources": {"cpu": 1.0, "memory_bytes": 128u64 << 20, "memory_reservation_bytes": null, "memory_swap_bytes": null, "ephemeral_storage_bytes": null, "pids_limit": null}, "restart": null}]);
    rpc.call::<Workload>("reconfigure", req)
        .expect("reconfigure");
    let limits = backend.limits(&cid);
    assert_eq!(
        (limits.nano_cpus, limits.memory),
        (Some(1_000_000_000), Some(128 << 20))
    );

    rpc.delete(&id).expect("delete");
    assert!(
        backend
            .after_removal(|| backend.containers_of(&id))
            .is_empty(),
        "delete removes the container"
    );
    assert!(!backend.leftover_storage(&cid), "and its storage");
    assert!(matches!(rpc.get(&id), Err(Error::NotFound(_))));
}

/// The second container reaches the first: over localhost, both in one
/// network namespace, where the backend declares one (a pod); by the
/// first's name where it does not (a cluster's containers may run on
/// different machines). A restart of the first by policy does not take the
/// link away. A backend of one container per workload refuses two.
pub fn two_containers_of_a_workload_reach_each_other(backend: Backend) {
    let (_dir, g) = start(backend, 30);
    let rpc = Rpc::new(&g, "bob", &["USER"]);
    let can = declared(&g, backend);
    let shared = can.shared_network_namespace;
    if !can.multi_container {
        let two = vec![busybox("a", "sleep 3600"), busybox("b", "sleep 3600")];
        match rpc.create("pod", workload(two, RestartKind::Always)) {
            Err(Error::Unsupported(_)) => {}
            other => panic!("a backend declaring one container refuses two: {other:?}"),
        }
        assert!(rpc.list().is_empty());
        return;
    }
    let server = busybox(
        "server",
        "mkdir -p /www && echo pong-from-server > /www/index.html && exec httpd -f -p 8080 -h /www",
    );
    let host = if shared { "127.0.0.1" } else { "server" };
    let client = busybox(
        "client",
        &format!("while true; do wget -q -O - http://{host}:8080/ || true; sleep 1; done"),
    );
    let w = rpc
        .create("pod", workload(vec![server, client], RestartKind::Always))
        .expect("create");
    assert_running(backend, &w);
    assert_eq!(backend.members_of(&w.id).len(), 2);
    let (s, c) = (runtime_id(&w, 0), runtime_id(&w, 1));
    let same_namespace = || backend.network_namespace(&s) == backend.network_namespace(&c);
    if shared {
        assert!(same_namespace(), "one network namespace");
    } else {
        assert!(
            !same_namespace(),
            "a namespace each, as the backend declares"
        );
    }
    let pongs = || {
        rpc.logs(&w.id, "container=client")
            .text()
            .expect("logs")
            .matches("pong-from-server")
            .count()
    };
    let lines = rpc.log_lines(&w.id, "container=client&follow=1&wait=1000&reads=15");
    assert!(
        lines.iter().any(|l| l.contains("pong-from-server")),
        "client reached the server at {host}: {lines:?}"
    );
    // The first container dies and is restarted by policy: the second
    // reaches its new process (in the namespace they still share).
    let old_pid = backend.observe(&s).pid.expect("server pid");
    gantry_tests::runtimes::kill_process(old_pid, 9);
    rpc.wait_for(&w.id, 60, "the server restarted by policy", |x| {
        running(x) && backend.observe(&s).pid.is_some_and(|p| p != old_pid)
    });
    if shared {
        assert!(
            same_namespace(),
            "still one network namespace after the first container's restart"
        );
    }
    let before = pongs();
    gantry_tests::runtimes::wait_for(
        "the client to reach the restarted server",
        std::time::Duration::from_secs(30),
        || pongs() > before,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    rpc.delete(&w.id).expect("delete");
    assert!(
        backend
            .after_removal(|| backend.containers_of(&w.id))
            .is_empty()
    );
}
