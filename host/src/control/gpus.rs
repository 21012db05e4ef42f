//! The GPU ledger: which deployed revision holds which GPU, and which wait
//! for GPUs in what order. Schedulers place; the ledger makes their
//! decisions durable (in the state store, so they survive a restart) and
//! exclusive (a GPU held by one workload is refused to every other).

use super::records::Records;
use crate::bindings::gantry::plugin::allocations::Claim;
use crate::bindings::types::{Error, GpuAssignment};
use crate::gpu::Inventory;
use crate::metrics::Metrics;
use crate::store::HeldElsewhere;
use std::sync::Arc;
use tokio::sync::Notify;

/// The ledger.
pub struct GpuLedger {
    records: Arc<Records>,
    inventory: Arc<Inventory>,
    freed: Notify,
}

impl GpuLedger {
    /// A ledger in `records`' store, over `inventory`.
    pub fn new(records: Arc<Records>, inventory: Arc<Inventory>) -> Self {
        Self {
            records,
            inventory,
            freed: Notify::new(),
        }
    }

    /// The inventory it allocates.
    pub fn inventory(&self) -> &Arc<Inventory> {
        &self.inventory
    }

    /// Every claim, held or waiting.
    pub async fn claims(&self) -> Result<Vec<Claim>, Error> {
        self.records.with_store(|s| s.gpu_claims()).await
    }

    /// Whether `backend` may record claims for this revision: the workload
    /// exists, is placed on it and is at that revision.
    async fn check_claimant(
        &self,
        backend: &str,
        workload_id: &str,
        revision: u32,
    ) -> Result<(), Error> {
        match self.records.get(workload_id).await? {
            None => Err(Error::NotFound(format!("workload {workload_id}"))),
            Some(w) if w.backend != backend => Err(Error::Forbidden(format!(
                "workload {workload_id} is not placed on backend `{backend}`"
            ))),
            Some(w) if w.revision != revision => Err(Error::Conflict(format!(
                "workload {workload_id} is at revision {}, not {revision}",
                w.revision
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Record that a revision holds `gpus`, for `backend`: each must be in
    /// the inventory (which, not the plugin, says its index, model and
    /// memory), named once, healthy (unless the workload holds it already)
    /// and held by no other workload.
    pub async fn hold(
        &self,
        backend: &str,
        workload_id: &str,
        revision: u32,
        mut gpus: Vec<GpuAssignment>,
        request: String,
    ) -> Result<(), Error> {
        self.check_claimant(backend, workload_id, revision).await?;
        let mine: Vec<String> = self
            .claims()
            .await?
            .into_iter()
            .filter(|c| c.workload_id == workload_id)
            .flat_map(|c| c.gpus.into_iter().map(|g| g.uuid))
            .collect();
        let mut seen = std::collections::HashSet::new();
        for g in &mut gpus {
            let known = self.inventory.find(&g.uuid).ok_or_else(|| {
                Error::NotFound(format!("GPU `{}` is not in the inventory", g.uuid))
            })?;
            if !seen.insert(known.uuid.clone()) {
                return Err(Error::Invalid(crate::bindings::types::InvalidInput {
                    message: format!("GPU {} is named twice", known.uuid),
                    fields: Vec::new(),
                }));
            }
            if !known.healthy && !mine.contains(&known.uuid) {
                return Err(Error::Unavailable(format!(
                    "GPU {} ({}) is unhealthy: {}",
                    known.index,
                    known.uuid,
                    known.problem.unwrap_or_default()
                )));
            }
            g.uuid = known.uuid;
            g.index = known.index;
            g.model = known.model;
            g.memory_bytes = known.memory_bytes;
        }
        let (id, g) = (workload_id.to_string(), gpus);
        match self
            .records
            .with_store(move |s| s.gpu_hold(&id, revision, &g, &request))
            .await?
        {
            Ok(()) => Ok(()),
            // Which workload holds it is another owner's business.
            Err(HeldElsewhere { uuid, .. }) => Err(Error::Conflict(format!(
                "GPU {uuid} is held by another workload"
            ))),
        }
    }

    /// Record that a revision waits, for `backend`; its ticket.
    pub async fn wait(
        &self,
        backend: &str,
        workload_id: &str,
        revision: u32,
        request: String,
    ) -> Result<u64, Error> {
        self.check_claimant(backend, workload_id, revision).await?;
        let id = workload_id.to_string();
        self.records
            .with_store(move |s| s.gpu_wait(&id, revision, &request))
            .await
    }

    /// Forget what a revision holds or waits for, for `backend` (any
    /// backend for a workload that is gone or a revision that is not its
    /// current one: an update may have moved it to another backend);
    /// waiters are woken when GPUs were freed.
    pub async fn release(
        &self,
        backend: &str,
        workload_id: &str,
        revision: u32,
    ) -> Result<(), Error> {
        if let Some(w) = self.records.get(workload_id).await?
            && w.backend != backend
            && w.revision == revision
        {
            return Err(Error::Forbidden(format!(
                "workload {workload_id} is not placed on backend `{backend}`"
            )));
        }
        self.forget(workload_id, Some(revision)).await
    }

    async fn forget(&self, workload_id: &str, revision: Option<u32>) -> Result<(), Error> {
        let id = workload_id.to_string();
        if self
            .records
            .with_store(move |s| s.gpu_release(&id, revision))
            .await?
        {
            self.wake();
        }
        Ok(())
    }

    /// Release what no live revision may hold: claims of workloads that are
    /// gone, and of revisions other than a workload's current one (an old
    /// revision a runtime's resync removed as an orphan, behind its
    /// scheduler's back). Each is checked under its workload's lock, so an
    /// update still replacing its old revision is waited for.
    pub async fn sweep(&self) -> Result<(), Error> {
        let mut stale: Vec<(String, u32)> = self
            .claims()
            .await?
            .into_iter()
            .map(|c| (c.workload_id, c.revision))
            .collect();
        stale.dedup();
        for (id, revision) in stale {
            let lock = self.records.lock_for(&id);
            let _guard = lock.lock().await;
            match self.records.get(&id).await? {
                None => self.forget(&id, None).await?,
                Some(w) if w.revision != revision => {
                    tracing::info!(workload = %id, revision, "releasing the GPUs of a revision that is gone");
                    self.forget(&id, Some(revision)).await?;
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// What a revision holds.
    pub async fn held(
        &self,
        workload_id: &str,
        revision: u32,
    ) -> Result<Vec<GpuAssignment>, Error> {
        let id = workload_id.to_string();
        self.records
            .with_store(move |s| s.gpu_holds_of(&id, revision))
            .await
    }

    /// The revisions waiting, first come first.
    pub async fn waiting(&self) -> Result<Vec<(String, u32)>, Error> {
        let mut w: Vec<_> = self
            .claims()
            .await?
            .into_iter()
            .filter_map(|c| Some((c.ticket?, c.workload_id, c.revision)))
            .collect();
        w.sort();
        Ok(w.into_iter().map(|(_, id, r)| (id, r)).collect())
    }

    /// Check the inventory's health every `interval`, for ever (and say it
    /// in `gantry_gpu_healthy`): a GPU that turns unhealthy takes no new
    /// placement, one healthy again wakes the waiters.
    pub async fn watch_health(self: Arc<Self>, interval: std::time::Duration, metrics: Metrics) {
        let gauge =
            |g: &crate::gpu::GpuInfo| metrics.gpu_health(g.index, &g.uuid, &g.model, g.healthy);
        self.inventory.snapshot().iter().for_each(gauge);
        loop {
            tokio::time::sleep(interval).await;
            let inventory = self.inventory.clone();
            let Ok(changed) = tokio::task::spawn_blocking(move || inventory.check_health()).await
            else {
                continue;
            };
            for g in &changed {
                gauge(g);
                match &g.problem {
                    Some(p) => {
                        tracing::warn!(gpu = g.index, uuid = %g.uuid, problem = %p, "GPU unhealthy: no new placements")
                    }
                    None => tracing::info!(gpu = g.index, uuid = %g.uuid, "GPU healthy again"),
                }
            }
            if changed.iter().any(|g| g.healthy) {
                self.wake();
            }
        }
    }

    /// Say that GPUs may have become free (released, or healthy again).
    pub fn wake(&self) {
        self.freed.notify_one();
    }

    /// Wait until GPUs may have become free.
    pub async fn freed(&self) {
        self.freed.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::types::{
        DesiredState, Revision, Timestamp, Workload, WorkloadPhase, WorkloadSpec,
    };
    use crate::control::EventBus;
    use crate::gpu::{DevicesConfig, GpuConfig, SourceChoice};
    use crate::store::StateStore;

    fn ledger() -> GpuLedger {
        let records = Arc::new(Records::new(
            StateStore::open(":memory:").expect("store"),
            Arc::new(EventBus::new()),
        ));
        let gpu = |index: u32| GpuConfig {
            index,
            uuid: format!("GPU-{index}"),
            vendor: "nvidia".into(),
            model: "a100".into(),
            memory_mib: 1024,
            device: None,
        };
        let inventory = Inventory::discover(&DevicesConfig {
            source: SourceChoice::Config,
            gpus: vec![gpu(0), gpu(1)],
            ..DevicesConfig::default()
        });
        GpuLedger::new(records, Arc::new(inventory))
    }

    async fn add(l: &GpuLedger, id: &str, revision: u32) {
        let at = Timestamp {
            seconds: 1,
            nanoseconds: 0,
        };
        let w = Workload {
            id: id.into(),
            name: id.into(),
            owner: "o".into(),
            namespace: String::new(),
            revision,
            spec: WorkloadSpec::new(Vec::new()),
            desired: DesiredState::Running,
            phase: WorkloadPhase::Deploying,
            containers: Vec::new(),
            backend: "gpu".into(),
            annotations: Vec::new(),
            created_at: at,
            updated_at: None,
            message: None,
        };
        let r = Revision {
            workload_id: id.into(),
            number: revision,
            spec: w.spec.clone(),
            created_at: at,
        };
        l.records
            .with_store(move |s| s.insert(&w, &r))
            .await
            .expect("insert");
    }

    fn a(uuid: &str) -> GpuAssignment {
        GpuAssignment {
            container: "main".into(),
            index: 99,
            uuid: uuid.into(),
            model: "made-up".into(),
            memory_bytes: 1,
        }
    }

    #[tokio::test]
    async fn only_the_scheduler_of_a_current_revision_may_claim_and_the_inventory_names_the_gpu() {
        let l = ledger();
        add(&l, "w", 2).await;
        let hold = |backend: &'static str, rev: u32, gpus: Vec<GpuAssignment>| {
            l.hold(backend, "w", rev, gpus, "r".into())
        };
        assert!(matches!(
            hold("other", 2, vec![a("GPU-0")]).await,
            Err(Error::Forbidden(_))
        ));
        assert!(matches!(
            hold("gpu", 1, vec![a("GPU-0")]).await,
            Err(Error::Conflict(_))
        ));
        assert!(matches!(
            l.hold("gpu", "ghost", 1, vec![a("GPU-0")], "r".into())
                .await,
            Err(Error::NotFound(_))
        ));
        assert!(matches!(
            hold("gpu", 2, vec![a("GPU-0"), a("GPU-0")]).await,
            Err(Error::Invalid(_))
        ));
        assert!(matches!(
            hold("gpu", 2, vec![a("GPU-9")]).await,
            Err(Error::NotFound(_))
        ));
        hold("gpu", 2, vec![a("GPU-1")]).await.expect("hold");
        let held = l.held("w", 2).await.expect("held");
        assert_eq!((held[0].index, held[0].model.as_str()), (1, "a100"));
    }

    #[tokio::test]
    async fn the_sweep_releases_what_no_current_revision_holds() {
        let l = ledger();
        add(&l, "w", 1).await;
        l.hold("gpu", "w", 1, vec![a("GPU-0")], "r".into())
            .await
            .expect("hold");
        // The workload moves on to revision 2 (an update), whose scheduler
        // never got to remove revision 1; and a workload that is gone.
        l.records
            .with_store(|s| {
                let mut w = s.get("w")?.expect("w");
                w.revision = 2;
                s.save(&w)?;
                s.gpu_hold("w", 2, &[a("GPU-1")], "r")?.ok();
                s.gpu_hold("gone", 1, &[a("GPU-1")], "r")?.ok();
                Ok(())
            })
            .await
            .expect("claims");
        l.sweep().await.expect("sweep");
        let left: Vec<_> = l
            .claims()
            .await
            .expect("claims")
            .into_iter()
            .map(|c| (c.workload_id, c.revision))
            .collect();
        assert_eq!(left, [("w".to_string(), 2)]);
    }
}
