//! Translating gantry's specs to Engine API objects, and Engine state back.

use bollard_stubs::models::{
    ContainerCreateBody, ContainerInspectResponse, ContainerStateStatusEnum, DeviceMapping,
    DeviceRequest, HostConfig, HostConfigLogConfig, PortBinding, RestartPolicy,
    RestartPolicyNameEnum,
};
use gantry_sdk::backend::exports::gantry::plugin::driver::Deployment;
use gantry_sdk::backend::gantry::plugin::types::{
    ContainerSpec, ContainerState, ContainerStatus, LogDriver, NetworkMode, PortProtocol,
};
use gantry_sdk::clock::timestamp;
use std::collections::HashMap;

/// Label keys: the SDK's (the ones the host selects on), and this backend's own.
pub mod labels {
    pub use gantry_sdk::labels::{CONTAINER, REVISION, WORKLOAD};
    /// Position of the container in the spec.
    pub const INDEX: &str = "io.gantry.index";
    /// `holder` on the container that holds a multi-container workload's network namespace.
    pub const ROLE: &str = "io.gantry.role";
    /// The `role` value of a namespace holder.
    pub const HOLDER: &str = "holder";
}

/// The Engine name of a revision's namespace holder (a dot: no spec container can take it).
pub fn holder_name(deployment_name: &str, revision: u32) -> String {
    format!("gantry-{deployment_name}-r{revision}.netns")
}

/// Whether a deployment's containers share a namespace held by a holder
/// container: several containers, not on the host's network.
pub fn needs_holder(d: &Deployment) -> bool {
    d.spec.containers.len() > 1 && d.spec.network != NetworkMode::Host
}

/// Exposed ports and their host bindings, as the Engine's create body takes them.
type Published = (
    Option<HashMap<String, HashMap<(), ()>>>,
    Option<HashMap<String, Option<Vec<PortBinding>>>>,
);

/// Ports of every container, published in bridge mode on whoever owns the namespace.
fn published(d: &Deployment) -> Published {
    if d.spec.network != NetworkMode::Bridge {
        return (None, None);
    }
    let mut exposed = HashMap::new();
    let mut bindings = HashMap::new();
    for p in d.spec.containers.iter().flat_map(|c| c.ports.iter()) {
        let proto = match p.protocol {
            PortProtocol::Tcp => "tcp",
            PortProtocol::Udp => "udp",
            PortProtocol::Sctp => "sctp",
        };
        let key = format!("{}/{proto}", p.container_port);
        exposed.insert(key.clone(), HashMap::new());
        let host_port = match (p.host_port, p.host_port_end) {
            (Some(a), Some(b)) if b > a => Some(format!("{a}-{b}")),
            (Some(a), _) => Some(a.to_string()),
            _ => None,
        };
        bindings.insert(
            key,
            Some(vec![PortBinding {
                host_ip: p.host_ip.clone(),
                host_port,
            }]),
        );
    }
    (Some(exposed), Some(bindings))
}

fn network_mode(d: &Deployment) -> String {
    match d.spec.network {
        NetworkMode::Isolated => "none".into(),
        NetworkMode::Bridge => "bridge".into(),
        NetworkMode::Host => "host".into(),
    }
}

/// The create body of a revision's namespace holder: `command` in `image`,
/// owning the network namespace, published ports, hostname and extra hosts.
pub fn holder_body(d: &Deployment, image: &str, command: Vec<String>) -> ContainerCreateBody {
    let mut labels: HashMap<String, String> = d.labels.iter().cloned().collect();
    labels.insert(labels::ROLE.into(), labels::HOLDER.into());
    let (exposed, bindings) = published(d);
    ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(command),
        cmd: Some(Vec::new()),
        labels: Some(labels),
        hostname: d.spec.hostname.clone(),
        domainname: d.spec.domain_name.clone(),
        exposed_ports: exposed,
        host_config: Some(HostConfig {
            network_mode: Some(network_mode(d)),
            port_bindings: bindings,
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            extra_hosts: (!d.spec.extra_hosts.is_empty()).then(|| d.spec.extra_hosts.clone()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The Engine name of one container of a deployment.
pub fn container_name(deployment_name: &str, revision: u32, container: &str) -> String {
    format!("gantry-{deployment_name}-r{revision}-{container}")
}

/// The create body of container `index` of a deployment. With a `holder`,
/// it joins the holder's network namespace (`container:<holder>`), like a pod.
pub fn create_body(
    d: &Deployment,
    index: usize,
    holder: Option<&str>,
    enforce_storage: bool,
) -> ContainerCreateBody {
    let c: &ContainerSpec = &d.spec.containers[index];
    let mut labels: HashMap<String, String> = c.labels.iter().cloned().collect();
    labels.extend(d.labels.iter().cloned());
    labels.insert(labels::CONTAINER.into(), c.name.clone());
    labels.insert(labels::INDEX.into(), index.to_string());
    let network_mode = match holder {
        Some(id) => format!("container:{id}"),
        None => network_mode(d),
    };
    let (exposed, bindings) = if holder.is_none() {
        published(d)
    } else {
        (None, None)
    };
    let r = &c.resources;
    let gpu = c.gpu.as_ref().filter(|g| g.asks()).map(|g| {
        vec![DeviceRequest {
            driver: Some("nvidia".into()),
            count: if g.device_ids.is_empty() {
                Some(i64::from(g.count))
            } else {
                None
            },
            device_ids: if g.device_ids.is_empty() {
                None
            } else {
                Some(g.device_ids.clone())
            },
            capabilities: Some(vec![if g.capabilities.is_empty() {
                vec!["gpu".to_string()]
            } else {
                g.capabilities.clone()
            }]),
            options: None,
        }]
    });
    let log_config = c.log.as_ref().map(|l| {
        let mut config = HashMap::new();
        if let Some(n) = l.max_files {
            config.insert("max-file".to_string(), n.to_string());
        }
        if let Some(n) = l.max_size_bytes {
            config.insert("max-size".to_string(), n.to_string());
        }
        if let Some(n) = l.non_blocking_buffer_bytes {
            config.insert("mode".to_string(), "non-blocking".to_string());
            config.insert("max-buffer-size".to_string(), n.to_string());
        }
        HostConfigLogConfig {
            typ: Some(match l.driver {
                LogDriver::JsonFile => "json-file".into(),
                LogDriver::None => "none".into(),
            }),
            config: Some(config),
        }
    });
    let storage_opt = match r.ephemeral_storage_bytes {
        Some(b) if enforce_storage => Some(HashMap::from([("size".to_string(), b.to_string())])),
        _ => None,
    };
    let host_config = HostConfig {
        network_mode: Some(network_mode),
        port_bindings: bindings,
        nano_cpus: r.cpu.map(|cpu| (cpu * 1e9).round() as i64),
        memory: r.memory_bytes.map(|m| i64::try_from(m).unwrap_or(i64::MAX)),
        memory_reservation: r
            .memory_reservation_bytes
            .map(|m| i64::try_from(m).unwrap_or(i64::MAX)),
        memory_swap: r.memory_swap_bytes,
        pids_limit: r.pids_limit.map(i64::from),
        privileged: Some(c.privileged),
        cap_add: (!c.extra_capabilities.is_empty()).then(|| c.extra_capabilities.clone()),
        devices: (!c.devices.is_empty()).then(|| {
            c.devices
                .iter()
                .map(|d| DeviceMapping {
                    path_on_host: Some(d.path_on_host.clone()),
                    path_in_container: Some(d.path_in_container.clone()),
                    cgroup_permissions: Some(d.cgroup_permissions.clone()),
                })
                .collect()
        }),
        binds: (!c.mounts.is_empty()).then(|| {
            c.mounts
                .iter()
                .map(|m| {
                    let mut opts = Vec::new();
                    if m.read_only {
                        opts.push("ro".to_string());
                    }
                    if let Some(p) = &m.propagation {
                        opts.push(p.clone());
                    }
                    if opts.is_empty() {
                        format!("{}:{}", m.source, m.destination)
                    } else {
                        format!("{}:{}:{}", m.source, m.destination, opts.join(","))
                    }
                })
                .collect()
        }),
        device_requests: gpu,
        // Restart policies are applied by the gantry host, the same way for every backend.
        restart_policy: Some(RestartPolicy {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        }),
        log_config,
        storage_opt,
        extra_hosts: (holder.is_none() && !d.spec.extra_hosts.is_empty())
            .then(|| d.spec.extra_hosts.clone()),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(c.image.clone()),
        entrypoint: c.command.clone(),
        cmd: c.args.clone(),
        env: Some(
            c.env
                .iter()
                .map(|e| format!("{}={}", e.name, e.value))
                .collect(),
        ),
        labels: Some(labels),
        tty: Some(c.tty),
        open_stdin: Some(c.open_stdin),
        working_dir: c.working_dir.clone(),
        hostname: if holder.is_none() {
            d.spec.hostname.clone()
        } else {
            None
        },
        domainname: if holder.is_none() {
            d.spec.domain_name.clone()
        } else {
            None
        },
        exposed_ports: exposed,
        host_config: Some(host_config),
        ..Default::default()
    }
}

/// A status word from the Engine (`running`, `exited`...).
pub fn status(s: &str) -> ContainerStatus {
    match s {
        "created" => ContainerStatus::Created,
        "running" => ContainerStatus::Running,
        "paused" => ContainerStatus::Paused,
        "restarting" => ContainerStatus::Restarting,
        "removing" | "exited" => ContainerStatus::Exited,
        "dead" => ContainerStatus::Dead,
        _ => ContainerStatus::Unknown,
    }
}

/// Observed state from an inspect answer.
pub fn state(i: &ContainerInspectResponse) -> ContainerState {
    let labels = i.config.as_ref().and_then(|c| c.labels.as_ref());
    let name = labels
        .and_then(|l| l.get(labels::CONTAINER))
        .cloned()
        .unwrap_or_default();
    let st = i.state.as_ref();
    let word = st.and_then(|s| s.status).map(|s| match s {
        ContainerStateStatusEnum::CREATED => "created",
        ContainerStateStatusEnum::RUNNING => "running",
        ContainerStateStatusEnum::PAUSED => "paused",
        ContainerStateStatusEnum::RESTARTING => "restarting",
        ContainerStateStatusEnum::REMOVING => "removing",
        ContainerStateStatusEnum::EXITED => "exited",
        ContainerStateStatusEnum::DEAD => "dead",
        _ => "unknown",
    });
    let status = status(word.unwrap_or("unknown"));
    let finished = matches!(status, ContainerStatus::Exited | ContainerStatus::Dead);
    ContainerState {
        name,
        runtime_id: i.id.clone(),
        status,
        pid: st
            .and_then(|s| s.pid)
            .filter(|p| *p > 0)
            .and_then(|p| u32::try_from(p).ok()),
        exit_code: if finished {
            st.and_then(|s| s.exit_code)
                .and_then(|c| i32::try_from(c).ok())
        } else {
            None
        },
        started_at: st.and_then(|s| s.started_at.as_deref()).and_then(timestamp),
        finished_at: if finished {
            st.and_then(|s| s.finished_at.as_deref())
                .and_then(timestamp)
        } else {
            None
        },
        oom_killed: st.and_then(|s| s.oom_killed).unwrap_or(false),
        restart_count: i
            .restart_count
            .and_then(|c| u32::try_from(c).ok())
            .unwrap_or(0),
        error: st.and_then(|s| s.error.clone()).filter(|e| !e.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_engine_times() {
        assert!(timestamp("0001-01-01T00:00:00Z").is_none());
        let t = timestamp("2023-09-22T15:36:06.5Z").expect("parses");
        assert_eq!((t.seconds, t.nanoseconds), (1_695_396_966, 500_000_000));
    }
}
