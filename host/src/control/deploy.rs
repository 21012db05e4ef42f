//! Deploying revisions: which backend a workload goes to, what the backend
//! is asked to create, and the one "deploy a revision, merge what the backend
//! observed" path that create, update and the reconciler share.

use super::events::EventBus;
use super::labels;
use super::phase::{derive_phase, failed_to_start, waiting_for};
use crate::bindings::types::{
    ContainerState, DesiredState, Error, EventKind, Workload, WorkloadPhase, WorkloadSpec,
};
use crate::driver::{Deployment, Driver, DriverError, InstanceRef};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Which backend a workload goes to.
#[derive(Debug, Clone, Default)]
pub struct Placement {
    /// For workloads without GPUs.
    pub default: Option<String>,
    /// For workloads requesting GPUs.
    pub gpu: Option<String>,
    /// Schedulers and the backend each is stacked on (name → downstream).
    pub stacks: BTreeMap<String, String>,
}

/// The backends, and how workloads are placed and deployed on them.
pub struct Deployer {
    drivers: BTreeMap<String, Arc<dyn Driver>>,
    placement: Placement,
    host_id: String,
    events: Arc<EventBus>,
}

impl Deployer {
    /// Deploy on `drivers`, labelling everything with `host_id`.
    pub fn new(
        drivers: BTreeMap<String, Arc<dyn Driver>>,
        placement: Placement,
        host_id: String,
        events: Arc<EventBus>,
    ) -> Self {
        Self {
            drivers,
            placement,
            host_id,
            events,
        }
    }

    /// The configured backends.
    pub fn drivers(&self) -> &BTreeMap<String, Arc<dyn Driver>> {
        &self.drivers
    }

    /// The labels that select this host's deployments on a backend.
    pub fn selector(&self) -> Vec<(String, String)> {
        vec![(labels::HOST.to_string(), self.host_id.clone())]
    }

    /// The backend at the bottom of `backend`'s stack: itself, or for a
    /// scheduler the backend its downstream chain ends on. Workloads of
    /// backends with the same bottom share one runtime, and every one of
    /// those backends lists all of them.
    pub fn bottom<'a>(&'a self, backend: &'a str) -> &'a str {
        let mut at = backend;
        // Config refuses loops; the bound keeps a bad map from spinning.
        for _ in 0..=self.placement.stacks.len() {
            match self.placement.stacks.get(at) {
                Some(next) => at = next,
                None => break,
            }
        }
        at
    }

    /// The backend named `name`.
    pub fn driver(&self, name: &str) -> Result<&Arc<dyn Driver>, Error> {
        self.drivers
            .get(name)
            .ok_or_else(|| Error::Unavailable(format!("backend `{name}` is not configured")))
    }

    /// Whether `spec` asks for GPUs.
    pub fn wants_gpu(spec: &WorkloadSpec) -> bool {
        spec.containers.iter().any(|c| c.wants_gpu())
    }

    /// The backend a new workload with `spec` goes to.
    pub fn place(&self, spec: &WorkloadSpec) -> Result<String, Error> {
        let choice = if Self::wants_gpu(spec) {
            self.placement
                .gpu
                .clone()
                .or(self.placement.default.clone())
        } else {
            self.placement.default.clone()
        };
        choice.ok_or_else(|| Error::Unavailable("no backend is configured to run workloads".into()))
    }

    /// What the backend is asked to create for `w`'s current revision.
    pub fn deployment(&self, w: &Workload) -> Deployment {
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

    /// `w`'s current revision on its backend.
    pub fn instance(w: &Workload) -> InstanceRef {
        InstanceRef {
            workload_id: w.id.clone(),
            revision: w.revision,
        }
    }

    /// Deploy `w`'s current revision (started when it is desired running) and
    /// merge what the backend observed into `w`. With `all_started`, a
    /// container that could not start fails the deploy. On failure nothing of
    /// this revision is left on the backend; `w` is unchanged.
    pub async fn deploy_revision(&self, w: &mut Workload, all_started: bool) -> Result<(), Error> {
        let driver = self.driver(&w.backend)?.clone();
        let created = driver
            .create(self.deployment(w), w.desired == DesiredState::Running)
            .await
            .map_err(Error::from)
            .and_then(|states| match states.iter().find(|c| failed_to_start(c)) {
                // A revision that must run now cannot wait (for GPUs).
                None if all_started && waiting_for(&states).is_some() => {
                    Err(Error::Conflict(format!(
                        "revision {} cannot run now: {}",
                        w.revision,
                        waiting_for(&states).unwrap_or_default()
                    )))
                }
                Some(c) if all_started => Err(Error::Conflict(format!(
                    "revision {} could not start (container `{}`: {})",
                    w.revision,
                    c.name,
                    c.error.clone().unwrap_or_default()
                ))),
                _ => Ok(states),
            });
        match created {
            Ok(states) => {
                self.merge_observed(w, states);
                Ok(())
            }
            Err(e) => {
                tracing::warn!(workload = %w.id, revision = w.revision, error = %e, "deploy failed; removing what was created");
                if let Err(cleanup) = driver.remove(Self::instance(w), true).await {
                    tracing::warn!(workload = %w.id, error = %cleanup, "cleanup after a failed deploy");
                }
                Err(e)
            }
        }
    }

    /// Re-read `w`'s observed state from its backend.
    pub async fn observe(&self, w: &mut Workload) -> Result<(), DriverError> {
        let states = self.driver(&w.backend)?.inspect(Self::instance(w)).await?;
        self.merge_observed(w, states);
        Ok(())
    }

    /// Merge observed container states into `w`, keeping host-counted
    /// restarts, derive the phase, and announce containers whose state changed.
    pub fn merge_observed(&self, w: &mut Workload, states: Vec<ContainerState>) {
        let mut merged = Vec::with_capacity(states.len());
        for mut s in states {
            if let Some(old) = w.containers.iter().find(|c| c.name == s.name) {
                s.restart_count = s.restart_count.max(old.restart_count);
                if old.status != s.status {
                    self.events
                        .publish(EventKind::StateChanged, &w.id, Some(s.name.clone()), None);
                }
            }
            merged.push(s);
        }
        let was_waiting = waiting_for(&w.containers).is_some();
        w.containers = merged;
        w.phase = derive_phase(w);
        match waiting_for(&w.containers) {
            Some(m) if w.phase == WorkloadPhase::Deploying => w.message = Some(m),
            _ if was_waiting && w.phase != WorkloadPhase::Failed => w.message = None,
            _ => {}
        }
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
}
