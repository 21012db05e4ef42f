//! dockerd killed and restarted under a running host: the backend plugin
//! reconnects and the host reconciles. Alone in its test binary, because it
//! restarts the dockerd every test of the run shares.

use gantry::bindings::types::RestartKind;
use gantry_tests::gantry::Gantry;
use gantry_tests::rpc::{Rpc, busybox, docker_config, running, workload};
use gantry_tests::runtimes::runtimes;

#[test]
fn dockerd_killed_and_restarted_is_reconnected_and_reconciled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = Gantry::start_in(dir.path(), &docker_config(2));
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
    let before = w.containers[0].started_at;

    // Without live-restore, dockerd stops its containers when it comes back.
    runtimes().restart_dockerd().expect("dockerd restarts");
    let back = rpc.wait_for(
        &w.id,
        90,
        "the container to run again after dockerd came back",
        |x| running(x) && x.containers[0].started_at != before,
    );
    assert!(
        back.containers[0].restart_count >= 1,
        "restarted by the `always` policy: {back:?}"
    );
    // The plugin talks to the new dockerd for ordinary calls too.
    let stopped = rpc.stop(&w.id).expect("stop after reconnect");
    assert_eq!(
        stopped.phase,
        gantry::bindings::types::WorkloadPhase::Stopped
    );
    rpc.delete(&w.id).expect("delete");
}
