//! The reconciler: keeps observed state current (runtime events, periodic
//! resync), applies restart policies the same way for every backend, adopts
//! what survived a host restart and removes gantry-labelled orphans.

use super::ControlPlane;
use crate::bindings::types::{
    ContainerStatus, DesiredState, EventKind, RestartKind, Timestamp, Workload, WorkloadPhase,
};
use crate::driver::Driver;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// Longest wait between two restarts of a crash-looping container.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Delay before the `n`th restart: 0.5 s, 1 s, 2 s ... up to [`MAX_BACKOFF`].
pub fn backoff(n: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1u64 << n.min(5))).min(MAX_BACKOFF)
}

impl ControlPlane {
    /// Start the reconciler: one event watcher and one resync loop per backend.
    pub fn spawn_reconciler(self: &Arc<Self>, resync: Duration) {
        for (name, driver) in self.drivers().clone() {
            let cp = self.clone();
            let d = driver.clone();
            let n = name.clone();
            tokio::spawn(async move { cp.watch_loop(&n, d).await });
            let cp = self.clone();
            tokio::spawn(async move {
                loop {
                    if let Err(e) = cp.resync(&name, driver.as_ref()).await {
                        tracing::warn!(backend = %name, error = %e, "resync failed; will retry");
                    }
                    tokio::time::sleep(resync).await;
                }
            });
        }
    }

    async fn watch_loop(&self, backend: &str, driver: Arc<dyn Driver>) {
        let mut since: Option<Timestamp> = None;
        let mut failures = 0u32;
        loop {
            match driver.watch(since, 5_000).await {
                Ok(events) => {
                    if failures > 0 {
                        tracing::info!(backend, "backend reachable again; reconciling");
                        if let Err(e) = self.resync(backend, driver.as_ref()).await {
                            tracing::warn!(backend, error = %e, "resync after reconnect failed");
                        }
                    }
                    failures = 0;
                    let mut touched = HashSet::new();
                    for ev in events {
                        since = Some(ev.at);
                        touched.insert(ev.workload_id);
                    }
                    for id in touched {
                        if let Err(e) = self.reconcile(&id).await {
                            tracing::debug!(workload = %id, error = %e, "reconcile after event");
                        }
                    }
                }
                Err(crate::bindings::types::Error::Unsupported(_)) => return,
                Err(e) => {
                    failures += 1;
                    let wait = backoff(failures);
                    tracing::warn!(backend, error = %e, retry_in_ms = wait.as_millis() as u64, "watching runtime events failed");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    /// Compare what the backend holds with the records: adopt, recreate, remove orphans.
    pub async fn resync(
        &self,
        backend: &str,
        driver: &dyn Driver,
    ) -> Result<(), crate::bindings::types::Error> {
        let found = driver.list(self.selector()).await?;
        let records: Vec<Workload> = self
            .store()
            .all(None)?
            .into_iter()
            .filter(|w| w.backend == backend)
            .collect();
        let mut present = HashSet::new();
        for s in found {
            let current = records.iter().find(|w| w.id == s.workload_id);
            match current {
                Some(w) if w.revision == s.revision && w.desired != DesiredState::Deleted => {
                    present.insert(w.id.clone());
                }
                _ => {
                    tracing::info!(backend, workload = %s.workload_id, revision = s.revision, "removing an orphaned deployment");
                    let r = crate::driver::InstanceRef {
                        workload_id: s.workload_id.clone(),
                        revision: s.revision,
                    };
                    if let Err(e) = driver.remove(r, true).await {
                        tracing::warn!(backend, workload = %s.workload_id, error = %e, "removing orphan");
                    }
                }
            }
        }
        for w in records {
            if w.desired == DesiredState::Deleted {
                // The host died mid-delete: finish it.
                let r = Self::instance(&w);
                if driver.remove(r, true).await.is_ok() {
                    self.store().delete(&w.id)?;
                    self.events.publish(EventKind::Removed, &w.id, None, None);
                }
                continue;
            }
            if !present.contains(&w.id) {
                tracing::info!(backend, workload = %w.id, "deployment missing on the backend; recreating");
                let lock = self.lock_for(&w.id);
                let _guard = lock.lock().await;
                let mut w = w;
                match driver
                    .create(self.deployment(&w), w.desired == DesiredState::Running)
                    .await
                {
                    Ok(states) => {
                        self.merge_observed(&mut w, states);
                        self.store().save(&w)?;
                    }
                    Err(e) => tracing::warn!(workload = %w.id, error = %e, "recreating failed"),
                }
                continue;
            }
            self.reconcile(&w.id).await?;
        }
        Ok(())
    }

    /// Refresh one workload's observed state and apply its restart policy.
    pub async fn reconcile(&self, id: &str) -> Result<(), crate::bindings::types::Error> {
        let lock = self.lock_for(id);
        let _guard = lock.lock().await;
        let Some(mut w) = self.store().get(id)? else {
            return Ok(());
        };
        if w.desired == DesiredState::Deleted {
            return Ok(());
        }
        let driver = self.driver(&w.backend)?.clone();
        let before = w.clone();
        let states = driver.inspect(Self::instance(&w)).await?;
        self.merge_observed(&mut w, states);
        let mut delay: Option<Duration> = None;
        if w.desired == DesiredState::Running {
            let policy = w.spec.restart;
            for i in 0..w.containers.len() {
                let c = &w.containers[i];
                if !matches!(c.status, ContainerStatus::Exited | ContainerStatus::Dead) {
                    continue;
                }
                let failed = c.exit_code.unwrap_or(0) != 0 || c.oom_killed;
                let restart = match policy.kind {
                    RestartKind::No => false,
                    RestartKind::Always | RestartKind::UnlessStopped => true,
                    RestartKind::OnFailure => {
                        if failed && policy.max_retries > 0 && c.restart_count >= policy.max_retries
                        {
                            w.phase = WorkloadPhase::Failed;
                            w.message = Some(format!(
                                "container `{}` exited with code {} after {} restarts (on-failure, max {})",
                                c.name,
                                c.exit_code.unwrap_or(-1),
                                c.restart_count,
                                policy.max_retries
                            ));
                            false
                        } else {
                            failed
                        }
                    }
                };
                if !restart {
                    continue;
                }
                let wait = backoff(c.restart_count);
                let since_exit = c.finished_at.map(elapsed_since).unwrap_or(Duration::MAX);
                if since_exit < wait {
                    delay = Some(delay.map_or(wait - since_exit, |d| d.min(wait - since_exit)));
                    continue;
                }
                let name = c.name.clone();
                match driver.start(Self::instance(&w), Some(name.clone())).await {
                    Ok(()) => {
                        w.containers[i].restart_count += 1;
                        w.containers[i].status = ContainerStatus::Running;
                        tracing::info!(workload = %w.id, container = %name, count = w.containers[i].restart_count, "restarted by policy");
                    }
                    Err(e) => {
                        tracing::warn!(workload = %w.id, container = %name, error = %e, "restart by policy failed")
                    }
                }
            }
            w.phase = super::derive_phase(&w);
        }
        if w != before {
            self.store().save(&w)?;
            self.events
                .publish(EventKind::StateChanged, &w.id, None, Some(w.clone()));
        }
        if let Some(d) = delay
            && let Some(cp) = self.self_ref()
        {
            tokio::spawn(reconcile_later(cp, id.to_string(), d));
        }
        Ok(())
    }
}

/// Reconcile again after `delay` (a restart waiting out its backoff).
fn reconcile_later(
    cp: Arc<ControlPlane>,
    id: String,
    delay: Duration,
) -> futures::future::BoxFuture<'static, ()> {
    Box::pin(async move {
        tokio::time::sleep(delay).await;
        if let Err(e) = cp.reconcile(&id).await {
            tracing::debug!(workload = %id, error = ?e, "delayed reconcile");
        }
    })
}

fn elapsed_since(t: Timestamp) -> Duration {
    let now = crate::model::now();
    let secs = now.seconds.saturating_sub(t.seconds);
    let d = Duration::from_secs(u64::try_from(secs).unwrap_or(0))
        + Duration::from_nanos(u64::from(now.nanoseconds));
    d.saturating_sub(Duration::from_nanos(u64::from(t.nanoseconds)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(0), Duration::from_millis(500));
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(9), MAX_BACKOFF);
    }
}
