//! A container of a deployment as a Swarm service spec: one replicated
//! service per container, `dnsrr` endpoints (no virtual IPs, no ingress
//! mesh), the task template carrying the container's settings, its limits
//! and reservations, the restart policy, placement from the container's
//! labels, and a rolling update that rolls back on failure.
//!
//! What a service cannot do is refused before anything is created:
//! privileged containers, devices, GPUs, host ports (no routing mesh, and
//! host-mode ports bind nothing on these nodes), bridge networking, a
//! domain name, swap limits.

use crate::model::labels;
use gantry_sdk::backend::exports::gantry::plugin::driver::Deployment;
use gantry_sdk::backend::gantry::plugin::config;
use gantry_sdk::backend::gantry::plugin::types::{
    ContainerSpec, Error, InvalidInput, LogDriver, NetworkMode, RestartKind, RestartPolicy,
};
use serde_json::{Map, Value, json};

/// Timings from the plugin's config, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// How long a stopped task gets before it is killed (`stop-grace-ms`, 10 s).
    pub stop_grace_ms: u64,
    /// Pause before the swarm restarts a task (`restart-delay-ms`, 5 s as Docker's).
    pub restart_delay_ms: u64,
    /// Tasks replaced at once in a rolling update (`update-parallelism`, 1).
    pub update_parallelism: u64,
    /// Pause between batches (`update-delay-ms`, 0).
    pub update_delay_ms: u64,
    /// How long an updated task is watched for failure (`update-monitor-ms`, 5 s).
    pub update_monitor_ms: u64,
}

/// A number from the plugin's config (`key`), or `default` when absent or
/// not a number.
pub fn setting(key: &str, default: u64) -> u64 {
    config::get(key)
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

impl Settings {
    /// The settings the config gives.
    pub fn configured() -> Self {
        Self {
            stop_grace_ms: setting("stop-grace-ms", 10_000),
            restart_delay_ms: setting("restart-delay-ms", 5_000),
            update_parallelism: setting("update-parallelism", 1),
            update_delay_ms: setting("update-delay-ms", 0),
            update_monitor_ms: setting("update-monitor-ms", 5_000),
        }
    }
}

const MS: u64 = 1_000_000;

fn unsupported(c: &ContainerSpec, what: &str) -> Error {
    Error::Unsupported(format!(
        "container `{}`: {what} is not available on a Swarm service",
        c.name
    ))
}

/// The service name of container `c` of a deployment called `name`: what
/// Swarm accepts (letters, digits and `-`, at most 63).
pub fn service_name(name: &str, container: &str) -> String {
    let raw = format!("{name}-{container}");
    let mut out = String::new();
    for ch in raw.chars() {
        let ch = if ch.is_ascii_alphanumeric() { ch } else { '-' };
        if !(ch == '-' && out.ends_with('-')) {
            out.push(ch);
        }
    }
    let out: String = out.trim_matches('-').chars().take(63).collect();
    out.trim_end_matches('-').to_string()
}

/// The overlay network a multi-container workload's services share.
pub fn network_name(workload_id: &str) -> String {
    let short: String = workload_id.chars().take(12).collect();
    format!("gantry-{short}")
}

/// Whether the deployment's containers share an overlay network.
pub fn needs_network(d: &Deployment) -> bool {
    d.spec.network == NetworkMode::Isolated && d.spec.containers.len() > 1
}

fn split_list(v: &str) -> Vec<String> {
    v.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn label<'a>(c: &'a ContainerSpec, key: &str) -> Option<&'a str> {
    c.labels
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Refuse what a service cannot honour, before anything is created.
pub fn check(d: &Deployment) -> Result<(), Error> {
    if d.spec.containers.is_empty() {
        return Err(Error::Invalid(InvalidInput {
            message: "a deployment needs at least one container".into(),
            fields: Vec::new(),
        }));
    }
    if d.spec.network == NetworkMode::Bridge {
        return Err(Error::Unsupported(
            "bridge networking: Swarm services join overlay networks; choose isolated or host"
                .into(),
        ));
    }
    if d.spec.domain_name.is_some() {
        return Err(Error::Unsupported(
            "a domain name: a Swarm service sets a hostname only".into(),
        ));
    }
    for c in &d.spec.containers {
        if c.privileged {
            return Err(unsupported(c, "a privileged container"));
        }
        if !c.devices.is_empty() {
            return Err(unsupported(c, "a device mapping"));
        }
        if c.gpu
            .as_ref()
            .is_some_and(|g| g.count > 0 || !g.device_ids.is_empty())
        {
            return Err(unsupported(c, "a GPU request"));
        }
        if c.ports.iter().any(|p| p.host_port.is_some()) {
            return Err(unsupported(
                c,
                "a host port (services are reached over their overlay network by name)",
            ));
        }
        if c.resources.memory_swap_bytes.is_some() {
            return Err(unsupported(c, "a swap limit"));
        }
        gantry_sdk::replicas::of(&c.labels).map_err(|e| {
            Error::Invalid(InvalidInput {
                message: format!("container `{}`: {e}", c.name),
                fields: Vec::new(),
            })
        })?;
    }
    Ok(())
}

/// Swarm's restart policy for the host's.
pub fn restart_policy(r: &RestartPolicy, s: &Settings) -> Value {
    let condition = match r.kind {
        RestartKind::No => "none",
        RestartKind::OnFailure => "on-failure",
        RestartKind::Always | RestartKind::UnlessStopped => "any",
    };
    let mut p = json!({"Condition": condition, "Delay": s.restart_delay_ms * MS});
    if r.kind == RestartKind::OnFailure {
        p["MaxAttempts"] = json!(r.max_retries);
        p["Window"] = json!(u64::from(r.retry_timeout_seconds) * 1_000 * MS);
    }
    p
}

fn resources(c: &ContainerSpec) -> Value {
    let mut limits = Map::new();
    if let Some(cpu) = c.resources.cpu {
        limits.insert("NanoCPUs".into(), json!((cpu * 1e9).round() as i64));
    }
    if let Some(m) = c.resources.memory_bytes {
        limits.insert("MemoryBytes".into(), json!(m));
    }
    if let Some(p) = c.resources.pids_limit {
        limits.insert("Pids".into(), json!(p));
    }
    let mut reservations = Map::new();
    if let Some(m) = c.resources.memory_reservation_bytes {
        reservations.insert("MemoryBytes".into(), json!(m));
    }
    json!({"Limits": limits, "Reservations": reservations})
}

fn log_driver(c: &ContainerSpec) -> Option<Value> {
    let l = c.log.as_ref()?;
    let mut options = Map::new();
    if let Some(n) = l.max_files {
        options.insert("max-file".into(), json!(n.to_string()));
    }
    if let Some(n) = l.max_size_bytes {
        options.insert("max-size".into(), json!(n.to_string()));
    }
    if let Some(n) = l.non_blocking_buffer_bytes {
        options.insert("mode".into(), json!("non-blocking"));
        options.insert("max-buffer-size".into(), json!(n.to_string()));
    }
    let name = match l.driver {
        LogDriver::JsonFile => "json-file",
        LogDriver::None => "none",
    };
    Some(json!({"Name": name, "Options": options}))
}

/// The labels every object of container `index` of `d` carries.
pub fn object_labels(d: &Deployment, index: usize, replicas: u32) -> Map<String, Value> {
    let c = &d.spec.containers[index];
    let mut l: Map<String, Value> = d
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    l.insert(labels::CONTAINER.into(), json!(c.name));
    l.insert(labels::INDEX.into(), json!(index.to_string()));
    l.insert(labels::REPLICAS.into(), json!(replicas.to_string()));
    l
}

/// The spec of the service running container `index` of `d`, at `scale`
/// replicas (0 while not started), in `life`.
pub fn spec(d: &Deployment, index: usize, scale: u32, life: &str, s: &Settings) -> Value {
    let c = &d.spec.containers[index];
    let replicas = gantry_sdk::replicas::of(&c.labels).unwrap_or(1);
    let mut service_labels = object_labels(d, index, replicas);
    service_labels.insert(labels::LIFE.into(), json!(life));
    let mut container_labels: Map<String, Value> = c
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    container_labels.extend(object_labels(d, index, replicas));

    let mut cs = json!({
        "Image": c.image,
        "Labels": container_labels,
        "Env": c.env.iter().map(|e| format!("{}={}", e.name, e.value)).collect::<Vec<_>>(),
        "TTY": c.tty,
        "OpenStdin": c.open_stdin,
        "StopGracePeriod": s.stop_grace_ms * MS,
        "Hosts": d.spec.extra_hosts.iter().filter_map(|h| {
            let (name, ip) = h.split_once(':')?;
            Some(format!("{ip} {name}"))
        }).collect::<Vec<_>>(),
        "Mounts": c.mounts.iter().map(|m| {
            let mut mount = json!({"Type": "bind", "Source": m.source, "Target": m.destination, "ReadOnly": m.read_only});
            if let Some(p) = &m.propagation {
                mount["BindOptions"] = json!({"Propagation": p});
            }
            mount
        }).collect::<Vec<_>>(),
    });
    if let Some(cmd) = &c.command {
        cs["Command"] = json!(cmd);
    }
    if let Some(args) = &c.args {
        cs["Args"] = json!(args);
    }
    if let Some(dir) = &c.working_dir {
        cs["Dir"] = json!(dir);
    }
    if let Some(h) = &d.spec.hostname {
        cs["Hostname"] = json!(h);
    }
    if !c.extra_capabilities.is_empty() {
        cs["CapabilityAdd"] = json!(
            c.extra_capabilities
                .iter()
                .map(|cap| if cap.starts_with("CAP_") {
                    cap.clone()
                } else {
                    format!("CAP_{cap}")
                })
                .collect::<Vec<_>>()
        );
    }

    let mut placement = Map::new();
    if let Some(v) = label(c, gantry_sdk::labels::PLACEMENT_CONSTRAINTS) {
        placement.insert("Constraints".into(), json!(split_list(v)));
    }
    if let Some(v) = label(c, gantry_sdk::labels::PLACEMENT_SPREAD) {
        let prefs: Vec<Value> = split_list(v)
            .into_iter()
            .map(|d| json!({"Spread": {"SpreadDescriptor": d}}))
            .collect();
        placement.insert("Preferences".into(), json!(prefs));
    }

    let mut template = json!({
        "ContainerSpec": cs,
        "Resources": resources(c),
        "RestartPolicy": restart_policy(&d.spec.restart, s),
        "Placement": placement,
    });
    match d.spec.network {
        NetworkMode::Host => template["Networks"] = json!([{"Target": "host"}]),
        _ if needs_network(d) => {
            template["Networks"] = json!([{
                "Target": network_name(&d.workload_id),
                "Aliases": [c.name],
            }])
        }
        _ => {}
    }
    if let Some(l) = log_driver(c) {
        template["LogDriver"] = l;
    }
    let update = json!({
        "Parallelism": s.update_parallelism,
        "Delay": s.update_delay_ms * MS,
        "FailureAction": "rollback",
        "Monitor": s.update_monitor_ms * MS,
        "MaxFailureRatio": 0,
        "Order": "stop-first",
    });
    let rollback = json!({
        "Parallelism": 0,
        "Delay": 0,
        "FailureAction": "pause",
        "Monitor": s.update_monitor_ms * MS,
        "MaxFailureRatio": 0,
        "Order": "stop-first",
    });
    json!({
        "Name": service_name(&d.name, &c.name),
        "Labels": service_labels,
        "TaskTemplate": template,
        "Mode": {"Replicated": {"Replicas": scale}},
        "UpdateConfig": update,
        "RollbackConfig": rollback,
        "EndpointSpec": {"Mode": "dnsrr"},
    })
}

#[cfg(test)]
mod tests;
