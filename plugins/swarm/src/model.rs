//! The few Engine API objects the plugin reads (services, tasks, nodes),
//! with only the fields it uses: states stay strings, so a state this API
//! version does not document (`rollback_started`) still decodes.

use serde::Deserialize;
use serde_json::Value;

/// Label keys of our own, beside the host's (`gantry_sdk::labels`).
pub mod labels {
    pub use gantry_sdk::labels::{CONTAINER, REVISION, WORKLOAD};
    /// The container's index in the spec, so a revision reads back in order.
    pub const INDEX: &str = "io.gantry.index";
    /// The replicas the spec asks for, restored by a start after a stop.
    pub const REPLICAS: &str = "io.gantry.replicas";
    /// On a service: `created` (never started), `running` or `stopped`.
    pub const LIFE: &str = "io.gantry.life";
    /// On a workload's overlay network.
    pub const NETWORK: &str = "io.gantry.network";
}

/// An object's version, which an update must name.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Version {
    /// The index to send as `version=`.
    #[serde(rename = "Index", default)]
    pub index: u64,
}

/// Where a rolling update is.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct UpdateStatus {
    /// `updating`, `paused`, `completed`, `rollback_started`, `rollback_paused`, `rollback_completed`.
    #[serde(default)]
    pub state: String,
    /// When it started (RFC 3339).
    #[serde(default)]
    pub started_at: String,
    /// The engine's account of it.
    #[serde(default)]
    pub message: String,
}

/// A service, its spec kept whole (an update sends it back whole).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Service {
    /// The service id.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its version.
    #[serde(default)]
    pub version: Version,
    /// The spec as the engine holds it.
    #[serde(default)]
    pub spec: Value,
    /// The last rolling update, if any.
    #[serde(default)]
    pub update_status: Option<UpdateStatus>,
}

impl Service {
    /// A label of the service's spec.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.spec.get("Labels")?.get(key)?.as_str()
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        self.spec.get("Name").and_then(Value::as_str).unwrap_or("")
    }

    /// The revision it runs.
    pub fn revision(&self) -> Option<u32> {
        self.label(labels::REVISION)?.parse().ok()
    }

    /// The container of the workload it runs.
    pub fn container(&self) -> &str {
        self.label(labels::CONTAINER).unwrap_or("")
    }

    /// The container's index in the spec.
    pub fn index(&self) -> u32 {
        self.label(labels::INDEX)
            .and_then(|i| i.parse().ok())
            .unwrap_or(0)
    }

    /// Replicas the engine is asked to run now.
    pub fn scale(&self) -> u64 {
        self.spec
            .pointer("/Mode/Replicated/Replicas")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }

    /// Replicas the spec asks for when running.
    pub fn replicas(&self) -> u64 {
        self.label(labels::REPLICAS)
            .and_then(|r| r.parse().ok())
            .unwrap_or(1)
    }
}

/// What a task's container reported.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerStatus {
    /// The container's id on its node.
    #[serde(rename = "ContainerID", default)]
    pub container_id: String,
    /// Its exit code, once it exited.
    #[serde(default)]
    pub exit_code: Option<i32>,
}

/// A task's status.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TaskStatus {
    /// When it entered this state (RFC 3339).
    #[serde(default)]
    pub timestamp: String,
    /// `new` … `running`, `complete`, `shutdown`, `failed`, `rejected`, `remove`, `orphaned`.
    #[serde(default)]
    pub state: String,
    /// The engine's error, if any.
    #[serde(default)]
    pub err: Option<String>,
    /// What the container reported.
    #[serde(default)]
    pub container_status: Option<ContainerStatus>,
}

/// One replica of a service, as the swarm schedules it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Task {
    /// The task id.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its service.
    #[serde(rename = "ServiceID", default)]
    pub service_id: String,
    /// The node it was placed on; empty while unplaced.
    #[serde(rename = "NodeID", default)]
    pub node_id: String,
    /// Its replica slot.
    #[serde(default)]
    pub slot: u32,
    /// What the swarm wants of it.
    #[serde(default)]
    pub desired_state: String,
    /// What it is.
    #[serde(default)]
    pub status: TaskStatus,
    /// When it was made (RFC 3339).
    #[serde(default)]
    pub created_at: String,
}

impl Task {
    /// Whether the swarm wants it running (not being replaced or removed).
    pub fn wanted(&self) -> bool {
        self.desired_state == "running"
    }

    /// Whether it runs.
    pub fn running(&self) -> bool {
        self.status.state == "running"
    }

    /// Whether it has ended, one way or another.
    pub fn ended(&self) -> bool {
        matches!(
            self.status.state.as_str(),
            "complete" | "shutdown" | "failed" | "rejected" | "orphaned" | "remove"
        )
    }

    /// Whether it never got a container running: refused by every node, or
    /// failed before its container started.
    pub fn never_ran(&self) -> bool {
        // The swarm's executor words a start the engine refused (a command
        // the image does not have: runc's exit code 127 comes with it).
        let start_refused = self
            .status
            .err
            .as_deref()
            .is_some_and(|e| e.starts_with("starting container failed"));
        self.status.state == "rejected"
            || (self.status.state == "failed"
                && (start_refused
                    || self
                        .status
                        .container_status
                        .as_ref()
                        .is_none_or(|c| c.exit_code.is_none() || c.container_id.is_empty())))
    }

    /// The exit code of its container, once it exited.
    pub fn exit_code(&self) -> Option<i32> {
        if !self.ended() {
            return None;
        }
        self.status
            .container_status
            .as_ref()
            .and_then(|c| c.exit_code)
    }
}

/// A node, as `GET /nodes` lists it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Node {
    /// The node id.
    #[serde(rename = "ID")]
    pub id: String,
    /// Its version.
    #[serde(default)]
    pub version: Version,
    /// Its spec (role, availability, labels).
    #[serde(default)]
    pub spec: Value,
    /// Hostname, resources, engine.
    #[serde(default)]
    pub description: Value,
    /// State and address.
    #[serde(default)]
    pub status: Value,
    /// Set on managers.
    #[serde(default)]
    pub manager_status: Option<Value>,
}

impl Node {
    /// Its hostname.
    pub fn hostname(&self) -> &str {
        self.description
            .get("Hostname")
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}
