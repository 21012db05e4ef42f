//! Long-running operations. ARM clients poll the URL in `Azure-AsyncOperation`
//! until its `status` is terminal. The operation id names what was asked
//! (`<kind>.<workload id>.<revision>`), and its status is derived from the
//! workload's observed state each time it is polled, so operations survive
//! plugin instance recycling and host restarts without state of their own.

use crate::view::provisioning_state;
use gantry_sdk::http_frontend::gantry::plugin::types::{Error, Workload, WorkloadPhase};

/// What a long-running operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// CreateOrUpdate (PUT).
    Put,
    /// Delete.
    Delete,
    /// Start.
    Start,
    /// Restart.
    Restart,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Put => "put",
            Kind::Delete => "delete",
            Kind::Start => "start",
            Kind::Restart => "restart",
        }
    }
}

/// A long-running operation on one workload revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// What it does.
    pub kind: Kind,
    /// The workload.
    pub workload: String,
    /// The revision it concerns (the one a PUT produced).
    pub revision: u32,
}

/// Where an operation stands: ARM's status and, when it failed, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// `InProgress`, `Succeeded`, `Failed` or `Canceled`.
    pub status: &'static str,
    /// `(code, message)` for `Failed` and `Canceled`.
    pub error: Option<(String, String)>,
}

impl Status {
    fn of(status: &'static str) -> Self {
        Self {
            status,
            error: None,
        }
    }

    fn failed(status: &'static str, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            error: Some((code.to_string(), message.into())),
        }
    }
}

impl Operation {
    /// The operation's id, as it appears in its URL.
    pub fn id(&self) -> String {
        format!("{}.{}.{}", self.kind.as_str(), self.workload, self.revision)
    }

    /// Read an id back; `None` for ids this frontend did not hand out.
    pub fn parse(id: &str) -> Option<Self> {
        let mut parts = id.splitn(3, '.');
        let kind = match parts.next()? {
            "put" => Kind::Put,
            "delete" => Kind::Delete,
            "start" => Kind::Start,
            "restart" => Kind::Restart,
            _ => return None,
        };
        let workload = parts.next()?.to_string();
        let revision = parts.next()?.parse().ok()?;
        let uuid_like =
            !workload.is_empty() && workload.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
        uuid_like.then_some(Self {
            kind,
            workload,
            revision,
        })
    }

    /// The operation's status, given what `control.get` answers for its workload now.
    pub fn status(&self, now: Result<&Workload, &Error>) -> Result<Status, Error> {
        let w = match (self.kind, now) {
            (Kind::Delete, Err(Error::NotFound(_))) => return Ok(Status::of("Succeeded")),
            (Kind::Delete, Ok(_)) => return Ok(Status::of("InProgress")),
            (_, Err(Error::NotFound(_))) => {
                return Ok(Status::failed(
                    "Canceled",
                    "ResourceDeleted",
                    "The container group was deleted before the operation completed.",
                ));
            }
            (_, Err(e)) => return Err(e.clone()),
            (_, Ok(w)) => w,
        };
        let failure = || {
            Status::failed(
                "Failed",
                "ContainerGroupDeploymentFailed",
                w.message
                    .clone()
                    .unwrap_or_else(|| "the container group failed".into()),
            )
        };
        Ok(match self.kind {
            Kind::Put if w.revision > self.revision => Status::of("Succeeded"),
            Kind::Put => match provisioning_state(w) {
                "Creating" => Status::of("InProgress"),
                "Failed" => failure(),
                _ => Status::of("Succeeded"),
            },
            Kind::Start | Kind::Restart => match w.phase {
                WorkloadPhase::Deploying => Status::of("InProgress"),
                WorkloadPhase::Failed => failure(),
                WorkloadPhase::Stopped | WorkloadPhase::Deleting => Status::failed(
                    "Canceled",
                    "OperationCanceled",
                    "The container group was stopped before it started.",
                ),
                WorkloadPhase::Deployed | WorkloadPhase::Paused => Status::of("Succeeded"),
            },
            Kind::Delete => Status::of("InProgress"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_strangers_are_refused() {
        let op = Operation {
            kind: Kind::Restart,
            workload: "0f8c2f5e-93c1-4a8e-9d0a-5f4f6a4c7b21".into(),
            revision: 3,
        };
        assert_eq!(Operation::parse(&op.id()), Some(op));
        assert_eq!(Operation::parse("reboot.abc.1"), None);
        assert_eq!(Operation::parse("put.../etc.1"), None);
        assert_eq!(Operation::parse("put.abc"), None);
    }

    #[test]
    fn delete_succeeds_once_the_workload_is_gone() {
        let op = Operation {
            kind: Kind::Delete,
            workload: "ab".into(),
            revision: 0,
        };
        let gone = Error::NotFound("workload ab".into());
        assert_eq!(
            op.status(Err(&gone)).ok().map(|s| s.status),
            Some("Succeeded")
        );
    }
}
