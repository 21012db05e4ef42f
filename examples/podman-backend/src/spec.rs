//! Translating gantry's specs to libpod objects: a `SpecGenerator` per
//! container and a `PodSpecGenerator` for a multi-container workload, whose
//! infra container owns the network namespace the members share.

use gantry_sdk::backend::exports::gantry::plugin::driver::Deployment;
use gantry_sdk::backend::gantry::plugin::types::{
    ContainerSpec, Error, LogDriver, NetworkMode, PortProtocol, Resources,
};
use serde_json::{Map, Value, json};

/// Label keys: the SDK's (the ones the host selects on), and this backend's own.
pub mod labels {
    pub use gantry_sdk::labels::{CONTAINER, REVISION, WORKLOAD};
    /// Position of the container in the spec.
    pub const INDEX: &str = "io.gantry.index";
}

/// CFS period the CPU limit is expressed in (100 ms, Podman's and Docker's default).
pub const CPU_PERIOD: u64 = 100_000;

/// The smallest memory limit runc can apply (the Podman CLI refuses less; its API does not).
pub const MIN_MEMORY: u64 = 6 << 20;

/// Podman's name of one container of a deployment.
pub fn container_name(deployment_name: &str, revision: u32, container: &str) -> String {
    format!("gantry-{deployment_name}-r{revision}-{container}")
}

/// Podman's name of a revision's infra container (a dot: no spec container can take it).
pub fn infra_name(deployment_name: &str, revision: u32) -> String {
    format!("gantry-{deployment_name}-r{revision}.infra")
}

/// Podman's name of a revision's pod. Pods cannot be renamed, so it is
/// named after the workload's id, not its (renamable) name.
pub fn pod_name(workload_id: &str, revision: u32) -> String {
    format!("gantry-{workload_id}-r{revision}")
}

/// Whether a deployment's containers share a pod: several containers.
pub fn needs_pod(d: &Deployment) -> bool {
    d.spec.containers.len() > 1
}

fn nsmode(d: &Deployment) -> &'static str {
    match d.spec.network {
        NetworkMode::Isolated => "none",
        NetworkMode::Bridge => "bridge",
        NetworkMode::Host => "host",
    }
}

/// Published ports of every container (bridge mode only: an isolated
/// namespace has nothing to publish on, the host's needs no publishing).
fn port_mappings(d: &Deployment) -> Vec<Value> {
    if d.spec.network != NetworkMode::Bridge {
        return Vec::new();
    }
    d.spec
        .containers
        .iter()
        .flat_map(|c| c.ports.iter())
        .map(|p| {
            let protocol = match p.protocol {
                PortProtocol::Tcp => "tcp",
                PortProtocol::Udp => "udp",
                PortProtocol::Sctp => "sctp",
            };
            let mut m = json!({"container_port": p.container_port, "protocol": protocol});
            if let Some(h) = p.host_port {
                m["host_port"] = json!(h);
                if let Some(end) = p.host_port_end.filter(|e| *e > h) {
                    m["range"] = json!(end - h + 1);
                }
            }
            if let Some(ip) = &p.host_ip {
                m["host_ip"] = json!(ip);
            }
            m
        })
        .collect()
}

/// What a revision's objects carry: the host's labels.
fn base_labels(d: &Deployment) -> Map<String, Value> {
    d.labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect()
}

/// The `PodSpecGenerator` of a multi-container revision: its network
/// namespace, hostname and extra hosts, held by an infra container.
pub fn pod_body(d: &Deployment) -> Value {
    let mut pod = json!({
        "name": pod_name(&d.workload_id, d.revision),
        "labels": base_labels(d),
        "infra_name": infra_name(&d.name, d.revision),
        "netns": {"nsmode": nsmode(d)},
        "portmappings": port_mappings(d),
        "hostadd": d.spec.extra_hosts,
    });
    if let Some(h) = &d.spec.hostname {
        pod["hostname"] = json!(h);
    }
    pod
}

/// libpod's `LinuxResources` for `r` (used at create and by `update`).
pub fn resource_limits(r: &Resources) -> Value {
    let mut out = Map::new();
    let mut memory = Map::new();
    if let Some(m) = r.memory_bytes {
        memory.insert("limit".into(), json!(m));
    }
    // libpod refuses -1 (unlimited swap) in its API, which only the CLI
    // translates: Podman's default (swap as large as the limit) stands.
    if let Some(s) = r.memory_swap_bytes.filter(|s| *s >= 0) {
        memory.insert("swap".into(), json!(s));
    }
    if let Some(m) = r.memory_reservation_bytes {
        memory.insert("reservation".into(), json!(m));
    }
    if !memory.is_empty() {
        out.insert("memory".into(), Value::Object(memory));
    }
    if let Some(cpu) = r.cpu {
        let quota = (cpu * CPU_PERIOD as f64).round() as i64;
        out.insert("cpu".into(), json!({"quota": quota, "period": CPU_PERIOD}));
    }
    if let Some(p) = r.pids_limit {
        out.insert("pids".into(), json!({"limit": p}));
    }
    Value::Object(out)
}

/// Refuse limits the runtime would only refuse at start: a CPU limit that
/// is not positive, a memory limit under [`MIN_MEMORY`].
pub fn validate(d: &Deployment) -> Result<(), Error> {
    for (i, c) in d.spec.containers.iter().enumerate() {
        let r = &c.resources;
        if let Some(m) = r.memory_bytes.filter(|m| *m < MIN_MEMORY) {
            return Err(crate::client::invalid(
                &format!("containers[{i}].resources.memory-bytes"),
                format!(
                    "container `{}`: a memory limit of {m} bytes is below the minimum of 6 MiB",
                    c.name
                ),
            ));
        }
        if let Some(cpu) = r.cpu.filter(|c| !c.is_finite() || *c <= 0.0) {
            return Err(crate::client::invalid(
                &format!("containers[{i}].resources.cpu"),
                format!(
                    "container `{}`: a CPU limit of {cpu} is not positive",
                    c.name
                ),
            ));
        }
    }
    Ok(())
}

fn mounts(c: &ContainerSpec) -> Vec<Value> {
    c.mounts
        .iter()
        .map(|m| {
            let mut options = vec!["rbind".to_string()];
            if m.read_only {
                options.push("ro".into());
            }
            if let Some(p) = &m.propagation {
                options.push(p.clone());
            }
            json!({"type": "bind", "source": m.source, "destination": m.destination, "options": options})
        })
        .collect()
}

/// The log settings: Podman's own `k8s-file` (`json-file` is its alias in
/// Podman's CLI) keeps stdout and stderr apart, which `logs` needs.
fn log_configuration(c: &ContainerSpec) -> Value {
    let Some(l) = &c.log else {
        return json!({"driver": "k8s-file"});
    };
    let mut out = json!({"driver": match l.driver {
        LogDriver::JsonFile => "k8s-file",
        LogDriver::None => "none",
    }});
    if let Some(n) = l.max_size_bytes {
        out["size"] = json!(n);
    }
    out
}

/// The `SpecGenerator` of container `index`. In a `pod` it joins the pod's
/// namespaces; alone it gets its own, set up as the spec's network mode says.
pub fn container_body(d: &Deployment, index: usize, pod: Option<&str>) -> Value {
    let c = &d.spec.containers[index];
    let mut labels: Map<String, Value> = c
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    labels.extend(base_labels(d));
    labels.insert(labels::CONTAINER.into(), json!(c.name));
    labels.insert(labels::INDEX.into(), json!(index.to_string()));
    let env: Map<String, Value> = c
        .env
        .iter()
        .map(|e| (e.name.clone(), json!(e.value)))
        .collect();
    let mut body = json!({
        "name": container_name(&d.name, d.revision, &c.name),
        "image": c.image,
        "labels": labels,
        "env": env,
        "terminal": c.tty,
        "stdin": c.open_stdin,
        "privileged": c.privileged,
        // Restart policies are applied by the gantry host, the same way for every backend.
        "restart_policy": "no",
        "resource_limits": resource_limits(&c.resources),
        "log_configuration": log_configuration(c),
        "mounts": mounts(c),
    });
    if let Some(e) = &c.command {
        body["entrypoint"] = json!(e);
    }
    if let Some(a) = &c.args {
        body["command"] = json!(a);
    }
    if let Some(w) = &c.working_dir {
        body["work_dir"] = json!(w);
    }
    if !c.extra_capabilities.is_empty() {
        body["cap_add"] = json!(c.extra_capabilities);
    }
    if !c.devices.is_empty() {
        let devices: Vec<Value> = c
            .devices
            .iter()
            .map(|x| {
                json!({"path": format!("{}:{}:{}", x.path_on_host, x.path_in_container, x.cgroup_permissions)})
            })
            .collect();
        body["devices"] = json!(devices);
    }
    match pod {
        Some(p) => body["pod"] = json!(p),
        None => {
            body["netns"] = json!({"nsmode": nsmode(d)});
            body["portmappings"] = json!(port_mappings(d));
            if !d.spec.extra_hosts.is_empty() {
                body["hostadd"] = json!(d.spec.extra_hosts);
            }
            if let Some(h) = &d.spec.hostname {
                body["hostname"] = json!(h);
            }
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_sdk::backend::gantry::plugin::types::WorkloadSpec;

    fn deployment(n: usize) -> Deployment {
        let containers = (0..n)
            .map(|i| ContainerSpec::new(format!("c{i}"), "busybox"))
            .collect();
        Deployment {
            workload_id: "w".into(),
            revision: 2,
            name: "web".into(),
            spec: WorkloadSpec::new(containers),
            labels: vec![("io.gantry.workload".into(), "w".into())],
        }
    }

    #[test]
    fn a_lone_container_has_its_own_isolated_namespace() {
        let d = deployment(1);
        let b = container_body(&d, 0, None);
        assert_eq!(b["netns"]["nsmode"], "none");
        assert_eq!(b["name"], "gantry-web-r2-c0");
        assert_eq!(b["labels"]["io.gantry.container"], "c0");
        assert_eq!(b["labels"]["io.gantry.workload"], "w");
        assert_eq!(b["restart_policy"], "no");
    }

    #[test]
    fn pod_members_join_the_pod_and_limits_are_cfs() {
        let mut d = deployment(2);
        d.spec.containers[1].resources.cpu = Some(0.5);
        d.spec.containers[1].resources.memory_bytes = Some(64 << 20);
        let b = container_body(&d, 1, Some("p"));
        assert_eq!(b["pod"], "p");
        assert!(b.get("netns").is_none());
        assert_eq!(b["resource_limits"]["cpu"]["quota"], 50_000);
        assert_eq!(b["resource_limits"]["memory"]["limit"], 64 << 20);
        assert_eq!(pod_body(&d)["name"], "gantry-w-r2");
    }

    #[test]
    fn tiny_memory_is_invalid_before_anything_is_created() {
        let mut d = deployment(1);
        d.spec.containers[0].resources.memory_bytes = Some(1024);
        assert!(matches!(validate(&d), Err(Error::Invalid(_))));
    }
}
