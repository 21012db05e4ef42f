//! From a request's host name to the namespace and port it reaches.

use crate::bindings::types::Event;
use crate::bindings::types::{
    ContainerStatus, DesiredState, PortProtocol, Workload, WorkloadPhase,
};
use crate::control::ControlPlane;
use gantry_sdk::ingress::PORTS_ANNOTATION;
use http::StatusCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// A container URL's host: the name before the ingress domain, and the
/// port the client wrote, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    /// What stands before `.<ingress-domain>`, lower-case.
    pub name: String,
    /// The port in the `Host`, which picks among the exposed ports.
    pub port: Option<u16>,
    /// The host as the client sent it (for `X-Forwarded-Host`).
    pub host: String,
}

/// Split `host` (`name.domain[:port]`) when it is under `suffix`
/// (`.domain`, lower-case).
pub fn named(host: &str, suffix: &str) -> Option<Named> {
    // An IPv6 literal never ends in the suffix, so splitting at its last
    // colon does no harm.
    let (bare, port) = match host.rsplit_once(':') {
        Some((h, p)) => (h, Some(p.parse().ok()?)),
        None => (host, None),
    };
    let bare = bare.trim_end_matches('.').to_ascii_lowercase();
    let name = bare.strip_suffix(suffix)?;
    if name.is_empty() {
        return None;
    }
    Some(Named {
        name: name.to_string(),
        port,
        host: host.to_string(),
    })
}

/// Where a request goes: a port inside the network namespace of a process
/// of the workload (every container of a workload shares one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The workload's id.
    pub workload: String,
    /// A process in the workload's network namespace.
    pub pid: u32,
    /// The port it listens on inside.
    pub port: u16,
}

/// Why a request reaches no workload: the status and a short reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// 404, 503, 502 or 500.
    pub status: StatusCode,
    /// Says why, for the host's log only: a container URL is open to anyone,
    /// so what the client reads names no workload, port or cause.
    pub detail: String,
}

impl Refusal {
    fn new(status: StatusCode, detail: String) -> Refusal {
        Refusal { status, detail }
    }
}

/// What a client of a container URL reads for `status`: the same words
/// whatever lies behind the address (a workload with no port reads as none).
pub fn public_reason(status: StatusCode) -> &'static str {
    match status {
        StatusCode::NOT_FOUND => "no workload answers at this address",
        StatusCode::SERVICE_UNAVAILABLE => "the workload at this address is not running",
        StatusCode::BAD_GATEWAY => "the workload at this address does not answer",
        StatusCode::BAD_REQUEST => "bad request",
        _ => "internal error",
    }
}

/// Workload records by the names they answer to, read once and kept until
/// the control plane announces a change to that workload: a request does
/// not read the state store.
pub struct Routes {
    control: Arc<ControlPlane>,
    known: Mutex<Known>,
}

struct Known {
    by_name: HashMap<String, Arc<Workload>>,
    /// What has happened since the cache was last brought up to date.
    events: broadcast::Receiver<Event>,
}

/// Past this many names the cache starts over (names of workloads long
/// gone must not accumulate).
const MAX_NAMES: usize = 4096;

impl Routes {
    /// Routes over `control`'s workloads.
    pub fn new(control: Arc<ControlPlane>) -> Routes {
        let events = control.subscribe();
        Routes {
            control,
            known: Mutex::new(Known {
                by_name: HashMap::new(),
                events,
            }),
        }
    }

    /// The target of `named`, or why there is none.
    pub async fn resolve(&self, named: &Named) -> Result<Target, Refusal> {
        if let Some(w) = self.cached(&named.name) {
            return target(&w, named);
        }
        let w = self
            .control
            .ingress_target(&named.name)
            .await
            .map_err(|e| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
            .ok_or_else(|| {
                Refusal::new(
                    StatusCode::NOT_FOUND,
                    format!("no workload answers to {}", named.host),
                )
            })?;
        let w = Arc::new(w);
        let mut known = self.lock();
        known.catch_up();
        if known.by_name.len() >= MAX_NAMES {
            known.by_name.clear();
        }
        known.by_name.insert(named.name.clone(), w.clone());
        target(&w, named)
    }

    /// Read `name` from the store next time (its upstream did not answer).
    pub fn forget(&self, name: &str) {
        self.lock().by_name.remove(name);
    }

    fn cached(&self, name: &str) -> Option<Arc<Workload>> {
        let mut known = self.lock();
        known.catch_up();
        known.by_name.get(name).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Known {
    /// Drop what changed since last time (everything, if events were missed).
    fn catch_up(&mut self) {
        loop {
            match self.events.try_recv() {
                Ok(e) => self.by_name.retain(|_, w| w.id != e.workload_id),
                Err(broadcast::error::TryRecvError::Lagged(_)) => self.by_name.clear(),
                Err(_) => return,
            }
        }
    }
}

/// The TCP ports the ingress may reach: those the spec exposes, narrowed
/// (and ordered) by the ports annotation when there is one.
pub fn reachable_ports(w: &Workload) -> Vec<u16> {
    let exposed: Vec<u16> = w
        .spec
        .containers
        .iter()
        .flat_map(|c| &c.ports)
        .filter(|p| p.protocol == PortProtocol::Tcp)
        .map(|p| p.container_port)
        .collect();
    match w.annotations.iter().find(|(k, _)| k == PORTS_ANNOTATION) {
        None => exposed,
        Some((_, listed)) => listed
            .split(',')
            .filter_map(|p| p.trim().parse().ok())
            .filter(|p| exposed.contains(p))
            .collect(),
    }
}

/// A process in the workload's (shared) network namespace, while the
/// workload should and does run.
pub fn running_pid(w: &Workload) -> Option<u32> {
    let running = w.desired == DesiredState::Running
        && !matches!(
            w.phase,
            WorkloadPhase::Deleting | WorkloadPhase::Stopped | WorkloadPhase::Paused
        );
    w.containers
        .iter()
        .filter(|c| c.status == ContainerStatus::Running)
        .find_map(|c| c.pid)
        .filter(|_| running)
}

fn target(w: &Workload, named: &Named) -> Result<Target, Refusal> {
    let ports = reachable_ports(w);
    let Some(&first) = ports.first() else {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            format!("workload {} exposes no TCP port", w.name),
        ));
    };
    let port = named.port.filter(|p| ports.contains(p)).unwrap_or(first);
    match running_pid(w) {
        Some(pid) => Ok(Target {
            workload: w.id.clone(),
            pid,
            port,
        }),
        None => Err(Refusal::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "workload {} is not running ({})",
                w.name,
                phase_name(w.phase)
            ),
        )),
    }
}

fn phase_name(p: WorkloadPhase) -> &'static str {
    match p {
        WorkloadPhase::Deploying => "deploying",
        WorkloadPhase::Deployed => "deployed",
        WorkloadPhase::Stopped => "stopped",
        WorkloadPhase::Paused => "paused",
        WorkloadPhase::Failed => "failed",
        WorkloadPhase::Deleting => "deleting",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_under_the_domain_are_named() {
        let s = ".ingress.test";
        let n = named("App.West.Ingress.Test:8080", s).expect("named");
        assert_eq!(n.name, "app.west");
        assert_eq!(n.port, Some(8080));
        assert_eq!(n.host, "App.West.Ingress.Test:8080");
        assert_eq!(
            named("x.ingress.test.", s).map(|n| n.name),
            Some("x".into())
        );
        assert_eq!(named("ingress.test", s), None);
        assert_eq!(named("x.other.test", s), None);
        assert_eq!(named("x.ingress.test:http", s), None);
        assert_eq!(named("[::1]:8080", s), None);
    }
}
