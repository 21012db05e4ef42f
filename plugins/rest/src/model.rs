//! The Container Service API's objects, and their mapping onto gantry's
//! workloads. Protocol-only facts (the `ram` string as the caller wrote it,
//! the desired GPU model names) live in the workload's annotations.

use gantry_sdk::http_frontend::gantry::plugin::types::{
    ContainerSpec, EnvVar, GpuModel, GpuRequest, PortMapping, Resources, RestartKind,
    RestartPolicy, Revision, Timestamp, Workload, WorkloadPhase, WorkloadSpec,
};
use gantry_sdk::labels;
use gantry_sdk::units::parse_bytes;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Annotation keys this frontend owns.
pub mod annotations {
    /// `ram` as the caller wrote it.
    pub const RAM: &str = "rest.ram";
    /// `ephemeralStorage` as the caller wrote it.
    pub const STORAGE: &str = "rest.ephemeralStorage";
    /// `desiredGPUs`, as JSON.
    pub const GPUS: &str = "rest.desiredGPUs";
    /// `port` as the caller wrote it.
    pub const PORT: &str = "rest.port";
    /// `gpuMemory` as the caller wrote it.
    pub const GPU_MEMORY: &str = "rest.gpuMemory";
}

/// Defaults of fields a create may leave out: the seed's create example.
const DEFAULT_RAM: &str = "512Mi";
const DEFAULT_STORAGE: &str = "10Gi";

/// The container object, field for field as seed 002 shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    id: String,
    name: String,
    created_by: String,
    image: String,
    cpu: serde_json::Number,
    ram: String,
    gpu: u32,
    ephemeral_storage: String,
    command: Option<Vec<String>>,
    arguments: Option<Vec<String>>,
    env: BTreeMap<String, String>,
    port: String,
    date_created: String,
    date_updated: String,
    status: &'static str,
    urls: Option<Vec<String>>,
    #[serde(rename = "desiredGPUs")]
    desired_gpus: Option<Vec<String>>,
    // gantry's own fields follow, present only when they say something, so
    // a container without GPUs is exactly the seed's object.
    /// The minimum memory per GPU asked for ("40Gi").
    #[serde(rename = "gpuMemory", skip_serializing_if = "Option::is_none")]
    gpu_memory: Option<String>,
    /// The GPUs the container holds (empty while it waits); only for a
    /// container that asks for GPUs.
    #[serde(rename = "assignedGPUs", skip_serializing_if = "Option::is_none")]
    pub assigned_gpus: Option<Vec<AssignedGpu>>,
    /// Why it failed, or what it waits for while deploying.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A GPU a container holds.
#[derive(Debug, Serialize)]
pub struct AssignedGpu {
    /// Index on the host.
    pub index: u32,
    /// Device UUID.
    pub uuid: String,
    /// Model name, e.g. "Nvidia a100".
    pub model: String,
}

/// A create request.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateBody {
    name: Option<String>,
    image: Option<String>,
    cpu: Option<f64>,
    ram: Option<String>,
    gpu: Option<f64>,
    ephemeral_storage: Option<String>,
    port: Option<String>,
    env: Option<BTreeMap<String, String>>,
    command: Option<Vec<String>>,
    arguments: Option<Vec<String>>,
    #[serde(rename = "desiredGPUs")]
    desired_gpus: Option<Vec<String>>,
    gpu_memory: Option<String>,
}

/// An update request: every field optional, absent ones unchanged.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateBody {
    image: Option<String>,
    cpu: Option<f64>,
    ram: Option<String>,
    gpu: Option<f64>,
    ephemeral_storage: Option<String>,
    port: Option<String>,
    env: Option<BTreeMap<String, String>>,
    command: Option<Option<Vec<String>>>,
    arguments: Option<Option<Vec<String>>>,
    #[serde(rename = "desiredGPUs")]
    desired_gpus: Option<Vec<String>>,
    gpu_memory: Option<Option<String>>,
}

/// Field → message, for a 400.
pub type FieldErrors = BTreeMap<String, String>;

/// The validated form of a create or an update.
pub struct Desired {
    /// Workload name.
    pub name: String,
    /// The spec to deploy.
    pub spec: WorkloadSpec,
    /// Protocol facts to keep.
    pub annotations: Vec<(String, String)>,
}

fn annotation<'a>(w: &'a Workload, key: &str) -> Option<&'a str> {
    w.annotations
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// RFC 3339 in UTC, to the second, as the seed shows it.
pub fn rfc3339(t: Option<Timestamp>) -> String {
    t.and_then(|t| gantry_sdk::clock::rfc3339(t.seconds, 0))
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

fn number(v: f64) -> serde_json::Number {
    if v.fract() == 0.0 && v.abs() < 9e15 {
        serde_json::Number::from(v as i64)
    } else {
        serde_json::Number::from_f64(v).unwrap_or_else(|| serde_json::Number::from(0))
    }
}

/// The container object of a workload.
pub fn container(w: &Workload, ingress_domain: &str) -> Container {
    let c = w.spec.containers.first();
    let status = match w.phase {
        WorkloadPhase::Deploying => "deploying",
        WorkloadPhase::Deployed => "deployed",
        WorkloadPhase::Stopped | WorkloadPhase::Paused => "stopped",
        WorkloadPhase::Failed => "failed",
        WorkloadPhase::Deleting => "deleting",
    };
    Container {
        id: w.id.clone(),
        name: w.name.clone(),
        created_by: w.owner.clone(),
        image: c.map(|c| c.image.clone()).unwrap_or_default(),
        cpu: number(c.and_then(|c| c.resources.cpu).unwrap_or(0.0)),
        ram: annotation(w, annotations::RAM).unwrap_or("").to_string(),
        gpu: c.and_then(|c| c.gpu.as_ref()).map_or(0, |g| g.count),
        ephemeral_storage: annotation(w, annotations::STORAGE)
            .unwrap_or("")
            .to_string(),
        command: c.and_then(|c| c.command.clone()),
        arguments: c.and_then(|c| c.args.clone()),
        env: c
            .map(|c| {
                c.env
                    .iter()
                    .map(|e| (e.name.clone(), e.value.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        port: annotation(w, annotations::PORT).unwrap_or("").to_string(),
        date_created: rfc3339(Some(w.created_at)),
        date_updated: rfc3339(w.updated_at),
        status,
        urls: (w.phase == WorkloadPhase::Deployed).then(|| {
            vec![format!(
                "{}.{ingress_domain}",
                gantry_sdk::ingress::label(&w.id)
            )]
        }),
        desired_gpus: annotation(w, annotations::GPUS).and_then(|g| serde_json::from_str(g).ok()),
        gpu_memory: annotation(w, annotations::GPU_MEMORY).map(str::to_string),
        assigned_gpus: None,
        message: w.message.clone(),
    }
}

/// A revision as the API lists it.
pub fn revision(r: &Revision) -> serde_json::Value {
    serde_json::json!({
        "containerID": r.workload_id,
        "revisionNumber": r.number,
        "image": r.spec.containers.first().map(|c| c.image.clone()).unwrap_or_default(),
        "dateCreated": rfc3339(Some(r.created_at)),
    })
}

/// Whether an image reference names a tag or a digest.
fn has_tag(image: &str) -> bool {
    if image.contains('@') {
        return true;
    }
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':')
        .is_some_and(|(name, tag)| !name.is_empty() && !tag.is_empty())
}

/// Whether `s` is spelled as the OpenAPI document's `gpuMemory` pattern
/// says: 1 to 6 digits not starting with 0, up to 3 decimals, a unit
/// (`Mi`, `Gi`, `Ti`, `M`, `G`, `T`, or one lower-case letter of them).
fn memory_spelling(s: &str) -> bool {
    let unit_at = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(unit_at);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let whole_ok = (1..=6).contains(&whole.len()) && !whole.starts_with('0');
    let fraction_ok = !number.contains('.') || (1..=3).contains(&fraction.len());
    let digits = whole
        .chars()
        .chain(fraction.chars())
        .all(|c| c.is_ascii_digit());
    whole_ok
        && fraction_ok
        && digits
        && ["Mi", "Gi", "Ti", "M", "G", "T", "m", "g", "t"].contains(&unit)
}

struct Fields {
    image: String,
    cpu: f64,
    ram: String,
    gpu: f64,
    storage: String,
    port: Option<String>,
    env: BTreeMap<String, String>,
    command: Option<Vec<String>>,
    arguments: Option<Vec<String>>,
    desired_gpus: Option<Vec<String>>,
    gpu_memory: Option<String>,
}

fn build(name: String, f: Fields, models: &[GpuModel]) -> Result<Desired, FieldErrors> {
    let mut errors = FieldErrors::new();
    if f.image.trim().is_empty() {
        errors.insert("image".into(), "is required".into());
    } else if f.image.chars().any(char::is_whitespace) {
        errors.insert("image".into(), "must not contain whitespace".into());
    } else if !has_tag(&f.image) {
        errors.insert(
            "image".into(),
            "images must include the tag (e.g. nginx:1.25); the tag is not `latest` by default"
                .into(),
        );
    }
    if !(f.cpu.is_finite() && (0.01..=1024.0).contains(&f.cpu)) {
        errors.insert(
            "cpu".into(),
            "must be a number of cores from 0.01 to 1024".into(),
        );
    }
    let ram = parse_bytes(&f.ram)
        .map_err(|e| errors.insert("ram".into(), e.to_string()))
        .ok();
    let storage = parse_bytes(&f.storage)
        .map_err(|e| errors.insert("ephemeralStorage".into(), e.to_string()))
        .ok();
    if ram.is_some_and(|r| r < 6 << 20) {
        errors.insert("ram".into(), "must be at least 6Mi".into());
    }
    let port = match &f.port {
        None => None,
        Some(p) if p.is_empty() => None,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 => Some(n),
            _ => {
                errors.insert(
                    "port".into(),
                    format!("`{p}` is not a port number (1-65535)"),
                );
                None
            }
        },
    };
    for (k, v) in &f.env {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            errors.insert("env".into(), format!("`{k}` is not a valid variable name"));
        } else if v.contains('\0') {
            errors.insert(
                "env".into(),
                format!("the value of `{k}` contains a NUL character"),
            );
        }
    }
    if f.command.iter().flatten().any(String::is_empty) {
        errors.insert("command".into(), "entries must not be empty".into());
    }
    if f.command
        .iter()
        .chain(f.arguments.iter())
        .flatten()
        .any(|a| a.contains('\0'))
    {
        errors.insert(
            "command".into(),
            "command and arguments must not contain NUL characters".into(),
        );
    }
    let mut gpu_models = Vec::new();
    for wanted in f.desired_gpus.iter().flatten() {
        match models
            .iter()
            .find(|m| m.name.eq_ignore_ascii_case(wanted) || m.code.eq_ignore_ascii_case(wanted))
        {
            Some(m) => gpu_models.push(m.name.clone()),
            None => {
                errors.insert(
                    "desiredGPUs".into(),
                    format!("unknown GPU model `{wanted}` (see /v1/gpu-models)"),
                );
            }
        }
    }
    // JSON has one number type: 2 and 2.0 are the same count.
    let gpu_count = if f.gpu.fract() == 0.0 && (0.0..=64.0).contains(&f.gpu) {
        f.gpu as u32
    } else {
        errors.insert("gpu".into(), "must be a whole number from 0 to 64".into());
        0
    };
    let gpu_memory = match f.gpu_memory.as_deref() {
        None => None,
        Some(m) if !memory_spelling(m) => {
            errors.insert(
                "gpuMemory".into(),
                format!("`{m}` is not a memory size such as 16Gi or 40960Mi"),
            );
            None
        }
        Some(m) => match parse_bytes(m) {
            Ok(b) => Some(b),
            Err(e) => {
                errors.insert("gpuMemory".into(), e.to_string());
                None
            }
        },
    };
    if name.is_empty() {
        errors.insert("name".into(), "is required".into());
    } else if let Err(why) = gantry_sdk::names::check(&name, 128) {
        errors.insert("name".into(), why);
    } else if name.contains('/') {
        errors.insert("name".into(), "'/' is not allowed".into());
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let gpu = (gpu_count > 0 || !gpu_models.is_empty()).then(|| GpuRequest {
        count: gpu_count.max(u32::try_from(gpu_models.len()).unwrap_or(u32::MAX)),
        models: gpu_models.clone(),
        device_ids: Vec::new(),
        capabilities: Vec::new(),
    });
    let container = ContainerSpec {
        command: f.command.clone(),
        args: f.arguments.clone(),
        env: f
            .env
            .iter()
            .map(|(k, v)| EnvVar {
                name: k.clone(),
                value: v.clone(),
                secret: false,
            })
            .collect(),
        ports: port.map(|p| vec![PortMapping::tcp(p)]).unwrap_or_default(),
        resources: Resources {
            cpu: Some(f.cpu),
            memory_bytes: ram,
            ephemeral_storage_bytes: storage,
            ..Resources::default()
        },
        gpu,
        // Without GPUs, a memory per GPU asks nothing: echoed, not applied.
        labels: gpu_memory
            .filter(|_| gpu_count > 0 || !gpu_models.is_empty())
            .map(|b| vec![(labels::GPU_MIN_MEMORY.to_string(), b.to_string())])
            .unwrap_or_default(),
        ..ContainerSpec::new("main", f.image.clone())
    };
    let spec = WorkloadSpec {
        restart: RestartPolicy {
            kind: RestartKind::Always,
            ..RestartPolicy::default()
        },
        ..WorkloadSpec::new(vec![container])
    };
    let mut annotations = vec![
        (annotations::RAM.to_string(), f.ram),
        (annotations::STORAGE.to_string(), f.storage),
    ];
    if let Some(p) = f.port {
        annotations.push((annotations::PORT.to_string(), p));
    }
    if let Some(m) = f.gpu_memory {
        annotations.push((annotations::GPU_MEMORY.to_string(), m));
    }
    if f.desired_gpus.is_some() {
        annotations.push((
            annotations::GPUS.to_string(),
            serde_json::to_string(&gpu_models).unwrap_or_else(|_| "[]".into()),
        ));
    }
    Ok(Desired {
        name,
        spec,
        annotations,
    })
}

/// Validate a create.
pub fn from_create(b: CreateBody, models: &[GpuModel]) -> Result<Desired, FieldErrors> {
    let name = b.name.unwrap_or_default();
    build(
        name,
        Fields {
            image: b.image.unwrap_or_default(),
            cpu: b.cpu.unwrap_or(1.0),
            ram: b.ram.unwrap_or_else(|| DEFAULT_RAM.into()),
            gpu: b.gpu.unwrap_or(0.0),
            storage: b
                .ephemeral_storage
                .unwrap_or_else(|| DEFAULT_STORAGE.into()),
            port: b.port,
            env: b.env.unwrap_or_default(),
            command: b.command,
            arguments: b.arguments,
            desired_gpus: b.desired_gpus,
            gpu_memory: b.gpu_memory,
        },
        models,
    )
}

/// Validate an update against the current workload.
pub fn from_update(
    w: &Workload,
    b: UpdateBody,
    models: &[GpuModel],
) -> Result<Desired, FieldErrors> {
    let current = container(w, "");
    let current_gpus: Option<Vec<String>> =
        annotation(w, annotations::GPUS).and_then(|g| serde_json::from_str(g).ok());
    build(
        w.name.clone(),
        Fields {
            image: b.image.unwrap_or(current.image),
            cpu: b.cpu.unwrap_or_else(|| {
                w.spec
                    .containers
                    .first()
                    .and_then(|c| c.resources.cpu)
                    .unwrap_or(1.0)
            }),
            ram: b.ram.unwrap_or(if current.ram.is_empty() {
                DEFAULT_RAM.into()
            } else {
                current.ram
            }),
            gpu: b.gpu.unwrap_or(f64::from(current.gpu)),
            storage: b
                .ephemeral_storage
                .unwrap_or(if current.ephemeral_storage.is_empty() {
                    DEFAULT_STORAGE.into()
                } else {
                    current.ephemeral_storage
                }),
            port: b.port.or(if current.port.is_empty() {
                None
            } else {
                Some(current.port)
            }),
            env: b.env.unwrap_or(current.env),
            command: b.command.unwrap_or(current.command),
            arguments: b.arguments.unwrap_or(current.arguments),
            desired_gpus: b.desired_gpus.or(current_gpus),
            gpu_memory: b.gpu_memory.unwrap_or(current.gpu_memory),
        },
        models,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_memory_is_spelled_as_the_openapi_pattern_says() {
        for ok in ["40Gi", "16G", "1.5Ti", "40960Mi", "8g", "123456m"] {
            assert!(memory_spelling(ok), "{ok}");
        }
        for bad in [
            "",
            "0Gi",
            "-1Gi",
            "40",
            "40Ki",
            "1.2345Gi",
            "1234567Mi",
            "4 Gi",
            "1.Gi",
        ] {
            assert!(!memory_spelling(bad), "{bad}");
        }
    }

    #[test]
    fn images_need_a_tag() {
        assert!(has_tag("nginxdemos/hello:latest"));
        assert!(has_tag("registry:5000/team/app:1.2"));
        assert!(has_tag("busybox@sha256:abc"));
        assert!(!has_tag("nginxdemos/hello"));
        assert!(!has_tag("registry:5000/team/app"));
        assert!(!has_tag("app:"));
    }

    #[test]
    fn whole_cpus_print_as_integers() {
        assert_eq!(number(1.0).to_string(), "1");
        assert_eq!(number(0.5).to_string(), "0.5");
    }
}
