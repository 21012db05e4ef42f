//! Runtime events from the engine's `/events` stream.

use crate::engine::{enc, error, open};
use crate::mapping::labels;
use bollard_stubs::models::EventMessage;
use gantry_sdk::backend::exports::gantry::plugin::driver::{RuntimeAction, RuntimeEvent};
use gantry_sdk::backend::gantry::plugin::types::{Error, Timestamp};
use gantry_sdk::client::Line;
use gantry_sdk::clock::now;
use gantry_sdk::wasip2::http::types::Method;
use serde_json::json;

pub(crate) fn event(e: &EventMessage) -> Option<RuntimeEvent> {
    let attrs = e.actor.as_ref()?.attributes.as_ref()?;
    if attrs.get(labels::ROLE).map(String::as_str) == Some(labels::HOLDER) {
        return None;
    }
    let action = e.action.as_deref().unwrap_or("");
    let kind = match action.split(':').next().unwrap_or("") {
        "create" => RuntimeAction::Created,
        "start" => RuntimeAction::Started,
        "die" => RuntimeAction::Exited,
        "oom" => RuntimeAction::OomKilled,
        "pause" => RuntimeAction::Paused,
        "unpause" => RuntimeAction::Resumed,
        "destroy" => RuntimeAction::Removed,
        _ => RuntimeAction::Other,
    };
    let nanos = e.time_nano.unwrap_or(0);
    Some(RuntimeEvent {
        workload_id: attrs.get(labels::WORKLOAD)?.clone(),
        revision: attrs.get(labels::REVISION)?.parse().ok()?,
        container: attrs.get(labels::CONTAINER).cloned().unwrap_or_default(),
        action: kind,
        exit_code: attrs.get("exitCode").and_then(|c| c.parse().ok()),
        at: Timestamp {
            seconds: nanos.div_euclid(1_000_000_000),
            nanoseconds: u32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or(0),
        },
    })
}

pub(crate) fn watch(since: Option<Timestamp>, wait_ms: u32) -> Result<Vec<RuntimeEvent>, Error> {
    let now = now();
    // `since` is inclusive in the Engine: step one nanosecond past the last event seen.
    let since = since.map_or(format!("{}.{:09}", now.seconds, now.nanoseconds), |t| {
        let n = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanoseconds) + 1;
        format!(
            "{}.{:09}",
            n.div_euclid(1_000_000_000),
            n.rem_euclid(1_000_000_000)
        )
    });
    let until_secs = now.seconds + i64::from(wait_ms.div_ceil(1000).max(1));
    let filters = json!({"type": ["container"], "label": [labels::WORKLOAD]});
    let mut stream = open(
        Method::Get,
        &format!(
            "/events?since={since}&until={until_secs}&filters={}",
            enc(&filters.to_string())
        ),
    )?;
    if stream.status != 200 {
        let r = stream.read_all()?;
        return Err(error(&r, "events"));
    }
    let mut events = Vec::new();
    let mut wait_ns = u64::from(wait_ms) * 1_000_000;
    while let Line::Text(line) = stream.next_line(wait_ns)? {
        if let Some(ev) = serde_json::from_slice::<EventMessage>(&line)
            .ok()
            .as_ref()
            .and_then(event)
        {
            events.push(ev);
            // Collect what follows closely, then answer.
            wait_ns = 50_000_000;
        }
    }
    Ok(events)
}
