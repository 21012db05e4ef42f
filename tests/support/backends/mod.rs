//! The backends the conformance suite runs against, each with the gantry
//! config that drives it and an independent view of its runtime: bollard for
//! dockerd, `ctr` and `/proc` for containerd, the `podman` CLI on the
//! service's own storage for Podman, the docker CLI on a swarm's manager and
//! nodes for Swarm ([`swarm_view`]). Tests assert on what the runtime really
//! holds through this view, never through gantry.

mod cgroup;
mod swarm_view;

use crate::runtimes::{CONTAINERD_NAMESPACE, block, runtimes};
use cgroup::cgroup_limits;
use std::collections::HashMap;
use std::process::Command;

/// A backend plugin under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `plugins/docker` on the harness's dockerd.
    Docker,
    /// `plugins/containerd` on the harness's containerd.
    Containerd,
    /// `examples/podman-backend` (a third-party plugin outside the
    /// workspace) on the harness's `podman system service`.
    Podman,
    /// `plugins/swarm` on a three-node swarm shared by the test process
    /// ([`crate::swarm::shared`]); a runtime id is a service.
    Swarm,
}

/// One container as the runtime reports it (on Swarm: a service, through
/// its newest task's container).
#[derive(Debug, Clone)]
pub struct Observed {
    /// The runtime's id.
    pub id: String,
    /// Its labels.
    pub labels: HashMap<String, String>,
    /// `running`, `paused`, `exited` or `created`.
    pub state: String,
    /// Its main process, while it runs.
    pub pid: Option<u32>,
    /// Its name as the runtime shows it (Docker's and Podman's name; containerd's `io.gantry.name` label).
    pub name: String,
}

impl Observed {
    /// Whether this is a container of the spec (not a namespace holder).
    pub fn is_member(&self) -> bool {
        self.labels.contains_key("io.gantry.container")
    }
}

/// CPU (in nanos of a CPU per second), memory and pids limits as the kernel applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// CPU quota as nanoseconds per second.
    pub nano_cpus: Option<i64>,
    /// Memory limit in bytes.
    pub memory: Option<i64>,
    /// Process limit.
    pub pids: Option<i64>,
}

fn ctr() -> Command {
    let mut c = Command::new("ctr");
    c.arg("-a")
        .arg(&runtimes().containerd_sock)
        .args(["-n", CONTAINERD_NAMESPACE]);
    c
}

fn output(c: &mut Command) -> String {
    let o = c.output().expect("running a runtime CLI");
    assert!(
        o.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// containerd's tasks: id → (pid, status).
fn ctr_tasks() -> HashMap<String, (u32, String)> {
    output(ctr().args(["tasks", "ls"]))
        .lines()
        .skip(1)
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let id = f.next()?.to_string();
            let pid = f.next()?.parse().ok()?;
            let status = f.next()?.to_ascii_lowercase();
            Some((id, (pid, status)))
        })
        .collect()
}

fn ctr_info(id: &str) -> Option<serde_json::Value> {
    let o = ctr().args(["containers", "info", id]).output().ok()?;
    if !o.status.success() {
        return None;
    }
    serde_json::from_slice(&o.stdout).ok()
}

fn ctr_observe(id: &str, tasks: &HashMap<String, (u32, String)>) -> Option<Observed> {
    let info = ctr_info(id)?;
    let labels: HashMap<String, String> =
        serde_json::from_value(info["Labels"].clone()).unwrap_or_default();
    let (pid, state) = match tasks.get(id) {
        None => (None, "created".to_string()),
        Some((pid, s)) => match s.as_str() {
            "running" => (Some(*pid), "running".into()),
            "paused" => (Some(*pid), "paused".into()),
            "stopped" => (None, "exited".into()),
            other => (None, other.to_string()),
        },
    };
    Some(Observed {
        id: id.to_string(),
        name: labels.get("io.gantry.name").cloned().unwrap_or_default(),
        labels,
        state,
        pid,
    })
}

fn docker_observe(c: &bollard::models::ContainerSummary) -> Observed {
    let id = c.id.clone().unwrap_or_default();
    let info = runtimes().inspect_docker(&id);
    let st = info.state.clone().unwrap_or_default();
    let state = if st.paused == Some(true) {
        "paused".to_string()
    } else {
        st.status.map(|s| s.to_string()).unwrap_or_default()
    };
    Observed {
        id,
        labels: c.labels.clone().unwrap_or_default(),
        state,
        pid: st
            .pid
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p > 0),
        name: info
            .name
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_string(),
    }
}

/// The `podman` CLI on the harness's Podman state, its JSON output.
fn podman_json(args: &[&str]) -> serde_json::Value {
    let out = output(runtimes().podman().cli().args(args));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("podman {args:?}: {e}: {out}"))
}

/// A state word as the other backends' views say it.
fn podman_state(word: &str) -> String {
    match word {
        "configured" | "initialized" => "created".into(),
        "stopped" => "exited".into(),
        other => other.to_string(),
    }
}

/// Containers `podman ps` lists under `filter` (a `label=...` filter), stopped ones included.
fn podman_ps(filter: &str) -> Vec<Observed> {
    let list = podman_json(&["ps", "-a", "--format", "json", "--filter", filter]);
    list.as_array()
        .into_iter()
        .flatten()
        .map(|c| Observed {
            id: c["Id"].as_str().unwrap_or_default().to_string(),
            labels: serde_json::from_value(c["Labels"].clone()).unwrap_or_default(),
            state: podman_state(c["State"].as_str().unwrap_or_default()),
            pid: c["Pid"]
                .as_u64()
                .and_then(|p| u32::try_from(p).ok())
                .filter(|p| *p > 0),
            name: c["Names"][0].as_str().unwrap_or_default().to_string(),
        })
        .collect()
}

fn podman_observe(id: &str) -> Observed {
    let info = podman_json(&["inspect", "--type", "container", "--format", "json", id]);
    let c = &info[0];
    Observed {
        id: c["Id"].as_str().unwrap_or_default().to_string(),
        labels: serde_json::from_value(c["Config"]["Labels"].clone()).unwrap_or_default(),
        state: podman_state(c["State"]["Status"].as_str().unwrap_or_default()),
        pid: c["State"]["Pid"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p > 0),
        name: c["Name"].as_str().unwrap_or_default().to_string(),
    }
}

impl Backend {
    /// Its name in configs and messages.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Docker => "docker",
            Backend::Containerd => "containerd",
            Backend::Podman => "podman",
            Backend::Swarm => "swarm",
        }
    }

    /// A config serving the control-rpc fixture at `/rpc`, REST at `/v1`,
    /// ARM at `/subscriptions` and `/providers`, on this backend.
    pub fn config(self, resync_seconds: u64) -> String {
        self.config_builder(resync_seconds).build()
    }

    /// [`Self::config`], still open to more settings.
    pub fn config_builder(self, resync_seconds: u64) -> crate::config::ConfigBuilder {
        self.configure(crate::rpc::frontends(
            "backend-tests",
            resync_seconds,
            15_000,
        ))
    }

    /// `b` with this backend added.
    pub fn configure(self, b: crate::config::ConfigBuilder) -> crate::config::ConfigBuilder {
        match self {
            Backend::Docker => b.docker_backend(),
            Backend::Containerd => b.containerd_backend(),
            Backend::Podman => b.podman_backend(),
            Backend::Swarm => b.swarm_backend(&[&swarm_view::manager_socket()]),
        }
    }

    /// What the runtime says of a workload, for a failing test's message:
    /// on swarm, its services' tasks and the nodes (see
    /// [`crate::swarm::Swarm::explain`]); elsewhere, its containers.
    pub fn explain(self, workload_id: &str) -> String {
        match self {
            Backend::Swarm => {
                crate::swarm::shared().explain(&format!("io.gantry.workload={workload_id}"))
            }
            _ => format!("{:#?}", self.containers_of(workload_id)),
        }
    }

    /// Every container the runtime holds for a workload (any revision, holders included).
    pub fn containers_of(self, workload_id: &str) -> Vec<Observed> {
        match self {
            Backend::Docker => runtimes()
                .containers_of(workload_id)
                .iter()
                .map(docker_observe)
                .collect(),
            Backend::Containerd => {
                let tasks = ctr_tasks();
                output(ctr().args([
                    "containers",
                    "ls",
                    "-q",
                    &format!("labels.\"io.gantry.workload\"=={workload_id}"),
                ]))
                .lines()
                .filter_map(|id| ctr_observe(id.trim(), &tasks))
                .collect()
            }
            Backend::Podman => podman_ps(&format!("label=io.gantry.workload={workload_id}")),
            Backend::Swarm => swarm_view::labelled(&format!("io.gantry.workload={workload_id}")),
        }
    }

    /// What `list` still shows once removals have reached the runtime: at
    /// once on one machine; within 30 s on a swarm, whose nodes remove a
    /// task's container only after the manager has forgotten the task.
    pub fn after_removal(self, list: impl Fn() -> Vec<Observed>) -> Vec<Observed> {
        if self == Backend::Swarm {
            let _ = crate::runtimes::wait_for(
                "the nodes to remove the containers",
                std::time::Duration::from_secs(30),
                || list().is_empty(),
            );
        }
        list()
    }

    /// The spec's containers of a workload (holders left out).
    pub fn members_of(self, workload_id: &str) -> Vec<Observed> {
        self.containers_of(workload_id)
            .into_iter()
            .filter(Observed::is_member)
            .collect()
    }

    /// One container by id.
    pub fn observe(self, id: &str) -> Observed {
        match self {
            Backend::Docker => docker_observe(&bollard::models::ContainerSummary {
                id: Some(id.to_string()),
                ..Default::default()
            }),
            Backend::Containerd => {
                ctr_observe(id, &ctr_tasks()).unwrap_or_else(|| panic!("no container {id}"))
            }
            Backend::Podman => podman_observe(id),
            Backend::Swarm => swarm_view::observe(id),
        }
    }

    /// Every container gantry labelled on the runtime, any workload.
    pub fn all_gantry_containers(self) -> Vec<Observed> {
        match self {
            Backend::Docker => {
                let filters =
                    HashMap::from([("label".to_string(), vec!["io.gantry.workload".to_string()])]);
                let list = block(async {
                    runtimes()
                        .docker()
                        .await
                        .list_containers(Some(bollard::query_parameters::ListContainersOptions {
                            all: true,
                            filters: Some(filters),
                            ..Default::default()
                        }))
                        .await
                        .expect("list")
                });
                list.iter().map(docker_observe).collect()
            }
            Backend::Containerd => {
                let tasks = ctr_tasks();
                output(ctr().args(["containers", "ls", "-q", "labels.\"io.gantry.workload\""]))
                    .lines()
                    .filter_map(|id| ctr_observe(id.trim(), &tasks))
                    .collect()
            }
            Backend::Podman => podman_ps("label=io.gantry.workload"),
            Backend::Swarm => swarm_view::labelled("io.gantry.workload"),
        }
    }

    /// The limits the kernel applies to a running container.
    pub fn limits(self, id: &str) -> Limits {
        let pid = self.observe(id).pid.expect("a running container");
        cgroup_limits(pid)
    }

    /// The environment of a running container's main process.
    pub fn environment(self, id: &str) -> Vec<String> {
        let pid = self.observe(id).pid.expect("a running container");
        std::fs::read(format!("/proc/{pid}/environ"))
            .unwrap_or_default()
            .split(|b| *b == 0)
            .filter(|v| !v.is_empty())
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    }

    /// The network namespace of a running container (`net:[inode]`).
    pub fn network_namespace(self, id: &str) -> String {
        let pid = self.observe(id).pid.expect("a running container");
        std::fs::read_link(format!("/proc/{pid}/ns/net"))
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }

    /// Whether snapshots (containerd) or a container directory (Podman's
    /// vfs storage) remain for a container id.
    pub fn leftover_storage(self, id: &str) -> bool {
        match self {
            // dockerd removes a container's layer with it.
            Backend::Docker | Backend::Swarm => false,
            Backend::Podman => runtimes()
                .podman()
                .dir
                .join("root/vfs-containers")
                .join(id)
                .exists(),
            Backend::Containerd => output(ctr().args(["snapshots", "ls"]))
                .lines()
                .any(|l| l.split_whitespace().next() == Some(id)),
        }
    }

    /// Kill the runtime (SIGKILL) and start it again on the same data.
    pub fn restart_runtime(self) {
        match self {
            Backend::Docker => {
                runtimes().restart_dockerd().expect("dockerd restarts");
            }
            Backend::Containerd => {
                runtimes()
                    .restart_containerd()
                    .expect("containerd restarts");
            }
            Backend::Podman => {
                runtimes()
                    .restart_podman()
                    .expect("the Podman service restarts");
            }
            Backend::Swarm => panic!(
                "a swarm's nodes are killed one by one (backend_swarm.rs), not restarted as one runtime"
            ),
        }
    }
}
