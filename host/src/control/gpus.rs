//! The GPU ledger: which deployed revision holds which GPU, and which wait
//! for GPUs in what order. Schedulers place; the ledger makes their
//! decisions durable (in the state store, so they survive a restart) and
//! exclusive (a GPU held by one workload is refused to every other).

use super::records::Records;
use crate::bindings::gantry::plugin::allocations::Claim;
use crate::bindings::types::{Error, GpuAssignment};
use crate::gpu::Inventory;
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

    /// Record that a revision holds `gpus`: each must be in the inventory,
    /// healthy (unless the workload holds it already) and held by no other
    /// workload.
    pub async fn hold(
        &self,
        workload_id: &str,
        revision: u32,
        gpus: Vec<GpuAssignment>,
        request: String,
    ) -> Result<(), Error> {
        let mine: Vec<String> = self
            .claims()
            .await?
            .into_iter()
            .filter(|c| c.workload_id == workload_id)
            .flat_map(|c| c.gpus.into_iter().map(|g| g.uuid))
            .collect();
        for g in &gpus {
            let known = self.inventory.find(&g.uuid).ok_or_else(|| {
                Error::NotFound(format!("GPU `{}` is not in the inventory", g.uuid))
            })?;
            if !known.healthy && !mine.contains(&g.uuid) {
                return Err(Error::Unavailable(format!(
                    "GPU {} ({}) is unhealthy: {}",
                    known.index,
                    known.uuid,
                    known.problem.unwrap_or_default()
                )));
            }
        }
        let (id, g) = (workload_id.to_string(), gpus);
        match self
            .records
            .with_store(move |s| s.gpu_hold(&id, revision, &g, &request))
            .await?
        {
            Ok(()) => Ok(()),
            Err(HeldElsewhere { uuid, workload_id }) => Err(Error::Conflict(format!(
                "GPU {uuid} is held by workload {workload_id}"
            ))),
        }
    }

    /// Record that a revision waits; its ticket.
    pub async fn wait(
        &self,
        workload_id: &str,
        revision: u32,
        request: String,
    ) -> Result<u64, Error> {
        let id = workload_id.to_string();
        self.records
            .with_store(move |s| s.gpu_wait(&id, revision, &request))
            .await
    }

    /// Forget what a revision holds or waits for; waiters are woken when
    /// GPUs were freed.
    pub async fn release(&self, workload_id: &str, revision: u32) -> Result<(), Error> {
        let id = workload_id.to_string();
        if self
            .records
            .with_store(move |s| s.gpu_release(&id, Some(revision)))
            .await?
        {
            self.wake();
        }
        Ok(())
    }

    /// What a revision holds.
    pub async fn held(
        &self,
        workload_id: &str,
        revision: u32,
    ) -> Result<Vec<GpuAssignment>, Error> {
        Ok(self
            .claims()
            .await?
            .into_iter()
            .find(|c| c.workload_id == workload_id && c.revision == revision)
            .map(|c| c.gpus)
            .unwrap_or_default())
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

    /// Check the inventory's health every `interval`, for ever: a GPU that
    /// turns unhealthy takes no new placement, one healthy again wakes the
    /// waiters.
    pub async fn watch_health(self: Arc<Self>, interval: std::time::Duration) {
        loop {
            tokio::time::sleep(interval).await;
            let inventory = self.inventory.clone();
            let Ok(changed) = tokio::task::spawn_blocking(move || inventory.check_health()).await
            else {
                continue;
            };
            for g in &changed {
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
