//! Kanto's container configuration (`createWithConfig`'s `config`, the
//! twin's `status/config`) and the workload spec it stands for. Enums are
//! accepted in any case (`always`, `ON_FAILURE`, `on-failure`) and reported
//! in UPPER_SNAKE, as Kanto's twin does.

use crate::envelope::Failure;
use gantry_sdk::mqtt_frontend::gantry::plugin::types::{
    ContainerSpec, DeviceMapping, EnvVar, LogConfig, LogDriver, Mount, NetworkMode, PortMapping,
    PortProtocol, Resources, RestartKind, RestartPolicy, WorkloadSpec,
};
use gantry_sdk::units::parse_bytes;
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// `config` of `createWithConfig`; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerConfig {
    domain_name: Option<String>,
    host_name: Option<String>,
    env: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    extra_hosts: Option<Vec<String>>,
    extra_capabilities: Option<Vec<String>>,
    privileged: Option<bool>,
    open_stdin: Option<bool>,
    tty: Option<bool>,
    network_mode: Option<String>,
    mount_points: Option<Vec<MountPoint>>,
    devices: Option<Vec<Device>>,
    /// Restart policy.
    pub restart_policy: Option<RestartPolicyConfig>,
    port_mappings: Option<Vec<PortMappingConfig>>,
    log: Option<LogConfigJson>,
    /// Memory settings.
    pub resources: Option<ResourcesConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MountPoint {
    source: String,
    destination: String,
    propagation_mode: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Device {
    path_on_host: String,
    path_in_container: String,
    cgroup_permissions: Option<String>,
}

/// `restartPolicy`; `timeout` is the seed's spelling of `retryTimeout`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RestartPolicyConfig {
    #[serde(rename = "type")]
    kind: Option<String>,
    max_retry_count: Option<i64>,
    #[serde(alias = "timeout")]
    retry_timeout: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct PortMappingConfig {
    proto: Option<String>,
    host_port: Option<i64>,
    host_port_end: Option<i64>,
    container_port: i64,
    #[serde(rename = "hostIP", alias = "hostIp")]
    host_ip: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LogConfigJson {
    #[serde(rename = "type")]
    kind: Option<String>,
    max_files: Option<i64>,
    max_size: Option<String>,
    mode: Option<String>,
    max_buffer_size: Option<String>,
}

/// `resources`: Docker-style sizes ("500M").
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourcesConfig {
    memory: Option<String>,
    memory_reservation: Option<String>,
    memory_swap: Option<String>,
}

fn norm(s: &str) -> String {
    s.to_ascii_uppercase().replace('-', "_")
}

/// A restart policy from its Kanto form.
pub fn restart_policy(p: &RestartPolicyConfig) -> Result<RestartPolicy, Failure> {
    let kind = match p.kind.as_deref().map(norm).as_deref() {
        None | Some("NO") => RestartKind::No,
        Some("ALWAYS") => RestartKind::Always,
        Some("ON_FAILURE") => RestartKind::OnFailure,
        Some("UNLESS_STOPPED") => RestartKind::UnlessStopped,
        Some(other) => {
            return Err(Failure::invalid(format!(
                "restartPolicy.type `{other}` is not one of ALWAYS, ON_FAILURE, UNLESS_STOPPED, NO"
            )));
        }
    };
    // Kanto's "unset" sentinels are negative (-1 << 31, -1 << 63).
    let non_negative = |v: Option<i64>| u32::try_from(v.unwrap_or(0).max(0)).unwrap_or(u32::MAX);
    Ok(RestartPolicy {
        kind,
        max_retries: non_negative(p.max_retry_count),
        retry_timeout_seconds: non_negative(p.retry_timeout),
    })
}

fn size(field: &str, v: &Option<String>) -> Result<Option<u64>, Failure> {
    match v.as_deref() {
        None | Some("") => Ok(None),
        Some(s) => parse_bytes(s)
            .map(Some)
            .map_err(|e| Failure::invalid(format!("{field}: {e}"))),
    }
}

/// Memory settings from their Kanto form, over `base`.
pub fn resources(r: &ResourcesConfig, base: &Resources) -> Result<Resources, Failure> {
    let mut out = *base;
    if let Some(v) = size("resources.memory", &r.memory)? {
        out.memory_bytes = Some(v);
    }
    if let Some(v) = size("resources.memoryReservation", &r.memory_reservation)? {
        out.memory_reservation_bytes = Some(v);
    }
    match r.memory_swap.as_deref() {
        Some("-1") => out.memory_swap_bytes = Some(-1),
        _ => {
            if let Some(v) = size("resources.memorySwap", &r.memory_swap)? {
                out.memory_swap_bytes = Some(i64::try_from(v).unwrap_or(i64::MAX));
            }
        }
    }
    Ok(out)
}

fn port(v: Option<i64>, field: &str) -> Result<Option<u16>, Failure> {
    match v {
        None | Some(0) => Ok(None),
        Some(n) => u16::try_from(n)
            .map(Some)
            .map_err(|_| Failure::invalid(format!("{field}: {n} is not a port"))),
    }
}

/// The workload spec of a container created from `image` with `config`.
pub fn spec(name: &str, image: &str, config: ContainerConfig) -> Result<WorkloadSpec, Failure> {
    if image.trim().is_empty() {
        return Err(Failure::invalid("imageRef is required"));
    }
    let mut env = Vec::new();
    for e in config.env.unwrap_or_default() {
        let (k, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
        env.push(EnvVar {
            name: k.to_string(),
            value: v.to_string(),
            secret: false,
        });
    }
    let network = match config.network_mode.as_deref().map(norm).as_deref() {
        // Kanto's default is the bridge; gantry's is a private loopback-only
        // namespace, so only what is asked for is exposed.
        None => NetworkMode::Isolated,
        Some("BRIDGE") => NetworkMode::Bridge,
        Some("HOST") => NetworkMode::Host,
        Some(other) => {
            return Err(Failure::invalid(format!(
                "networkMode `{other}` is not one of BRIDGE, HOST"
            )));
        }
    };
    let mut ports = Vec::new();
    for p in config.port_mappings.unwrap_or_default() {
        let protocol = match p.proto.as_deref().map(norm).as_deref() {
            None | Some("TCP") => PortProtocol::Tcp,
            Some("UDP") => PortProtocol::Udp,
            Some("SCTP") => PortProtocol::Sctp,
            Some(other) => {
                return Err(Failure::invalid(format!(
                    "portMappings.proto `{other}` is not one of tcp, udp, sctp"
                )));
            }
        };
        let container_port = port(Some(p.container_port), "portMappings.containerPort")?
            .ok_or_else(|| Failure::invalid("portMappings.containerPort is required"))?;
        ports.push(PortMapping {
            container_port,
            protocol,
            host_port: port(p.host_port, "portMappings.hostPort")?,
            host_port_end: port(p.host_port_end, "portMappings.hostPortEnd")?,
            host_ip: p.host_ip.filter(|s| !s.is_empty()),
        });
    }
    let log = match config.log {
        None => None,
        Some(l) => Some(LogConfig {
            driver: match l.kind.as_deref().map(norm).as_deref() {
                None | Some("JSON_FILE") => LogDriver::JsonFile,
                Some("NONE") => LogDriver::None,
                Some(other) => {
                    return Err(Failure::invalid(format!(
                        "log.type `{other}` is not one of JSON_FILE, NONE"
                    )));
                }
            },
            max_files: l
                .max_files
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0),
            max_size_bytes: size("log.maxSize", &l.max_size)?,
            non_blocking_buffer_bytes: match l.mode.as_deref().map(norm).as_deref() {
                None | Some("BLOCKING") => None,
                Some("NON_BLOCKING") => {
                    Some(size("log.maxBufferSize", &l.max_buffer_size)?.unwrap_or(1 << 20))
                }
                Some(other) => {
                    return Err(Failure::invalid(format!(
                        "log.mode `{other}` is not one of BLOCKING, NON_BLOCKING"
                    )));
                }
            },
        }),
    };
    let resources = match &config.resources {
        Some(r) => resources(r, &Resources::default())?,
        None => Resources::default(),
    };
    let restart = match &config.restart_policy {
        Some(p) => restart_policy(p)?,
        None => RestartPolicy::default(),
    };
    Ok(WorkloadSpec {
        containers: vec![ContainerSpec {
            args: config.cmd.filter(|c| !c.is_empty()),
            env,
            ports,
            resources,
            mounts: config
                .mount_points
                .unwrap_or_default()
                .into_iter()
                .map(|m| Mount {
                    source: m.source,
                    destination: m.destination,
                    read_only: false,
                    propagation: m.propagation_mode.map(|p| p.to_ascii_lowercase()),
                })
                .collect(),
            devices: config
                .devices
                .unwrap_or_default()
                .into_iter()
                .map(|d| DeviceMapping {
                    path_on_host: d.path_on_host,
                    path_in_container: d.path_in_container,
                    cgroup_permissions: d.cgroup_permissions.unwrap_or_else(|| "rwm".into()),
                })
                .collect(),
            privileged: config.privileged.unwrap_or(false),
            extra_capabilities: config.extra_capabilities.unwrap_or_default(),
            tty: config.tty.unwrap_or(false),
            open_stdin: config.open_stdin.unwrap_or(false),
            log,
            ..ContainerSpec::new(name, image.trim())
        }],
        restart,
        network,
        hostname: config.host_name.filter(|s| !s.is_empty()),
        domain_name: config.domain_name.filter(|s| !s.is_empty()),
        extra_hosts: config.extra_hosts.unwrap_or_default(),
    })
}

fn restart_kind(k: RestartKind) -> &'static str {
    match k {
        RestartKind::No => "NO",
        RestartKind::Always => "ALWAYS",
        RestartKind::OnFailure => "ON_FAILURE",
        RestartKind::UnlessStopped => "UNLESS_STOPPED",
    }
}

/// Docker-style size, as Kanto reports it ("500M").
fn size_text(bytes: u64) -> String {
    for (unit, factor) in [("G", 1u64 << 30), ("M", 1 << 20), ("k", 1 << 10)] {
        if bytes >= factor && bytes.is_multiple_of(factor) {
            return format!("{}{unit}", bytes / factor);
        }
    }
    bytes.to_string()
}

/// The twin's `status/config` for a spec (its first container).
pub fn twin_config(spec: &WorkloadSpec) -> Value {
    let mut c = Map::new();
    let Some(first) = spec.containers.first() else {
        return Value::Object(c);
    };
    if let Some(d) = &spec.domain_name {
        c.insert("domainName".into(), d.clone().into());
    }
    if let Some(h) = &spec.hostname {
        c.insert("hostName".into(), h.clone().into());
    }
    c.insert(
        "env".into(),
        first
            .env
            .iter()
            .filter(|e| !e.secret)
            .map(|e| format!("{}={}", e.name, e.value))
            .collect(),
    );
    c.insert("cmd".into(), json!(first.args.clone().unwrap_or_default()));
    c.insert("extraHosts".into(), json!(spec.extra_hosts));
    c.insert("extraCapabilities".into(), json!(first.extra_capabilities));
    c.insert("privileged".into(), first.privileged.into());
    c.insert("openStdin".into(), first.open_stdin.into());
    c.insert("tty".into(), first.tty.into());
    c.insert(
        "networkMode".into(),
        match spec.network {
            NetworkMode::Host => "HOST",
            _ => "BRIDGE",
        }
        .into(),
    );
    c.insert(
        "mountPoints".into(),
        first
            .mounts
            .iter()
            .map(|m| json!({"source": m.source, "destination": m.destination, "propagationMode": m.propagation.clone().unwrap_or_else(|| "rprivate".into()).to_ascii_uppercase()}))
            .collect(),
    );
    c.insert(
        "devices".into(),
        first
            .devices
            .iter()
            .map(|d| json!({"pathOnHost": d.path_on_host, "pathInContainer": d.path_in_container, "cgroupPermissions": d.cgroup_permissions}))
            .collect(),
    );
    c.insert(
        "restartPolicy".into(),
        json!({
            "type": restart_kind(spec.restart.kind),
            "maxRetryCount": spec.restart.max_retries,
            "retryTimeout": spec.restart.retry_timeout_seconds,
        }),
    );
    c.insert(
        "portMappings".into(),
        first
            .ports
            .iter()
            .map(|p| {
                let mut m = Map::new();
                m.insert(
                    "proto".into(),
                    match p.protocol {
                        PortProtocol::Tcp => "tcp",
                        PortProtocol::Udp => "udp",
                        PortProtocol::Sctp => "sctp",
                    }
                    .into(),
                );
                m.insert("containerPort".into(), p.container_port.into());
                if let Some(h) = p.host_port {
                    m.insert("hostPort".into(), h.into());
                }
                if let Some(h) = p.host_port_end {
                    m.insert("hostPortEnd".into(), h.into());
                }
                if let Some(ip) = &p.host_ip {
                    m.insert("hostIP".into(), ip.clone().into());
                }
                Value::Object(m)
            })
            .collect(),
    );
    let log = first.log.as_ref();
    c.insert(
        "log".into(),
        json!({
            "type": if log.is_some_and(|l| l.driver == LogDriver::None) { "NONE" } else { "JSON_FILE" },
            "maxFiles": log.and_then(|l| l.max_files).unwrap_or(2),
            "maxSize": size_text(log.and_then(|l| l.max_size_bytes).unwrap_or(100 << 20)),
            "mode": if log.and_then(|l| l.non_blocking_buffer_bytes).is_some() { "NON_BLOCKING" } else { "BLOCKING" },
        }),
    );
    let mut res = Map::new();
    if let Some(m) = first.resources.memory_bytes {
        res.insert("memory".into(), size_text(m).into());
    }
    if let Some(m) = first.resources.memory_reservation_bytes {
        res.insert("memoryReservation".into(), size_text(m).into());
    }
    if let Some(m) = first.resources.memory_swap_bytes {
        res.insert(
            "memorySwap".into(),
            if m < 0 {
                "-1".to_string()
            } else {
                size_text(m.unsigned_abs())
            }
            .into(),
        );
    }
    c.insert("resources".into(), Value::Object(res));
    Value::Object(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_case_enums_in_upper_snake_out() {
        let config: ContainerConfig = serde_json::from_value(json!({
            "env": ["A=1", "B"],
            "restartPolicy": {"type": "on-failure", "maxRetryCount": 3, "timeout": 30},
            "portMappings": [{"proto": "udp", "containerPort": 53, "hostPort": 5353}],
            "log": {"type": "json-file", "maxFiles": 3, "maxSize": "10M", "mode": "non-blocking"},
            "resources": {"memory": "500M", "memorySwap": "-1"}
        }))
        .expect("a config");
        let s = spec("app", "example/app:1", config).expect("valid");
        assert_eq!(s.restart.kind, RestartKind::OnFailure);
        assert_eq!(
            (s.restart.max_retries, s.restart.retry_timeout_seconds),
            (3, 30)
        );
        let c = &s.containers[0];
        assert_eq!(c.resources.memory_bytes, Some(500 << 20));
        assert_eq!(c.env[1].value, "");
        let twin = twin_config(&s);
        assert_eq!(twin["restartPolicy"]["type"], "ON_FAILURE");
        assert_eq!(twin["log"]["type"], "JSON_FILE");
        assert_eq!(twin["log"]["mode"], "NON_BLOCKING");
        assert_eq!(twin["resources"]["memory"], "500M");
        assert_eq!(twin["resources"]["memorySwap"], "-1");
        assert_eq!(twin["portMappings"][0]["proto"], "udp");
    }

    #[test]
    fn unknown_enum_values_and_fields_are_refused() {
        let bad: Result<ContainerConfig, _> = serde_json::from_value(json!({"colour": "red"}));
        assert!(bad.is_err());
        let config: ContainerConfig =
            serde_json::from_value(json!({"networkMode": "overlay"})).expect("parses");
        assert_eq!(
            spec("a", "x:1", config).map_err(|f| f.status).err(),
            Some(400)
        );
    }
}
