//! The backends view over HTTP, beside `/-/reload`: what each backend
//! declares, the machines of each cluster backend, a node's availability,
//! and where a workload's replicas run. Every route needs a bearer token;
//! changing availability needs ADMIN.
//!
//! - `GET /-/backends`: each configured backend's name, whether it drives a
//!   cluster (and so whether a workload's containers share one network
//!   namespace), and its capabilities (`GET /-/backends/{backend}`: one);
//! - `GET /-/backends/{backend}/nodes`: the nodes, by hostname;
//! - `POST /-/backends/{backend}/nodes/{node}` with `{"availability":
//!   "drain"|"pause"|"active"}` (node by id or hostname): the node after;
//! - `GET /-/workloads/{id}/tasks`: the tasks of its current revision.
//!
//! Errors are `{"error": ..., "kind": ...}` with the status of their kind
//! (`unsupported`, a backend of one machine, is 501).

use crate::auth::Verifier;
use crate::bindings::types::{Caller, Error};
use crate::control::{BackendProfile, ControlPlane};
use crate::driver::{ClusterNode, ClusterTask, NodeAvailability};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use std::sync::Arc;

/// What the nodes routes need.
pub struct NodesApi {
    /// The control plane the calls go to.
    pub control: Arc<ControlPlane>,
    /// Token verification.
    pub verifier: Verifier,
}

/// The routes, to merge into the ingress's router.
pub fn router<S>(api: NodesApi) -> Router<S> {
    Router::new()
        .route("/-/backends", get(profiles))
        .route("/-/backends/{backend}", get(profile))
        .route("/-/backends/{backend}/nodes", get(list))
        .route(
            "/-/backends/{backend}/nodes/{node}",
            axum::routing::post(set_availability),
        )
        .route("/-/workloads/{id}/tasks", get(tasks))
        .with_state(Arc::new(api))
}

fn failure(e: &Error) -> Response {
    let (status, kind, message) = match e {
        Error::NotFound(m) => (StatusCode::NOT_FOUND, "not-found", m.clone()),
        Error::Invalid(i) => (StatusCode::BAD_REQUEST, "invalid", i.message.clone()),
        Error::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m.clone()),
        Error::Unauthenticated(m) => (StatusCode::UNAUTHORIZED, "unauthenticated", m.clone()),
        Error::Conflict(m) => (StatusCode::CONFLICT, "conflict", m.clone()),
        Error::Unsupported(m) => (StatusCode::NOT_IMPLEMENTED, "unsupported", m.clone()),
        Error::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m.clone()),
        Error::Backend(m) => (StatusCode::BAD_GATEWAY, "backend", m.clone()),
        Error::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", m.clone()),
    };
    (status, Json(json!({"error": message, "kind": kind}))).into_response()
}

/// Verify the caller, make `call` on their behalf, and answer: the result
/// `render`ed as JSON, or its error with the status of its kind.
async fn serve<T, F>(
    api: &NodesApi,
    headers: &HeaderMap,
    call: impl FnOnce(Caller) -> F,
    render: impl FnOnce(T) -> Value,
) -> Response
where
    F: std::future::Future<Output = Result<T, Error>>,
{
    let result = match caller(api, headers) {
        Ok(c) => call(c).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(v) => Json(render(v)).into_response(),
        Err(e) => failure(&e),
    }
}

fn caller(api: &NodesApi, headers: &HeaderMap) -> Result<Caller, Error> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    api.verifier
        .verify_header(auth)
        .map_err(Error::Unauthenticated)
}

fn availability_name(a: NodeAvailability) -> &'static str {
    match a {
        NodeAvailability::Active => "active",
        NodeAvailability::Pause => "pause",
        NodeAvailability::Drain => "drain",
    }
}

fn node_json(n: &ClusterNode) -> Value {
    json!({
        "id": n.id,
        "hostname": n.hostname,
        "role": n.role,
        "state": n.state,
        "availability": availability_name(n.availability),
        "leader": n.leader,
        "address": n.address,
        "engine": n.engine,
        "resources": {"cpus": n.cpus, "memory_bytes": n.memory_bytes},
        "labels": n
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect::<serde_json::Map<String, Value>>(),
    })
}

fn profile_json(p: &BackendProfile) -> Value {
    let c = &p.capabilities;
    json!({
        "name": p.name,
        "cluster": p.cluster,
        // Not a capability the plugin states (a WIT 0.1 record cannot
        // grow): what `create` promises a multi-container backend of one
        // machine, and a cluster's containers may be on different machines.
        "shared_network_namespace": c.multi_container && !p.cluster,
        "capabilities": {
            "runtime": c.runtime,
            "multi_container": c.multi_container,
            "pause": c.pause,
            "gpu": c.gpu,
            "ephemeral_storage_enforced": c.ephemeral_storage_enforced,
            "logs_follow": c.logs_follow,
            "stats": c.stats,
            "events": c.events,
            "update_in_place": c.update_in_place,
            "rename": c.rename,
        },
    })
}

/// Every backend's profile; one that cannot answer says why in its entry.
async fn profiles(State(api): State<Arc<NodesApi>>, headers: HeaderMap) -> Response {
    let c = match caller(&api, &headers) {
        Ok(c) => c,
        Err(e) => return failure(&e),
    };
    let mut out = Vec::new();
    for name in api.control.backends() {
        out.push(match api.control.backend_profile(&c, &name).await {
            Ok(p) => profile_json(&p),
            Err(e) => json!({"name": name, "error": e.describe()}),
        });
    }
    Json(json!({"backends": out})).into_response()
}

async fn profile(
    State(api): State<Arc<NodesApi>>,
    Path(backend): Path<String>,
    headers: HeaderMap,
) -> Response {
    let control = &api.control;
    serve(
        &api,
        &headers,
        |c| async move { control.backend_profile(&c, &backend).await },
        |p| profile_json(&p),
    )
    .await
}

fn task_json(t: &ClusterTask) -> Value {
    json!({
        "container": t.container,
        "slot": t.slot,
        "id": t.id,
        "node_id": t.node_id,
        "node": t.node,
        "state": t.state,
        "desired": t.desired,
        "error": t.error,
        "exit_code": t.exit_code,
        "at": t.at.and_then(|at| gantry_sdk::clock::rfc3339(at.seconds, at.nanoseconds)),
    })
}

async fn list(
    State(api): State<Arc<NodesApi>>,
    Path(backend): Path<String>,
    headers: HeaderMap,
) -> Response {
    let control = &api.control;
    let named = &backend;
    serve(
        &api,
        &headers,
        |c| async move { control.nodes(&c, named).await },
        |nodes| {
            json!({
                "backend": backend,
                "nodes": nodes.iter().map(node_json).collect::<Vec<_>>(),
            })
        },
    )
    .await
}

async fn set_availability(
    State(api): State<Arc<NodesApi>>,
    Path((backend, node)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let control = &api.control;
    let call = |c: Caller| async move {
        let asked: Value = serde_json::from_slice(&body)
            .map_err(|e| invalid(format!("the body is not JSON: {e}")))?;
        let to = match asked.get("availability").and_then(Value::as_str) {
            Some("active") => NodeAvailability::Active,
            Some("pause") => NodeAvailability::Pause,
            Some("drain") => NodeAvailability::Drain,
            other => {
                return Err(invalid(format!(
                    "`availability` must be \"active\", \"pause\" or \"drain\", not {other:?}"
                )));
            }
        };
        control.set_node_availability(&c, &backend, &node, to).await
    };
    serve(&api, &headers, call, |n| node_json(&n)).await
}

fn invalid(message: String) -> Error {
    Error::Invalid(crate::bindings::types::InvalidInput {
        message,
        fields: Vec::new(),
    })
}

async fn tasks(
    State(api): State<Arc<NodesApi>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let control = &api.control;
    let named = &id;
    serve(
        &api,
        &headers,
        |c| async move { control.tasks(&c, named).await },
        |ts| {
            json!({
                "workload": id,
                "tasks": ts.iter().map(task_json).collect::<Vec<_>>(),
            })
        },
    )
    .await
}
