//! Kanto's container configuration (`createWithConfig`'s `config`, the
//! twin's `status/config`) and the workload spec it stands for. Enums are
//! accepted in any case (`always`, `ON_FAILURE`, `on-failure`) and reported
//! in UPPER_SNAKE, as Kanto's twin does.

use crate::envelope::Failure;
use crate::policy::Policy;
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
    /// Keys for encrypted images: refused (gantry pulls no encrypted image).
    decryption: Option<Value>,
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
    /// Where Kanto writes log files: refused (the runtime keeps them).
    root_dir: Option<String>,
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

/// The workload spec of a container created from `image` with `config`,
/// within what `policy` grants.
pub fn spec(
    name: &str,
    image: &str,
    config: ContainerConfig,
    policy: &Policy,
) -> Result<WorkloadSpec, Failure> {
    if image.trim().is_empty() {
        return Err(Failure::invalid("imageRef is required"));
    }
    if config.decryption.as_ref().is_some_and(|d| !d.is_null()) {
        return Err(Failure::invalid(
            "decryption is not supported: gantry runs no encrypted image",
        ));
    }
    if config.privileged == Some(true) {
        policy.check_privileged()?;
    }
    for cap in config.extra_capabilities.iter().flatten() {
        policy.check_capability(cap)?;
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
        // Kanto's bridge is a namespace of the container's own; gantry's is
        // loopback-only (no bridge, no route out), and the host forwards
        // published ports into it.
        None | Some("BRIDGE") => NetworkMode::Isolated,
        Some("HOST") => {
            policy.check_host_network()?;
            NetworkMode::Host
        }
        Some(other) => {
            return Err(Failure::invalid(format!(
                "networkMode `{other}` is not one of BRIDGE, HOST"
            )));
        }
    };
    let extra_hosts = extra_hosts(config.extra_hosts.unwrap_or_default(), network)?;
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
        let host_port = port(p.host_port, "portMappings.hostPort")?;
        let host_port_end = port(p.host_port_end, "portMappings.hostPortEnd")?;
        if host_port_end.is_some_and(|end| Some(end) != host_port) {
            return Err(Failure::invalid(
                "portMappings.hostPortEnd: host port ranges are not supported; map each port",
            ));
        }
        if host_port.is_some() && protocol != PortProtocol::Tcp {
            return Err(Failure::invalid(
                "portMappings: only tcp ports are published from the container's namespace",
            ));
        }
        let host_ip = p.host_ip.filter(|s| !s.is_empty());
        if let Some(ip) = &host_ip
            && ip.parse::<std::net::IpAddr>().is_err()
        {
            return Err(Failure::invalid(format!(
                "portMappings.hostIP `{ip}` is not an IP address"
            )));
        }
        ports.push(PortMapping {
            container_port,
            protocol,
            host_port,
            host_port_end: None,
            host_ip,
        });
    }
    let log = match config.log {
        None => None,
        Some(l) if l.root_dir.as_ref().is_some_and(|d| !d.is_empty()) => {
            return Err(Failure::invalid(
                "log.rootDir is not supported: the runtime keeps the log files",
            ));
        }
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
            mounts: mounts(config.mount_points.unwrap_or_default(), policy)?,
            devices: devices(config.devices.unwrap_or_default(), policy)?,
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
        extra_hosts,
    })
}

/// `extraHosts` entries, `name:ip`; Kanto's `host_ip` stands for the host,
/// which only the host's own network reaches (as 127.0.0.1).
fn extra_hosts(entries: Vec<String>, network: NetworkMode) -> Result<Vec<String>, Failure> {
    let mut out = Vec::new();
    for e in entries {
        let Some((name, ip)) = e
            .split_once(':')
            .filter(|(n, i)| !n.is_empty() && !i.is_empty())
        else {
            return Err(Failure::invalid(format!(
                "extraHosts `{e}` is not `<name>:<ip>`"
            )));
        };
        let ip = match ip {
            "host_ip" if network == NetworkMode::Host => "127.0.0.1",
            "host_ip" => {
                return Err(Failure::invalid(
                    "extraHosts: `host_ip` needs networkMode HOST: the container's own namespace has no route to the host",
                ));
            }
            ip if ip.parse::<std::net::IpAddr>().is_ok() => ip,
            ip => {
                return Err(Failure::invalid(format!(
                    "extraHosts `{e}`: `{ip}` is not an IP address"
                )));
            }
        };
        out.push(format!("{name}:{ip}"));
    }
    Ok(out)
}

const PROPAGATION: [&str; 6] = [
    "rprivate", "private", "rshared", "shared", "rslave", "slave",
];

fn mounts(points: Vec<MountPoint>, policy: &Policy) -> Result<Vec<Mount>, Failure> {
    let mut out = Vec::new();
    for m in points {
        policy.check_mount(&m.source)?;
        crate::policy::plain_absolute("mountPoints.destination", &m.destination)?;
        let propagation = match m.propagation_mode.map(|p| p.to_ascii_lowercase()) {
            None => None,
            Some(p) if PROPAGATION.contains(&p.as_str()) => Some(p),
            Some(p) => {
                return Err(Failure::invalid(format!(
                    "mountPoints.propagationMode `{p}` is not one of {}",
                    PROPAGATION.join(", ").to_ascii_uppercase()
                )));
            }
        };
        out.push(Mount {
            source: m.source,
            destination: m.destination,
            read_only: false,
            propagation,
        });
    }
    Ok(out)
}

fn devices(devices: Vec<Device>, policy: &Policy) -> Result<Vec<DeviceMapping>, Failure> {
    let mut out = Vec::new();
    for d in devices {
        policy.check_device(&d.path_on_host)?;
        crate::policy::plain_absolute("devices.pathInContainer", &d.path_in_container)?;
        let permissions = d
            .cgroup_permissions
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "rwm".into());
        if !permissions.chars().all(|c| "rwm".contains(c)) {
            return Err(Failure::invalid(format!(
                "devices.cgroupPermissions `{permissions}` is not made of r, w and m"
            )));
        }
        out.push(DeviceMapping {
            path_on_host: d.path_on_host,
            path_in_container: d.path_in_container,
            cgroup_permissions: permissions,
        });
    }
    Ok(out)
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

/// The twin's `status/config` for a spec (its first container), shaped as
/// Kanto's: empty lists, false flags and zero counts are left out.
pub fn twin_config(spec: &WorkloadSpec) -> Value {
    let mut c = Map::new();
    let Some(first) = spec.containers.first() else {
        return Value::Object(c);
    };
    let mut put = |key: &str, v: Value| {
        let empty = match &v {
            Value::Null | Value::Bool(false) => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            Value::Number(_) | Value::Bool(true) => false,
        };
        if !empty {
            c.insert(key.into(), v);
        }
    };
    put("domainName", json!(spec.domain_name));
    put("hostName", json!(spec.hostname));
    put(
        "env",
        first
            .env
            .iter()
            .filter(|e| !e.secret)
            .map(|e| format!("{}={}", e.name, e.value))
            .collect(),
    );
    put("cmd", json!(first.args.clone().unwrap_or_default()));
    put("extraHosts", json!(spec.extra_hosts));
    if !first.privileged {
        put("extraCapabilities", json!(first.extra_capabilities));
    }
    put("privileged", first.privileged.into());
    put("openStdin", first.open_stdin.into());
    put("tty", first.tty.into());
    put(
        "networkMode",
        match spec.network {
            NetworkMode::Host => "HOST",
            _ => "BRIDGE",
        }
        .into(),
    );
    put(
        "mountPoints",
        first
            .mounts
            .iter()
            .map(|m| json!({"source": m.source, "destination": m.destination, "propagationMode": m.propagation.clone().unwrap_or_else(|| "rprivate".into()).to_ascii_uppercase()}))
            .collect(),
    );
    put(
        "devices",
        first
            .devices
            .iter()
            .map(|d| json!({"pathOnHost": d.path_on_host, "pathInContainer": d.path_in_container, "cgroupPermissions": d.cgroup_permissions}))
            .collect(),
    );
    let mut restart = Map::new();
    restart.insert("type".into(), restart_kind(spec.restart.kind).into());
    if spec.restart.max_retries > 0 {
        restart.insert("maxRetryCount".into(), spec.restart.max_retries.into());
    }
    if spec.restart.retry_timeout_seconds > 0 {
        restart.insert(
            "retryTimeout".into(),
            spec.restart.retry_timeout_seconds.into(),
        );
    }
    put("restartPolicy", Value::Object(restart));
    put(
        "portMappings",
        first.ports.iter().map(port_mapping).collect(),
    );
    let log = first.log.as_ref();
    let mut l = Map::new();
    l.insert(
        "type".into(),
        if log.is_some_and(|l| l.driver == LogDriver::None) {
            "NONE"
        } else {
            "JSON_FILE"
        }
        .into(),
    );
    l.insert(
        "maxFiles".into(),
        log.and_then(|l| l.max_files).unwrap_or(2).into(),
    );
    l.insert(
        "maxSize".into(),
        size_text(log.and_then(|l| l.max_size_bytes).unwrap_or(100 << 20)).into(),
    );
    match log.and_then(|l| l.non_blocking_buffer_bytes) {
        Some(b) => {
            l.insert("mode".into(), "NON_BLOCKING".into());
            l.insert("maxBufferSize".into(), size_text(b).into());
        }
        None => {
            l.insert("mode".into(), "BLOCKING".into());
        }
    }
    put("log", Value::Object(l));
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
    put("resources", Value::Object(res));
    Value::Object(c)
}

/// A port mapping as Kanto reports it (`hostPort` always, 0 for none).
fn port_mapping(p: &PortMapping) -> Value {
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
    m.insert("hostPort".into(), p.host_port.unwrap_or(0).into());
    if let Some(h) = p.host_port_end {
        m.insert("hostPortEnd".into(), h.into());
    }
    m.insert("containerPort".into(), p.container_port.into());
    if let Some(ip) = &p.host_ip {
        m.insert("hostIP".into(), ip.clone().into());
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lower_case_enums_in_upper_snake_out() {
        let config: ContainerConfig = serde_json::from_value(json!({
            "env": ["A=1", "B"],
            "restartPolicy": {"type": "on-failure", "maxRetryCount": 3, "timeout": 30},
            "portMappings": [{"proto": "udp", "containerPort": 53}],
            "log": {"type": "json-file", "maxFiles": 3, "maxSize": "10M", "mode": "non-blocking"},
            "resources": {"memory": "500M", "memorySwap": "-1"}
        }))
        .expect("a config");
        let s = spec("app", "example/app:1", config, &Policy::default()).expect("valid");
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
    fn what_the_namespace_cannot_honour_is_refused() {
        for bad in [
            json!({"portMappings": [{"proto": "udp", "containerPort": 53, "hostPort": 5353}]}),
            json!({"portMappings": [{"containerPort": 80, "hostPort": 8000, "hostPortEnd": 8010}]}),
            json!({"extraHosts": ["ctrhost:host_ip"]}),
            json!({"extraHosts": ["no-address"]}),
            json!({"decryption": {"keys": ["k"]}}),
            json!({"log": {"rootDir": "/var/log/x"}}),
            json!({"privileged": true}),
            json!({"devices": [{"pathOnHost": "/dev/zero", "pathInContainer": "/dev/zero"}]}),
            json!({"extraCapabilities": ["SYS_ADMIN"]}),
        ] {
            let config: ContainerConfig = serde_json::from_value(bad.clone()).expect("parses");
            let refused = spec("a", "x:1", config, &Policy::default()).map_err(|f| f.status);
            assert_eq!(refused.err(), Some(400), "{bad}");
        }
        let host: ContainerConfig = serde_json::from_value(
            json!({"networkMode": "host", "extraHosts": ["ctrhost:host_ip"]}),
        )
        .expect("parses");
        assert!(
            spec(
                "a",
                "x:1",
                serde_json::from_value(json!({"networkMode": "host"})).expect("parses"),
                &Policy::default()
            )
            .is_err()
        );
        let s = spec("a", "x:1", host, &Policy::default().with_host_network()).expect("valid");
        assert_eq!(s.extra_hosts, vec!["ctrhost:127.0.0.1"]);
    }

    #[test]
    fn unknown_enum_values_and_fields_are_refused() {
        let bad: Result<ContainerConfig, _> = serde_json::from_value(json!({"colour": "red"}));
        assert!(bad.is_err());
        let config: ContainerConfig =
            serde_json::from_value(json!({"networkMode": "overlay"})).expect("parses");
        assert_eq!(
            spec("a", "x:1", config, &Policy::default())
                .map_err(|f| f.status)
                .err(),
            Some(400)
        );
    }
}
