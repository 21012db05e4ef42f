//! The reconciler: keeps observed state current (runtime events, periodic
//! resync), applies restart policies the same way for every backend, adopts
//! what survived a host restart and removes gantry-labelled orphans. It also
//! keeps [`BackendHealth`] current: every call it makes tells whether the
//! backend answers. An unreachable backend is logged by its health; other
//! failures here.

use super::gpus::GpuLedger;
use super::health::Reachability;
use super::{BackendHealth, Deployer, Records};
use crate::bindings::types::{
    ContainerState, ContainerStatus, DesiredState, Error, EventKind, RestartKind, Timestamp,
    WorkloadPhase,
};
use crate::driver::{Driver, DriverError, InstanceRef, InstanceSummary, RuntimeAction};
use crate::store::RecordHead;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// Longest wait between two restarts of a crash-looping container.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// Delay before the `n`th restart: 0.5 s, 1 s, 2 s ... up to [`MAX_BACKOFF`].
pub fn backoff(n: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1u64 << n.min(5))).min(MAX_BACKOFF)
}

/// Keeps records and backends in step.
pub struct Reconciler {
    records: Arc<Records>,
    deployer: Arc<Deployer>,
    health: Arc<BackendHealth>,
    ledger: Arc<GpuLedger>,
}

mod waiting;

impl Reconciler {
    /// A reconciler over these parts of a control plane.
    pub fn new(
        records: Arc<Records>,
        deployer: Arc<Deployer>,
        health: Arc<BackendHealth>,
        ledger: Arc<GpuLedger>,
    ) -> Self {
        Self {
            records,
            deployer,
            health,
            ledger,
        }
    }

    /// Start one event watcher and one resync loop per backend, and the
    /// loop deploying what waits for GPUs.
    pub fn spawn(self: &Arc<Self>, resync: Duration) {
        let r = self.clone();
        tokio::spawn(async move { r.waiting_loop(resync).await });
        for (name, driver) in self.deployer.drivers().clone() {
            let r = self.clone();
            let d = driver.clone();
            let n = name.clone();
            tokio::spawn(async move { r.watch_loop(&n, d).await });
            let r = self.clone();
            tokio::spawn(async move {
                loop {
                    if let Err(e) = r.resync(&name, driver.as_ref()).await {
                        r.log_unless_unreachable(&name, "resync failed; will retry", &e);
                    }
                    tokio::time::sleep(resync).await;
                }
            });
        }
    }

    /// Log a failure the backend's health does not already report: an
    /// unreachable backend is logged there, at growing intervals.
    fn log_unless_unreachable(&self, backend: &str, what: &str, e: &Error) {
        if !matches!(self.health.of(backend), Reachability::Unreachable { .. }) {
            tracing::warn!(backend, error = %e.describe(), "{what}");
        }
    }

    /// Record how a call to `backend` went.
    fn note<T>(&self, backend: &str, result: &Result<T, DriverError>) {
        match result {
            Err(e) if is_unreachable(e) => self.health.failed(backend, &e.to_string()),
            _ => self.health.reached(backend),
        }
    }

    async fn watch_loop(self: &Arc<Self>, backend: &str, driver: Arc<dyn Driver>) {
        let mut since: Option<Timestamp> = None;
        let mut failures = 0u32;
        loop {
            let result = driver.watch(since, 5_000).await;
            self.note(backend, &result);
            match result {
                Ok(events) => {
                    if failures > 0 {
                        // Whatever happened while it was away is read again in full.
                        let _ = self.resync(backend, driver.as_ref()).await;
                    }
                    failures = 0;
                    let mut touched = HashSet::new();
                    for ev in events {
                        since = Some(ev.at);
                        if changes_state(ev.action) {
                            touched.insert(ev.workload_id);
                        }
                    }
                    for id in touched {
                        if let Err(e) = self.reconcile(&id).await {
                            tracing::debug!(workload = %id, error = %e.describe(), "reconcile after event");
                        }
                    }
                }
                Err(DriverError::Backend(Error::Unsupported(_))) => return,
                Err(e) => {
                    failures += 1;
                    self.log_unless_unreachable(backend, "watching runtime events", &e.into());
                    tokio::time::sleep(backoff(failures)).await;
                }
            }
        }
    }

    /// Compare what the backend holds with the records: adopt, recreate, remove orphans.
    pub async fn resync(self: &Arc<Self>, backend: &str, driver: &dyn Driver) -> Result<(), Error> {
        let found = driver.list(self.deployer.selector()).await;
        self.note(backend, &found);
        let found = found?;
        // Backends stacked on one runtime (a scheduler and its downstream)
        // each list every deployment on it: those of the others are not
        // orphans, and their own backend's resync tends them.
        let runtime = self.deployer.bottom(backend);
        let (records, neighbours): (HashMap<String, RecordHead>, HashMap<String, RecordHead>) =
            self.records
                .with_store(|s| s.heads())
                .await?
                .into_iter()
                .filter(|w| self.deployer.bottom(&w.backend) == runtime)
                .map(|w| (w.id.clone(), w))
                .partition(|(_, w)| w.backend == backend);
        let mut present = HashSet::new();
        let mut listed: HashMap<String, Vec<ContainerState>> = HashMap::new();
        for s in found {
            match records
                .get(&s.workload_id)
                .or(neighbours.get(&s.workload_id))
            {
                Some(w) if w.revision == s.revision && w.desired != DesiredState::Deleted => {
                    present.insert(w.id.clone());
                    listed.insert(w.id.clone(), s.containers);
                }
                _ => self.remove_if_orphaned(backend, driver, &s).await,
            }
        }
        for w in records.into_values() {
            if w.desired == DesiredState::Deleted {
                // The host died mid-delete: finish it.
                let r = InstanceRef {
                    workload_id: w.id.clone(),
                    revision: w.revision,
                };
                if driver.remove(r, true).await.is_ok() {
                    self.records.remove(&w.id).await?;
                }
                continue;
            }
            let result = if present.contains(&w.id) {
                // The listing already says what inspecting would: nothing to do.
                if settled(&w, listed.get(&w.id).map(Vec::as_slice)) {
                    Ok(())
                } else {
                    self.reconcile(&w.id).await
                }
            } else {
                self.recreate_if_missing(backend, driver, &w.id).await
            };
            // One workload's failure does not hold up the others'.
            if let Err(e) = result {
                tracing::warn!(backend, workload = %w.id, error = %e.describe(), "reconciling");
            }
        }
        Ok(())
    }

    /// Remove a listed deployment no record wants, once its workload's lock
    /// is held and the record read again: the listing was taken before, and
    /// an operation may have run since (an update that a cluster backend
    /// rolled back puts the previous revision's labels back before the host
    /// restores its record).
    async fn remove_if_orphaned(&self, backend: &str, driver: &dyn Driver, s: &InstanceSummary) {
        let lock = self.records.lock_for(&s.workload_id);
        let _guard = lock.lock().await;
        match self.records.get(&s.workload_id).await {
            Ok(Some(w)) if w.revision == s.revision && w.desired != DesiredState::Deleted => return,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(backend, workload = %s.workload_id, error = %e.describe(), "reading a record before removing an orphan");
                return;
            }
        }
        tracing::info!(backend, workload = %s.workload_id, revision = s.revision, "removing an orphaned deployment");
        let r = InstanceRef {
            workload_id: s.workload_id.clone(),
            revision: s.revision,
        };
        if let Err(e) = driver.remove(r, true).await {
            tracing::warn!(backend, workload = %s.workload_id, error = %e, "removing orphan");
        }
    }

    /// Deploy `id`'s revision again if the backend still holds nothing of
    /// it, once its lock is held: the listing was taken before, and an
    /// operation (a create still deploying, an update) may have run since.
    async fn recreate_if_missing(
        &self,
        backend: &str,
        driver: &dyn Driver,
        id: &str,
    ) -> Result<(), Error> {
        let lock = self.records.lock_for(id);
        let _guard = lock.lock().await;
        let Some(mut w) = self.records.get(id).await? else {
            return Ok(());
        };
        // A failed workload is not deployed again behind its owner's back
        // (its backend may have created nothing, having refused it).
        if w.backend != backend
            || w.desired == DesiredState::Deleted
            || w.phase == WorkloadPhase::Failed
        {
            return Ok(());
        }
        if !driver.inspect(Deployer::instance(&w)).await?.is_empty() {
            return Ok(());
        }
        tracing::info!(backend, workload = %w.id, "deployment missing on the backend; recreating");
        self.deployer.deploy_revision(&mut w, false).await?;
        self.records.save(w).await?;
        Ok(())
    }

    /// Refresh one workload's observed state and apply its restart policy; a
    /// restart still waiting out its backoff is reconciled again once it is due.
    pub fn reconcile<'a>(
        self: &'a Arc<Self>,
        id: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            if let Some(delay) = self.reconcile_once(id).await? {
                let r = self.clone();
                let id = id.to_string();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Err(e) = r.reconcile(&id).await {
                        tracing::debug!(workload = %id, error = %e.describe(), "delayed reconcile");
                    }
                });
            }
            Ok(())
        })
    }

    /// One reconciliation of `id`; how long until a pending restart is due.
    async fn reconcile_once(&self, id: &str) -> Result<Option<Duration>, Error> {
        let lock = self.records.lock_for(id);
        let _guard = lock.lock().await;
        let Some(mut w) = self.records.get(id).await? else {
            return Ok(None);
        };
        if w.desired == DesiredState::Deleted {
            return Ok(None);
        }
        let driver = self.deployer.driver(&w.backend)?.clone();
        let before = w.clone();
        let states = driver.inspect(Deployer::instance(&w)).await?;
        self.deployer.merge_observed(&mut w, states);
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
                match driver
                    .start(Deployer::instance(&w), Some(name.clone()))
                    .await
                {
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
            let w = self.records.save(w).await?;
            self.records
                .events()
                .publish(EventKind::StateChanged, &w.id, None, Some(w.clone()));
        }
        Ok(delay)
    }
}

/// Whether a driver error says the backend could not be reached at all (its
/// runtime is down, or its plugin failed), as opposed to an answer about one
/// workload.
fn is_unreachable(e: &DriverError) -> bool {
    matches!(
        e,
        DriverError::Backend(Error::Unavailable(_)) | DriverError::Plugin(_)
    )
}

fn elapsed_since(t: Timestamp) -> Duration {
    let now = crate::model::now();
    let secs = now.seconds.saturating_sub(t.seconds);
    let d = Duration::from_secs(u64::try_from(secs).unwrap_or(0))
        + Duration::from_nanos(u64::from(now.nanoseconds));
    d.saturating_sub(Duration::from_nanos(u64::from(t.nanoseconds)))
}

/// Whether an event can change what a workload's record says. A container
/// created (the host's own create already recorded it) or renamed, an exec,
/// an attach... does not: reconciling on those would inspect the workload
/// for nothing, and an inspect lists by label, which costs the runtime more
/// the more containers it holds.
fn changes_state(action: RuntimeAction) -> bool {
    !matches!(action, RuntimeAction::Created | RuntimeAction::Other)
}

/// Whether a workload needs no reconciling: the backend's listing shows
/// every container in the status its record holds, and that status is where
/// the desired state wants it (running, stopped or paused). Anything else —
/// a container that exited under `running`, one missing, a deploy in
/// progress — is reconciled (inspected) as before.
fn settled(w: &RecordHead, listed: Option<&[ContainerState]>) -> bool {
    use crate::bindings::types::ContainerStatus as S;
    let Some(listed) = listed else { return false };
    if w.phase == WorkloadPhase::Deploying || listed.len() != w.containers.len() {
        return false;
    }
    let steady = |s: S| match w.desired {
        DesiredState::Running => s == S::Running,
        DesiredState::Stopped => matches!(s, S::Exited | S::Created | S::Stopped),
        DesiredState::Paused => s == S::Paused,
        DesiredState::Deleted => false,
    };
    w.containers.iter().all(|c| {
        listed
            .iter()
            .find(|l| l.name == c.name)
            .is_some_and(|l| l.status == c.status && steady(l.status))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::types::Workload;

    #[test]
    fn only_events_that_can_change_a_record_are_reconciled() {
        use RuntimeAction as A;
        for a in [
            A::Started,
            A::Exited,
            A::OomKilled,
            A::Paused,
            A::Resumed,
            A::Removed,
        ] {
            assert!(changes_state(a), "{a:?}");
        }
        assert!(!changes_state(A::Created));
        assert!(!changes_state(A::Other));
    }

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(0), Duration::from_millis(500));
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(9), MAX_BACKOFF);
    }

    fn state(name: &str, status: ContainerStatus) -> ContainerState {
        ContainerState::bare(name, None, status, None)
    }

    #[test]
    fn only_workloads_listed_where_they_should_be_skip_reconciling() {
        use ContainerStatus as S;
        let mut w = Workload {
            id: "w".into(),
            name: "w".into(),
            owner: "o".into(),
            namespace: String::new(),
            revision: 1,
            spec: crate::bindings::types::WorkloadSpec::new(Vec::new()),
            desired: DesiredState::Running,
            phase: WorkloadPhase::Deployed,
            containers: vec![state("a", S::Running), state("b", S::Running)],
            backend: "b".into(),
            annotations: Vec::new(),
            created_at: Timestamp {
                seconds: 0,
                nanoseconds: 0,
            },
            updated_at: None,
            message: None,
        };
        let running = [state("b", S::Running), state("a", S::Running)];
        let head = |w: &Workload| RecordHead::from(w);
        assert!(settled(&head(&w), Some(&running)));
        assert!(!settled(&head(&w), None), "not listed");
        let exited = [state("a", S::Running), state("b", S::Exited)];
        assert!(!settled(&head(&w), Some(&exited)), "exited under `running`");
        assert!(!settled(&head(&w), Some(&running[..1])), "one missing");
        w.phase = WorkloadPhase::Deploying;
        assert!(!settled(&head(&w), Some(&running)), "a deploy in progress");
        w.phase = WorkloadPhase::Stopped;
        w.desired = DesiredState::Stopped;
        w.containers = vec![state("a", S::Exited), state("b", S::Exited)];
        let stopped = [state("a", S::Exited), state("b", S::Exited)];
        assert!(settled(&head(&w), Some(&stopped)));
        assert!(
            !settled(&head(&w), Some(&running)),
            "running under `stopped`"
        );
    }
}
