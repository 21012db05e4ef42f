//! The swarm backend's runtime seen without gantry, on the shared swarm
//! ([`crate::swarm::shared`]), with the docker CLI on the manager and on
//! each node.
//!
//! The runtime id gantry reports for a swarm container is its service, so
//! a service is what this view observes: its name, and the labels, state
//! and process of its newest task's container, on whichever node runs it.
//! A container left on a node after its service went is observed on its
//! own (by container id), so "nothing left" checks see it.

use super::Observed;
use crate::swarm::{Node, shared};
use serde_json::Value;
use std::collections::HashMap;

fn manager() -> &'static Node {
    shared().manager()
}

/// What the docker CLI on `node` prints for `args`, as JSON; `None` if it failed.
fn json(node: &Node, args: &[&str]) -> Option<Value> {
    serde_json::from_str(&node.cli(args)?).ok()
}

fn text(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn labels(v: &Value, pointer: &str) -> HashMap<String, String> {
    v.pointer(pointer)
        .cloned()
        .and_then(|l| serde_json::from_value(l).ok())
        .unwrap_or_default()
}

/// Services carrying `label` (`key` or `key=value`), inspected.
fn services(label: &str) -> Vec<Value> {
    let ids = shared().services(label);
    if ids.is_empty() {
        return Vec::new();
    }
    let mut args = vec!["service", "inspect"];
    args.extend(ids.iter().map(String::as_str));
    // A service removed between the two calls: inspect them one by one.
    match json(manager(), &args) {
        Some(Value::Array(list)) => list,
        _ => ids
            .iter()
            .filter_map(|id| json(manager(), &["service", "inspect", id]))
            .filter_map(|v| v.as_array().and_then(|a| a.first().cloned()))
            .collect(),
    }
}

/// A container inspected on whichever node has it.
fn container(id: &str) -> Option<Value> {
    shared().nodes.iter().find_map(|n| {
        json(n, &["inspect", "--type", "container", id])
            .and_then(|v| v.as_array().and_then(|a| a.first().cloned()))
    })
}

/// An RFC 3339 UTC time that orders as text (fractions of any length).
fn sortable(time: &str) -> String {
    let t = time.trim_end_matches('Z');
    match t.split_once('.') {
        Some((whole, fraction)) => format!("{whole}.{fraction:0<9}"),
        None => format!("{t}.000000000"),
    }
}

/// The container of the service's newest task that has one; `None` also
/// when the service went meanwhile (another test's, removed).
fn newest_container(service: &str) -> Option<Value> {
    let listed = manager().cli(&["service", "ps", "-q", "--no-trunc", service])?;
    let tasks: Vec<&str> = listed.lines().filter(|l| !l.is_empty()).collect();
    if tasks.is_empty() {
        return None;
    }
    let mut args = vec!["inspect", "--type", "task"];
    args.extend(tasks);
    let inspected = json(manager(), &args)?;
    let newest = inspected
        .as_array()?
        .iter()
        .filter(|t| !text(t, "/Status/ContainerStatus/ContainerID").is_empty())
        .max_by_key(|t| sortable(&text(t, "/CreatedAt")))?
        .clone();
    container(&text(&newest, "/Status/ContainerStatus/ContainerID"))
}

/// A container as the other backends' views say it.
fn container_observed(id: String, name: String, c: &Value) -> Observed {
    let state = if c.pointer("/State/Paused") == Some(&Value::Bool(true)) {
        "paused".to_string()
    } else {
        text(c, "/State/Status")
    };
    Observed {
        id,
        labels: labels(c, "/Config/Labels"),
        state,
        pid: c
            .pointer("/State/Pid")
            .and_then(Value::as_u64)
            .and_then(|p| u32::try_from(p).ok())
            .filter(|p| *p > 0),
        name,
    }
}

/// A service, through its newest task's container. While it has none, with
/// the service's container labels: `exited` when scaled to no replicas (the
/// swarm removes the containers of a scale-down), else `created`.
fn service_observed(s: &Value) -> Observed {
    let id = text(s, "/ID");
    let name = text(s, "/Spec/Name");
    match newest_container(&id) {
        Some(c) => container_observed(id, name, &c),
        None => {
            let replicas = s
                .pointer("/Spec/Mode/Replicated/Replicas")
                .and_then(Value::as_u64);
            Observed {
                id,
                labels: labels(s, "/Spec/TaskTemplate/ContainerSpec/Labels"),
                state: if replicas == Some(0) {
                    "exited"
                } else {
                    "created"
                }
                .into(),
                pid: None,
                name,
            }
        }
    }
}

/// Containers on any node carrying `label` whose service is not in `services`.
fn strays(label: &str, services: &[Observed]) -> Vec<Observed> {
    shared()
        .containers(label)
        .into_iter()
        .filter_map(|id| container(&id).map(|c| (id, c)))
        .filter(|(_, c)| {
            let service = labels(c, "/Config/Labels")
                .remove("com.docker.swarm.service.id")
                .unwrap_or_default();
            !services.iter().any(|s| s.id == service)
        })
        .map(|(id, c)| {
            let name = text(&c, "/Name").trim_start_matches('/').to_string();
            container_observed(id, name, &c)
        })
        .collect()
}

/// The services carrying `label`, and containers of it whose service is gone.
pub(super) fn labelled(label: &str) -> Vec<Observed> {
    let mut out: Vec<Observed> = services(label).iter().map(service_observed).collect();
    let left = strays(label, &out);
    out.extend(left);
    out
}

/// One service by id.
pub(super) fn observe(id: &str) -> Observed {
    let s = json(manager(), &["service", "inspect", id])
        .and_then(|v| v.as_array().and_then(|a| a.first().cloned()))
        .unwrap_or_else(|| panic!("no service {id} on the swarm"));
    service_observed(&s)
}

/// The docker socket of the shared swarm's manager.
pub(super) fn manager_socket() -> std::path::PathBuf {
    manager().docker_sock.clone()
}
