//! Runtime events from containerd's event stream (`Events.Subscribe`,
//! `/tasks/*` topics of the plugin's namespace).
//!
//! containerd neither replays events nor takes a `since`: what happened
//! between two `watch` calls is recovered from one `Tasks.List` (exits after
//! `since`), never by polling each container.

use crate::api::containerd::events::{TaskExit, TaskOom, TaskPaused, TaskResumed, TaskStart};
use crate::api::containerd::services::events::v1::SubscribeRequest;
use crate::api::containerd::types::Envelope;
use crate::containers::{self, Member, labels};
use crate::grpc::{Call, namespace};
use gantry_sdk::backend::exports::gantry::plugin::driver::{RuntimeAction, RuntimeEvent};
use gantry_sdk::backend::gantry::plugin::logging::{Level, log};
use gantry_sdk::backend::gantry::plugin::types::{Error, Timestamp};
use gantry_sdk::wasip2::clocks::monotonic_clock;
use prost::Message;
use std::collections::HashMap;

/// How long to keep collecting once a first event arrived.
const BATCH_NS: u64 = 50_000_000;

/// What one envelope says: container id, action, exit code, time.
fn decode(e: &Envelope) -> Option<(String, RuntimeAction, Option<i32>, Option<Timestamp>)> {
    let any = e.event.as_ref()?;
    let v = any.value.as_slice();
    let at = crate::clock::timestamp(e.timestamp.as_ref());
    match e.topic.as_str() {
        "/tasks/exit" => {
            let x = TaskExit::decode(v).ok()?;
            // An exec'd process exiting is not the container exiting.
            if !x.id.is_empty() && x.id != x.container_id {
                return None;
            }
            let code = i32::try_from(x.exit_status).unwrap_or(i32::MAX);
            let at = crate::clock::timestamp(x.exited_at.as_ref()).or(at);
            Some((x.container_id, RuntimeAction::Exited, Some(code), at))
        }
        "/tasks/oom" => Some((
            TaskOom::decode(v).ok()?.container_id,
            RuntimeAction::OomKilled,
            None,
            at,
        )),
        "/tasks/start" => Some((
            TaskStart::decode(v).ok()?.container_id,
            RuntimeAction::Started,
            None,
            at,
        )),
        "/tasks/paused" => Some((
            TaskPaused::decode(v).ok()?.container_id,
            RuntimeAction::Paused,
            None,
            at,
        )),
        "/tasks/resumed" => Some((
            TaskResumed::decode(v).ok()?.container_id,
            RuntimeAction::Resumed,
            None,
            at,
        )),
        _ => None,
    }
}

fn event_of(
    m: &Member,
    action: RuntimeAction,
    exit_code: Option<i32>,
    at: Timestamp,
) -> Option<RuntimeEvent> {
    if m.is_holder() {
        return None;
    }
    Some(RuntimeEvent {
        workload_id: m.label(labels::WORKLOAD)?.to_string(),
        revision: m.label(labels::REVISION)?.parse().ok()?,
        container: m.name().to_string(),
        action,
        exit_code,
        at,
    })
}

fn after(t: Timestamp, since: Timestamp) -> bool {
    (t.seconds, t.nanoseconds) > (since.seconds, since.nanoseconds)
}

/// Exits after `since` that the stream could not show (containerd keeps no history).
fn missed_exits(since: Timestamp) -> Result<Vec<RuntimeEvent>, Error> {
    let mut out = Vec::new();
    for p in crate::task::list()? {
        if p.status != crate::task::status::STOPPED {
            continue;
        }
        let Some(at) = crate::clock::timestamp(p.exited_at.as_ref()) else {
            continue;
        };
        if !after(at, since) {
            continue;
        }
        // Looked up only for what exited in the window (usually nothing),
        // not by listing every container on each `watch`.
        let m = match containers::get(&p.container_id) {
            Ok(c) => Member::from(c),
            Err(s) if s.is_not_found() => continue,
            Err(s) => return Err(s.into()),
        };
        let code = i32::try_from(p.exit_status).unwrap_or(i32::MAX);
        out.extend(event_of(&m, RuntimeAction::Exited, Some(code), at));
    }
    Ok(out)
}

/// Runtime events after `since`, waiting at most `wait_ms` for the first one.
pub fn watch(since: Option<Timestamp>, wait_ms: u32) -> Result<Vec<RuntimeEvent>, Error> {
    let filter = format!("namespace=={},topic~=\"^/tasks/\"", namespace());
    let request = SubscribeRequest {
        filters: vec![filter],
    };
    let wait_ns = u64::from(wait_ms) * 1_000_000;
    let deadline = monotonic_clock::now().saturating_add(wait_ns);
    // Subscribe first (headers arrive only with the first event), then look
    // back: what happens in between is seen twice at worst, never lost.
    let pending =
        crate::grpc::start_call("/containerd.services.events.v1.Events/Subscribe", &request)?;
    // Where the look-backs start: the last event the host saw, or now.
    let look_back = since.unwrap_or_else(gantry_sdk::clock::now);
    let mut events = match since {
        Some(s) => missed_exits(s)?,
        None => Vec::new(),
    };
    let left = deadline.saturating_sub(monotonic_clock::now());
    let wait_first = if events.is_empty() { left } else { 0 };
    let Some(mut call) = Call::wait(pending, Some(wait_first))? else {
        return Ok(events);
    };
    let mut by_id: HashMap<String, Option<Member>> = HashMap::new();
    let mut next_wait = wait_first.max(BATCH_NS);
    while let Some(env) = call.next::<Envelope>(next_wait)? {
        next_wait = BATCH_NS;
        let Some((id, action, code, at)) = decode(&env) else {
            continue;
        };
        let at = at.unwrap_or_else(gantry_sdk::clock::now);
        if since.is_some_and(|s| !after(at, s)) {
            continue;
        }
        let member = by_id
            .entry(id.clone())
            .or_insert_with(|| containers::get(&id).ok().map(Member::from));
        let Some(m) = member else { continue };
        if action == RuntimeAction::OomKilled {
            // containerd does not remember an OOM kill; inspect reads this label.
            if let Err(e) = containers::set_labels(&m.id, &[(labels::OOM, "1")]) {
                log(Level::Warn, &format!("marking {} OOM-killed: {e:?}", m.id));
            }
        }
        events.extend(event_of(m, action, code, at));
    }
    // The subscription takes effect when containerd gets to it, which may
    // be after the look-back above ran: an exit in between reaches neither.
    // Looking back once more at the end closes that gap (a task that exited
    // stays listed, stopped, until it is deleted).
    for e in missed_exits(look_back)? {
        let seen = events.iter().any(|x| {
            x.action == RuntimeAction::Exited
                && x.workload_id == e.workload_id
                && x.container == e.container
                && (x.at.seconds, x.at.nanoseconds) == (e.at.seconds, e.at.nanoseconds)
        });
        if !seen {
            events.push(e);
        }
    }
    events.sort_by_key(|e| (e.at.seconds, e.at.nanoseconds));
    Ok(events)
}
