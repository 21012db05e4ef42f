//! The backend conformance suite: what every backend plugin must do, the
//! same way, checked through the host (control plane + control-rpc fixture
//! frontend) and against an independent view of the runtime
//! ([`Backend`]'s bollard / `ctr` / `/proc` readings).
//!
//! A test binary runs it for one backend with [`conformance_suite!`]; the
//! runtime-restart case restarts a runtime every test shares, so it runs in
//! a binary of its own.
#![allow(dead_code)]

use gantry::bindings::types::{
    ContainerStatus, EnvVar, Error, Resources, RestartKind, Workload, WorkloadPhase,
};
use gantry_tests::backends::Backend;
use gantry_tests::gantry::Gantry;
use gantry_tests::rpc::{Rpc, busybox, running, workload};
use serde_json::json;
use std::io::BufRead;
use std::time::{Duration, Instant};

/// One `#[test]` per case, for `$backend`.
#[macro_export]
macro_rules! conformance_suite {
    ($backend:expr) => {
        #[test]
        fn one_container_workload_full_lifecycle() {
            conformance::one_container_workload_full_lifecycle($backend);
        }
        #[test]
        fn two_containers_share_one_network_namespace() {
            conformance::two_containers_share_one_network_namespace($backend);
        }
        #[test]
        fn logs_follow_sees_a_line_printed_after_the_call_started() {
            conformance::logs_follow_sees_a_line_printed_after_the_call_started($backend);
        }
        #[test]
        fn logs_tell_stdout_from_stderr_and_tail() {
            conformance::logs_tell_stdout_from_stderr_and_tail($backend);
        }
        #[test]
        fn exited_containers_are_restarted_by_always_and_not_by_no() {
            conformance::exited_containers_are_restarted_by_always_and_not_by_no($backend);
        }
        #[test]
        fn bad_input_is_a_typed_error_and_leaves_nothing_behind() {
            conformance::bad_input_is_a_typed_error_and_leaves_nothing_behind($backend);
        }
        #[test]
        fn owners_and_admins_are_the_only_ones_who_see_a_workload() {
            conformance::owners_and_admins_are_the_only_ones_who_see_a_workload($backend);
        }
        #[test]
        fn update_deploys_a_new_revision_and_removes_the_old_one() {
            conformance::update_deploys_a_new_revision_and_removes_the_old_one($backend);
        }
        #[test]
        fn a_host_restart_adopts_running_containers_without_duplicates() {
            conformance::a_host_restart_adopts_running_containers_without_duplicates($backend);
        }
    };
}

fn start(backend: Backend, resync: u64) -> (tempfile::TempDir, Gantry) {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = Gantry::start_in(dir.path(), &backend.config(resync));
    (dir, g)
}

fn call(rpc: &Rpc, op: &str, id: &str) -> Workload {
    rpc.call::<Workload>(op, json!([id]))
        .unwrap_or_else(|e| panic!("{op}: {e:?}"))
}

fn runtime_id(w: &Workload, i: usize) -> String {
    w.containers[i].runtime_id.clone().expect("runtime id")
}

/// Create, inspect, stats, start conflict, pause/resume, stop, start,
/// restart, rename, reconfigure, delete — each checked on the runtime.
pub fn one_container_workload_full_lifecycle(backend: Backend) {
    let (_dir, g) = start(backend, 30);
    let rpc = Rpc::new(&g, "alice", &["USER"]);
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
    assert!(running(&w), "{w:?}");
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
    let w = call(&rpc, "pause", &id);
    assert_eq!(w.phase, WorkloadPhase::Paused);
    assert_eq!(backend.observe(&cid).state, "paused");
    let w = call(&rpc, "resume", &id);
    assert!(running(&w), "{w:?}");
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
    assert!(running(&w), "{w:?}");
    let before = backend.observe(&cid).pid;
    let w = call(&rpc, "restart", &id);
    assert!(running(&w), "{w:?}");
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

    let w = rpc
        .call::<Workload>("rename", json!([id, "renamed"]))
        .expect("rename");
    assert_eq!(w.name, "renamed");
    let name = backend.observe(&cid).name;
    assert!(name.contains("renamed"), "{name}");

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
        backend.containers_of(&id).is_empty(),
        "delete removes the container"
    );
    assert!(!backend.leftover_storage(&cid), "and its storage");
    assert!(matches!(rpc.get(&id), Err(Error::NotFound(_))));
}

/// The second container reaches the first over localhost; both are in one
/// network namespace, which a sibling's restart does not take away.
pub fn two_containers_share_one_network_namespace(backend: Backend) {
    let (_dir, g) = start(backend, 30);
    let rpc = Rpc::new(&g, "bob", &["USER"]);
    let server = busybox(
        "server",
        "mkdir -p /www && echo pong-from-server > /www/index.html && exec httpd -f -p 8080 -h /www",
    );
    let client = busybox(
        "client",
        "while true; do wget -q -O - http://127.0.0.1:8080/ || true; sleep 1; done",
    );
    let w = rpc
        .create("pod", workload(vec![server, client], RestartKind::Always))
        .expect("create");
    assert!(running(&w), "{w:?}");
    assert_eq!(backend.members_of(&w.id).len(), 2);
    let (s, c) = (runtime_id(&w, 0), runtime_id(&w, 1));
    assert_eq!(
        backend.network_namespace(&s),
        backend.network_namespace(&c),
        "one network namespace"
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
    // The first container dies and is restarted by policy: the second keeps
    // a working namespace, shared with the first's new process.
    let old_pid = backend.observe(&s).pid.expect("server pid");
    gantry_tests::runtimes::kill_process(old_pid, 9);
    rpc.wait_for(&w.id, 60, "the server restarted by policy", |x| {
        running(x) && backend.observe(&s).pid.is_some_and(|p| p != old_pid)
    });
    assert_eq!(
        backend.network_namespace(&s),
        backend.network_namespace(&c),
        "still one network namespace after the first container's restart"
    );
    rpc.delete(&w.id).expect("delete");
    assert!(backend.containers_of(&w.id).is_empty());
}

/// `follow` delivers a line printed after the call started.
pub fn logs_follow_sees_a_line_printed_after_the_call_started(backend: Backend) {
    let (_dir, g) = start(backend, 30);
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
        assert!(v["timestamp"].is_object(), "timestamps were asked for: {v}");
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

/// stdout and stderr are told apart; `tail` gives the last lines.
pub fn logs_tell_stdout_from_stderr_and_tail(backend: Backend) {
    let (_dir, g) = start(backend, 30);
    let rpc = Rpc::new(&g, "carl", &["USER"]);
    let w = rpc
        .create(
            "streams",
            workload(
                vec![busybox(
                    "main",
                    "for i in 1 2 3 4 5; do echo out-$i; done; echo err-line >&2; exec sleep 3600",
                )],
                RestartKind::No,
            ),
        )
        .expect("create");
    let read = |query: &str| -> Vec<serde_json::Value> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let lines: Vec<serde_json::Value> = rpc
                .logs(&w.id, query)
                .text()
                .expect("logs")
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            if lines.iter().any(|l| l["line"] == "err-line") || Instant::now() > deadline {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    };
    let all = read("");
    let err = all
        .iter()
        .find(|l| l["line"] == "err-line")
        .unwrap_or_else(|| panic!("{all:?}"));
    let stream = |l: &serde_json::Value| l["stream"].as_str().unwrap_or("").to_ascii_lowercase();
    assert_eq!(stream(err), "stderr", "{err}");
    let out = all
        .iter()
        .find(|l| l["line"] == "out-1")
        .unwrap_or_else(|| panic!("{all:?}"));
    assert_eq!(stream(out), "stdout", "{out}");
    let tail: Vec<String> = read("tail=2")
        .iter()
        .map(|l| l["line"].as_str().unwrap_or("").to_string())
        .collect();
    // stdout and stderr are separate pipes: the order between them is the runtime's.
    assert_eq!(tail.len(), 2, "{tail:?}");
    assert!(
        tail.iter()
            .all(|l| ["out-4", "out-5", "err-line"].contains(&l.as_str())),
        "the last lines: {tail:?}"
    );
    rpc.delete(&w.id).expect("delete");
}

/// `always` restarts an exited container; `no` does not. With resync at
/// 600 s, only the runtime's event stream can tell the host they exited.
pub fn exited_containers_are_restarted_by_always_and_not_by_no(backend: Backend) {
    let (_dir, g) = start(backend, 600);
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
    let members = backend.members_of(&never.id);
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].state, "exited");
    for id in [&always.id, &never.id] {
        rpc.delete(id).expect("delete");
    }
}

/// Unknown image, bad memory, a command that does not exist, duplicate
/// names: typed errors, and nothing left behind on the runtime.
pub fn bad_input_is_a_typed_error_and_leaves_nothing_behind(backend: Backend) {
    let (_dir, g) = start(backend, 30);
    let rpc = Rpc::new(&g, "erin", &["USER"]);
    let before: Vec<String> = backend
        .all_gantry_containers()
        .into_iter()
        .map(|o| o.id)
        .collect();
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
    let mut nocmd = busybox("main", "true");
    nocmd.command = Some(vec!["/bin/no-such-command".into()]);
    match rpc.create("no-command", workload(vec![nocmd], RestartKind::No)) {
        Err(Error::Invalid(i)) => assert!(
            format!("{i:?}").contains("no-such-command"),
            "the error names the command: {i:?}"
        ),
        other => panic!("expected invalid, got {other:?}"),
    }
    // A two-container workload whose second image is missing: the first is removed too.
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
    let leftovers: Vec<_> = backend
        .all_gantry_containers()
        .into_iter()
        .filter(|o| !before.contains(&o.id))
        .filter(|o| {
            ["no-such-image", "too-small", "no-command", "half", "dup"]
                .iter()
                .any(|bad| o.name.contains(bad))
        })
        .collect();
    assert!(leftovers.is_empty(), "orphaned containers: {leftovers:?}");
}

/// Only the owner and admins see a workload.
pub fn owners_and_admins_are_the_only_ones_who_see_a_workload(backend: Backend) {
    let (_dir, g) = start(backend, 30);
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
    admin.delete(&w.id).expect("admin delete");
    assert!(backend.containers_of(&w.id).is_empty());
}

/// An update deploys revision 2 and removes revision 1; a failed update changes nothing.
pub fn update_deploys_a_new_revision_and_removes_the_old_one(backend: Backend) {
    let (_dir, g) = start(backend, 30);
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
    let old = runtime_id(&w, 0);
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
    let members = backend.members_of(&w.id);
    assert_eq!(
        members.len(),
        1,
        "only the new revision's container remains"
    );
    assert_ne!(members[0].id, old);
    assert_eq!(
        members[0]
            .labels
            .get("io.gantry.revision")
            .map(String::as_str),
        Some("2")
    );
    let mut broken = busybox("main", "true");
    broken.image = "gantry-test/missing:0".into();
    assert!(matches!(
        rpc.update(&w.id, workload(vec![broken], RestartKind::No)),
        Err(Error::NotFound(_))
    ));
    assert_eq!(rpc.get(&w.id).expect("get").revision, 2);
    assert_eq!(backend.members_of(&w.id).len(), 1);
    rpc.delete(&w.id).expect("delete");
}

/// A host killed and restarted adopts the containers that kept running: the
/// same runtime ids, no duplicates.
pub fn a_host_restart_adopts_running_containers_without_duplicates(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = Gantry::start_in(dir.path(), &backend.config(1));
    let rpc = Rpc::new(&g, "grace", &["USER"]);
    let w = rpc
        .create(
            "survivor",
            workload(
                vec![
                    busybox("main", "exec sleep 3600"),
                    busybox("side", "exec sleep 3600"),
                ],
                RestartKind::Always,
            ),
        )
        .expect("create");
    let ids: Vec<String> = (0..2).map(|i| runtime_id(&w, i)).collect();
    let on_runtime = backend.containers_of(&w.id).len();
    g.kill9();
    g.restart();
    let rpc = Rpc::new(&g, "grace", &["USER"]);
    // Several resync cycles (1 s here) later: the same containers, adopted.
    std::thread::sleep(Duration::from_secs(4));
    let now = rpc.get(&w.id).expect("get");
    assert!(running(&now), "{now:?}");
    let after: Vec<String> = (0..2).map(|i| runtime_id(&now, i)).collect();
    assert_eq!(after, ids, "adopted, not recreated");
    assert_eq!(
        backend.containers_of(&w.id).len(),
        on_runtime,
        "no duplicates"
    );
    assert_eq!(rpc.list().len(), 1);
    rpc.delete(&w.id).expect("delete");
    assert!(backend.containers_of(&w.id).is_empty());
}

/// The runtime killed and restarted under a running host: the plugin
/// reconnects, the host reconciles, and ordinary calls work again.
pub fn runtime_killed_and_restarted_is_reconnected_and_reconciled(backend: Backend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = Gantry::start_in(dir.path(), &backend.config(2));
    let rpc = Rpc::new(&g, "ivan", &["USER"]);
    let w = rpc
        .create(
            "resilient",
            workload(
                vec![busybox("main", "exec sleep 3600")],
                RestartKind::Always,
            ),
        )
        .expect("create");
    assert!(running(&w));
    backend.restart_runtime();
    // dockerd without live-restore stops its containers (the host restarts
    // them by policy); containerd's shims keep them running.
    let back = rpc.wait_for(
        &w.id,
        90,
        "the workload to run after the runtime came back",
        |x| running(x) && backend.observe(&runtime_id(x, 0)).state == "running",
    );
    let stopped = rpc.stop(&back.id).expect("stop after reconnect");
    assert_eq!(stopped.phase, WorkloadPhase::Stopped);
    let again = call(&rpc, "start", &back.id);
    assert!(running(&again), "{again:?}");
    rpc.delete(&w.id).expect("delete");
    assert!(backend.containers_of(&w.id).is_empty());
}
