//! The `cluster` export: the swarm's nodes, a node's availability, and
//! where each replica of a revision runs.

use crate::manager::{call, error, get};
use crate::model::{Node as ApiNode, Task};
use crate::services;
use crate::tasks::instant;
use gantry_sdk::backend::exports::gantry::plugin::cluster::{
    Node, NodeAvailability, Task as TaskView,
};
use gantry_sdk::backend::exports::gantry::plugin::driver::InstanceRef;
use gantry_sdk::backend::gantry::plugin::types::{Error, Timestamp};
use gantry_sdk::wasip2::http::types::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn availability(v: &str) -> NodeAvailability {
    match v {
        "drain" => NodeAvailability::Drain,
        "pause" => NodeAvailability::Pause,
        _ => NodeAvailability::Active,
    }
}

fn view(n: &ApiNode) -> Node {
    let s = |v: &Value, p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let labels = n
        .spec
        .get("Labels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                .collect()
        })
        .unwrap_or_default();
    let address = Some(s(&n.status, "/Addr")).filter(|a| !a.is_empty());
    Node {
        id: n.id.clone(),
        hostname: n.hostname().to_string(),
        role: s(&n.spec, "/Role"),
        state: s(&n.status, "/State"),
        availability: availability(&s(&n.spec, "/Availability")),
        leader: n
            .manager_status
            .as_ref()
            .and_then(|m| m.get("Leader"))
            .and_then(Value::as_bool)
            .unwrap_or(false),
        address,
        engine: s(&n.description, "/Engine/EngineVersion"),
        cpus: n
            .description
            .pointer("/Resources/NanoCPUs")
            .and_then(Value::as_f64)
            .unwrap_or(0.0)
            / 1e9,
        memory_bytes: n
            .description
            .pointer("/Resources/MemoryBytes")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        labels,
    }
}

fn all() -> Result<Vec<ApiNode>, Error> {
    get("/nodes", "listing nodes")
}

/// The ids of the nodes that are not ready (down, disconnected, unknown).
pub fn down() -> Result<Vec<String>, Error> {
    Ok(all()?
        .into_iter()
        .filter(|n| n.status.get("State").and_then(Value::as_str) != Some("ready"))
        .map(|n| n.id)
        .collect())
}

/// Every node, by hostname.
pub fn nodes() -> Result<Vec<Node>, Error> {
    let mut list: Vec<Node> = all()?.iter().map(view).collect();
    list.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    Ok(list)
}

/// Set the availability of the node with id or hostname `node`.
pub fn set_availability(node: &str, to: NodeAvailability) -> Result<Node, Error> {
    let every = all()?;
    let found = match every.iter().find(|n| n.id == node) {
        Some(n) => n.clone(),
        None => {
            let named: Vec<&ApiNode> = every.iter().filter(|n| n.hostname() == node).collect();
            match named.as_slice() {
                [one] => (*one).clone(),
                [] => {
                    return Err(Error::NotFound(format!(
                        "node `{node}` is not in the swarm"
                    )));
                }
                many => {
                    return Err(Error::Conflict(format!(
                        "{} nodes are called `{node}` (one rejoined?): name it by id ({})",
                        many.len(),
                        many.iter()
                            .map(|n| n.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
    };
    let mut spec = found.spec.clone();
    spec["Availability"] = json!(match to {
        NodeAvailability::Active => "active",
        NodeAvailability::Pause => "pause",
        NodeAvailability::Drain => "drain",
    });
    let r = call(
        Method::Post,
        &format!("/nodes/{}/update?version={}", found.id, found.version.index),
        Some(&spec),
    )?;
    if r.status != 200 {
        return Err(error(&r, &format!("updating node `{node}`")));
    }
    let now: ApiNode = get(&format!("/nodes/{}", found.id), "reading a node")?;
    Ok(view(&now))
}

/// The tasks of a revision, by container, slot and age (newest first).
pub fn tasks(r: &InstanceRef) -> Result<Vec<TaskView>, Error> {
    let svcs = services::of_revision(r, None)?;
    let ids: Vec<String> = svcs.iter().map(|s| s.id.clone()).collect();
    if ids.is_empty() {
        return Err(Error::NotFound(format!(
            "workload {} revision {} has no service on the swarm",
            r.workload_id, r.revision
        )));
    }
    let hostnames: BTreeMap<String, String> = all()?
        .iter()
        .map(|n| (n.id.clone(), n.hostname().to_string()))
        .collect();
    let mut ts: Vec<Task> = services::tasks(&ids)?;
    let order: BTreeMap<&str, u32> = svcs.iter().map(|s| (s.id.as_str(), s.index())).collect();
    ts.sort_by_key(|t| {
        let (s, n) = instant(&t.created_at);
        (
            order.get(t.service_id.as_str()).copied().unwrap_or(0),
            t.slot,
            -s,
            u32::MAX - n,
        )
    });
    Ok(ts
        .iter()
        .map(|t| {
            let (seconds, nanoseconds) = instant(&t.status.timestamp);
            TaskView {
                container: svcs
                    .iter()
                    .find(|s| s.id == t.service_id)
                    .map(|s| s.container().to_string())
                    .unwrap_or_default(),
                slot: t.slot,
                id: t.id.clone(),
                node_id: t.node_id.clone(),
                node: hostnames.get(&t.node_id).cloned().unwrap_or_default(),
                state: t.status.state.clone(),
                desired: t.desired_state.clone(),
                error: t.status.err.clone(),
                exit_code: t.exit_code(),
                at: (seconds > 0).then_some(Timestamp {
                    seconds,
                    nanoseconds,
                }),
            }
        })
        .collect())
}
