//! Replicas the manager leaves waiting with no reason given.
//!
//! A service with replicas whose newest wanted task stays `new` or
//! `pending` without an error, or that has no task on its way at all, is
//! waiting on the manager alone: no node has it yet, and no constraint or
//! shortage is named. Swarm's scheduler can drop such a task from its
//! queue until something else happens to the service (moby/moby#53722,
//! #32999), and its maintainers' remedy is a forced update, which replaces
//! the task. A wait that polls a service's tasks hands each poll to
//! [`Stalls::check`]; a service seen standing still that way for
//! `stall-nudge-ms` (20 s) is force-updated, once per wait, and the plugin
//! logs it. Tasks a node holds (`assigned` onwards: pulling an image may
//! take minutes) and tasks the swarm says why it cannot place are left to
//! the swarm.

use crate::model::{Service, Task};
use crate::services::{forced, now_ms, update};
use gantry_sdk::backend::gantry::plugin::logging::{Level, log};
use gantry_sdk::backend::gantry::plugin::types::Error;
use std::collections::{HashMap, HashSet};

/// How long a service may wait on the manager alone before it is nudged
/// (`stall-nudge-ms`, 20 s; 0 never nudges).
fn nudge_after_ms() -> u64 {
    crate::service::setting("stall-nudge-ms", 20_000)
}

/// Where each service of one wait stands, and which were nudged.
#[derive(Debug)]
pub struct Stalls {
    after_ms: u64,
    /// Per service: what it waits on (its newest wanted task and that
    /// task's state, or nothing) and since when.
    seen: HashMap<String, (String, u64)>,
    nudged: HashSet<String>,
}

impl Default for Stalls {
    fn default() -> Self {
        Stalls {
            after_ms: nudge_after_ms(),
            seen: HashMap::new(),
            nudged: HashSet::new(),
        }
    }
}

/// What `svc` waits on when it waits on the manager alone: its newest
/// wanted task, `new` or `pending` with no error, or no wanted task at all.
fn waiting_on_manager(svc: &Service, mine: &[&Task]) -> Option<String> {
    if svc.scale() == 0 {
        return None;
    }
    let newest = mine
        .iter()
        .filter(|t| t.wanted())
        .max_by_key(|t| crate::tasks::instant(&t.created_at));
    match newest {
        // A replacement in its restart delay is wanted `ready`: on its way.
        None if mine.iter().all(|t| t.ended()) => Some("no task".into()),
        None => None,
        Some(t)
            if matches!(t.status.state.as_str(), "new" | "pending") && t.status.err.is_none() =>
        {
            Some(format!("task {} {}", t.id, t.status.state))
        }
        Some(_) => None,
    }
}

impl Stalls {
    /// Note where `svc` stands by its tasks `mine`; force-update it if it
    /// has waited on the manager alone, unchanged, for too long.
    pub fn check(&mut self, svc: &Service, mine: &[&Task]) -> Result<(), Error> {
        let Some(mark) = waiting_on_manager(svc, mine) else {
            self.seen.remove(&svc.id);
            return Ok(());
        };
        let now = now_ms();
        let since = match self.seen.get(&svc.id) {
            Some((m, since)) if *m == mark => *since,
            _ => {
                self.seen.insert(svc.id.clone(), (mark, now));
                return Ok(());
            }
        };
        if self.after_ms == 0
            || now.saturating_sub(since) < self.after_ms
            || self.nudged.contains(&svc.id)
        {
            return Ok(());
        }
        log(
            Level::Warn,
            &format!(
                "service {} has waited {} ms on the manager ({mark}): forcing an update to replace its task",
                svc.name(),
                now - since
            ),
        );
        update(svc, &forced(svc.spec.clone()), "")?;
        self.nudged.insert(svc.id.clone());
        self.seen.remove(&svc.id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TaskStatus;
    use serde_json::json;

    fn service(scale: u64) -> Service {
        Service {
            id: "svc".into(),
            spec: json!({"Mode": {"Replicated": {"Replicas": scale}}}),
            ..Service::default()
        }
    }

    fn task(id: &str, desired: &str, state: &str, err: Option<&str>) -> Task {
        Task {
            id: id.into(),
            service_id: "svc".into(),
            desired_state: desired.into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            status: TaskStatus {
                state: state.into(),
                err: err.map(str::to_string),
                ..TaskStatus::default()
            },
            ..Task::default()
        }
    }

    #[test]
    fn only_a_replica_the_manager_holds_without_a_reason_is_waiting_on_it() {
        let none: Vec<&Task> = Vec::new();
        assert_eq!(
            waiting_on_manager(&service(1), &none).as_deref(),
            Some("no task")
        );
        assert_eq!(waiting_on_manager(&service(0), &none), None);
        let pending = task("t1", "running", "pending", None);
        assert_eq!(
            waiting_on_manager(&service(1), &[&pending]).as_deref(),
            Some("task t1 pending")
        );
        let unplaceable = task(
            "t1",
            "running",
            "pending",
            Some("no suitable node (insufficient resources on 3 nodes)"),
        );
        assert_eq!(waiting_on_manager(&service(1), &[&unplaceable]), None);
        let on_a_node = task("t1", "running", "preparing", None);
        assert_eq!(waiting_on_manager(&service(1), &[&on_a_node]), None);
        let old = task("t0", "shutdown", "shutdown", None);
        assert_eq!(
            waiting_on_manager(&service(1), &[&old]).as_deref(),
            Some("no task")
        );
        let delayed = task("t2", "ready", "ready", None);
        assert_eq!(waiting_on_manager(&service(1), &[&old, &delayed]), None);
    }
}
