//! Provider-level lists: the operations `Microsoft.ContainerInstance`
//! offers, and per-location usages, capabilities and cached images.

use crate::spec::sku_of;
use gantry_sdk::http_frontend::gantry::plugin::config;
use gantry_sdk::http_frontend::gantry::plugin::types::Workload;
use serde_json::{Value, json};

/// `(operation, resource, verb, description)` of every operation served.
const OPERATIONS: &[(&str, &str, &str, &str)] = &[
    (
        "containerGroups/read",
        "Container Group",
        "Get Container Group",
        "Get all container groups.",
    ),
    (
        "containerGroups/write",
        "Container Group",
        "Create or Update Container Group",
        "Create or update a specific container group.",
    ),
    (
        "containerGroups/delete",
        "Container Group",
        "Delete Container Group",
        "Delete the specific container group.",
    ),
    (
        "containerGroups/restart/action",
        "Container Group",
        "Restart Container Group",
        "Restarts a specific container group.",
    ),
    (
        "containerGroups/stop/action",
        "Container Group",
        "Stop Container Group",
        "Stops a specific container group.",
    ),
    (
        "containerGroups/start/action",
        "Container Group",
        "Start Container Group",
        "Starts a specific container group.",
    ),
    (
        "containerGroups/containers/logs/read",
        "Container Logs",
        "Get Container Logs",
        "Get the logs for a specific container.",
    ),
    (
        "locations/usages/read",
        "Usage",
        "Get Usage",
        "Get the usage for a specific location.",
    ),
    (
        "locations/capabilities/read",
        "Capabilities",
        "Get Capabilities",
        "Get the capabilities for a specific location.",
    ),
    (
        "locations/cachedImages/read",
        "Cached Images",
        "Get Cached Images",
        "Gets the cached images for the platform in a specific region.",
    ),
    (
        "locations/operations/read",
        "Operation",
        "Get Async Operation",
        "Get the status of an asynchronous operation.",
    ),
    (
        "operations/read",
        "Operation",
        "List Operations",
        "List the operations for Azure Container Instance service.",
    ),
];

/// `Operations_List`.
pub fn operations() -> Value {
    let value: Vec<Value> = OPERATIONS
        .iter()
        .map(|(op, resource, verb, description)| {
            json!({
                "name": format!("Microsoft.ContainerInstance/{op}"),
                "display": {
                    "provider": "Microsoft Container Instance",
                    "resource": resource,
                    "operation": verb,
                    "description": description,
                },
                "origin": "User",
            })
        })
        .collect();
    json!({ "value": value })
}

fn setting(key: &str, default: f64) -> f64 {
    config::get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Usages of the caller's workloads in one location: container groups and cores.
pub fn usages(in_location: &[Workload]) -> Value {
    let cores: f64 = in_location
        .iter()
        .flat_map(|w| &w.spec.containers)
        .map(|c| c.resources.cpu.unwrap_or(1.0))
        .sum();
    json!({"value": [
        {
            "unit": "Count",
            "currentValue": in_location.len(),
            "limit": setting("max-container-groups", 100.0) as i64,
            "name": {"value": "ContainerGroups", "localizedValue": "Container Groups"},
        },
        {
            "unit": "Count",
            "currentValue": cores.ceil() as i64,
            "limit": setting("max-cores", 64.0) as i64,
            "name": {"value": "StandardCores", "localizedValue": "Standard Cores"},
        },
    ]})
}

/// What one container group may ask for in `location`, with and without
/// each GPU model the host has (or, with no inventory, its catalogue has),
/// by SKU.
pub fn capabilities(location: &str, gpu_codes: &[String]) -> Value {
    let max_cpu = setting("max-cpu", 4.0);
    let max_memory = setting("max-memory-gb", 16.0);
    let mut gpus = vec![("None".to_string(), 0.0)];
    for code in gpu_codes {
        let sku = sku_of(code);
        if !gpus.iter().any(|(s, _)| *s == sku) {
            gpus.push((sku, setting("max-gpu-count", 4.0)));
        }
    }
    let mut value = Vec::new();
    for ip in ["Public", "Private"] {
        for (gpu, max_gpu) in &gpus {
            value.push(json!({
                "resourceType": "containerGroups",
                "osType": "Linux",
                "location": location,
                "ipAddressType": ip,
                "gpu": gpu,
                "capabilities": {"maxMemoryInGB": max_memory, "maxCpu": max_cpu, "maxGpuCount": max_gpu},
            }));
        }
    }
    json!({ "value": value })
}
