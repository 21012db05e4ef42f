//! Kanto's container descriptor, the artifact a module installs: Kanto's
//! own snake_case container JSON (`containerm/containers/types`), read
//! into the same container `createWithConfig` makes, under the same
//! grants. Fields describing a container's runtime state (`state`,
//! `created`, `network_settings`...) are ignored, as Kanto ignores them.

use super::{ArtifactAction, Stop};
use crate::policy::Policy;
use gantry_sdk::mqtt_frontend::gantry::plugin::types::WorkloadSpec;
use serde::Deserialize;
use serde_json::{Map, Value, json};

#[derive(Debug, Deserialize)]
struct Descriptor {
    container_name: Option<String>,
    image: Image,
    domain_name: Option<String>,
    host_name: Option<String>,
    #[serde(default)]
    mount_points: Vec<MountPoint>,
    config: Option<Config>,
    host_config: Option<HostConfig>,
    io_config: Option<IoConfig>,
}

#[derive(Debug, Deserialize)]
struct Image {
    name: String,
    decrypt_config: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct MountPoint {
    source: String,
    destination: String,
    propagation_mode: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Config {
    env: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
struct IoConfig {
    open_stdin: Option<bool>,
    tty: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
struct HostConfig {
    #[serde(default)]
    devices: Vec<DeviceMapping>,
    network_mode: Option<String>,
    privileged: Option<bool>,
    restart_policy: Option<RestartPolicy>,
    extra_hosts: Option<Vec<String>>,
    extra_capabilities: Option<Vec<String>>,
    #[serde(default)]
    port_mappings: Vec<PortMapping>,
    log_config: Option<LogConfig>,
    resources: Option<Resources>,
}

#[derive(Debug, Deserialize)]
struct DeviceMapping {
    path_on_host: String,
    path_in_container: String,
    cgroup_permissions: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RestartPolicy {
    #[serde(rename = "type")]
    kind: Option<String>,
    maximum_retry_count: Option<i64>,
    /// A Go duration: nanoseconds.
    retry_timeout: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct PortMapping {
    proto: Option<String>,
    container_port: i64,
    host_ip: Option<String>,
    host_port: Option<i64>,
    host_port_end: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct LogConfig {
    driver_config: Option<LogDriver>,
    mode_config: Option<LogMode>,
}

#[derive(Debug, Deserialize)]
struct LogDriver {
    #[serde(rename = "type")]
    kind: Option<String>,
    max_files: Option<i64>,
    max_size: Option<String>,
    root_dir: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LogMode {
    mode: Option<String>,
    max_buffer_size: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Resources {
    memory: Option<String>,
    memory_reservation: Option<String>,
    memory_swap: Option<String>,
}

/// Insert `value` under `key` unless it is absent.
fn set(m: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value.filter(|v| !v.is_null()) {
        m.insert(key.into(), v);
    }
}

/// `createWithConfig`'s `config` for a descriptor.
fn create_config(d: &Descriptor) -> Value {
    let mut c = Map::new();
    set(&mut c, "domainName", d.domain_name.clone().map(Value::from));
    set(&mut c, "hostName", d.host_name.clone().map(Value::from));
    if !d.mount_points.is_empty() {
        let points = d.mount_points.iter().map(|m| {
            json!({"source": m.source, "destination": m.destination, "propagationMode": m.propagation_mode})
        });
        c.insert("mountPoints".into(), points.collect());
    }
    if let Some(cfg) = &d.config {
        set(&mut c, "env", cfg.env.clone().map(Value::from));
        set(&mut c, "cmd", cfg.cmd.clone().map(Value::from));
    }
    if let Some(io) = &d.io_config {
        set(&mut c, "openStdin", io.open_stdin.map(Value::from));
        set(&mut c, "tty", io.tty.map(Value::from));
    }
    set(&mut c, "decryption", d.image.decrypt_config.clone());
    let Some(h) = &d.host_config else {
        return Value::Object(c);
    };
    if !h.devices.is_empty() {
        let devices = h.devices.iter().map(|x| {
            json!({"pathOnHost": x.path_on_host, "pathInContainer": x.path_in_container, "cgroupPermissions": x.cgroup_permissions})
        });
        c.insert("devices".into(), devices.collect());
    }
    set(
        &mut c,
        "networkMode",
        h.network_mode
            .clone()
            .filter(|n| !n.is_empty())
            .map(Value::from),
    );
    set(&mut c, "privileged", h.privileged.map(Value::from));
    if let Some(r) = &h.restart_policy {
        c.insert(
            "restartPolicy".into(),
            json!({
                "type": r.kind,
                "maxRetryCount": r.maximum_retry_count,
                "retryTimeout": r.retry_timeout.map(|ns| ns / 1_000_000_000),
            }),
        );
    }
    set(&mut c, "extraHosts", h.extra_hosts.clone().map(Value::from));
    set(
        &mut c,
        "extraCapabilities",
        h.extra_capabilities.clone().map(Value::from),
    );
    if !h.port_mappings.is_empty() {
        let ports = h.port_mappings.iter().map(|p| {
            json!({"proto": p.proto.clone().filter(|s| !s.is_empty()), "containerPort": p.container_port, "hostIP": p.host_ip, "hostPort": p.host_port, "hostPortEnd": p.host_port_end})
        });
        c.insert("portMappings".into(), ports.collect());
    }
    if let Some(l) = &h.log_config {
        let mut log = Map::new();
        if let Some(dc) = &l.driver_config {
            set(&mut log, "type", dc.kind.clone().map(Value::from));
            set(&mut log, "maxFiles", dc.max_files.map(Value::from));
            set(&mut log, "maxSize", dc.max_size.clone().map(Value::from));
            set(&mut log, "rootDir", dc.root_dir.clone().map(Value::from));
        }
        if let Some(mc) = &l.mode_config {
            set(&mut log, "mode", mc.mode.clone().map(Value::from));
            set(
                &mut log,
                "maxBufferSize",
                mc.max_buffer_size.clone().map(Value::from),
            );
        }
        c.insert("log".into(), Value::Object(log));
    }
    if let Some(r) = &h.resources {
        c.insert(
            "resources".into(),
            json!({"memory": r.memory, "memoryReservation": r.memory_reservation, "memorySwap": r.memory_swap}),
        );
    }
    Value::Object(c)
}

/// Drop nulls inside objects (serde's `Option` fields take absence, and
/// `json!` wrote `None` as null).
fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

/// The container a descriptor stands for: its name and spec. A descriptor
/// that is not JSON fails the module (FINISHED_ERROR); one asking for what
/// the device does not grant, or that Kanto's validation would refuse, is
/// rejected (FINISHED_REJECTED).
pub(super) fn read(
    a: &ArtifactAction,
    body: &[u8],
    policy: &Policy,
) -> Result<(String, WorkloadSpec), Stop> {
    let rejected = |why: String| {
        Stop(
            "FINISHED_REJECTED",
            format!("artifact `{}`: {why}", a.filename),
        )
    };
    let d: Descriptor = gantry_sdk::json::from_slice(body).map_err(|e| {
        Stop(
            "FINISHED_ERROR",
            format!(
                "artifact `{}` is not a container descriptor: {e}",
                a.filename
            ),
        )
    })?;
    let config: crate::config::ContainerConfig =
        serde_json::from_value(without_nulls(create_config(&d)))
            .map_err(|e| rejected(e.to_string()))?;
    let name = d
        .container_name
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| crate::name_from_image(&d.image.name));
    let spec = crate::config::spec(&name, &d.image.name, config, policy)
        .map_err(|f| rejected(f.message))?;
    Ok((name, spec))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_sdk::mqtt_frontend::gantry::plugin::types::{NetworkMode, RestartKind};
    use std::collections::HashMap;

    fn artifact() -> ArtifactAction {
        ArtifactAction {
            filename: "c.json".into(),
            download: HashMap::new(),
            checksums: HashMap::new(),
        }
    }

    #[test]
    fn kanto_descriptors_become_the_container_create_with_config_makes() {
        let body = json!({
            "container_name": "influxdb",
            "image": {"name": "docker.io/library/influxdb:1.8.4"},
            "host_name": "db", "domain_name": "example.test",
            "mount_points": [{"source": "/srv/db", "destination": "/var/lib/influxdb", "propagation_mode": "rprivate"}],
            "config": {"env": ["A=1"], "cmd": ["influxd"]},
            "host_config": {
                "network_mode": "bridge",
                "restart_policy": {"type": "on-failure", "maximum_retry_count": 3, "retry_timeout": 30_000_000_000i64},
                "port_mappings": [{"proto": "tcp", "container_port": 8086, "host_ip": "127.0.0.1", "host_port": 8086, "host_port_end": 8086}],
                "log_config": {"driver_config": {"type": "json-file", "max_files": 3, "max_size": "1M"}, "mode_config": {"mode": "blocking"}},
                "extra_hosts": ["db.local:127.0.0.1"]
            },
            "state": {"status": "running"}
        });
        let policy = Policy::granting(&["/srv"], &[], false);
        let (name, spec) = read(&artifact(), body.to_string().as_bytes(), &policy).expect("valid");
        assert_eq!(name, "influxdb");
        assert_eq!(spec.network, NetworkMode::Isolated);
        assert_eq!(spec.hostname.as_deref(), Some("db"));
        assert_eq!(
            (spec.restart.kind, spec.restart.retry_timeout_seconds),
            (RestartKind::OnFailure, 30)
        );
        let c = &spec.containers[0];
        assert_eq!(c.mounts[0].source, "/srv/db");
        assert_eq!(c.ports[0].host_port, Some(8086));
        assert_eq!(c.log.as_ref().and_then(|l| l.max_files), Some(3));
        let refused = read(&artifact(), body.to_string().as_bytes(), &Policy::default());
        assert!(matches!(refused, Err(Stop("FINISHED_REJECTED", _))));
    }

    #[test]
    fn encrypted_images_and_privileged_containers_are_rejected() {
        let encrypted = json!({"image": {"name": "x:1", "decrypt_config": {"keys": ["k"]}}});
        let privileged = json!({"image": {"name": "x:1"}, "host_config": {"privileged": true}});
        for body in [encrypted, privileged] {
            let r = read(&artifact(), body.to_string().as_bytes(), &Policy::default());
            assert!(matches!(r, Err(Stop("FINISHED_REJECTED", _))), "{body}");
        }
    }
}
