//! Restart policies driven by the runtime's events, host restarts and runtime restarts.

use super::{assert_running, call, runtime_id, start};
use gantry::bindings::types::{ContainerStatus, RestartKind, WorkloadPhase};
use gantry_tests::backends::Backend;
use gantry_tests::gantry::Gantry;
use gantry_tests::rpc::{Rpc, busybox, running, workload};
use std::time::Duration;

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
    assert_running(backend, &now);
    let after: Vec<String> = (0..2).map(|i| runtime_id(&now, i)).collect();
    assert_eq!(after, ids, "adopted, not recreated");
    assert_eq!(
        backend.containers_of(&w.id).len(),
        on_runtime,
        "no duplicates"
    );
    assert_eq!(rpc.list().len(), 1);
    rpc.delete(&w.id).expect("delete");
    assert!(
        backend
            .after_removal(|| backend.containers_of(&w.id))
            .is_empty()
    );
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
    assert_running(backend, &w);
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
    assert_running(backend, &again);
    rpc.delete(&w.id).expect("delete");
    assert!(
        backend
            .after_removal(|| backend.containers_of(&w.id))
            .is_empty()
    );
}
