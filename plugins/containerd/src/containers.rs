//! containerd containers of a deployment: their ids, labels, and finding
//! them again by label (containerd ids are immutable, so names are labels).

use crate::api::containerd::services::containers::v1::{
    Container, DeleteContainerRequest, GetContainerRequest, GetContainerResponse,
    ListContainerMessage, ListContainersRequest, UpdateContainerRequest,
};
use crate::grpc::{Call, GrpcResult, unary};
use gantry_sdk::backend::exports::gantry::plugin::driver::InstanceRef;
use gantry_sdk::backend::gantry::plugin::types::Error;
use std::collections::HashMap;

/// Label keys: the SDK's (the ones the host selects on), and this backend's own.
pub mod labels {
    pub use gantry_sdk::labels::{CONTAINER, REVISION, WORKLOAD};
    /// Position of the container in the spec.
    pub const INDEX: &str = "io.gantry.index";
    /// `holder` on the task that holds a multi-container workload's network namespace.
    pub const ROLE: &str = "io.gantry.role";
    /// The deployment's human-readable name (containerd ids cannot be renamed).
    pub const NAME: &str = "io.gantry.name";
    /// When the current task was started (RFC 3339), which containerd does not keep.
    pub const STARTED: &str = "io.gantry.started-at";
    /// Set when the runtime reported an OOM kill of the current task.
    pub const OOM: &str = "io.gantry.oom-killed";
    /// The `role` value of a namespace holder.
    pub const HOLDER: &str = "holder";
}

/// The id of container `slot` (an index, or `holder`) of a revision.
/// containerd ids are `[A-Za-z0-9]+([._-][A-Za-z0-9]+)*`, at most 76 characters.
pub fn container_id(workload_id: &str, revision: u32, slot: &str) -> String {
    let id = format!("gantry-{workload_id}-r{revision}-{slot}");
    if valid_id(&id) {
        return id;
    }
    use sha2::Digest;
    let hash = sha2::Sha256::digest(workload_id.as_bytes());
    let hex: String = hash.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("gantry-{hex}-r{revision}-{slot}")
}

fn valid_id(id: &str) -> bool {
    id.len() <= 76
        && id
            .split(['.', '_', '-'])
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// One container of a deployment, as containerd holds it.
#[derive(Debug, Clone)]
pub struct Member {
    /// containerd's id.
    pub id: String,
    /// Its labels.
    pub labels: HashMap<String, String>,
}

impl Member {
    /// A label's value.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// The container's name in the workload ("" for the holder).
    pub fn name(&self) -> &str {
        self.label(labels::CONTAINER).unwrap_or("")
    }

    /// Whether this is the namespace holder, not a container of the spec.
    pub fn is_holder(&self) -> bool {
        self.label(labels::ROLE) == Some(labels::HOLDER)
    }

    fn index(&self) -> i64 {
        if self.is_holder() {
            return -1;
        }
        self.label(labels::INDEX)
            .and_then(|i| i.parse().ok())
            .unwrap_or(0)
    }
}

impl From<Container> for Member {
    fn from(c: Container) -> Self {
        Member {
            id: c.id,
            labels: c.labels,
        }
    }
}

fn quote(v: &str) -> String {
    format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Containers carrying every label of `wanted` (`(key, None)`: any value).
pub fn labelled(wanted: &[(&str, Option<&str>)]) -> GrpcResult<Vec<Member>> {
    let filter = wanted
        .iter()
        .map(|(k, v)| match v {
            Some(v) => format!("labels.{}=={}", quote(k), quote(v)),
            None => format!("labels.{}", quote(k)),
        })
        .collect::<Vec<_>>()
        .join(",");
    // One container a message: a namespace of thousands of containers
    // (their specs included) would not fit one 16 MiB answer.
    let mut call = Call::open(
        "/containerd.services.containers.v1.Containers/ListStream",
        &ListContainersRequest {
            filters: vec![filter],
        },
        None,
    )?
    .ok_or_else(|| crate::grpc::Status {
        code: crate::grpc::Code::Unavailable,
        message: "no answer to a container listing".into(),
    })?;
    let mut out = Vec::new();
    while let Some(m) = call.next::<ListContainerMessage>(u64::MAX)? {
        out.extend(m.container.map(Member::from));
    }
    Ok(out)
}

/// Every container of a revision, holder first, then in spec order.
pub fn members(r: &InstanceRef) -> Result<Vec<Member>, Error> {
    let rev = r.revision.to_string();
    let mut all = labelled(&[
        (labels::WORKLOAD, Some(&r.workload_id)),
        (labels::REVISION, Some(&rev)),
    ])?;
    all.sort_by_key(Member::index);
    Ok(all)
}

/// The spec's containers of a revision an operation applies to: one by name, or all.
pub fn targets(r: &InstanceRef, container: Option<&str>) -> Result<Vec<Member>, Error> {
    let all: Vec<Member> = members(r)?.into_iter().filter(|m| !m.is_holder()).collect();
    if all.is_empty() {
        return Err(Error::NotFound(format!(
            "workload {} revision {} has no containers in containerd",
            r.workload_id, r.revision
        )));
    }
    match container {
        None => Ok(all),
        Some(name) => {
            let one: Vec<Member> = all.into_iter().filter(|m| m.name() == name).collect();
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

/// One container by id.
pub fn get(id: &str) -> GrpcResult<Container> {
    let r: GetContainerResponse = unary(
        "/containerd.services.containers.v1.Containers/Get",
        &GetContainerRequest { id: id.into() },
    )?;
    r.container.ok_or_else(|| crate::grpc::Status {
        code: crate::grpc::Code::NotFound,
        message: format!("container {id}"),
    })
}

/// Set (or, with an empty value, clear) labels of one container.
pub fn set_labels(id: &str, values: &[(&str, &str)]) -> GrpcResult<()> {
    let container = Container {
        id: id.into(),
        labels: values
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    let mask = prost_types::FieldMask {
        paths: values.iter().map(|(k, _)| format!("labels.{k}")).collect(),
    };
    unary::<_, crate::api::containerd::services::containers::v1::UpdateContainerResponse>(
        "/containerd.services.containers.v1.Containers/Update",
        &UpdateContainerRequest {
            container: Some(container),
            update_mask: Some(mask),
        },
    )
    .map(|_| ())
}

/// Replace one container's spec (for tasks created later).
pub fn set_spec(id: &str, spec: &serde_json::Value) -> GrpcResult<()> {
    let container = Container {
        id: id.into(),
        spec: Some(crate::api::spec_any(spec)),
        ..Default::default()
    };
    unary::<_, crate::api::containerd::services::containers::v1::UpdateContainerResponse>(
        "/containerd.services.containers.v1.Containers/Update",
        &UpdateContainerRequest {
            container: Some(container),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["spec".into()],
            }),
        },
    )
    .map(|_| ())
}

/// Delete a container record; a missing one is fine.
pub fn delete(id: &str) -> GrpcResult<()> {
    match unary::<_, ()>(
        "/containerd.services.containers.v1.Containers/Delete",
        &DeleteContainerRequest { id: id.into() },
    ) {
        Err(s) if !s.is_not_found() => Err(s),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_valid_containerd_identifiers() {
        let id = container_id("3f2a6a0e-1b7c-4a51-9d3e-2b8f0c1d4e5f", 12, "0");
        assert_eq!(id, "gantry-3f2a6a0e-1b7c-4a51-9d3e-2b8f0c1d4e5f-r12-0");
        let odd = container_id("weird id!!", 1, "holder");
        assert!(valid_id(&odd), "{odd}");
        assert!(!valid_id("a--b"));
    }
}
