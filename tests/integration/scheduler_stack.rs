//! A scheduler stacked on the Docker backend: the host links the
//! scheduler's imported `driver` to its configured downstream, so the
//! `passthrough-scheduler` fixture deploys through the real Docker plugin onto
//! the harness's dockerd. Checked independently with bollard.

use gantry::bindings::types::{ContainerStatus, RestartKind};
use gantry_tests::config::ConfigBuilder;
use gantry_tests::gantry::Gantry;
use gantry_tests::plugins;
use gantry_tests::rpc::{Rpc, busybox, running, workload};
use gantry_tests::runtimes::runtimes;
use std::time::{Duration, Instant};

fn docker_only() -> ConfigBuilder {
    ConfigBuilder::new("stack-tests")
        .resync_seconds(1)
        .limit("call_timeout_ms", 10_000)
        .http_frontend("rpc", &plugins::control_rpc(), "/rpc")
        .docker_backend()
}

/// Wait until `plugin` has served `more` calls beyond `before`.
fn wait_calls(g: &Gantry, plugin: &str, before: u64, more: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while calls(g, plugin) < before + more {
        assert!(Instant::now() < deadline, "`{plugin}` was not called again");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn config() -> String {
    docker_only()
        .raw(&format!(
            "[[backend]]\nname = \"passthrough\"\nplugin = \"{}\"\ndownstream = \"docker\"\n\n\
             [placement]\ndefault = \"passthrough\"\n",
            plugins::passthrough_scheduler().display()
        ))
        .build()
}

/// Calls made into `plugin` so far, from `/metrics`.
fn calls(g: &Gantry, plugin: &str) -> u64 {
    let text = reqwest::blocking::get(g.url("/metrics"))
        .and_then(|r| r.text())
        .expect("metrics");
    text.lines()
        .filter(|l| {
            l.starts_with("gantry_plugin_calls_total{")
                && l.contains(&format!("plugin=\"{plugin}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn a_scheduler_deploys_through_its_downstream_backend() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = Gantry::start_in(dir.path(), &config());
    let rpc = Rpc::new(&g, "alice", &["USER"]);
    let spec = workload(
        vec![busybox(
            "main",
            "echo through-the-stack; trap 'exit 0' TERM; while true; do sleep 1; done",
        )],
        RestartKind::No,
    );
    let w = rpc
        .create("stacked", spec)
        .expect("create through the scheduler");
    assert_eq!(w.backend, "passthrough");
    let w = rpc.wait_for(&w.id, 60, "the workload running", running);

    // On the engine: deployed by the Docker plugin, with the scheduler's label.
    let engine = runtimes().containers_of(&w.id);
    assert_eq!(engine.len(), 1, "{engine:?}");
    let labels = engine[0].labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("io.gantry.test/scheduler").map(String::as_str),
        Some("passthrough"),
        "{labels:?}"
    );

    // Logs come through the stack: the downstream's log-reader, handed on.
    let text = rpc.logs(&w.id, "tail=10").text().expect("logs");
    assert!(text.contains("through-the-stack"), "{text}");

    // The downstream's own resyncs list this deployment too: it belongs to a
    // scheduler stacked on it, so it is not an orphan. Let several resyncs run.
    wait_calls(&g, "docker", calls(&g, "docker"), 6);
    let engine = runtimes().containers_of(&w.id);
    assert_eq!(engine.len(), 1, "{engine:?}");
    assert_eq!(
        engine[0].state,
        Some(bollard::models::ContainerSummaryStateEnum::RUNNING),
        "{engine:?}"
    );
    assert!(
        !g.log().contains("removing an orphaned deployment"),
        "{}",
        g.log()
    );

    // Both backends answer: the host is ready.
    let ready: serde_json::Value = reqwest::blocking::get(g.url("/readyz"))
        .and_then(|r| r.json())
        .expect("readyz");
    assert_eq!(ready["status"], "ready", "{ready}");

    let stopped = rpc.stop(&w.id).expect("stop through the scheduler");
    assert!(
        stopped
            .containers
            .iter()
            .all(|c| c.status != ContainerStatus::Running),
        "{stopped:?}"
    );
    rpc.delete(&w.id).expect("delete through the scheduler");
    assert!(runtimes().containers_of(&w.id).is_empty());
}

#[test]
fn a_scheduler_leaves_its_downstreams_own_workloads_alone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let spec = || {
        workload(
            vec![busybox(
                "main",
                "trap 'exit 0' TERM; while true; do sleep 1; done",
            )],
            RestartKind::No,
        )
    };
    // A workload placed straight on docker, before any scheduler is configured.
    let mut first = Gantry::start_in(dir.path(), &docker_only().build());
    let direct = Rpc::new(&first, "bob", &["USER"])
        .create("direct", spec())
        .expect("create on docker");
    assert_eq!(direct.backend, "docker");
    first.kill9();

    // The same state, now with a scheduler stacked on docker taking new workloads.
    let g = Gantry::start_in(dir.path(), &config());
    let rpc = Rpc::new(&g, "bob", &["USER"]);
    let stacked = rpc
        .create("stacked", spec())
        .expect("create through the scheduler");
    assert_eq!(stacked.backend, "passthrough");
    rpc.wait_for(&direct.id, 60, "the direct workload adopted", running);
    rpc.wait_for(&stacked.id, 60, "the stacked workload running", running);

    // Both backends list both deployments at every resync; neither is an orphan.
    wait_calls(&g, "passthrough", calls(&g, "passthrough"), 6);
    wait_calls(&g, "docker", calls(&g, "docker"), 6);
    for w in [&direct, &stacked] {
        let engine = runtimes().containers_of(&w.id);
        assert_eq!(engine.len(), 1, "{}: {engine:?}", w.name);
        assert_eq!(
            engine[0].state,
            Some(bollard::models::ContainerSummaryStateEnum::RUNNING),
            "{}: {engine:?}",
            w.name
        );
    }
    assert!(
        !g.log().contains("removing an orphaned deployment"),
        "{}",
        g.log()
    );
    for w in [&direct, &stacked] {
        rpc.delete(&w.id).expect("delete");
        assert!(runtimes().containers_of(&w.id).is_empty());
    }
}
