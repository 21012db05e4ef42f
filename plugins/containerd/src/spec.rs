//! The OCI runtime spec of one container, built the way containerd's own
//! client does (`oci/spec.go` defaults): the process from the image config and
//! gantry's spec, resources, default mounts, namespaces, the default
//! capability set, masked and read-only paths, rlimits.

use crate::image::ImageConfig;
use gantry_sdk::backend::gantry::plugin::types::{ContainerEdits, ContainerSpec, Error, Resources};
use serde_json::{Value, json};

/// `PATH` when the image sets none.
const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The capabilities a container gets by default (Docker's and containerd's set).
pub const DEFAULT_CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/sys/firmware",
    "/proc/scsi",
];

const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// CFS period the CPU quota is expressed against (µs).
const CPU_PERIOD: u64 = 100_000;

/// What the spec of one container depends on besides its own spec.
pub struct SpecInput<'a> {
    /// The container's spec.
    pub container: &'a ContainerSpec,
    /// The image's config.
    pub image: &'a ImageConfig,
    /// `cgroupsPath`: `/<namespace>/<id>`.
    pub cgroups_path: String,
    /// Hostname inside the container.
    pub hostname: Option<String>,
    /// The network namespace to join (`/proc/<pid>/ns/net`); none: a private
    /// one (loopback only), unless `host_network`.
    pub join_network: Option<String>,
    /// Share the host's network namespace.
    pub host_network: bool,
    /// Override the process (for the namespace holder).
    pub args_override: Option<Vec<String>>,
    /// What the GPUs a scheduler assigned to the container need.
    pub gpus: Option<&'a ContainerEdits>,
}

/// An `invalid` error naming one field.
pub fn invalid(field: &str, message: String) -> Error {
    Error::Invalid(gantry_sdk::backend::gantry::plugin::types::InvalidInput {
        message: message.clone(),
        fields: vec![gantry_sdk::backend::gantry::plugin::types::FieldError {
            field: field.into(),
            message,
        }],
    })
}

/// The process arguments: Docker's rule (a replaced entrypoint drops the image's default args).
pub fn args(c: &ContainerSpec, image: &ImageConfig) -> Vec<String> {
    let (entry, cmd) = match &c.command {
        Some(command) => (command.clone(), c.args.clone().unwrap_or_default()),
        None => (
            image.entrypoint.clone(),
            c.args.clone().unwrap_or_else(|| image.cmd.clone()),
        ),
    };
    entry.into_iter().chain(cmd).collect()
}

/// Numeric uid and gid from an image's `User` (`""`, `root`, `uid`, `uid:gid`).
pub fn user(spec: &str) -> Result<(u32, u32), Error> {
    let spec = spec.trim();
    if spec.is_empty() || spec == "root" || spec == "root:root" {
        return Ok((0, 0));
    }
    let (u, g) = spec.split_once(':').unwrap_or((spec, ""));
    let uid: u32 = u.parse().map_err(|_| {
        Error::Unsupported(format!(
            "the image runs as user `{spec}`: this backend resolves numeric users only (it cannot read the image's /etc/passwd)"
        ))
    })?;
    let gid: u32 = if g.is_empty() {
        0
    } else {
        g.parse().map_err(|_| {
            Error::Unsupported(format!(
                "the image runs as group `{g}`: this backend resolves numeric groups only"
            ))
        })?
    };
    Ok((uid, gid))
}

/// The process environment: the image's, then the spec's (same names replaced).
pub fn env(c: &ContainerSpec, image: &ImageConfig) -> Vec<String> {
    let mut out: Vec<String> = image.env.clone();
    if !out.iter().any(|e| e.starts_with("PATH=")) {
        out.insert(0, DEFAULT_PATH.to_string());
    }
    for v in &c.env {
        let prefix = format!("{}=", v.name);
        out.retain(|e| !e.starts_with(&prefix));
        out.push(format!("{}={}", v.name, v.value));
    }
    out
}

/// `linux.resources` for gantry's resources (also the body of `Tasks.Update`).
pub fn resources(r: &Resources) -> Result<Value, Error> {
    let mut res = serde_json::Map::new();
    res.insert("devices".into(), json!([{"allow": false, "access": "rwm"}]));
    if let Some(cpu) = r.cpu {
        if !(cpu > 0.0 && cpu.is_finite()) {
            return Err(invalid("cpu", format!("CPU limit {cpu} must be above 0")));
        }
        let quota = (cpu * CPU_PERIOD as f64).round() as i64;
        res.insert(
            "cpu".into(),
            json!({"quota": quota.max(1000), "period": CPU_PERIOD}),
        );
    }
    let mut mem = serde_json::Map::new();
    if let Some(m) = r.memory_bytes {
        // runc refuses limits below what the kernel needs for a process; say so before it does.
        if m < 6 << 20 {
            return Err(invalid(
                "memory",
                format!("memory limit {m} bytes is below the minimum of 6 MiB"),
            ));
        }
        mem.insert("limit".into(), json!(m));
        if let Some(s) = r.memory_swap_bytes {
            mem.insert("swap".into(), json!(s));
        }
    }
    if let Some(m) = r.memory_reservation_bytes {
        mem.insert("reservation".into(), json!(m));
    }
    if !mem.is_empty() {
        res.insert("memory".into(), Value::Object(mem));
    }
    if let Some(p) = r.pids_limit {
        res.insert("pids".into(), json!({"limit": p}));
    }
    Ok(Value::Object(res))
}

fn mount(dest: &str, kind: &str, source: &str, options: &[&str]) -> Value {
    json!({"destination": dest, "type": kind, "source": source, "options": options})
}

fn default_mounts() -> Vec<Value> {
    vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        ),
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        ),
        mount(
            "/run",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
    ]
}

/// Refuse what this backend cannot do, naming the field, before anything is created.
pub fn check_supported(c: &ContainerSpec) -> Result<(), Error> {
    let unsupported = |what: &str| {
        Err(Error::Unsupported(format!(
            "container `{}`: {what} is not supported by the containerd backend",
            c.name
        )))
    };
    if c.privileged {
        return unsupported("privileged mode");
    }
    if !c.devices.is_empty() {
        return unsupported("device mappings");
    }
    if c.tty {
        return unsupported("a TTY");
    }
    for m in &c.mounts {
        if !m.source.starts_with('/') || !m.destination.starts_with('/') {
            return Err(invalid(
                "mounts",
                format!(
                    "mount {} -> {}: both paths must be absolute",
                    m.source, m.destination
                ),
            ));
        }
    }
    Ok(())
}

/// The whole spec, as JSON (containerd stores it as an `Any` of JSON).
pub fn build(input: &SpecInput<'_>) -> Result<Value, Error> {
    let c = input.container;
    let (uid, gid) = user(&input.image.user)?;
    let args = match &input.args_override {
        Some(a) => a.clone(),
        None => args(c, input.image),
    };
    if args.is_empty() {
        return Err(invalid(
            "command",
            format!(
                "container `{}`: neither the spec nor the image gives a command",
                c.name
            ),
        ));
    }
    let cwd = c
        .working_dir
        .clone()
        .filter(|d| !d.is_empty())
        .or_else(|| Some(input.image.working_dir.clone()).filter(|d| !d.is_empty()))
        .unwrap_or_else(|| "/".into());
    let mut caps: Vec<String> = DEFAULT_CAPABILITIES.iter().map(|s| s.to_string()).collect();
    for extra in &c.extra_capabilities {
        let name = extra.to_ascii_uppercase();
        let name = if name.starts_with("CAP_") {
            name
        } else {
            format!("CAP_{name}")
        };
        if !caps.contains(&name) {
            caps.push(name);
        }
    }
    let mut mounts = default_mounts();
    for m in &c.mounts {
        let mut options = vec!["rbind".to_string()];
        options.push(if m.read_only { "ro" } else { "rw" }.into());
        if let Some(p) = &m.propagation {
            options.push(p.clone());
        }
        mounts.push(json!({
            "destination": m.destination, "type": "bind", "source": m.source, "options": options
        }));
    }
    let mut namespaces = vec![
        json!({"type": "pid"}),
        json!({"type": "ipc"}),
        json!({"type": "uts"}),
        json!({"type": "mount"}),
    ];
    match (&input.join_network, input.host_network) {
        (Some(path), _) => namespaces.push(json!({"type": "network", "path": path})),
        (None, false) => namespaces.push(json!({"type": "network"})),
        (None, true) => {}
    }
    let mut process = json!({
        "user": {"uid": uid, "gid": gid},
        "args": args,
        "env": env(c, input.image),
        "cwd": cwd,
        "capabilities": {
            "bounding": caps, "effective": caps, "permitted": caps,
        },
        "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
        "noNewPrivileges": true,
    });
    if input.args_override.is_some() {
        process["env"] = json!([DEFAULT_PATH]);
    }
    let mut spec = json!({
        "ociVersion": "1.0.2-dev",
        "process": process,
        "root": {"path": "rootfs"},
        "mounts": mounts,
        "linux": {
            "resources": resources(&c.resources)?,
            "cgroupsPath": input.cgroups_path,
            "namespaces": namespaces,
            "maskedPaths": MASKED_PATHS,
            "readonlyPaths": READONLY_PATHS,
        },
    });
    if let Some(h) = &input.hostname {
        spec["hostname"] = json!(h);
    }
    if let Some(e) = input.gpus {
        add_devices(&mut spec, e);
    }
    Ok(spec)
}

/// Hand devices to the container: their nodes are created in its `/dev`
/// and allowed by its device cgroup, their mounts bound, their environment set.
fn add_devices(spec: &mut Value, e: &ContainerEdits) {
    let nodes: Vec<Value> = e
        .devices
        .iter()
        .map(|d| {
            json!({
                "path": d.path_in_container,
                "type": if d.block { "b" } else { "c" },
                "major": d.major, "minor": d.minor,
                "fileMode": 0o666, "uid": 0, "gid": 0,
            })
        })
        .collect();
    let rules: Vec<Value> = e
        .devices
        .iter()
        .map(|d| {
            json!({
                "allow": true, "type": if d.block { "b" } else { "c" },
                "major": d.major, "minor": d.minor, "access": d.cgroup_permissions,
            })
        })
        .collect();
    spec["linux"]["devices"] = json!(nodes);
    if let Some(list) = spec["linux"]["resources"]["devices"].as_array_mut() {
        list.extend(rules);
    }
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        for m in &e.mounts {
            let mut options = vec![
                "rbind".to_string(),
                if m.read_only { "ro" } else { "rw" }.into(),
            ];
            options.extend(m.propagation.clone());
            mounts.push(json!({
                "destination": m.destination, "type": "bind", "source": m.source, "options": options
            }));
        }
    }
    if let Some(env) = spec["process"]["env"].as_array_mut() {
        for v in &e.env {
            let prefix = format!("{}=", v.name);
            env.retain(|x| !x.as_str().is_some_and(|x| x.starts_with(&prefix)));
            env.push(json!(format!("{}={}", v.name, v.value)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_sdk::backend::gantry::plugin::types::EnvVar;

    fn image() -> ImageConfig {
        ImageConfig {
            entrypoint: vec![],
            cmd: vec!["/bin/sh".into()],
            env: vec!["PATH=/bin".into(), "FOO=image".into()],
            working_dir: String::new(),
            user: String::new(),
            ..ImageConfig::default()
        }
    }

    #[test]
    fn the_process_follows_dockers_rules() {
        let mut c = ContainerSpec::new("main", "x");
        assert_eq!(args(&c, &image()), vec!["/bin/sh"]);
        c.args = Some(vec!["-c".into(), "true".into()]);
        assert_eq!(args(&c, &image()), vec!["-c", "true"]);
        c.command = Some(vec!["/bin/echo".into()]);
        c.args = None;
        assert_eq!(args(&c, &image()), vec!["/bin/echo"]);
        c.env = vec![EnvVar {
            name: "FOO".into(),
            value: "spec".into(),
            secret: false,
        }];
        assert_eq!(env(&c, &image()), vec!["PATH=/bin", "FOO=spec"]);
    }

    #[test]
    fn users_resources_and_refusals() {
        assert_eq!(user("").ok(), Some((0, 0)));
        assert_eq!(user("1000:100").ok(), Some((1000, 100)));
        assert!(matches!(user("nobody"), Err(Error::Unsupported(_))));
        let r = Resources {
            cpu: Some(0.5),
            memory_bytes: Some(64 << 20),
            pids_limit: Some(64),
            ..Resources::default()
        };
        let v = resources(&r).expect("resources");
        assert_eq!(v["cpu"]["quota"], 50_000);
        assert_eq!(v["memory"]["limit"], 64u64 << 20);
        assert_eq!(v["pids"]["limit"], 64);
        let tiny = Resources {
            memory_bytes: Some(1024),
            ..Resources::default()
        };
        assert!(matches!(resources(&tiny), Err(Error::Invalid(_))));
        let mut c = ContainerSpec::new("main", "x");
        c.privileged = true;
        assert!(matches!(check_supported(&c), Err(Error::Unsupported(_))));
    }
}
