//! Deployments waiting for GPUs: a scheduler that cannot place a revision
//! now records it in the ledger as waiting and answers `create` with its
//! containers still `creating`. The reconciler asks for them again, first
//! come first, whenever GPUs may have become free (a release, a GPU healthy
//! again) and at every resync interval.

use super::Reconciler;
use crate::bindings::types::{DesiredState, Error, EventKind, WorkloadPhase};
use std::sync::Arc;
use std::time::Duration;

impl Reconciler {
    pub(super) async fn waiting_loop(self: Arc<Self>, resync: Duration) {
        loop {
            tokio::select! {
                () = self.ledger.freed() => {}
                () = tokio::time::sleep(resync) => {}
            }
            if let Err(e) = self.ledger.sweep().await {
                tracing::warn!(error = %e.describe(), "releasing stale GPU claims");
            }
            if let Err(e) = self.retry_waiting().await {
                tracing::warn!(error = %e.describe(), "deploying waiting workloads");
            }
        }
    }

    /// Ask again for every waiting revision, in ticket order.
    pub async fn retry_waiting(&self) -> Result<(), Error> {
        for (id, revision) in self.ledger.waiting().await? {
            if let Err(e) = self.retry_one(&id, revision).await {
                tracing::warn!(workload = %id, error = %e.describe(), "deploying a waiting workload");
            }
        }
        Ok(())
    }

    async fn retry_one(&self, id: &str, revision: u32) -> Result<(), Error> {
        let lock = self.records.lock_for(id);
        let _guard = lock.lock().await;
        let w = self.records.get(id).await?;
        let Some(mut w) =
            w.filter(|w| w.revision == revision && w.desired != DesiredState::Deleted)
        else {
            // Its workload is gone or has moved on: the sweep releases it.
            return Ok(());
        };
        let before = w.clone();
        match self.deployer.deploy_revision(&mut w, false).await {
            Ok(()) => {}
            // The backend is away: the record stays deploying, and resync
            // deploys it again once the backend answers.
            Err(e @ (Error::Unavailable(_) | Error::Internal(_))) => {
                tracing::warn!(workload = %id, error = %e.describe(), "deploying a waiting workload; will retry");
            }
            Err(e) => {
                // What was created is removed (and its claim released).
                w.phase = WorkloadPhase::Failed;
                w.message = Some(format!(
                    "could not deploy once GPUs were free: {}",
                    e.describe()
                ));
            }
        }
        if w != before {
            let w = self.records.save(w).await?;
            self.records
                .events()
                .publish(EventKind::StateChanged, &w.id, None, Some(w.clone()));
        }
        Ok(())
    }
}
