//! Finding a revision's containers on the engine again, by label, and acting on them.

use crate::engine::{call, enc, error};
use crate::mapping::labels;
use bollard_stubs::models::{ContainerInspectResponse, ContainerSummary};
use gantry_sdk::backend::exports::gantry::plugin::driver::InstanceRef;
use gantry_sdk::backend::gantry::plugin::types::Error;
use gantry_sdk::wasip2::http::types::Method;
use serde_json::json;

/// A container as `driver.list` needs it: the engine's summary, less
/// everything it does not read (ports, mounts, networks...), which a
/// listing of 10,000 containers would otherwise decode for nothing.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct Listed {
    #[serde(rename = "Id")]
    pub id: String,
    #[serde(rename = "State", default)]
    pub state: String,
    #[serde(rename = "Labels", default)]
    pub labels: Option<std::collections::HashMap<String, String>>,
}

impl Listed {
    /// The value of label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.as_ref()?.get(key).map(String::as_str)
    }
}

/// Containers carrying every one of `labels` (`key` or `key=value`), stopped ones included.
pub(crate) fn labelled(labels: &[String]) -> Result<Vec<ContainerSummary>, Error> {
    labelled_as(labels)
}

/// [`labelled`], decoded as `T`.
pub(crate) fn labelled_as<T: serde::de::DeserializeOwned>(
    labels: &[String],
) -> Result<Vec<T>, Error> {
    let filters = json!({ "label": labels });
    let resp = call(
        Method::Get,
        &format!(
            "/containers/json?all=1&filters={}",
            enc(&filters.to_string())
        ),
        None,
    )?;
    if resp.status != 200 {
        return Err(error(&resp, "listing containers"));
    }
    resp.json()
}

/// The containers of one revision: the namespace holder (if any) first, then spec order.
pub(crate) fn members(r: &InstanceRef) -> Result<Vec<ContainerSummary>, Error> {
    let mut list = labelled(&[
        format!("{}={}", labels::WORKLOAD, r.workload_id),
        format!("{}={}", labels::REVISION, r.revision),
    ])?;
    list.sort_by_key(|c| {
        if is_holder(c) {
            return -1;
        }
        c.labels
            .as_ref()
            .and_then(|l| l.get(labels::INDEX))
            .and_then(|i| i.parse::<i64>().ok())
            .unwrap_or(0)
    });
    Ok(list)
}

/// Whether a container is a revision's namespace holder, not one of its spec.
pub(crate) fn is_holder(c: &ContainerSummary) -> bool {
    label(c, labels::ROLE) == Some(labels::HOLDER)
}

/// The members an operation applies to: one by name, or all.
pub(crate) fn targets(
    r: &InstanceRef,
    container: Option<&str>,
) -> Result<Vec<ContainerSummary>, Error> {
    let all: Vec<ContainerSummary> = members(r)?.into_iter().filter(|c| !is_holder(c)).collect();
    if all.is_empty() {
        return Err(Error::NotFound(format!(
            "workload {} revision {} has no containers on this engine",
            r.workload_id, r.revision
        )));
    }
    match container {
        None => Ok(all),
        Some(name) => {
            let one: Vec<_> = all
                .into_iter()
                .filter(|c| label(c, labels::CONTAINER) == Some(name))
                .collect();
            if one.is_empty() {
                return Err(Error::NotFound(format!(
                    "container `{name}` of workload {}",
                    r.workload_id
                )));
            }
            Ok(one)
        }
    }
}

pub(crate) fn label<'a>(c: &'a ContainerSummary, key: &str) -> Option<&'a str> {
    c.labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

pub(crate) fn id(c: &ContainerSummary) -> Result<&str, Error> {
    c.id.as_deref()
        .ok_or_else(|| Error::Backend("engine listed a container without an id".into()))
}

/// POST an action to each target; `idempotent` statuses count as success.
pub(crate) fn each(
    targets: &[ContainerSummary],
    action: &str,
    query: &str,
    idempotent: &[u16],
) -> Result<(), Error> {
    for c in targets {
        let resp = call(
            Method::Post,
            &format!("/containers/{}/{action}{query}", id(c)?),
            None,
        )?;
        if !(200..300).contains(&resp.status) && !idempotent.contains(&resp.status) {
            return Err(error(
                &resp,
                &format!("{action} {}", label(c, labels::CONTAINER).unwrap_or("?")),
            ));
        }
    }
    Ok(())
}

pub(crate) fn inspect_one(id: &str) -> Result<ContainerInspectResponse, Error> {
    let resp = call(Method::Get, &format!("/containers/{id}/json"), None)?;
    if resp.status != 200 {
        return Err(error(&resp, "inspecting container"));
    }
    resp.json()
}
