//! Runtime events from libpod's `/events` stream, bounded by `until` so a
//! call never outlives its wait.

use crate::client::{enc, error, open};
use crate::rfc3339;
use crate::spec::labels;
use gantry_sdk::backend::exports::gantry::plugin::driver::{RuntimeAction, RuntimeEvent};
use gantry_sdk::backend::gantry::plugin::types::{Error, Timestamp};
use gantry_sdk::client::Line;
use gantry_sdk::clock::now;
use gantry_sdk::wasip2::http::types::Method;
use serde::Deserialize;
use std::collections::HashMap;

/// One libpod event (its Docker-shaped JSON form).
#[derive(Debug, Deserialize)]
struct Event {
    #[serde(rename = "Type", default)]
    kind: String,
    #[serde(rename = "Action", default)]
    action: String,
    #[serde(rename = "Actor", default)]
    actor: Actor,
    #[serde(rename = "timeNano", default)]
    time_nano: i64,
}

#[derive(Debug, Default, Deserialize)]
struct Actor {
    #[serde(rename = "Attributes", default)]
    attributes: HashMap<String, String>,
}

fn nanos(t: &Timestamp) -> i128 {
    i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanoseconds)
}

/// The gantry event a libpod event is, if it is about a member of a
/// workload (never an infra container, which has no `io.gantry.container`)
/// and says something the host acts on.
fn event(e: &Event) -> Option<RuntimeEvent> {
    if e.kind != "container" {
        return None;
    }
    let attrs = &e.actor.attributes;
    let container = attrs.get(labels::CONTAINER)?.clone();
    let action = match e.action.as_str() {
        "create" => RuntimeAction::Created,
        "start" => RuntimeAction::Started,
        "died" => RuntimeAction::Exited,
        "oom" => RuntimeAction::OomKilled,
        "pause" => RuntimeAction::Paused,
        "unpause" => RuntimeAction::Resumed,
        "remove" => RuntimeAction::Removed,
        "stop" | "kill" | "restart" | "rename" => RuntimeAction::Other,
        // init, mount, cleanup, sync, attach, exec...: nothing changed for the host.
        _ => return None,
    };
    Some(RuntimeEvent {
        workload_id: attrs.get(labels::WORKLOAD)?.clone(),
        revision: attrs.get(labels::REVISION)?.parse().ok()?,
        container,
        // libpod puts `containerExitCode` on every event; it means something on `died` only.
        exit_code: (action == RuntimeAction::Exited)
            .then(|| attrs.get("containerExitCode")?.parse().ok())
            .flatten(),
        action,
        at: Timestamp {
            seconds: e.time_nano.div_euclid(1_000_000_000),
            nanoseconds: u32::try_from(e.time_nano.rem_euclid(1_000_000_000)).unwrap_or(0),
        },
    })
}

/// `driver.watch`: events after `since` (or from now), waiting at most
/// `wait-ms` for the first one, then what follows closely.
pub fn watch(since: Option<Timestamp>, wait_ms: u32) -> Result<Vec<RuntimeEvent>, Error> {
    let now = now();
    // libpod's `since` is inclusive: one nanosecond past the last event seen.
    let from = since.map_or(nanos(&now), |t| nanos(&t) + 1);
    let from_ts = Timestamp {
        seconds: i64::try_from(from.div_euclid(1_000_000_000)).unwrap_or(i64::MAX),
        nanoseconds: u32::try_from(from.rem_euclid(1_000_000_000)).unwrap_or(0),
    };
    let until = Timestamp {
        seconds: now.seconds + i64::from(wait_ms.div_ceil(1000).max(1)),
        nanoseconds: now.nanoseconds,
    };
    let filters = serde_json::json!({"type": ["container"]}).to_string();
    let mut stream = open(
        Method::Get,
        &format!(
            "/events?stream=true&since={}&until={}&filters={}",
            enc(&rfc3339(&from_ts)),
            enc(&rfc3339(&until)),
            enc(&filters)
        ),
    )?;
    if stream.status != 200 {
        let r = stream.read_all()?;
        return Err(error(&r, "events"));
    }
    let mut events = Vec::new();
    let mut wait_ns = u64::from(wait_ms) * 1_000_000;
    while let Line::Text(line) = stream.next_line(wait_ns)? {
        let Ok(e) = serde_json::from_slice::<Event>(&line) else {
            continue;
        };
        if i128::from(e.time_nano) < from {
            continue;
        }
        if let Some(ev) = event(&e) {
            events.push(ev);
            // Collect what follows closely (a stop's died and cleanup), then answer.
            wait_ns = 50_000_000;
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_died_event_carries_its_exit_code_and_infra_events_are_dropped() {
        let line = r#"{"status":"died","Type":"container","Action":"died","Actor":{"ID":"x","Attributes":{"containerExitCode":"3","io.gantry.workload":"w","io.gantry.revision":"2","io.gantry.container":"main"}},"time":1,"timeNano":1500000000}"#;
        let e: Event = serde_json::from_str(line).expect("parses");
        let ev = event(&e).expect("an event");
        assert_eq!(ev.action, RuntimeAction::Exited);
        assert_eq!((ev.exit_code, ev.revision), (Some(3), 2));
        assert_eq!((ev.at.seconds, ev.at.nanoseconds), (1, 500_000_000));
        let infra = line.replace(r#","io.gantry.container":"main""#, "");
        let e: Event = serde_json::from_str(&infra).expect("parses");
        assert!(event(&e).is_none());
    }
}
