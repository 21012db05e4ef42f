//! State survives `kill -9` of the host, and a restarted host adopts the
//! containers that kept running, without duplicates.

use gantry::bindings::types::RestartKind;
use gantry_tests::gantry::Gantry;
use gantry_tests::rpc::{Rpc, busybox, docker_config, running, workload};
use gantry_tests::runtimes::runtimes;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

fn engine_count(workload_id: &str) -> usize {
    runtimes().containers_of(workload_id).len()
}

#[test]
fn state_survives_kill_9_and_running_containers_are_adopted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = Gantry::start_in(dir.path(), &docker_config(1));
    let rpc = Rpc::new(&g, "grace", &["USER"]);
    let w = rpc
        .create(
            "survivor",
            workload(
                vec![busybox("main", "exec sleep 3600")],
                RestartKind::Always,
            ),
        )
        .expect("create");
    let w2 = rpc
        .update(
            &w.id,
            workload(
                vec![busybox("main", "echo second; exec sleep 3600")],
                RestartKind::Always,
            ),
        )
        .expect("update");
    assert_eq!(w2.revision, 2);
    let container = w2.containers[0].runtime_id.clone();

    g.kill9();
    g.restart();
    let rpc = Rpc::new(&g, "grace", &["USER"]);
    let back = rpc.get(&w.id).expect("the record survived kill -9");
    assert_eq!(
        (back.name.as_str(), back.owner.as_str(), back.revision),
        ("survivor", "grace", 2)
    );
    let revs: serde_json::Value = rpc
        .call("revisions", json!([w.id, {"page": 1, "rows": 10}]))
        .expect("revisions");
    assert_eq!(revs["total"], 2);
    // Several resync cycles (1 s here) later: the same container, adopted, not duplicated.
    std::thread::sleep(Duration::from_secs(4));
    let now = rpc.get(&w.id).expect("get");
    assert!(running(&now), "{now:?}");
    assert_eq!(
        now.containers[0].runtime_id, container,
        "the running container was adopted, not recreated"
    );
    assert_eq!(engine_count(&w.id), 1);
    assert_eq!(rpc.list().len(), 1);
    rpc.delete(&w.id).expect("delete");
    assert_eq!(engine_count(&w.id), 0);
}

#[test]
fn orphans_of_a_host_that_died_are_removed_and_missing_deployments_recreated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = Gantry::start_in(dir.path(), &docker_config(1));
    let rpc = Rpc::new(&g, "heidi", &["USER"]);
    let w = rpc
        .create(
            "recreated",
            workload(
                vec![busybox("main", "exec sleep 3600")],
                RestartKind::Always,
            ),
        )
        .expect("create");
    g.kill9();
    // While the host is down, its container disappears from the engine.
    gantry_tests::runtimes::block(async {
        let docker = runtimes().docker().await;
        let id = w.containers[0].runtime_id.clone().expect("id");
        docker
            .remove_container(
                &id,
                Some(bollard::query_parameters::RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await
            .expect("remove behind the host's back");
    });
    // ...and a container labelled as this host's, for a workload it has no record of, appears:
    // what a host killed between a backend create and its own commit would leave.
    let host_id: String = rusqlite::Connection::open(dir.path().join("state.db"))
        .and_then(|c| {
            c.query_row("SELECT value FROM meta WHERE key = 'host_id'", [], |r| {
                r.get(0)
            })
        })
        .expect("host id in the state store");
    let orphan_workload = "00000000-0000-4000-8000-00000000dead";
    gantry_tests::runtimes::block(async {
        let docker = runtimes().docker().await;
        let labels = HashMap::from([
            (
                "io.gantry.workload".to_string(),
                orphan_workload.to_string(),
            ),
            ("io.gantry.revision".to_string(), "1".to_string()),
            ("io.gantry.container".to_string(), "main".to_string()),
            ("io.gantry.host".to_string(), host_id.clone()),
        ]);
        let body = bollard::models::ContainerCreateBody {
            image: Some(gantry_tests::runtimes::TEST_IMAGE.into()),
            cmd: Some(vec!["sleep".into(), "3600".into()]),
            labels: Some(labels),
            host_config: Some(bollard::models::HostConfig {
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        docker
            .create_container(
                None::<bollard::query_parameters::CreateContainerOptions>,
                body,
            )
            .await
            .expect("plant an orphan");
    });
    assert_eq!(engine_count(orphan_workload), 1);
    g.restart();
    let rpc = Rpc::new(&g, "heidi", &["USER"]);
    let back = rpc.wait_for(&w.id, 30, "the deployment to be recreated", |x| {
        running(x) && x.containers[0].runtime_id != w.containers[0].runtime_id
    });
    assert_eq!(back.revision, 1);
    assert_eq!(engine_count(&w.id), 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while engine_count(orphan_workload) > 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        engine_count(orphan_workload),
        0,
        "the orphan carrying this host's label was removed"
    );
    rpc.delete(&w.id).expect("delete");
}
