//! gantry driving a three-node swarm ([`crate::swarm`]) through its swarm
//! backend, with the control-rpc fixture, REST and ARM frontends and the
//! Kanto frontend on an embedded broker: what the swarm backend's tests and
//! benchmark share.

use crate::api::Api;
use crate::rpc::{busybox, frontends};
use crate::swarm::Swarm;
use anyhow::Result;
use gantry::bindings::types::ContainerSpec;
use serde_json::Value;
use std::path::Path;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

static ONE_SWARM_AT_A_TIME: RwLock<()> = RwLock::new(());

/// A test's turn with a swarm of its own: the tests of one binary take
/// turns (three nodes apiece are enough for two cores), and none runs
/// beside a test on the binary's shared swarm.
pub fn turn() -> RwLockWriteGuard<'static, ()> {
    ONE_SWARM_AT_A_TIME
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A test's turn on the swarm the binary shares ([`crate::swarm::shared`]):
/// side by side with others on it, never beside a swarm of a test's own.
pub fn shared_turn() -> RwLockReadGuard<'static, ()> {
    ONE_SWARM_AT_A_TIME
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A script that runs until it is told to stop.
pub const SLEEPER: &str = "trap 'exit 0' TERM; while true; do sleep 1; done";

/// A swarm and the gantry driving it; dropped in that order (gantry first).
pub struct Cluster {
    /// gantry, and a client for its HTTP frontends.
    pub api: Api,
    /// The swarm.
    pub swarm: Swarm,
    /// Where the Kanto frontend's embedded broker listens (device
    /// `edge:device` of tenant `t1`).
    pub kanto_port: u16,
    _swarm_dir: tempfile::TempDir,
}

impl Cluster {
    /// A swarm (with three managers when `promote`), and gantry driving it
    /// through `managers`: indexes into the swarm's nodes, tried in order;
    /// `None` names a socket nothing listens on.
    pub fn start(managers: &[Option<usize>], promote: bool) -> Result<Cluster> {
        let t = std::time::Instant::now();
        let swarm_dir = tempfile::tempdir()?;
        let swarm = Swarm::start(&swarm_dir.path().join("swarm"))?;
        eprintln!("cluster: the swarm up in {:?}", t.elapsed());
        let dir = tempfile::tempdir()?;
        if promote {
            swarm.promote_workers()?;
        }
        let dead = dir.path().join("nobody-listens.sock");
        let socks: Vec<&Path> = managers
            .iter()
            .map(|m| match m {
                Some(i) => swarm.nodes[*i].docker_sock.as_path(),
                None => dead.as_path(),
            })
            .collect();
        let kanto_port = crate::free_port();
        let config = frontends("swarm-tests", 2, 120_000)
            .mqtt_frontend(
                "kanto",
                &crate::plugins::kanto(),
                &format!(
                    "broker = \"embedded\", listen = \"127.0.0.1:{kanto_port}\", subject = \"kanto-device\", roles = [\"ADMIN\"]"
                ),
                "config = { device-id = \"edge:device\", tenant-id = \"t1\" }",
            )
            .swarm_backend(&socks)
            .build();
        let t = std::time::Instant::now();
        let api = Api::start_in(dir, &config);
        eprintln!("cluster: gantry up in {:?}", t.elapsed());
        Ok(Cluster {
            api,
            swarm,
            kanto_port,
            _swarm_dir: swarm_dir,
        })
    }

    /// `GET path` as `sub` with `roles`: status and JSON body.
    pub fn get(&self, path: &str, sub: &str, roles: &[&str]) -> (u16, Value) {
        self.api
            .send("GET", path, Some(&self.api.g.token(sub, roles)), None)
    }

    /// The tasks of workload `id` that run as desired (from the nodes view),
    /// as (task id, node hostname).
    pub fn running_tasks(&self, id: &str) -> Vec<(String, String)> {
        let (_, v) = self.get(&format!("/-/workloads/{id}/tasks"), "ops", &["ADMIN"]);
        v["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| t["state"] == "running" && t["desired"] == "running")
            .map(|t| {
                let s = |k: &str| t[k].as_str().unwrap_or("").to_string();
                (s("id"), s("node"))
            })
            .collect()
    }

    /// `docker service inspect --format <format>` of `services` on the
    /// manager: one line per service.
    pub fn inspect_services(&self, format: &str, services: &[String]) -> String {
        let mut args = vec!["service", "inspect", "--format", format];
        args.extend(services.iter().map(String::as_str));
        self.swarm
            .manager()
            .cli(&args)
            .expect("the manager inspects services")
    }

    /// The services on the swarm carrying workload `id`'s label.
    pub fn services_of(&self, id: &str) -> Vec<String> {
        self.swarm.services(&format!("io.gantry.workload={id}"))
    }
}

impl Cluster {
    /// `POST /-/backends/swarm/nodes/{node}` as `ops` with `roles`: status and JSON body.
    pub fn set_availability(&self, node: &str, to: &str, roles: &[&str]) -> (u16, Value) {
        self.api.send(
            "POST",
            &format!("/-/backends/swarm/nodes/{node}"),
            Some(&self.api.g.token("ops", roles)),
            Some(serde_json::json!({"availability": to})),
        )
    }

    /// The nodes of the tasks of `id` that run as desired.
    pub fn running_on(&self, id: &str) -> Vec<String> {
        self.running_tasks(id)
            .into_iter()
            .map(|(_, node)| node)
            .collect()
    }

    /// Wait until three tasks of `id` run, none on node `off`.
    pub fn three_running_off(&self, id: &str, off: &str, what: &str) {
        crate::runtimes::wait_for(what, Duration::from_secs(90), || {
            let on = self.running_on(id);
            on.len() == 3 && !on.iter().any(|n| n == off)
        })
        .unwrap_or_else(|e| panic!("{e}: {:?}", self.running_on(id)));
    }

    /// Containers of workload `id` left on any node.
    pub fn containers_left(&self, id: &str) -> Vec<String> {
        self.swarm.containers(&format!("io.gantry.workload={id}"))
    }

    /// Delete workload `id` and check nothing of it is left on the swarm.
    pub fn delete_leaves_nothing(&self, rpc: &crate::rpc::Rpc, id: &str) {
        rpc.delete(id).expect("delete");
        assert!(self.services_of(id).is_empty(), "services left");
        crate::runtimes::wait_for(
            "the nodes to remove the containers",
            Duration::from_secs(30),
            || self.containers_left(id).is_empty(),
        )
        .expect("no container left on any node");
        assert!(matches!(
            rpc.get(id),
            Err(gantry::bindings::types::Error::NotFound(_))
        ));
    }
}

/// A container of the test image running `script`, in `replicas` replicas.
pub fn replicated(name: &str, script: &str, replicas: u32) -> ContainerSpec {
    let mut c = busybox(name, script);
    c.labels = vec![(
        gantry::control::labels::REPLICAS.to_string(),
        replicas.to_string(),
    )];
    c
}
