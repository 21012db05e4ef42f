//! Observed state: a container's record and task as gantry's container state.

use crate::api::containerd::v1::types::Process;
use crate::clock::timestamp;
use crate::containers::{Member, labels};
use crate::task;
use gantry_sdk::backend::gantry::plugin::types::{ContainerState, ContainerStatus, Error};

/// A container's observed state from its record and task.
pub fn state_of(m: &Member, task: Option<&Process>) -> ContainerState {
    let (status, pid, exit_code, finished_at) = match task {
        None => (ContainerStatus::Created, None, None, None),
        Some(p) => match p.status {
            task::status::CREATED => (ContainerStatus::Created, Some(p.pid), None, None),
            task::status::RUNNING => (ContainerStatus::Running, Some(p.pid), None, None),
            task::status::PAUSED | task::status::PAUSING => {
                (ContainerStatus::Paused, Some(p.pid), None, None)
            }
            task::status::STOPPED => (
                ContainerStatus::Exited,
                None,
                Some(i32::try_from(p.exit_status).unwrap_or(i32::MAX)),
                timestamp(p.exited_at.as_ref()),
            ),
            _ => (ContainerStatus::Unknown, None, None, None),
        },
    };
    let exited_killed = exit_code == Some(137);
    ContainerState {
        name: m.name().to_string(),
        runtime_id: Some(m.id.clone()),
        status,
        pid: pid.filter(|p| *p > 0),
        exit_code,
        started_at: m
            .label(labels::STARTED)
            .and_then(gantry_sdk::clock::timestamp),
        finished_at,
        oom_killed: exited_killed && m.label(labels::OOM).is_some(),
        // Restart policies, and so their counts, are the host's.
        restart_count: 0,
        error: None,
    }
}

pub fn inspect_members(all: &[Member]) -> Result<Vec<ContainerState>, Error> {
    all.iter()
        .filter(|m| !m.is_holder())
        .map(|m| Ok(state_of(m, task::get(&m.id)?.as_ref())))
        .collect()
}
