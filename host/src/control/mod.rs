//! The control plane: the one owner of workload records, revisions, desired
//! vs observed state, authorisation and events. Frontends reach it through the
//! `control` interface; it drives backends through [`Driver`].

mod authz;
mod events;
mod phase;
pub mod reconciler;
mod validate;

use crate::bindings::gantry::plugin::control::{
    CreateRequest, PageRequest, ReconfigureRequest, RevisionPage, StopOptions, WorkloadFilter,
    WorkloadPage,
};
use crate::bindings::types::{
    Annotation, Caller, ContainerStats, DesiredState, Error, EventKind, GpuModel, LogOptions,
    Revision, Workload, WorkloadPhase, WorkloadSpec,
};
use crate::driver::{Deployment, Driver, InstanceRef, LogSource};
use crate::model::{invalid_field, is_running, now};
use crate::store::{StateStore, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

pub use authz::authorize;
pub use events::EventBus;
pub use phase::{derive_phase, failed_to_start};

/// Label keys every backend puts on what it creates.
pub mod labels {
    /// The workload's id.
    pub const WORKLOAD: &str = "io.gantry.workload";
    /// The revision number.
    pub const REVISION: &str = "io.gantry.revision";
    /// The container's name within the workload.
    pub const CONTAINER: &str = "io.gantry.container";
    /// The id of the host (state store) that deployed it.
    pub const HOST: &str = "io.gantry.host";
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "state store failure");
        Error::Internal(e.to_string())
    }
}

/// Which backend a workload goes to.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// For workloads without GPUs.
    pub default: Option<String>,
    /// For workloads requesting GPUs.
    pub gpu: Option<String>,
}

/// The control plane.
pub struct ControlPlane {
    store: StateStore,
    drivers: HashMap<String, Arc<dyn Driver>>,
    placement: Placement,
    events: EventBus,
    gpu_models: Vec<GpuModel>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    me: std::sync::Weak<ControlPlane>,
    host_id: String,
}

impl ControlPlane {
    /// A control plane over `store`, driving `drivers`.
    pub fn new(
        store: StateStore,
        drivers: HashMap<String, Arc<dyn Driver>>,
        placement: Placement,
        gpu_models: Vec<GpuModel>,
    ) -> Result<Arc<Self>, StoreError> {
        let host_id = store.host_id()?;
        Ok(Arc::new_cyclic(|me| Self {
            store,
            drivers,
            placement,
            events: EventBus::new(),
            gpu_models,
            locks: Mutex::new(HashMap::new()),
            me: me.clone(),
            host_id,
        }))
    }

    /// The labels that select this host's deployments on a backend.
    pub fn selector(&self) -> Vec<(String, String)> {
        vec![(labels::HOST.to_string(), self.host_id.clone())]
    }

    fn self_ref(&self) -> Option<Arc<Self>> {
        self.me.upgrade()
    }

    /// Subscribe to control-plane events.
    pub fn subscribe(&self) -> broadcast::Receiver<crate::bindings::types::Event> {
        self.events.subscribe()
    }

    /// The configured backends.
    pub fn drivers(&self) -> &HashMap<String, Arc<dyn Driver>> {
        &self.drivers
    }

    /// The state store.
    pub fn store(&self) -> &StateStore {
        &self.store
    }

    fn lock_for(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    fn driver(&self, name: &str) -> Result<&Arc<dyn Driver>, Error> {
        self.drivers
            .get(name)
            .ok_or_else(|| Error::Unavailable(format!("backend `{name}` is not configured")))
    }

    fn place(&self, spec: &WorkloadSpec) -> Result<String, Error> {
        let wants_gpu = spec.containers.iter().any(|c| {
            c.gpu
                .as_ref()
                .is_some_and(|g| g.count > 0 || !g.device_ids.is_empty())
        });
        let choice = if wants_gpu {
            self.placement
                .gpu
                .clone()
                .or(self.placement.default.clone())
        } else {
            self.placement.default.clone()
        };
        choice.ok_or_else(|| Error::Unavailable("no backend is configured to run workloads".into()))
    }

    /// Load a workload the caller may act on.
    fn load(&self, caller: &Caller, id: &str) -> Result<Workload, Error> {
        let w = self
            .store
            .get(id)?
            .ok_or_else(|| Error::NotFound(format!("workload {id}")))?;
        authorize(caller, &w)?;
        Ok(w)
    }

    fn deployment(&self, w: &Workload) -> Deployment {
        let short: String = w.id.chars().take(8).collect();
        let base: String = w
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        Deployment {
            workload_id: w.id.clone(),
            revision: w.revision,
            name: format!("{}-{short}", base.trim_matches('-')),
            spec: w.spec.clone(),
            labels: vec![
                (labels::WORKLOAD.to_string(), w.id.clone()),
                (labels::REVISION.to_string(), w.revision.to_string()),
                (labels::HOST.to_string(), self.host_id.clone()),
            ],
        }
    }

    fn instance(w: &Workload) -> InstanceRef {
        InstanceRef {
            workload_id: w.id.clone(),
            revision: w.revision,
        }
    }

    /// Persist, publish an event, return the record.
    fn commit(
        &self,
        w: Workload,
        kind: EventKind,
        container: Option<String>,
    ) -> Result<Workload, Error> {
        self.store.save(&w)?;
        self.events.publish(kind, &w.id, container, Some(w.clone()));
        Ok(w)
    }

    /// Re-read observed state from the backend and derive the phase.
    async fn observe(&self, w: &mut Workload) -> Result<(), Error> {
        let states = self.driver(&w.backend)?.inspect(Self::instance(w)).await?;
        self.merge_observed(w, states);
        Ok(())
    }

    /// Merge observed container states into `w`, keeping host-counted restarts,
    /// and publish state-change events.
    pub(crate) fn merge_observed(
        &self,
        w: &mut Workload,
        states: Vec<crate::bindings::types::ContainerState>,
    ) {
        let mut merged = Vec::with_capacity(states.len());
        for mut s in states {
            let old = w.containers.iter().find(|c| c.name == s.name);
            if let Some(old) = old {
                s.restart_count = s.restart_count.max(old.restart_count);
                if old.status != s.status {
                    self.events
                        .publish(EventKind::StateChanged, &w.id, Some(s.name.clone()), None);
                }
            }
            merged.push(s);
        }
        w.containers = merged;
        w.phase = derive_phase(w);
        if w.phase == WorkloadPhase::Failed
            && w.message.is_none()
            && let Some(c) = w.containers.iter().find(|c| failed_to_start(c))
        {
            w.message = Some(format!(
                "container `{}` could not start: {}",
                c.name,
                c.error.clone().unwrap_or_default()
            ));
        }
    }

    /// Create a workload: validated, placed, persisted, then deployed. A failed
    /// deploy removes whatever the backend created and the record itself.
    pub async fn create(&self, caller: &Caller, req: CreateRequest) -> Result<Workload, Error> {
        validate::name(&req.name)?;
        validate::spec(&req.spec)?;
        if !req.namespace.is_empty()
            && self
                .store
                .find_by_name(&req.namespace, &req.name)?
                .is_some()
        {
            return Err(Error::Conflict(format!(
                "a workload named `{}` already exists in `{}`",
                req.name, req.namespace
            )));
        }
        let backend = self.place(&req.spec)?;
        let driver = self.driver(&backend)?.clone();
        let created = now();
        let mut w = Workload {
            id: uuid::Uuid::new_v4().to_string(),
            name: req.name,
            owner: caller.subject.clone(),
            namespace: req.namespace,
            revision: 1,
            spec: req.spec,
            desired: if req.start {
                DesiredState::Running
            } else {
                DesiredState::Stopped
            },
            phase: WorkloadPhase::Deploying,
            containers: Vec::new(),
            backend,
            annotations: req.annotations,
            created_at: created,
            updated_at: None,
            message: None,
        };
        let lock = self.lock_for(&w.id);
        let _guard = lock.lock().await;
        let rev = Revision {
            workload_id: w.id.clone(),
            number: 1,
            spec: w.spec.clone(),
            created_at: created,
        };
        self.store.insert(&w, &rev)?;
        self.events
            .publish(EventKind::Created, &w.id, None, Some(w.clone()));
        match driver.create(self.deployment(&w), req.start).await {
            Ok(states) => {
                self.merge_observed(&mut w, states);
                self.commit(w, EventKind::StateChanged, None)
            }
            Err(e) => {
                tracing::warn!(workload = %w.id, error = %e, "create failed; rolling back");
                if let Err(cleanup) = driver.remove(Self::instance(&w), true).await {
                    tracing::warn!(workload = %w.id, error = %cleanup, "cleanup after failed create");
                }
                self.store.delete(&w.id)?;
                self.events.publish(EventKind::Removed, &w.id, None, None);
                Err(e)
            }
        }
    }

    /// One workload.
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<Workload, Error> {
        self.load(caller, id)
    }

    /// A page of workloads.
    pub async fn list(
        &self,
        caller: &Caller,
        filter: WorkloadFilter,
        page: PageRequest,
    ) -> Result<WorkloadPage, Error> {
        if filter.all_owners && !caller.is_admin() {
            return Err(Error::Forbidden(
                "listing every owner's workloads needs the ADMIN role".into(),
            ));
        }
        let owner = if filter.all_owners {
            None
        } else {
            Some(caller.subject.as_str())
        };
        let matching: Vec<Workload> = self
            .store
            .all(owner)?
            .into_iter()
            .filter(|w| filter.namespace.as_ref().is_none_or(|n| &w.namespace == n))
            .filter(|w| {
                filter
                    .namespace_prefix
                    .as_ref()
                    .is_none_or(|p| w.namespace.starts_with(p.as_str()))
            })
            .filter(|w| filter.name.as_ref().is_none_or(|n| &w.name == n))
            .filter(|w| filter.annotations.iter().all(|a| w.annotations.contains(a)))
            .collect();
        let total = matching.len() as u64;
        let (offset, rows) = page_window(&page);
        let items = matching.into_iter().skip(offset).take(rows).collect();
        Ok(WorkloadPage { items, total })
    }

    /// Replace the spec: new revision, deployed; the old revision's containers
    /// are removed only once the new ones run. On failure, nothing changes.
    pub async fn update(
        &self,
        caller: &Caller,
        id: &str,
        spec: WorkloadSpec,
    ) -> Result<Workload, Error> {
        validate::spec(&spec)?;
        let lock = self.lock_for(id);
        let _guard = lock.lock().await;
        let old = self.load(caller, id)?;
        let driver = self.driver(&old.backend)?.clone();
        let mut w = old.clone();
        w.revision += 1;
        w.spec = spec;
        crate::secrets::restore(&mut w.spec, &old.spec);
        w.updated_at = Some(now());
        w.phase = WorkloadPhase::Deploying;
        w.containers.clear();
        if w.desired == DesiredState::Paused {
            w.desired = DesiredState::Running;
        }
        let rev = Revision {
            workload_id: w.id.clone(),
            number: w.revision,
            spec: w.spec.clone(),
            created_at: w.updated_at.unwrap_or_else(now),
        };
        self.store.save_with_revision(&w, &rev)?;
        let created = driver
            .create(self.deployment(&w), w.desired == DesiredState::Running)
            .await;
        // The old revision goes only once the new one runs: a revision whose
        // containers cannot start is rolled back like one that cannot be created.
        let created = created.and_then(|states| match states.iter().find(|c| failed_to_start(c)) {
            Some(c) => Err(Error::Conflict(format!(
                "revision {} could not start (container `{}`: {}); revision {} keeps running",
                w.revision,
                c.name,
                c.error.clone().unwrap_or_default(),
                old.revision
            ))),
            None => Ok(states),
        });
        match created {
            Ok(states) => {
                if let Err(e) = driver.remove(Self::instance(&old), true).await {
                    tracing::warn!(workload = %id, revision = old.revision, error = %e, "removing the previous revision");
                }
                self.merge_observed(&mut w, states);
                self.commit(w, EventKind::Updated, None)
            }
            Err(e) => {
                if let Err(cleanup) = driver.remove(Self::instance(&w), true).await {
                    tracing::warn!(workload = %id, error = %cleanup, "cleanup after failed update");
                }
                self.store.save(&old)?;
                self.store.delete_revision(id, w.revision)?;
                Err(e)
            }
        }
    }

    /// Change resources or restart policy in place.
    pub async fn reconfigure(
        &self,
        caller: &Caller,
        id: &str,
        req: ReconfigureRequest,
    ) -> Result<Workload, Error> {
        let lock = self.lock_for(id);
        let _guard = lock.lock().await;
        let mut w = self.load(caller, id)?;
        if let Some(c) = &req.container
            && !w.spec.containers.iter().any(|s| &s.name == c)
        {
            return Err(Error::NotFound(format!("container `{c}` in workload {id}")));
        }
        self.driver(&w.backend)?
            .update(
                Self::instance(&w),
                req.container.clone(),
                req.resources,
                req.restart,
            )
            .await?;
        for c in w
            .spec
            .containers
            .iter_mut()
            .filter(|c| req.container.as_ref().is_none_or(|n| &c.name == n))
        {
            if let Some(r) = req.resources {
                c.resources = r;
            }
        }
        if let Some(r) = req.restart {
            w.spec.restart = r;
        }
        self.commit(w, EventKind::Updated, None)
    }

    /// Replace annotations.
    pub async fn set_annotations(
        &self,
        caller: &Caller,
        id: &str,
        annotations: Vec<Annotation>,
    ) -> Result<Workload, Error> {
        let lock = self.lock_for(id);
        let _guard = lock.lock().await;
        let mut w = self.load(caller, id)?;
        w.annotations = annotations;
        self.commit(w, EventKind::Updated, None)
    }

    /// Remove a workload. Without `force`, a running workload is a conflict.
    pub async fn delete(&self, caller: &Caller, id: &str, force: bool) -> Result<(), Error> {
        let lock = self.lock_for(id);
        let _guard = lock.lock().await;
        let mut w = self.load(caller, id)?;
        if !force && w.containers.iter().any(|c| is_running(c.status)) {
            return Err(Error::Conflict(format!(
                "workload {id} is running; stop it first or remove with force"
            )));
        }
        w.desired = DesiredState::Deleted;
        w.phase = WorkloadPhase::Deleting;
        self.store.save(&w)?;
        self.driver(&w.backend)?
            .remove(Self::instance(&w), force)
            .await?;
        self.store.delete(id)?;
        self.events.publish(EventKind::Removed, id, None, None);
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
        Ok(())
    }

    /// Start a stopped workload.
    pub async fn start(&self, caller: &Caller, id: &str) -> Result<Workload, Error> {
        self.transition(
            caller,
            id,
            |w| {
                if w.containers.iter().all(|c| is_running(c.status)) && !w.containers.is_empty() {
                    return Err(Error::Conflict(format!("workload {id} is already running")));
                }
                Ok(DesiredState::Running)
            },
            |d, r| Box::pin(async move { d.start(r, None).await }),
        )
        .await
    }

    /// Stop a running workload.
    pub async fn stop(
        &self,
        caller: &Caller,
        id: &str,
        options: StopOptions,
    ) -> Result<Workload, Error> {
        self.transition(
            caller,
            id,
            |w| {
                if !w.containers.iter().any(|c| is_running(c.status)) {
                    return Err(Error::Conflict(format!("workload {id} is not running")));
                }
                Ok(DesiredState::Stopped)
            },
            move |d, r| {
                Box::pin(async move {
                    if options.force {
                        d.kill(r, None, options.signal).await
                    } else {
                        d.stop(r, None, options.signal, options.timeout_seconds)
                            .await
                    }
                })
            },
        )
        .await
    }

    /// Restart every container.
    pub async fn restart(&self, caller: &Caller, id: &str) -> Result<Workload, Error> {
        self.transition(
            caller,
            id,
            |_| Ok(DesiredState::Running),
            |d, r| Box::pin(async move { d.restart(r, None, None).await }),
        )
        .await
    }

    /// Pause a running workload.
    pub async fn pause(&self, caller: &Caller, id: &str) -> Result<Workload, Error> {
        self.transition(
            caller,
            id,
            |w| {
                require_status(
                    w,
                    crate::bindings::types::ContainerStatus::Running,
                    "running",
                )?;
                Ok(DesiredState::Paused)
            },
            |d, r| Box::pin(async move { d.pause(r, None).await }),
        )
        .await
    }

    /// Resume a paused workload.
    pub async fn resume(&self, caller: &Caller, id: &str) -> Result<Workload, Error> {
        self.transition(
            caller,
            id,
            |w| {
                require_status(w, crate::bindings::types::ContainerStatus::Paused, "paused")?;
                Ok(DesiredState::Running)
            },
            |d, r| Box::pin(async move { d.resume(r, None).await }),
        )
        .await
    }

    async fn transition(
        &self,
        caller: &Caller,
        id: &str,
        check: impl FnOnce(&Workload) -> Result<DesiredState, Error>,
        act: impl FnOnce(
            Arc<dyn Driver>,
            InstanceRef,
        ) -> futures::future::BoxFuture<'static, Result<(), Error>>,
    ) -> Result<Workload, Error> {
        let lock = self.lock_for(id);
        let _guard = lock.lock().await;
        let mut w = self.load(caller, id)?;
        let desired = check(&w)?;
        let driver = self.driver(&w.backend)?.clone();
        act(driver, Self::instance(&w)).await?;
        w.desired = desired;
        self.observe(&mut w).await?;
        self.commit(w, EventKind::StateChanged, None)
    }

    /// Rename a workload.
    pub async fn rename(&self, caller: &Caller, id: &str, name: String) -> Result<Workload, Error> {
        validate::name(&name)?;
        let lock = self.lock_for(id);
        let _guard = lock.lock().await;
        let mut w = self.load(caller, id)?;
        if !w.namespace.is_empty()
            && self
                .store
                .find_by_name(&w.namespace, &name)?
                .is_some_and(|other| other != w.id)
        {
            return Err(Error::Conflict(format!(
                "a workload named `{name}` already exists in `{}`",
                w.namespace
            )));
        }
        w.name = name;
        let d = self.deployment(&w);
        self.driver(&w.backend)?
            .rename(Self::instance(&w), d.name)
            .await?;
        self.commit(w, EventKind::Renamed, None)
    }

    /// Revisions, newest first.
    pub async fn revisions(
        &self,
        caller: &Caller,
        id: &str,
        page: PageRequest,
    ) -> Result<RevisionPage, Error> {
        self.load(caller, id)?;
        let (offset, rows) = page_window(&page);
        let (items, total) = self.store.revisions(id, offset as u64, rows as u64)?;
        Ok(RevisionPage { items, total })
    }

    /// Resource usage now.
    pub async fn stats(
        &self,
        caller: &Caller,
        id: &str,
        container: Option<String>,
    ) -> Result<ContainerStats, Error> {
        let w = self.load(caller, id)?;
        self.driver(&w.backend)?
            .stats(Self::instance(&w), container)
            .await
    }

    /// Open a log stream.
    pub async fn logs(
        &self,
        caller: &Caller,
        id: &str,
        options: LogOptions,
    ) -> Result<Box<dyn LogSource>, Error> {
        let w = self.load(caller, id)?;
        if let Some(c) = &options.container
            && !w.spec.containers.iter().any(|s| &s.name == c)
        {
            return Err(invalid_field(
                "container",
                format!("no container named `{c}` in this workload"),
            ));
        }
        self.driver(&w.backend)?
            .logs(Self::instance(&w), options)
            .await
    }

    /// GPU models callers may ask for.
    pub fn gpu_models(&self) -> Vec<GpuModel> {
        self.gpu_models.clone()
    }
}

/// `conflict` unless some container of `w` is in `status`.
fn require_status(
    w: &Workload,
    status: crate::bindings::types::ContainerStatus,
    word: &str,
) -> Result<(), Error> {
    if w.containers.iter().any(|c| c.status == status) {
        Ok(())
    } else {
        Err(Error::Conflict(format!("workload {} is not {word}", w.id)))
    }
}

/// Offset and row count of a 1-based page (rows default 10, at most 1000).
fn page_window(page: &PageRequest) -> (usize, usize) {
    let rows = if page.rows == 0 {
        10
    } else {
        page.rows.min(1000)
    } as usize;
    let p = page.page.max(1) as usize;
    ((p - 1) * rows, rows)
}
