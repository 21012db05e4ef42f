//! Finding a revision's containers and pod on Podman again, by label, and
//! reading their state.

use crate::client::{STATE_IMPROPER, call, enc, error};
use crate::spec::labels;
use gantry_sdk::backend::exports::gantry::plugin::driver::InstanceRef;
use gantry_sdk::backend::gantry::plugin::types::{ContainerState, ContainerStatus, Error};
pub use gantry_sdk::clock::timestamp;
use gantry_sdk::wasip2::http::types::Method;
use serde::Deserialize;
use serde_json::json;
use std::collections::HashMap;

/// A container as libpod's list (`/containers/json`) gives it.
#[derive(Debug, Clone, Deserialize)]
pub struct Listed {
    /// Podman's id.
    #[serde(rename = "Id")]
    pub id: String,
    /// `created`, `running`, `paused`, `exited`...
    #[serde(rename = "State", default)]
    pub state: String,
    /// Its labels (an infra container carries its pod's).
    #[serde(rename = "Labels", default)]
    pub labels: Option<HashMap<String, String>>,
    /// Whether it is a pod's infra container, not one of the spec.
    #[serde(rename = "IsInfra", default)]
    pub is_infra: bool,
}

impl Listed {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.as_ref()?.get(key).map(String::as_str)
    }

    /// The container's name within the workload.
    pub fn member(&self) -> &str {
        self.label(labels::CONTAINER).unwrap_or("?")
    }
}

/// A pod as libpod's list (`/pods/json`) gives it.
#[derive(Debug, Deserialize)]
pub struct ListedPod {
    /// Podman's id.
    #[serde(rename = "Id")]
    pub id: String,
}

fn filters(labels: &[String]) -> String {
    enc(&json!({ "label": labels }).to_string())
}

/// Every container carrying all of `labels` (`key` or `key=value`), stopped
/// ones and infra containers included.
pub fn labelled(labels: &[String]) -> Result<Vec<Listed>, Error> {
    let resp = call(
        Method::Get,
        &format!("/containers/json?all=true&filters={}", filters(labels)),
        None,
    )?;
    if resp.status != 200 {
        return Err(error(&resp, "listing containers"));
    }
    resp.json()
}

fn revision_labels(r: &InstanceRef) -> Vec<String> {
    vec![
        format!("{}={}", labels::WORKLOAD, r.workload_id),
        format!("{}={}", labels::REVISION, r.revision),
    ]
}

/// Every container of one revision, its pod's infra container included.
pub fn everything(r: &InstanceRef) -> Result<Vec<Listed>, Error> {
    labelled(&revision_labels(r))
}

/// The spec's containers of one revision, in spec order.
pub fn members(r: &InstanceRef) -> Result<Vec<Listed>, Error> {
    let mut list: Vec<Listed> = everything(r)?.into_iter().filter(|c| !c.is_infra).collect();
    list.sort_by_key(|c| {
        c.label(labels::INDEX)
            .and_then(|i| i.parse::<u32>().ok())
            .unwrap_or(0)
    });
    Ok(list)
}

/// The pods of one revision (one, or none for a single container).
pub fn pods(r: &InstanceRef) -> Result<Vec<ListedPod>, Error> {
    let resp = call(
        Method::Get,
        &format!("/pods/json?filters={}", filters(&revision_labels(r))),
        None,
    )?;
    if resp.status != 200 {
        return Err(error(&resp, "listing pods"));
    }
    resp.json()
}

/// The members an operation applies to: one by name, or all.
pub fn targets(r: &InstanceRef, container: Option<&str>) -> Result<Vec<Listed>, Error> {
    let all = members(r)?;
    if all.is_empty() {
        return Err(Error::NotFound(format!(
            "workload {} revision {} has no containers on this Podman",
            r.workload_id, r.revision
        )));
    }
    let Some(name) = container else {
        return Ok(all);
    };
    let one: Vec<Listed> = all.into_iter().filter(|c| c.member() == name).collect();
    if one.is_empty() {
        return Err(Error::NotFound(format!(
            "container `{name}` of workload {}",
            r.workload_id
        )));
    }
    Ok(one)
}

/// POST `action` to each target. An answer in `done` counts as success (304
/// for start/stop of what already is), and so does a container in the wrong
/// state when `already` says it is in the state the action leads to.
pub fn each(targets: &[Listed], action: &str, query: &str, already: &[&str]) -> Result<(), Error> {
    for c in targets {
        let resp = call(
            Method::Post,
            &format!("/containers/{}/{action}{query}", c.id),
            None,
        )?;
        if resp.ok() || resp.status == 304 {
            continue;
        }
        if crate::client::cause(&resp) == STATE_IMPROPER {
            let now = inspect_one(&c.id)?;
            if already.contains(&now.state.status.as_str()) {
                continue;
            }
        }
        return Err(error(&resp, &format!("{action} {}", c.member())));
    }
    Ok(())
}

/// libpod's inspect answer, less what gantry does not read.
#[derive(Debug, Deserialize)]
pub struct Inspected {
    /// Podman's id.
    #[serde(rename = "Id")]
    pub id: String,
    /// Runtime state.
    #[serde(rename = "State")]
    pub state: InspectedState,
    /// Restarts Podman itself made (none: restart policies are the host's).
    #[serde(rename = "RestartCount", default)]
    pub restart_count: i64,
    /// Configuration.
    #[serde(rename = "Config")]
    pub config: InspectedConfig,
}

/// The `State` of an inspect answer.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub struct InspectedState {
    #[serde(rename = "Status", default)]
    pub status: String,
    #[serde(rename = "Pid", default)]
    pub pid: i64,
    #[serde(rename = "ExitCode", default)]
    pub exit_code: i64,
    #[serde(rename = "Error", default)]
    pub error: String,
    #[serde(rename = "StartedAt", default)]
    pub started_at: String,
    #[serde(rename = "FinishedAt", default)]
    pub finished_at: String,
    #[serde(rename = "OOMKilled", default)]
    pub oom_killed: bool,
}

/// The `Config` of an inspect answer.
#[derive(Debug, Deserialize)]
#[allow(missing_docs)]
pub struct InspectedConfig {
    #[serde(rename = "Labels", default)]
    pub labels: Option<HashMap<String, String>>,
}

/// Inspect one container by id.
pub fn inspect_one(id: &str) -> Result<Inspected, Error> {
    let resp = call(Method::Get, &format!("/containers/{id}/json"), None)?;
    if resp.status != 200 {
        return Err(error(&resp, "inspecting a container"));
    }
    resp.json()
}

/// A libpod status word. `configured` and `initialized` are created and not
/// yet run; `stopped` has exited and is not cleaned up yet; `stopping` still runs.
pub fn status(s: &str) -> ContainerStatus {
    match s {
        "configured" | "created" | "initialized" => ContainerStatus::Created,
        "running" | "stopping" => ContainerStatus::Running,
        "paused" => ContainerStatus::Paused,
        "stopped" | "exited" | "removing" => ContainerStatus::Exited,
        "dead" => ContainerStatus::Dead,
        _ => ContainerStatus::Unknown,
    }
}

/// Observed state from an inspect answer.
pub fn state(i: &Inspected) -> ContainerState {
    let name = i
        .config
        .labels
        .as_ref()
        .and_then(|l| l.get(labels::CONTAINER))
        .cloned()
        .unwrap_or_default();
    let st = &i.state;
    let status = status(&st.status);
    let finished = matches!(status, ContainerStatus::Exited | ContainerStatus::Dead);
    ContainerState {
        name,
        runtime_id: Some(i.id.clone()),
        status,
        pid: u32::try_from(st.pid).ok().filter(|p| *p > 0),
        exit_code: finished.then(|| i32::try_from(st.exit_code).ok()).flatten(),
        started_at: timestamp(&st.started_at),
        finished_at: finished.then(|| timestamp(&st.finished_at)).flatten(),
        oom_killed: st.oom_killed,
        restart_count: u32::try_from(i.restart_count).unwrap_or(0),
        error: Some(st.error.clone()).filter(|e| !e.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libpod_times_and_words() {
        assert!(timestamp("0001-01-01T00:00:00Z").is_none());
        let t = timestamp("2026-11-24T04:48:20.872188314Z").expect("parses");
        assert_eq!(t.nanoseconds, 872_188_314);
        assert_eq!(status("configured"), ContainerStatus::Created);
        assert_eq!(status("stopped"), ContainerStatus::Exited);
    }
}
