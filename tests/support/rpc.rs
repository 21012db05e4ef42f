//! Driving the control plane through the `control-rpc` fixture frontend,
//! with the host's own WIT types for arguments and results.

use crate::gantry::Gantry;
use gantry::bindings::gantry::plugin::control::{
    CreateRequest, PageRequest, StopOptions, WorkloadFilter,
};
use gantry::bindings::types::{
    ContainerSpec, Error, RestartKind, RestartPolicy, Workload, WorkloadPhase, WorkloadSpec,
};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A client acting as one caller.
pub struct Rpc {
    base: String,
    token: String,
    http: reqwest::blocking::Client,
}

impl Rpc {
    /// Act as `sub` with `roles` against the `control-rpc` frontend mounted at `/rpc`.
    pub fn new(g: &Gantry, sub: &str, roles: &[&str]) -> Rpc {
        Rpc {
            base: g.url("/rpc"),
            token: g.token(sub, roles),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(300))
                .build()
                .expect("client"),
        }
    }

    /// Call `op` with JSON arguments; `Ok(result)` or the typed error.
    pub fn call<T: DeserializeOwned>(&self, op: &str, args: Value) -> Result<T, Error> {
        let r = self
            .http
            .post(format!("{}/{op}", self.base))
            .bearer_auth(&self.token)
            .body(args.to_string())
            .send()
            .expect("rpc request");
        let status = r.status();
        let v: Value = r.json().expect("rpc answer is JSON");
        assert!(status.is_success(), "rpc transport failed ({status}): {v}");
        if let Some(ok) = v.get("ok") {
            return Ok(serde_json::from_value(ok.clone())
                .unwrap_or_else(|e| panic!("decoding {op} result: {e}: {ok}")));
        }
        Err(serde_json::from_value(v["err"].clone())
            .unwrap_or_else(|e| panic!("decoding {op} error: {e}: {v}")))
    }

    /// Create a workload (started).
    pub fn create(&self, name: &str, spec: WorkloadSpec) -> Result<Workload, Error> {
        self.create_with(name, spec, true)
    }

    /// Create a workload, started or not.
    pub fn create_with(
        &self,
        name: &str,
        spec: WorkloadSpec,
        start: bool,
    ) -> Result<Workload, Error> {
        let req = CreateRequest {
            name: name.into(),
            namespace: String::new(),
            spec,
            annotations: vec![],
            start,
        };
        self.call("create", json!([req]))
    }

    /// Replace a workload's spec (a new revision).
    pub fn update(&self, id: &str, spec: WorkloadSpec) -> Result<Workload, Error> {
        self.call("update", json!([id, spec]))
    }

    /// Get a workload.
    pub fn get(&self, id: &str) -> Result<Workload, Error> {
        self.call("get", json!([id]))
    }

    /// The caller's workloads (first page of 100).
    pub fn list(&self) -> Vec<Workload> {
        let filter = WorkloadFilter::default();
        let page: Value = self
            .call("list", json!([filter, PageRequest { page: 1, rows: 100 }]))
            .expect("list");
        serde_json::from_value(page["items"].clone()).expect("items")
    }

    /// Stop gracefully.
    pub fn stop(&self, id: &str) -> Result<Workload, Error> {
        self.call(
            "stop",
            json!([
                id,
                StopOptions {
                    signal: None,
                    timeout_seconds: Some(2),
                    force: false
                }
            ]),
        )
    }

    /// Delete with force.
    pub fn delete(&self, id: &str) -> Result<(), Error> {
        self.call::<Value>("delete", json!([id, true])).map(|_| ())
    }

    /// Poll `get` until `pred` holds (at most `secs`), returning the last record.
    pub fn wait_for(
        &self,
        id: &str,
        secs: u64,
        what: &str,
        pred: impl Fn(&Workload) -> bool,
    ) -> Workload {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let w = self.get(id).expect("get while waiting");
            if pred(&w) {
                return w;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {secs} s waiting for {what}; last: {w:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Stream logs (JSON lines) from the fixture's log endpoint.
    pub fn logs(&self, id: &str, query: &str) -> reqwest::blocking::Response {
        self.http
            .get(format!("{}/logs/{id}?{query}", self.base))
            .bearer_auth(&self.token)
            .send()
            .expect("logs request")
    }

    /// [`Self::logs`] read whole, a line each (JSON lines).
    pub fn log_lines(&self, id: &str, query: &str) -> Vec<String> {
        self.logs(id, query)
            .text()
            .expect("logs")
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// A container of the test image running `script` under `sh -c`.
pub fn busybox(name: &str, script: &str) -> ContainerSpec {
    ContainerSpec {
        command: Some(vec!["sh".into(), "-c".into(), script.into()]),
        ..ContainerSpec::new(name, crate::runtimes::TEST_IMAGE)
    }
}

/// A workload of these containers with a restart policy, in an isolated network namespace.
pub fn workload(containers: Vec<ContainerSpec>, restart: RestartKind) -> WorkloadSpec {
    WorkloadSpec {
        restart: RestartPolicy {
            kind: restart,
            ..RestartPolicy::default()
        },
        ..WorkloadSpec::new(containers)
    }
}

/// A config serving the control-rpc fixture at `/rpc`, the REST frontend at
/// `/v1`, the ARM frontend at `/subscriptions` and `/providers` and the Docker
/// plugin on the harness's dockerd; `{port}` and `{dir}`
/// are filled in by [`Gantry`].
pub fn docker_config(resync_seconds: u64) -> String {
    frontends("docker-tests", resync_seconds, 10_000)
        .docker_backend()
        .build()
}

/// The control-rpc fixture at `/rpc`, REST at `/v1` and ARM at
/// `/subscriptions` and `/providers`, with no backend yet.
pub fn frontends(
    name: &str,
    resync_seconds: u64,
    call_timeout_ms: u32,
) -> crate::config::ConfigBuilder {
    use crate::plugins;
    crate::config::ConfigBuilder::new(name)
        .resync_seconds(resync_seconds)
        .limit("call_timeout_ms", call_timeout_ms)
        .http_frontend("rpc", &plugins::control_rpc(), "/rpc")
        .http_frontend("rest", &plugins::rest(), "/v1")
        .arm_frontend()
}

/// Whether a workload is deployed with every container running.
pub fn running(w: &Workload) -> bool {
    w.phase == WorkloadPhase::Deployed
        && w.containers
            .iter()
            .all(|c| c.status == gantry::bindings::types::ContainerStatus::Running)
}
