//! The control plane: the one owner of workload records, revisions, desired
//! vs observed state, authorisation and events. Frontends reach it through
//! the `control` capability; it drives backends through [`Driver`].
//!
//! - [`records`]: the state store, per-workload locks, events, pages;
//! - [`deploy`]: placement and the one "deploy a revision" path;
//! - `lifecycle`: the operations (create, update, delete, start, stop...);
//! - [`reconciler`]: observed state kept current, restart policies, adoption;
//! - [`health`]: which backends answer;
//! - [`bounds`]: what a caller may ask for (`[bounds]`), `validate` and
//!   `reference` (image references) the checks every operation runs;
//! - [`scopes`]: who may act in a tenant's space (`[[scope]]`, claims);
//! - [`gpus`]: the GPU ledger schedulers record their placements in;
//! - `ingress`: the names container URLs answer to;
//! - `cluster`: the nodes view of cluster backends.

mod authz;
pub mod bounds;
mod cluster;
pub mod deploy;
mod events;
pub mod gpus;
pub mod health;
mod ingress;
mod lifecycle;
mod phase;
pub mod reconciler;
pub mod records;
mod reference;
pub mod scopes;
mod validate;

use crate::bindings::types::{Error, Event, GpuModel, Workload};
use crate::driver::Driver;
use crate::store::StoreError;
use gpus::GpuLedger;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::broadcast;

pub use authz::authorize;
pub use bounds::Bounds;
pub use cluster::BackendProfile;
pub use deploy::{Deployer, Placement};
pub use events::EventBus;
pub use health::BackendHealth;
pub use phase::{derive_phase, failed_to_start};
pub use reconciler::Reconciler;
pub use records::Records;
pub use scopes::ScopeGrant;

/// Label keys every backend puts on what it creates (the SDK's).
pub use gantry_sdk::labels;

/// The control plane.
pub struct ControlPlane {
    records: Arc<Records>,
    deployer: Arc<Deployer>,
    health: Arc<BackendHealth>,
    ledger: Arc<GpuLedger>,
    admission: Admission,
}

/// What callers may ask for, and where: the config's `[bounds]` and
/// `[[scope]]`.
#[derive(Debug, Clone, Default)]
pub struct Admission {
    /// Bounds on a workload's spec.
    pub bounds: Bounds,
    /// Scopes given to callers by configuration.
    pub scopes: Vec<ScopeGrant>,
}

impl ControlPlane {
    /// A control plane over `records`, driving `drivers`, with GPUs
    /// allocated in `ledger` (over the same records), admitting callers'
    /// requests by `admission`.
    pub fn new(
        records: Arc<Records>,
        drivers: BTreeMap<String, Arc<dyn Driver>>,
        placement: Placement,
        ledger: Arc<GpuLedger>,
        admission: Admission,
    ) -> Result<Arc<Self>, StoreError> {
        let host_id = records.host_id()?;
        let events = records.event_bus();
        let health = Arc::new(BackendHealth::new(drivers.keys()));
        Ok(Arc::new(Self {
            records,
            deployer: Arc::new(Deployer::new(drivers, placement, host_id, events)),
            health,
            ledger,
            admission,
        }))
    }

    /// The reconciler of this control plane's workloads, to be spawned once.
    pub fn reconciler(&self) -> Arc<Reconciler> {
        Arc::new(Reconciler::new(
            self.records.clone(),
            self.deployer.clone(),
            self.health.clone(),
            self.ledger.clone(),
        ))
    }

    /// Which backends answer.
    pub fn health(&self) -> &Arc<BackendHealth> {
        &self.health
    }

    /// Subscribe to control-plane events.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.records.events().subscribe()
    }

    /// Every workload, unauthorised, read a page at a time: the host's own
    /// read at start, for what follows workloads (published ports).
    pub async fn every_workload(&self) -> Result<Vec<Workload>, Error> {
        const PAGE: u64 = 1000;
        let mut all = Vec::new();
        loop {
            let offset = all.len() as u64;
            let (items, total) = self
                .records
                .with_store(move |s| s.page(&crate::store::Selection::default(), offset, PAGE))
                .await?;
            let done = items.is_empty() || offset + (items.len() as u64) >= total;
            all.extend(items);
            if done {
                return Ok(all);
            }
        }
    }

    /// GPU models callers may ask for: the inventory's, or the catalogue.
    pub fn gpu_models(&self) -> Vec<GpuModel> {
        self.ledger.inventory().models()
    }

    /// The GPU ledger.
    pub fn ledger(&self) -> &Arc<GpuLedger> {
        &self.ledger
    }
}
