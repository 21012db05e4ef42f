//! The `Driver` trait the control plane drives backends through, and its
//! error, which keeps apart what the backend answered and how its plugin
//! failed (a deadline is not a bug). The plugin implementation is
//! [`crate::worlds::backend`].

use crate::bindings::exports::gantry::plugin::driver as guest;
use crate::bindings::types::{
    ContainerState, ContainerStats, Error, LogOptions, Resources, RestartPolicy, Timestamp,
};
use crate::runtime::CallError;
use async_trait::async_trait;

pub use crate::bindings::LogSource;
pub use crate::bindings::exports::gantry::plugin::cluster::{
    Node as ClusterNode, NodeAvailability, Task as ClusterTask,
};
pub use guest::{
    BackendCapabilities, Deployment, InstanceRef, InstanceSummary, RuntimeAction, RuntimeEvent,
};

/// How a driver call failed.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The backend answered with a typed error (not found, conflict, unavailable...).
    #[error("{}", .0.describe())]
    Backend(Error),
    /// The backend's plugin failed: trapped, ran past its deadline, did not
    /// answer in time, ran out of memory.
    #[error(transparent)]
    Plugin(#[from] CallError),
}

impl From<Error> for DriverError {
    fn from(e: Error) -> Self {
        DriverError::Backend(e)
    }
}

impl From<DriverError> for Error {
    /// At the `control` boundary: a backend's own answer passes as it is; a
    /// plugin that ran out of time or did not answer is `unavailable` (worth
    /// retrying), one that trapped or ran out of memory is `internal` (a bug).
    fn from(e: DriverError) -> Self {
        match e {
            DriverError::Backend(e) => e,
            DriverError::Plugin(
                c @ (CallError::Deadline { .. } | CallError::Unanswered { .. }),
            ) => Error::Unavailable(c.to_string()),
            DriverError::Plugin(c) => Error::Internal(c.to_string()),
        }
    }
}

/// What driver calls return.
pub type DriverResult<T> = Result<T, DriverError>;

/// A runtime backend, as the control plane drives it.
#[async_trait]
pub trait Driver: Send + Sync {
    /// The backend's configured name.
    fn name(&self) -> &str;
    /// What the backend supports.
    async fn capabilities(&self) -> DriverResult<BackendCapabilities>;
    /// Create (and optionally start) every container of a revision.
    async fn create(
        &self,
        deployment: Deployment,
        start: bool,
    ) -> DriverResult<Vec<ContainerState>>;
    /// Start containers.
    async fn start(&self, r: InstanceRef, container: Option<String>) -> DriverResult<()>;
    /// Stop containers gracefully.
    async fn stop(
        &self,
        r: InstanceRef,
        container: Option<String>,
        signal: Option<String>,
        timeout: Option<u32>,
    ) -> DriverResult<()>;
    /// Send a signal (default SIGKILL).
    async fn kill(
        &self,
        r: InstanceRef,
        container: Option<String>,
        signal: Option<String>,
    ) -> DriverResult<()>;
    /// Restart containers.
    async fn restart(
        &self,
        r: InstanceRef,
        container: Option<String>,
        timeout: Option<u32>,
    ) -> DriverResult<()>;
    /// Pause containers.
    async fn pause(&self, r: InstanceRef, container: Option<String>) -> DriverResult<()>;
    /// Resume paused containers.
    async fn resume(&self, r: InstanceRef, container: Option<String>) -> DriverResult<()>;
    /// Remove every container of a revision.
    async fn remove(&self, r: InstanceRef, force: bool) -> DriverResult<()>;
    /// Observed state of a revision's containers.
    async fn inspect(&self, r: InstanceRef) -> DriverResult<Vec<ContainerState>>;
    /// Every revision the runtime holds with gantry's labels and all of `selector`'s.
    async fn list(&self, selector: Vec<(String, String)>) -> DriverResult<Vec<InstanceSummary>>;
    /// Resource usage of a container.
    async fn stats(
        &self,
        r: InstanceRef,
        container: Option<String>,
    ) -> DriverResult<ContainerStats>;
    /// Change resources or restart policy in place.
    async fn update(
        &self,
        r: InstanceRef,
        container: Option<String>,
        resources: Option<Resources>,
        restart: Option<RestartPolicy>,
    ) -> DriverResult<()>;
    /// Rename a revision's containers.
    async fn rename(&self, r: InstanceRef, name: String) -> DriverResult<()>;
    /// Runtime events after `since`, waiting at most `wait_ms`.
    async fn watch(
        &self,
        since: Option<Timestamp>,
        wait_ms: u32,
    ) -> DriverResult<Vec<RuntimeEvent>>;
    /// Open a container's log.
    async fn logs(&self, r: InstanceRef, options: LogOptions) -> DriverResult<Box<dyn LogSource>>;

    /// Whether the backend drives a cluster engine (exports `cluster`):
    /// its containers may run on different machines, so a workload's
    /// containers share no network namespace and reach each other by name.
    async fn is_cluster(&self) -> DriverResult<bool> {
        Ok(false)
    }
    /// The nodes of the cluster the backend drives (world `cluster-backend`);
    /// `unsupported` for a backend of one machine.
    async fn nodes(&self) -> DriverResult<Vec<ClusterNode>> {
        Err(not_a_cluster(self.name()))
    }
    /// Set a node's availability (by id or hostname).
    async fn set_availability(
        &self,
        node: String,
        availability: NodeAvailability,
    ) -> DriverResult<ClusterNode> {
        let _ = (node, availability);
        Err(not_a_cluster(self.name()))
    }
    /// Where each replica of a deployed revision runs.
    async fn tasks(&self, r: InstanceRef) -> DriverResult<Vec<ClusterTask>> {
        let _ = r;
        Err(not_a_cluster(self.name()))
    }
}

/// What a backend of one machine answers to cluster calls.
pub fn not_a_cluster(backend: &str) -> DriverError {
    DriverError::Backend(Error::Unsupported(format!(
        "backend `{backend}` runs on one machine: it has no nodes (it does not export `cluster`)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_keep_their_kind_across_the_driver_boundary() {
        let plugin = "docker".to_string();
        let cases = [
            (
                DriverError::Plugin(CallError::Deadline {
                    plugin: plugin.clone(),
                    ms: 5000,
                }),
                "unavailable",
            ),
            (
                DriverError::Plugin(CallError::Unanswered {
                    plugin: plugin.clone(),
                    call: "create",
                    ms: 1000,
                }),
                "unavailable",
            ),
            (
                DriverError::Plugin(CallError::Trap {
                    plugin: plugin.clone(),
                    message: "unreachable".into(),
                }),
                "internal",
            ),
            (
                DriverError::Plugin(CallError::Memory {
                    plugin: plugin.clone(),
                    limit: 1 << 20,
                }),
                "internal",
            ),
            (
                DriverError::Backend(Error::NotFound("image x".into())),
                "not found",
            ),
            (
                DriverError::Backend(Error::Unavailable("engine down".into())),
                "unavailable",
            ),
        ];
        for (e, kind) in cases {
            let described = Error::from(e.clone()).describe();
            assert!(described.starts_with(kind), "{e:?} → {described}");
        }
        let deadline = DriverError::Plugin(CallError::Deadline { plugin, ms: 5000 });
        assert!(
            Error::from(deadline).describe().contains("deadline"),
            "the message says what happened"
        );
    }
}
