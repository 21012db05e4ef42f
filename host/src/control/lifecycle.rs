//! The control plane's operations, as frontends call them through `control`:
//! each validates, takes the workload's lock, acts on the backend and
//! persists before it answers.

use super::{ControlPlane, Deployer, validate};
use crate::bindings::gantry::plugin::control::{
    CreateRequest, PageRequest, ReconfigureRequest, RevisionPage, StopOptions, WorkloadFilter,
    WorkloadPage,
};
use crate::bindings::types::{
    Annotation, Caller, ContainerStats, ContainerStatus, DesiredState, Error, EventKind,
    GpuAssignment, LogOptions, Revision, Workload, WorkloadPhase, WorkloadSpec,
};
use crate::driver::{Driver, DriverResult, InstanceRef, LogSource};
use crate::model::{invalid_field, is_running, now};
use std::sync::Arc;

impl ControlPlane {
    /// Create a workload: validated, placed, persisted, then deployed. A failed
    /// deploy removes whatever the backend created and the record itself.
    pub async fn create(&self, caller: &Caller, req: CreateRequest) -> Result<Workload, Error> {
        validate::name(&req.name, &self.admission.bounds)?;
        validate::spec(&req.spec, &self.admission.bounds)?;
        validate::annotations(&req.annotations, &req.spec, &self.admission.bounds)?;
        self.may_use_namespace(caller, &req.namespace).await?;
        self.ingress_name_free(None, &req.annotations).await?;
        if !req.namespace.is_empty() {
            let (namespace, name) = (req.namespace.clone(), req.name.clone());
            if self
                .records
                .with_store(move |s| s.find_by_name(&namespace, &name))
                .await?
                .is_some()
            {
                return Err(Error::Conflict(format!(
                    "a workload named `{}` already exists in `{}`",
                    req.name, req.namespace
                )));
            }
        }
        let backend = self.deployer.place(&req.spec)?;
        self.deployer.driver(&backend)?;
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
        let lock = self.records.lock_for(&w.id);
        let _guard = lock.lock().await;
        let creating = self.records.creating(&w.id);
        let rev = Revision {
            workload_id: w.id.clone(),
            number: 1,
            spec: w.spec.clone(),
            created_at: created,
        };
        let record = w.clone();
        self.records
            .with_store(move |s| s.insert(&record, &rev))
            .await?;
        self.records
            .events()
            .publish(EventKind::Created, &w.id, None, Some(w.clone()));
        let deployed = tokio::select! {
            deployed = self.deployer.deploy_revision(&mut w, false) => deployed,
            () = creating.abandoned() => {
                // A delete came while the backend worked on it: stop waiting,
                // and undo whatever the backend made meanwhile.
                let driver = self.deployer.driver(&w.backend)?.clone();
                if let Err(e) = driver.remove(Deployer::instance(&w), true).await {
                    tracing::warn!(workload = %w.id, error = %e, "undoing a create its delete abandoned");
                }
                Err(Error::Conflict(format!(
                    "workload `{}` was deleted while it was being created",
                    w.name
                )))
            }
        };
        match deployed {
            Ok(()) => self.records.commit(w, EventKind::StateChanged, None).await,
            Err(e) => {
                self.records.remove(&w.id).await?;
                Err(e)
            }
        }
    }

    /// One workload.
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<Workload, Error> {
        self.records.load(caller, id).await
    }

    /// A page of workloads.
    pub async fn list(
        &self,
        caller: &Caller,
        filter: WorkloadFilter,
        page: PageRequest,
    ) -> Result<WorkloadPage, Error> {
        self.records.list(caller, filter, page).await
    }

    /// Replace the spec (and, when given, the annotations, in the same step):
    /// a new revision, deployed; the old revision's containers are removed
    /// only once the new ones run. On failure, nothing changes.
    pub async fn update(
        &self,
        caller: &Caller,
        id: &str,
        spec: WorkloadSpec,
        annotations: Option<Vec<Annotation>>,
    ) -> Result<Workload, Error> {
        validate::spec(&spec, &self.admission.bounds)?;
        if let Some(a) = &annotations {
            validate::annotations(a, &spec, &self.admission.bounds)?;
        }
        let lock = self.records.lock_for(id);
        let _guard = lock.lock().await;
        let old = self.records.load(caller, id).await?;
        if let Some(a) = &annotations {
            self.ingress_name_free(Some(id), a).await?;
        }
        let driver = self.deployer.driver(&old.backend)?.clone();
        let mut w = old.clone();
        w.revision += 1;
        w.spec = spec;
        if Deployer::wants_gpu(&w.spec) != Deployer::wants_gpu(&old.spec) {
            // Asking for GPUs, or no longer: the new revision goes where such
            // workloads are placed (the GPU scheduler, or past it), when that
            // shares the runtime the old one runs on.
            let target = self.deployer.place(&w.spec)?;
            if self.deployer.bottom(&target) != self.deployer.bottom(&old.backend) {
                return Err(Error::Conflict(format!(
                    "the new revision belongs on backend `{target}`, which does not share a \
                     runtime with `{}`: create a new workload instead",
                    old.backend
                )));
            }
            w.backend = target;
        }
        crate::secrets::restore(&mut w.spec, &old.spec);
        if let Some(a) = annotations {
            w.annotations = a;
        }
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
        let record = w.clone();
        self.records
            .with_store(move |s| s.save_with_revision(&record, &rev))
            .await?;
        // The old revision goes only once the new one runs: a revision whose
        // containers cannot start is rolled back like one that cannot be created.
        match self.deployer.deploy_revision(&mut w, true).await {
            Ok(()) => {
                if let Err(e) = driver.remove(Deployer::instance(&old), true).await {
                    tracing::warn!(workload = %id, revision = old.revision, error = %e, "removing the previous revision");
                }
                self.records.commit(w, EventKind::Updated, None).await
            }
            Err(e) => {
                let (number, key, kept) = (w.revision, id.to_string(), old.revision);
                self.records
                    .with_store(move |s| {
                        s.save(&old)?;
                        s.delete_revision(&key, number)
                    })
                    .await?;
                // Whatever the kind, the caller learns the update changed nothing.
                Err(e.noted(&format!("revision {kept} keeps running")))
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
        let lock = self.records.lock_for(id);
        let _guard = lock.lock().await;
        let mut w = self.records.load(caller, id).await?;
        if let Some(c) = &req.container
            && !w.spec.containers.iter().any(|s| &s.name == c)
        {
            return Err(Error::NotFound(format!("container `{c}` in workload {id}")));
        }
        self.deployer
            .driver(&w.backend)?
            .update(
                Deployer::instance(&w),
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
        self.records.commit(w, EventKind::Updated, None).await
    }

    /// Replace annotations.
    pub async fn set_annotations(
        &self,
        caller: &Caller,
        id: &str,
        annotations: Vec<Annotation>,
    ) -> Result<Workload, Error> {
        let lock = self.records.lock_for(id);
        let _guard = lock.lock().await;
        let mut w = self.records.load(caller, id).await?;
        validate::annotations(&annotations, &w.spec, &self.admission.bounds)?;
        self.ingress_name_free(Some(id), &annotations).await?;
        w.annotations = annotations;
        self.records.commit(w, EventKind::Updated, None).await
    }

    /// Remove a workload. Without `force`, a running workload is a conflict.
    /// A workload still being created is abandoned: its create stops waiting
    /// on the backend, undoes what it made, and this answers once it has.
    pub async fn delete(&self, caller: &Caller, id: &str, force: bool) -> Result<(), Error> {
        let seen = self.records.load(caller, id).await?;
        let abandoned = seen.phase == WorkloadPhase::Deploying && self.records.abandon(id);
        let lock = self.records.lock_for(id);
        let _guard = lock.lock().await;
        let mut w = match self.records.load(caller, id).await {
            // The abandoned create removed it already.
            Err(Error::NotFound(_)) if abandoned => return Ok(()),
            loaded => loaded?,
        };
        if !force && w.containers.iter().any(|c| is_running(c.status)) {
            return Err(Error::Conflict(format!(
                "workload {id} is running; stop it first or remove with force"
            )));
        }
        w.desired = DesiredState::Deleted;
        w.phase = WorkloadPhase::Deleting;
        let w = self.records.save(w).await?;
        self.deployer
            .driver(&w.backend)?
            .remove(Deployer::instance(&w), force)
            .await?;
        self.records.remove(id).await
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
                require_status(w, ContainerStatus::Running, "running")?;
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
                require_status(w, ContainerStatus::Paused, "paused")?;
                Ok(DesiredState::Running)
            },
            |d, r| Box::pin(async move { d.resume(r, None).await }),
        )
        .await
    }

    /// Check, act on the backend, record the new desired and observed state.
    async fn transition(
        &self,
        caller: &Caller,
        id: &str,
        check: impl FnOnce(&Workload) -> Result<DesiredState, Error>,
        act: impl FnOnce(
            Arc<dyn Driver>,
            InstanceRef,
        ) -> futures::future::BoxFuture<'static, DriverResult<()>>,
    ) -> Result<Workload, Error> {
        let lock = self.records.lock_for(id);
        let _guard = lock.lock().await;
        let mut w = self.records.load(caller, id).await?;
        let desired = check(&w)?;
        let driver = self.deployer.driver(&w.backend)?.clone();
        act(driver, Deployer::instance(&w)).await?;
        w.desired = desired;
        self.deployer.observe(&mut w).await?;
        self.records.commit(w, EventKind::StateChanged, None).await
    }

    /// Rename a workload.
    pub async fn rename(&self, caller: &Caller, id: &str, name: String) -> Result<Workload, Error> {
        validate::name(&name, &self.admission.bounds)?;
        let lock = self.records.lock_for(id);
        let _guard = lock.lock().await;
        let mut w = self.records.load(caller, id).await?;
        if !w.namespace.is_empty() && {
            let (namespace, wanted) = (w.namespace.clone(), name.clone());
            self.records
                .with_store(move |s| s.find_by_name(&namespace, &wanted))
                .await?
                .is_some_and(|other| other != w.id)
        } {
            return Err(Error::Conflict(format!(
                "a workload named `{name}` already exists in `{}`",
                w.namespace
            )));
        }
        w.name = name;
        let d = self.deployer.deployment(&w);
        self.deployer
            .driver(&w.backend)?
            .rename(Deployer::instance(&w), d.name)
            .await?;
        self.records.commit(w, EventKind::Renamed, None).await
    }

    /// Revisions, newest first.
    pub async fn revisions(
        &self,
        caller: &Caller,
        id: &str,
        page: PageRequest,
    ) -> Result<RevisionPage, Error> {
        self.records.load(caller, id).await?;
        let (offset, rows) = super::records::page_window(&page);
        let key = id.to_string();
        let (items, total) = self
            .records
            .with_store(move |s| s.revisions(&key, offset as u64, rows as u64))
            .await?;
        Ok(RevisionPage { items, total })
    }

    /// The GPUs the workload's current revision holds.
    pub async fn gpus(&self, caller: &Caller, id: &str) -> Result<Vec<GpuAssignment>, Error> {
        let w = self.records.load(caller, id).await?;
        self.ledger.held(&w.id, w.revision).await
    }

    /// Resource usage now.
    pub async fn stats(
        &self,
        caller: &Caller,
        id: &str,
        container: Option<String>,
    ) -> Result<ContainerStats, Error> {
        let w = self.records.load(caller, id).await?;
        Ok(self
            .deployer
            .driver(&w.backend)?
            .stats(Deployer::instance(&w), container)
            .await?)
    }

    /// Open a log stream.
    pub async fn logs(
        &self,
        caller: &Caller,
        id: &str,
        options: LogOptions,
    ) -> Result<Box<dyn LogSource>, Error> {
        let w = self.records.load(caller, id).await?;
        if let Some(c) = &options.container
            && !w.spec.containers.iter().any(|s| &s.name == c)
        {
            return Err(invalid_field(
                "container",
                format!("no container named `{c}` in this workload"),
            ));
        }
        Ok(self
            .deployer
            .driver(&w.backend)?
            .logs(Deployer::instance(&w), options)
            .await?)
    }
}

/// `conflict` unless some container of `w` is in `status`.
fn require_status(w: &Workload, status: ContainerStatus, word: &str) -> Result<(), Error> {
    if w.containers.iter().any(|c| c.status == status) {
        Ok(())
    } else {
        Err(Error::Conflict(format!("workload {} is not {word}", w.id)))
    }
}
