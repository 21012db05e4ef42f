//! A container group as callers send it (PUT body), checked and turned into
//! the workload spec and annotations the control plane stores.

use crate::cloud_error::CloudError;
use gantry_sdk::http_frontend::gantry::plugin::types::{
    ContainerSpec, EnvVar, GpuRequest, PortMapping, PortProtocol, Resources, RestartKind,
    RestartPolicy, WorkloadSpec,
};
use gantry_sdk::ingress;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// Annotation keys this frontend stores on a workload.
pub mod keys {
    /// The subscription id, as the caller spelled it.
    pub const SUBSCRIPTION: &str = "arm.subscription";
    /// The resource group name, as the caller spelled it.
    pub const RESOURCE_GROUP: &str = "arm.resourceGroup";
    /// The normalised location (`westeurope`).
    pub const LOCATION: &str = "arm.location";
    /// Tags, as a JSON object.
    pub const TAGS: &str = "arm.tags";
    /// `properties.ipAddress` as given (JSON), without `ip` and `fqdn`.
    pub const IP_ADDRESS: &str = "arm.ipAddress";
    /// `properties.sku`.
    pub const SKU: &str = "arm.sku";
    /// Each container's `resources` as given (JSON object by container name).
    pub const RESOURCES: &str = "arm.resources";
}

/// A container group in a PUT body. Properties this frontend does not model
/// (identity, zones, diagnostics, dnsConfig, encryption...) are ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupBody {
    /// Azure region.
    pub location: Option<String>,
    /// Resource tags.
    pub tags: Option<BTreeMap<String, String>>,
    /// The group's properties.
    pub properties: Option<GroupProperties>,
}

/// `properties` of a container group.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupProperties {
    containers: Option<Vec<ContainerDef>>,
    restart_policy: Option<String>,
    os_type: Option<String>,
    ip_address: Option<IpAddress>,
    sku: Option<String>,
    volumes: Option<Vec<Value>>,
    init_containers: Option<Vec<Value>>,
    subnet_ids: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
struct ContainerDef {
    name: String,
    properties: ContainerProperties,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerProperties {
    image: String,
    command: Option<Vec<String>>,
    ports: Option<Vec<Port>>,
    environment_variables: Option<Vec<EnvironmentVariable>>,
    resources: ResourceRequirements,
    volume_mounts: Option<Vec<Value>>,
    liveness_probe: Option<Value>,
    readiness_probe: Option<Value>,
    security_context: Option<SecurityContext>,
}

/// A port of a container or of the group's IP address.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Port {
    /// Port number.
    pub port: i64,
    /// `TCP` (default) or `UDP`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub protocol: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvironmentVariable {
    name: String,
    value: Option<String>,
    secure_value: Option<String>,
}

/// `resources` of a container: requests (required) and optional limits.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ResourceRequirements {
    /// What the container is guaranteed.
    pub requests: ResourceAmounts,
    /// Caps, when above the requests.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceAmounts>,
}

/// CPU, memory and GPU amounts.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceAmounts {
    /// Cores.
    pub cpu: Option<f64>,
    /// Memory in GB.
    #[serde(rename = "memoryInGB")]
    pub memory_in_gb: Option<f64>,
    /// GPUs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<Gpu>,
}

/// A GPU request.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Gpu {
    /// How many.
    pub count: i64,
    /// `K80`, `P100` or `V100`.
    pub sku: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SecurityContext {
    privileged: Option<bool>,
    capabilities: Option<Capabilities>,
}

#[derive(Debug, Deserialize)]
struct Capabilities {
    add: Option<Vec<String>>,
}

/// `properties.ipAddress`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IpAddress {
    /// Ports exposed on the group's address.
    pub ports: Vec<Port>,
    /// `Public` or `Private`.
    #[serde(rename = "type")]
    pub kind: String,
    /// DNS label, giving `fqdn`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns_name_label: Option<String>,
}

/// GPU SKUs ACI offers, and the model code of the host's catalogue for each.
pub const GPU_SKUS: &[(&str, &str)] = &[("K80", "k80"), ("P100", "p100"), ("V100", "v100")];

/// The SKU name of a model code: ACI's where it has one ("K80"), the code
/// in capitals otherwise ("A100").
pub fn sku_of(code: &str) -> String {
    GPU_SKUS
        .iter()
        .find(|(_, c)| c.eq_ignore_ascii_case(code))
        .map_or_else(|| code.to_ascii_uppercase(), |(sku, _)| (*sku).to_string())
}

/// The model code a SKU names: one of ACI's, or a model of the host.
fn code_of_sku(sku: &str, host_codes: &[String]) -> Option<String> {
    GPU_SKUS
        .iter()
        .find(|(s, _)| s.eq_ignore_ascii_case(sku))
        .map(|(_, c)| (*c).to_string())
        .or_else(|| {
            host_codes
                .iter()
                .find(|c| c.eq_ignore_ascii_case(sku))
                .cloned()
        })
}

/// What a valid PUT body becomes.
#[derive(Debug)]
pub struct Desired {
    /// The workload spec.
    pub spec: WorkloadSpec,
    /// The `arm.*` annotations (identity annotations included).
    pub annotations: Vec<(String, String)>,
    /// The normalised location, also kept as the `arm.location` annotation.
    pub location: String,
}

/// Normalise an Azure location the way ARM reports it: "West Europe" → "westeurope".
pub fn normalize_location(location: &str) -> String {
    location
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase()
}

/// Whether `name` is a valid container group or container name: 1 to 63
/// lower-case letters, digits and '-', not starting or ending with '-'.
pub fn valid_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

struct Problems(Vec<(String, String)>);

impl Problems {
    fn add(&mut self, target: impl Into<String>, message: impl Into<String>) {
        self.0.push((target.into(), message.into()));
    }
}

fn protocol(p: &Option<String>) -> Option<PortProtocol> {
    match p.as_deref() {
        None => Some(PortProtocol::Tcp),
        Some(s) if s.eq_ignore_ascii_case("tcp") => Some(PortProtocol::Tcp),
        Some(s) if s.eq_ignore_ascii_case("udp") => Some(PortProtocol::Udp),
        Some(_) => None,
    }
}

fn gb(v: f64) -> Option<u64> {
    gantry_sdk::units::gb_to_bytes(v).ok()
}

/// Check a PUT body and turn it into a spec and annotations; a GPU `sku` is
/// one of ACI's or a model of `gpu_codes` (the host's).
pub fn desired(
    body: GroupBody,
    group: &crate::path::ResourceGroup,
    gpu_codes: &[String],
) -> Result<Desired, CloudError> {
    let mut p = Problems(Vec::new());
    let location = match body.location.as_deref().map(normalize_location) {
        Some(l) if !l.is_empty() => l,
        _ => {
            return Err(CloudError::new(
                400,
                "LocationRequired",
                "The location property is required for this definition.",
            ));
        }
    };
    let Some(props) = body.properties else {
        return Err(CloudError::invalid(vec![(
            "properties".into(),
            "is required".into(),
        )]));
    };
    match props.os_type.as_deref() {
        None => {}
        Some(o) if o.eq_ignore_ascii_case("linux") => {}
        Some(o) if o.eq_ignore_ascii_case("windows") => {
            return Err(CloudError::new(
                400,
                "OsTypeNotSupported",
                "This gantry host runs Linux containers only; osType 'Windows' is not supported.",
            ));
        }
        Some(o) => p.add(
            "properties.osType",
            format!("'{o}' is not one of Linux, Windows"),
        ),
    }
    let restart = match props.restart_policy.as_deref() {
        None => RestartKind::Always,
        Some(r) if r.eq_ignore_ascii_case("always") => RestartKind::Always,
        Some(r) if r.eq_ignore_ascii_case("onfailure") => RestartKind::OnFailure,
        Some(r) if r.eq_ignore_ascii_case("never") => RestartKind::No,
        Some(r) => {
            p.add(
                "properties.restartPolicy",
                format!("'{r}' is not one of Always, OnFailure, Never"),
            );
            RestartKind::Always
        }
    };
    for (field, present) in [
        (
            "properties.volumes",
            props.volumes.as_ref().is_some_and(|v| !v.is_empty()),
        ),
        (
            "properties.initContainers",
            props
                .init_containers
                .as_ref()
                .is_some_and(|v| !v.is_empty()),
        ),
        (
            "properties.subnetIds",
            props.subnet_ids.as_ref().is_some_and(|v| !v.is_empty()),
        ),
    ] {
        if present {
            p.add(field, "is not supported by this gantry version");
        }
    }
    let defs = props.containers.unwrap_or_default();
    if defs.is_empty() {
        p.add(
            "properties.containers",
            "at least one container is required",
        );
    }
    let mut containers = Vec::new();
    let mut resources_given = serde_json::Map::new();
    let mut exposed: Vec<(i64, PortProtocol)> = Vec::new();
    for (i, def) in defs.into_iter().enumerate() {
        let at = |f: &str| format!("properties.containers[{i}].{f}");
        if !valid_name(&def.name) {
            p.add(
                at("name"),
                format!("'{}' must be 1-63 lower-case letters, digits or '-', not starting or ending with '-'", def.name),
            );
        }
        let c = def.properties;
        if c.image.trim().is_empty() {
            p.add(at("properties.image"), "is required");
        }
        for (field, present) in [
            (
                "properties.volumeMounts",
                c.volume_mounts.as_ref().is_some_and(|v| !v.is_empty()),
            ),
            ("properties.livenessProbe", c.liveness_probe.is_some()),
            ("properties.readinessProbe", c.readiness_probe.is_some()),
        ] {
            if present {
                p.add(at(field), "is not supported by this gantry version");
            }
        }
        let mut ports = Vec::new();
        for (j, port) in c.ports.unwrap_or_default().iter().enumerate() {
            match (
                u16::try_from(port.port).ok().filter(|n| *n > 0),
                protocol(&port.protocol),
            ) {
                (Some(n), Some(proto)) => {
                    exposed.push((port.port, proto));
                    ports.push(PortMapping {
                        container_port: n,
                        protocol: proto,
                        host_port: None,
                        host_port_end: None,
                        host_ip: None,
                    });
                }
                (None, _) => p.add(
                    at(&format!("properties.ports[{j}].port")),
                    "must be 1 to 65535",
                ),
                (_, None) => p.add(
                    at(&format!("properties.ports[{j}].protocol")),
                    "must be TCP or UDP",
                ),
            }
        }
        let mut env = Vec::new();
        for (j, var) in c
            .environment_variables
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            if var.name.is_empty() || var.name.contains('=') {
                p.add(
                    at(&format!("properties.environmentVariables[{j}].name")),
                    "must be a non-empty name without '='",
                );
            }
            let (value, secret) = match (var.value, var.secure_value) {
                (_, Some(s)) => (s, true),
                (Some(v), None) => (v, false),
                (None, None) => (String::new(), false),
            };
            env.push(EnvVar {
                name: var.name,
                value,
                secret,
            });
        }
        let req = &c.resources.requests;
        let cap = c.resources.limits.as_ref();
        let cpu = cap.and_then(|l| l.cpu).or(req.cpu);
        let memory = cap.and_then(|l| l.memory_in_gb).or(req.memory_in_gb);
        match req.cpu {
            Some(v) if v.is_finite() && v > 0.0 => {}
            _ => p.add(
                at("properties.resources.requests.cpu"),
                "is required and must be positive",
            ),
        }
        match req.memory_in_gb {
            Some(v) if gb(v).is_some() => {}
            _ => p.add(
                at("properties.resources.requests.memoryInGB"),
                "is required and must be positive",
            ),
        }
        if let Some(l) = cap {
            if l.cpu
                .is_some_and(|v| !(v.is_finite() && v > 0.0) || req.cpu.is_some_and(|r| v < r))
            {
                p.add(
                    at("properties.resources.limits.cpu"),
                    "must be positive and at least the request",
                );
            }
            if l.memory_in_gb
                .is_some_and(|v| gb(v).is_none() || req.memory_in_gb.is_some_and(|r| v < r))
            {
                p.add(
                    at("properties.resources.limits.memoryInGB"),
                    "must be positive and at least the request",
                );
            }
        }
        let gpu = match cap.and_then(|l| l.gpu.as_ref()).or(req.gpu.as_ref()) {
            None => None,
            Some(g) => {
                let model = code_of_sku(&g.sku, gpu_codes);
                match (u32::try_from(g.count).ok().filter(|n| *n > 0), model) {
                    (Some(count), Some(code)) => Some(GpuRequest {
                        count,
                        models: vec![code],
                        device_ids: Vec::new(),
                        capabilities: Vec::new(),
                    }),
                    (None, _) => {
                        p.add(
                            at("properties.resources.requests.gpu.count"),
                            "must be a positive integer",
                        );
                        None
                    }
                    (_, None) => {
                        p.add(at("properties.resources.requests.gpu.sku"), {
                            let mut known: Vec<String> =
                                GPU_SKUS.iter().map(|(s, _)| (*s).to_string()).collect();
                            for c in gpu_codes {
                                let sku = sku_of(c);
                                if !known.contains(&sku) {
                                    known.push(sku);
                                }
                            }
                            format!("'{}' is not one of {}", g.sku, known.join(", "))
                        });
                        None
                    }
                }
            }
        };
        if let Ok(v) = serde_json::to_value(&c.resources) {
            resources_given.insert(def.name.clone(), v);
        }
        let security = c.security_context;
        containers.push(ContainerSpec {
            command: c.command.filter(|v| !v.is_empty()),
            env,
            ports,
            resources: Resources {
                cpu,
                memory_bytes: memory.and_then(gb),
                memory_reservation_bytes: if cap.and_then(|l| l.memory_in_gb).is_some() {
                    req.memory_in_gb.and_then(gb)
                } else {
                    None
                },
                ..Resources::default()
            },
            gpu,
            privileged: security
                .as_ref()
                .and_then(|s| s.privileged)
                .unwrap_or(false),
            extra_capabilities: security
                .and_then(|s| s.capabilities)
                .and_then(|c| c.add)
                .unwrap_or_default(),
            ..ContainerSpec::new(def.name, c.image.trim())
        });
    }
    let mut seen = std::collections::HashSet::new();
    for (i, c) in containers.iter().enumerate() {
        if !seen.insert(c.name.as_str()) {
            p.add(
                format!("properties.containers[{i}].name"),
                format!("'{}' is used twice", c.name),
            );
        }
    }
    if let Some(ip) = &props.ip_address {
        if !(ip.kind.eq_ignore_ascii_case("public") || ip.kind.eq_ignore_ascii_case("private")) {
            p.add(
                "properties.ipAddress.type",
                format!("'{}' is not one of Public, Private", ip.kind),
            );
        }
        if ip.ports.is_empty() {
            p.add(
                "properties.ipAddress.ports",
                "at least one port is required",
            );
        }
        for (j, port) in ip.ports.iter().enumerate() {
            let proto = protocol(&port.protocol);
            if !exposed
                .iter()
                .any(|(n, pr)| *n == port.port && Some(*pr) == proto)
            {
                p.add(
                    format!("properties.ipAddress.ports[{j}]"),
                    format!(
                        "port {} is not exposed by any container of the group",
                        port.port
                    ),
                );
            }
        }
        if let Some(label) = &ip.dns_name_label
            && !valid_name(label)
        {
            p.add(
                "properties.ipAddress.dnsNameLabel",
                "must be 1-63 lower-case letters, digits or '-'",
            );
        }
    }
    if !p.0.is_empty() {
        return Err(CloudError::invalid(p.0));
    }
    let mut annotations = vec![
        (keys::SUBSCRIPTION.to_string(), group.subscription.clone()),
        (keys::RESOURCE_GROUP.to_string(), group.name.clone()),
        (keys::LOCATION.to_string(), location.clone()),
        (
            keys::RESOURCES.to_string(),
            Value::Object(resources_given).to_string(),
        ),
    ];
    if let Some(tags) = body.tags {
        annotations.push((
            keys::TAGS.to_string(),
            serde_json::to_string(&tags).unwrap_or_default(),
        ));
    }
    if let Some(ip) = props.ip_address {
        // The group's ports and name on the host's ingress: reachable there
        // are the ports of `ipAddress`, at `<label>.<location>.<domain>`.
        let tcp: Vec<String> = ip
            .ports
            .iter()
            .filter(|p| protocol(&p.protocol) == Some(PortProtocol::Tcp))
            .map(|p| p.port.to_string())
            .collect();
        if !tcp.is_empty() {
            annotations.push((ingress::PORTS_ANNOTATION.to_string(), tcp.join(",")));
        }
        if let Some(label) = &ip.dns_name_label {
            annotations.push((
                ingress::NAME_ANNOTATION.to_string(),
                format!("{label}.{location}"),
            ));
        }
        annotations.push((
            keys::IP_ADDRESS.to_string(),
            serde_json::to_string(&ip).unwrap_or_default(),
        ));
    }
    if let Some(sku) = props.sku {
        annotations.push((keys::SKU.to_string(), sku));
    }
    Ok(Desired {
        // Containers share one isolated namespace; ports are recorded, not
        // published on the host (loopback-only, like ACI's private groups).
        spec: WorkloadSpec {
            restart: RestartPolicy {
                kind: restart,
                ..RestartPolicy::default()
            },
            ..WorkloadSpec::new(containers)
        },
        annotations,
        location,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::ResourceGroup;
    use serde_json::json;

    fn rg() -> ResourceGroup {
        ResourceGroup {
            subscription: "Sub".into(),
            name: "RG".into(),
        }
    }

    fn body(container: serde_json::Value) -> GroupBody {
        serde_json::from_value(json!({
            "location": "East US",
            "properties": {"osType": "Linux", "restartPolicy": "OnFailure", "containers": [container]}
        }))
        .expect("a group body")
    }

    #[test]
    fn requests_limits_gpu_and_secure_values_map_onto_the_spec() {
        let d = desired(
            body(json!({"name": "trainer", "properties": {
                "image": "example/trainer:1",
                "resources": {
                    "requests": {"cpu": 1, "memoryInGB": 2, "gpu": {"count": 2, "sku": "V100"}},
                    "limits": {"cpu": 2, "memoryInGB": 4}
                },
                "environmentVariables": [{"name": "KEY", "secureValue": "k"}, {"name": "MODE", "value": "fast"}]
            }})),
            &rg(),
            &[],
        )
        .expect("valid");
        let c = &d.spec.containers[0];
        assert_eq!(c.resources.cpu, Some(2.0));
        assert_eq!(c.resources.memory_bytes, Some(4 << 30));
        assert_eq!(c.resources.memory_reservation_bytes, Some(2 << 30));
        let gpu = c.gpu.as_ref().expect("a GPU request");
        assert_eq!(
            (gpu.count, gpu.models.clone()),
            (2, vec!["v100".to_string()])
        );
        assert!(c.env[0].secret && c.env[0].value == "k");
        assert!(!c.env[1].secret);
        assert_eq!(d.spec.restart.kind, RestartKind::OnFailure);
        let location = d.annotations.iter().find(|(k, _)| k == keys::LOCATION);
        assert_eq!(location.map(|(_, v)| v.as_str()), Some("eastus"));
    }

    #[test]
    fn limits_below_requests_are_refused() {
        let e = desired(
            body(json!({"name": "a", "properties": {
                "image": "x:1",
                "resources": {"requests": {"cpu": 2, "memoryInGB": 2}, "limits": {"cpu": 1}}
            }})),
            &rg(),
            &[],
        )
        .expect_err("limits below requests");
        assert_eq!(
            e.details[0].0,
            "properties.containers[0].properties.resources.limits.cpu"
        );
    }
}
