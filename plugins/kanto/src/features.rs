//! The thing's features as Kanto reports them in the twin.

use crate::config::twin_config;
use gantry_sdk::mqtt_frontend::gantry::plugin::types::{
    ContainerState, ContainerStatus, DesiredState, Timestamp, Workload, WorkloadPhase,
};
use serde_json::{Map, Value, json};

/// Definition of a container feature.
pub const CONTAINER_DEFINITION: &str = "com.bosch.iot.suite.edge.containers:Container:1.5.0";
/// Definition of the container factory feature.
pub const FACTORY_DEFINITION: &str = "com.bosch.iot.suite.edge.containers:ContainerFactory:1.3.0";
/// Definition of the metrics feature.
pub const METRICS_DEFINITION: &str = "com.bosch.iot.suite.edge.metric:Metrics:1.0.0";

/// The feature id of a workload.
pub fn container_feature_id(workload_id: &str) -> String {
    format!("Container:{workload_id}")
}

/// RFC 3339 with nanoseconds, UTC, as Kanto writes times.
pub fn rfc3339(t: &Timestamp) -> Option<String> {
    gantry_sdk::clock::rfc3339(t.seconds, t.nanoseconds)
}

fn status_word(w: &Workload, c: Option<&ContainerState>) -> &'static str {
    let Some(c) = c else {
        return if w.phase == WorkloadPhase::Deploying {
            "CREATING"
        } else {
            "UNKNOWN"
        };
    };
    match c.status {
        ContainerStatus::Creating => "CREATING",
        ContainerStatus::Created => "CREATED",
        ContainerStatus::Running | ContainerStatus::Restarting => "RUNNING",
        ContainerStatus::Paused => "PAUSED",
        ContainerStatus::Stopped => "STOPPED",
        // An exit the caller asked for is a stop, as in Kanto.
        ContainerStatus::Exited if w.desired == DesiredState::Stopped => "STOPPED",
        ContainerStatus::Exited => "EXITED",
        ContainerStatus::Dead => "DEAD",
        ContainerStatus::Unknown => "UNKNOWN",
    }
}

/// The `state` of a workload's (first) container; as in Kanto, empty
/// fields (a zero pid or exit code, no error) are left out.
pub fn state(w: &Workload) -> Value {
    let c = w.containers.first();
    let mut s = Map::new();
    s.insert("status".into(), status_word(w, c).into());
    if let Some(pid) = c.and_then(|c| c.pid).filter(|p| *p != 0) {
        s.insert("pid".into(), pid.into());
    }
    if let Some(e) = c
        .and_then(|c| c.error.clone())
        .or_else(|| w.message.clone())
        .filter(|e| !e.is_empty())
    {
        s.insert("error".into(), e.into());
    }
    if let Some(code) = c.and_then(|c| c.exit_code).filter(|c| *c != 0) {
        s.insert("exitCode".into(), code.into());
    }
    if let Some(t) = c.and_then(|c| c.started_at.as_ref()).and_then(rfc3339) {
        s.insert("startedAt".into(), t.into());
    }
    if let Some(t) = c.and_then(|c| c.finished_at.as_ref()).and_then(rfc3339) {
        s.insert("finishedAt".into(), t.into());
    }
    if c.is_some_and(|c| c.oom_killed) {
        s.insert("oomKilled".into(), true.into());
    }
    Value::Object(s)
}

/// The state a removed container is reported in last: its last state, DEAD,
/// with no process.
pub fn dead(last: &Value) -> Value {
    let mut s = last.as_object().cloned().unwrap_or_default();
    s.insert("status".into(), "DEAD".into());
    s.remove("pid");
    Value::Object(s)
}

/// The whole Container feature of a workload.
pub fn container(w: &Workload) -> Value {
    let image = w
        .spec
        .containers
        .first()
        .map(|c| c.image.clone())
        .unwrap_or_default();
    json!({
        "definition": [CONTAINER_DEFINITION],
        "properties": {
            "status": {
                "name": w.name,
                "imageRef": image,
                "config": twin_config(&w.spec),
                "createdAt": rfc3339(&w.created_at),
                "state": state(w),
            }
        }
    })
}
