//! Deriving a workload's phase from desired and observed state.

use crate::bindings::types::{
    ContainerStatus as S, DesiredState, RestartKind, Workload, WorkloadPhase,
};

/// Whether a container never ran because the runtime could not start it.
pub fn failed_to_start(c: &crate::bindings::types::ContainerState) -> bool {
    c.error.is_some()
        && matches!(c.status, S::Created | S::Exited | S::Dead)
        && c.started_at.is_none()
}

/// What a deployment waits for, when its backend holds it back (a
/// scheduler waiting for GPUs): every container still `creating`, none on
/// the runtime, each with the reason.
pub fn waiting_for(containers: &[crate::bindings::types::ContainerState]) -> Option<String> {
    if containers.is_empty() || !containers.iter().all(|c| c.held_back()) {
        return None;
    }
    containers.first().and_then(|c| c.error.clone())
}

/// The phase a workload is in, given what is desired and what runs.
pub fn derive_phase(w: &Workload) -> WorkloadPhase {
    if w.phase == WorkloadPhase::Failed && w.message.is_some() {
        return WorkloadPhase::Failed;
    }
    match w.desired {
        DesiredState::Deleted => WorkloadPhase::Deleting,
        DesiredState::Paused => WorkloadPhase::Paused,
        DesiredState::Stopped => WorkloadPhase::Stopped,
        DesiredState::Running => {
            let cs = &w.containers;
            if cs.iter().any(failed_to_start) {
                return WorkloadPhase::Failed;
            }
            if cs.is_empty()
                || cs
                    .iter()
                    .any(|c| matches!(c.status, S::Creating | S::Created | S::Restarting))
            {
                return WorkloadPhase::Deploying;
            }
            if cs.iter().all(|c| c.status == S::Running) {
                return WorkloadPhase::Deployed;
            }
            let exited = |c: &&crate::bindings::types::ContainerState| {
                matches!(c.status, S::Exited | S::Dead | S::Stopped)
            };
            let failed = cs
                .iter()
                .filter(exited)
                .any(|c| c.exit_code.unwrap_or(0) != 0 || c.oom_killed);
            match (w.spec.restart.kind, failed) {
                (RestartKind::Always | RestartKind::UnlessStopped, _) => WorkloadPhase::Deploying,
                (RestartKind::OnFailure, true) => WorkloadPhase::Deploying,
                (_, true) => WorkloadPhase::Failed,
                (_, false) => {
                    if cs.iter().any(|c| c.status == S::Running) {
                        WorkloadPhase::Deployed
                    } else {
                        WorkloadPhase::Stopped
                    }
                }
            }
        }
    }
}
