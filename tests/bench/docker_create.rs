//! `bench docker-create`: POST→running through gantry's REST frontend and
//! PUT→Running through its ARM frontend, on the Docker backend, against raw
//! Engine API create+start (same image, command and network mode, through
//! bollard) measured in the same run, at concurrency 1 and 10. Run by
//! `cargo xtask bench`.
//!
//! A gantry sample runs from sending the create until a `GET` reports the
//! container running (REST `deployed`, ARM instance view `Running`); a raw
//! sample is `POST /containers/create` + `POST /containers/{id}/start`.
//! Cleanup is not timed. Each round runs one side after the other, so drift
//! on the machine hits both alike. Any failed create ends the bench: a
//! report means 0 errors.

use anyhow::{Context, Result, bail};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use gantry_tests::api::Api;
use gantry_tests::bench::{
    CREATE_LIMIT, Row, Samples, count, in_parallel, report, rest_post_to_running,
};
use gantry_tests::runtimes::{TEST_IMAGE, runtimes};
use serde_json::json;
use std::time::{Duration, Instant};

/// Rounds at concurrency 1.
const SEQUENTIAL: usize = 20;
/// Workers, and rounds per worker, at concurrency 10.
const WORKERS: usize = 10;
const ROUNDS: usize = 3;
const SMOKE: usize = 2;

const GROUPS: &str = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/bench/providers/Microsoft.ContainerInstance/containerGroups";
const API: &str = "api-version=2023-05-01";

/// The Engine API through bollard, called from the bench's threads.
struct Engine {
    rt: tokio::runtime::Runtime,
    docker: bollard::Docker,
}

impl Engine {
    fn new() -> Result<Engine> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let docker = rt.block_on(runtimes().docker());
        Ok(Engine { rt, docker })
    }

    /// Create and start `name` the way gantry's Docker plugin does a
    /// one-container workload with no network: the time it took.
    fn create_start(&self, name: &str) -> Result<Duration> {
        let body = ContainerCreateBody {
            image: Some(TEST_IMAGE.to_string()),
            cmd: Some(vec!["sleep".into(), "3600".into()]),
            labels: Some([("bench".to_string(), "raw".to_string())].into()),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let t = Instant::now();
        self.rt.block_on(async {
            let opts = CreateContainerOptionsBuilder::default().name(name).build();
            let c = self.docker.create_container(Some(opts), body).await?;
            self.docker
                .start_container(
                    &c.id,
                    None::<bollard::query_parameters::StartContainerOptions>,
                )
                .await?;
            anyhow::Ok(())
        })?;
        Ok(t.elapsed())
    }

    fn remove(&self, name: &str) {
        let opts = RemoveContainerOptionsBuilder::default().force(true).build();
        let _ = self
            .rt
            .block_on(self.docker.remove_container(name, Some(opts)));
    }
}

/// PUT a one-container group, then GET until its instance view says Running.
fn arm_put_to_running(api: &Api, token: &str, name: &str) -> Result<(String, Duration)> {
    let url = format!("{GROUPS}/{name}?{API}");
    let body = json!({
        "location": "westeurope",
        "properties": {
            "osType": "Linux",
            "restartPolicy": "Never",
            "containers": [{
                "name": "main",
                "properties": {
                    "image": TEST_IMAGE,
                    "command": ["sleep", "3600"],
                    "resources": {"requests": {"cpu": 1, "memoryInGB": 1}}
                }
            }]
        }
    });
    let t = Instant::now();
    let (s, v) = api.send("PUT", &url, Some(token), Some(body));
    if s != 201 && s != 200 {
        bail!("PUT answered {s}: {v}");
    }
    loop {
        let (s, v) = api.send("GET", &url, Some(token), None);
        if s == 200 && v["properties"]["instanceView"]["state"] == "Running" {
            return Ok((url, t.elapsed()));
        }
        if v["properties"]["provisioningState"] == "Failed" {
            bail!("{name} failed: {v}");
        }
        if t.elapsed() > CREATE_LIMIT {
            bail!("{name} not running within {CREATE_LIMIT:?}: {v}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Which frontend a round creates through.
#[derive(Clone, Copy)]
enum Frontend {
    Rest,
    Arm,
}

/// One round at concurrency `workers`: each worker creates one through
/// gantry, then each creates one raw.
fn round(
    api: &Api,
    engine: &Engine,
    token: &str,
    (frontend, tag): (Frontend, &str),
    workers: usize,
    gantry: &mut Samples,
    raw: &mut Samples,
) -> Result<()> {
    let names: Vec<String> = (0..workers).map(|w| format!("bench-{tag}-{w}")).collect();
    let results = in_parallel(&names, |name| match frontend {
        Frontend::Rest => rest_post_to_running(api, token, name)
            .map(|(id, d)| (format!("/v1/containers/{id}"), d)),
        Frontend::Arm => arm_put_to_running(api, token, name),
    });
    let mut created = Vec::new();
    for r in results {
        let (path, d) = r?;
        gantry.push(d);
        created.push(path);
    }
    for path in &created {
        let path = match frontend {
            Frontend::Rest => format!("{path}?force=true"),
            Frontend::Arm => path.clone(),
        };
        api.send("DELETE", &path, Some(token), None);
    }
    let raw_names: Vec<String> = (0..workers)
        .map(|w| format!("bench-raw-{tag}-{w}"))
        .collect();
    let results = in_parallel(&raw_names, |n| engine.create_start(n));
    for n in &raw_names {
        engine.remove(n);
    }
    for r in results {
        raw.push(r?);
    }
    Ok(())
}

pub fn main() -> Result<()> {
    let api = Api::start(30);
    let engine = Engine::new().context("the harness's dockerd")?;
    let token = api.token("bench-user", "USER");
    let mut rows = Vec::new();
    for (frontend, label) in [(Frontend::Rest, "REST"), (Frontend::Arm, "ARM")] {
        // Warm both paths (component instances, caches).
        let (mut g, mut r) = (Samples::default(), Samples::default());
        let warm = format!("{label}-warm").to_lowercase();
        round(&api, &engine, &token, (frontend, &warm), 2, &mut g, &mut r)?;
        for (workers, rounds) in [
            (1, count(SEQUENTIAL, SMOKE)),
            (count(WORKERS, SMOKE), count(ROUNDS, 1)),
        ] {
            let (mut g, mut r) = (Samples::default(), Samples::default());
            for i in 0..rounds {
                let tag = format!("{label}-c{workers}-{i}").to_lowercase();
                round(
                    &api,
                    &engine,
                    &token,
                    (frontend, &tag),
                    workers,
                    &mut g,
                    &mut r,
                )?;
            }
            rows.push(Row::new(
                &format!("{label} create→running, c{workers}"),
                &g,
                &r,
            ));
        }
    }
    report(
        "docker_create",
        "Engine API create+start through bollard (same image, command, network mode)",
        &rows,
    )
}
