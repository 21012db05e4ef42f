//! Runtime events, read from the swarm's tasks: every task whose state
//! changed after `since` is an event of its service's container. Task state
//! is the manager's own record of each replica on every node (the
//! manager's `/events` stream carries container events of its own node
//! only, and no task events), so nothing on a worker goes unseen.

use crate::model::{Task, labels};
use crate::services::{self, now_ms, sleep_ms};
use crate::tasks::instant;
use gantry_sdk::backend::exports::gantry::plugin::driver::{RuntimeAction, RuntimeEvent};
use gantry_sdk::backend::gantry::plugin::types::{Error, Timestamp};
use std::collections::BTreeMap;

/// How often the tasks are read while waiting.
const POLL_MS: u64 = 500;

fn action(t: &Task) -> Option<RuntimeAction> {
    Some(match t.status.state.as_str() {
        "running" => RuntimeAction::Started,
        "complete" | "failed" => RuntimeAction::Exited,
        "rejected" | "shutdown" | "orphaned" => RuntimeAction::Other,
        _ => return None,
    })
}

/// Now on the wall clock, as `(seconds, nanoseconds)`.
fn wall_now() -> (i64, u32) {
    let t = gantry_sdk::clock::now();
    (t.seconds, t.nanoseconds)
}

fn changed_since(cutoff: (i64, u32)) -> Result<Vec<RuntimeEvent>, Error> {
    let svcs = services::labelled(&[labels::WORKLOAD.to_string()])?;
    if svcs.is_empty() {
        return Ok(Vec::new());
    }
    let by_id: BTreeMap<&str, _> = svcs.iter().map(|s| (s.id.as_str(), s)).collect();
    let ids: Vec<String> = svcs.iter().map(|s| s.id.clone()).collect();
    let mut out: Vec<RuntimeEvent> = services::tasks(&ids)?
        .iter()
        .filter(|t| instant(&t.status.timestamp) > cutoff)
        .filter_map(|t| {
            let svc = by_id.get(t.service_id.as_str())?;
            let (seconds, nanoseconds) = instant(&t.status.timestamp);
            Some(RuntimeEvent {
                workload_id: svc.label(labels::WORKLOAD)?.to_string(),
                revision: svc.revision()?,
                container: svc.container().to_string(),
                action: action(t)?,
                exit_code: t.exit_code(),
                at: Timestamp {
                    seconds,
                    nanoseconds,
                },
            })
        })
        .collect();
    out.sort_by_key(|e| (e.at.seconds, e.at.nanoseconds));
    Ok(out)
}

/// Events after `since` (from now when none), waiting at most `wait_ms` for the first.
pub fn watch(since: Option<Timestamp>, wait_ms: u32) -> Result<Vec<RuntimeEvent>, Error> {
    let cutoff = since.map_or_else(wall_now, |t| (t.seconds, t.nanoseconds));
    let deadline = now_ms() + u64::from(wait_ms);
    loop {
        let events = changed_since(cutoff)?;
        if !events.is_empty() || now_ms() >= deadline {
            return Ok(events);
        }
        sleep_ms(POLL_MS.min(deadline.saturating_sub(now_ms()).max(1)));
    }
}
