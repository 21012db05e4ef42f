//! The backends view: what each configured backend declares it can do, the
//! machines a cluster backend spreads workloads over, a node's availability
//! (drain, pause, activate), and where each replica of a workload runs.
//! Backends of one machine answer `unsupported` to the cluster calls.
//!
//! Any authenticated caller may list nodes; changing a node's availability
//! moves other callers' workloads, so it needs the ADMIN role; a workload's
//! tasks are its owner's (or an ADMIN's) to read.

use super::{ControlPlane, Deployer};
use crate::bindings::types::{Caller, Error};
use crate::driver::{BackendCapabilities, ClusterNode, ClusterTask, NodeAvailability};

/// What a configured backend declares.
#[derive(Debug, Clone)]
pub struct BackendProfile {
    /// Its configured name.
    pub name: String,
    /// Whether it drives a cluster engine (its plugin exports `cluster`).
    pub cluster: bool,
    /// What it supports, as its plugin says.
    pub capabilities: BackendCapabilities,
}

impl ControlPlane {
    /// The backend a view's URL names: one not configured is not found.
    fn named(&self, backend: &str) -> Result<std::sync::Arc<dyn crate::driver::Driver>, Error> {
        match self.deployer.drivers().get(backend) {
            Some(d) => Ok(d.clone()),
            None => Err(Error::NotFound(format!("no backend named `{backend}`"))),
        }
    }

    /// The names of the configured backends.
    pub fn backends(&self) -> Vec<String> {
        self.deployer.drivers().keys().cloned().collect()
    }

    /// What `backend` declares it can do (any authenticated caller).
    pub async fn backend_profile(
        &self,
        caller: &Caller,
        backend: &str,
    ) -> Result<BackendProfile, Error> {
        let _ = caller; // any authenticated caller: the ingress verified it
        let driver = self.named(backend)?;
        Ok(BackendProfile {
            name: backend.to_string(),
            cluster: driver.is_cluster().await?,
            capabilities: driver.capabilities().await?,
        })
    }

    /// The nodes of `backend`'s cluster.
    pub async fn nodes(&self, caller: &Caller, backend: &str) -> Result<Vec<ClusterNode>, Error> {
        let _ = caller; // any authenticated caller: the ingress verified it
        let driver = self.named(backend)?;
        Ok(driver.nodes().await?)
    }

    /// Set a node's availability on `backend`'s cluster (ADMIN only).
    pub async fn set_node_availability(
        &self,
        caller: &Caller,
        backend: &str,
        node: &str,
        availability: NodeAvailability,
    ) -> Result<ClusterNode, Error> {
        if !caller.is_admin() {
            return Err(Error::Forbidden(format!(
                "{} may not change a node's availability: the ADMIN role is required",
                caller.subject
            )));
        }
        let driver = self.named(backend)?;
        let n = driver
            .set_availability(node.to_string(), availability)
            .await?;
        tracing::info!(caller = %caller.subject, backend, node = %n.hostname, ?availability, "node availability set");
        Ok(n)
    }

    /// Where each replica of workload `id`'s current revision runs.
    pub async fn tasks(&self, caller: &Caller, id: &str) -> Result<Vec<ClusterTask>, Error> {
        let w = self.records.load(caller, id).await?;
        let driver = self.deployer.driver(&w.backend)?.clone();
        Ok(driver.tasks(Deployer::instance(&w)).await?)
    }
}
