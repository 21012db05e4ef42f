//! The backend conformance suite against the Podman example backend
//! (`examples/podman-backend`, a third-party plugin built outside the
//! workspace) on the harness's `podman system service`, and what only this
//! backend does: a multi-container workload is a libpod pod.

use gantry::bindings::types::{RestartKind, Workload, WorkloadPhase};
use gantry_tests::backends::Backend;
use gantry_tests::gantry::Gantry;
use gantry_tests::rpc::{Rpc, busybox, running, workload};
use gantry_tests::runtimes::runtimes;
use serde_json::json;

crate::conformance_suite!(Backend::Podman);

/// The pods Podman holds for a workload, read with the `podman` CLI.
fn pods_of(workload_id: &str) -> Vec<serde_json::Value> {
    let out = runtimes()
        .podman()
        .cli()
        .args(["pod", "ps", "--format", "json", "--filter"])
        .arg(format!("label=io.gantry.workload={workload_id}"))
        .output()
        .expect("podman pod ps");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<Vec<serde_json::Value>>(&out.stdout).unwrap_or_default()
}

/// Two containers are one pod labelled like them; its infra container owns
/// the network namespace they join, across a stop and start of the
/// workload, and goes (with the pod) when the workload does.
#[test]
fn a_multi_container_workload_is_one_labelled_pod_whose_infra_holds_the_namespace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = Gantry::start_in(dir.path(), &Backend::Podman.config(30));
    let rpc = Rpc::new(&g, "pat", &["USER"]);
    let w = rpc
        .create(
            "podded",
            workload(
                vec![
                    busybox("first", "exec sleep 3600"),
                    busybox("second", "exec sleep 3600"),
                ],
                RestartKind::No,
            ),
        )
        .expect("create");
    assert!(running(&w), "{w:?}");
    let pods = pods_of(&w.id);
    assert_eq!(pods.len(), 1, "{pods:?}");
    assert_eq!(pods[0]["Labels"]["io.gantry.revision"], "1", "{pods:?}");
    let infra = Backend::Podman
        .containers_of(&w.id)
        .into_iter()
        .find(|o| !o.is_member())
        .expect("the pod's infra container, labelled with the workload");
    let netns = Backend::Podman.network_namespace(&infra.id);
    let members = Backend::Podman.members_of(&w.id);
    assert_eq!(members.len(), 2, "{members:?}");
    for m in &members {
        assert_eq!(Backend::Podman.network_namespace(&m.id), netns, "{m:?}");
    }

    let stopped = rpc.stop(&w.id).expect("stop");
    assert_eq!(stopped.phase, WorkloadPhase::Stopped);
    let again = rpc.call::<Workload>("start", json!([w.id])).expect("start");
    assert!(running(&again), "{again:?}");
    for m in &members {
        assert_eq!(
            Backend::Podman.network_namespace(&m.id),
            netns,
            "the members rejoin the infra container's namespace: {m:?}"
        );
    }

    rpc.call::<Workload>("rename", json!([w.id, "repodded"]))
        .expect("rename");
    let renamed = Backend::Podman.observe(&infra.id).name;
    assert!(
        renamed.contains("repodded"),
        "the infra is renamed too: {renamed}"
    );

    rpc.delete(&w.id).expect("delete");
    assert!(pods_of(&w.id).is_empty(), "the pod is removed");
    assert!(Backend::Podman.containers_of(&w.id).is_empty());
    assert!(!Backend::Podman.leftover_storage(&infra.id));
}
