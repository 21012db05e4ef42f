//! Writing the containers thing's twin on `e/<tenant>/<thingId>`.
//!
//! Kanto sends Ditto twin *commands* (`things/twin/commands/modify|delete`)
//! for a Hono/Ditto cloud to apply, and so does gantry by default. With the
//! setting `twin-messages = "events"` it sends the *events* Ditto would emit
//! for them instead (`things/twin/events/created|modified|deleted`), for
//! subscribers that read the device's broker with no Ditto in between, the
//! way Kanto's own integration tests read Ditto: a feature written for the
//! first time is `created`, any later write `modified`, a removal `deleted`,
//! a merge patch (for a map too big for one message) `merged`.

use crate::thing::{self, Device};
use gantry_sdk::mqtt_frontend::gantry::plugin::{config as host_config, control};
use serde_json::{Map, Value, json};
use std::cell::{Cell, RefCell};
use std::collections::HashSet;

/// What twin changes are sent as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// Ditto twin commands, as Kanto sends them (the default).
    Commands,
    /// The twin events Ditto emits for those commands.
    Events,
}

thread_local! {
    static FORM: Cell<Option<Form>> = const { Cell::new(None) };
    /// Features written to the twin and not deleted since (`/features/<id>`).
    static FEATURES: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

/// The form the `twin-messages` setting asks for, or why it is not one.
pub fn configured_form() -> Result<Form, String> {
    match host_config::get("twin-messages").as_deref() {
        None | Some("") | Some("commands") => Ok(Form::Commands),
        Some("events") => Ok(Form::Events),
        Some(other) => Err(format!(
            "twin-messages `{other}` is not one of commands, events; sending commands"
        )),
    }
}

fn form() -> Form {
    FORM.with(|f| {
        f.get().unwrap_or_else(|| {
            let form = configured_form().unwrap_or(Form::Commands);
            f.set(Some(form));
            form
        })
    })
}

/// `/features/<id>` when `path` is a whole feature.
fn feature_of(path: &str) -> Option<&str> {
    let id = path.strip_prefix("/features/")?;
    (!id.is_empty() && !id.contains('/')).then_some(path)
}

/// Set `path` of the containers thing to `value`.
pub fn put(device: &Device, path: &str, value: Value) {
    let fresh =
        feature_of(path).is_some_and(|f| FEATURES.with(|s| s.borrow_mut().insert(f.into())));
    let action = match form() {
        Form::Commands => "commands/modify",
        Form::Events if fresh => "events/created",
        Form::Events => "events/modified",
    };
    send(device, action, path, Some(value));
}

/// Merge `patch` into `path` (a JSON merge patch: `null` removes a key).
pub fn merge(device: &Device, path: &str, patch: Value) {
    let action = match form() {
        Form::Commands => "commands/merge",
        Form::Events => "events/merged",
    };
    send(device, action, path, Some(patch));
}

/// Remove `path` (a whole feature) from the containers thing.
pub fn delete(device: &Device, path: &str) {
    if let Some(f) = feature_of(path) {
        FEATURES.with(|s| s.borrow_mut().remove(f));
    }
    let action = match form() {
        Form::Commands => "commands/delete",
        Form::Events => "events/deleted",
    };
    send(device, action, path, None);
}

/// Features written before and not among `now` (a whole twin about to be
/// written again): containers removed while the broker was away.
pub fn gone_since(now: &HashSet<String>) -> Vec<String> {
    FEATURES.with(|s| s.borrow().difference(now).cloned().collect())
}

fn send(device: &Device, action: &str, path: &str, value: Option<Value>) {
    let prefix = thing::ditto_prefix(&device.thing_id());
    let mut env = Map::new();
    env.insert(
        "topic".into(),
        format!("{prefix}/things/twin/{action}").into(),
    );
    let headers = if action.ends_with("merge") || action.ends_with("merged") {
        json!({"response-required": false, "content-type": "application/merge-patch+json"})
    } else {
        json!({"response-required": false})
    };
    env.insert("headers".into(), headers);
    env.insert("path".into(), path.into());
    if let Some(v) = value {
        env.insert("value".into(), v);
    }
    if form() == Form::Events {
        let now = control::now();
        if let Some(t) = gantry_sdk::clock::rfc3339(now.seconds, now.nanoseconds) {
            env.insert("timestamp".into(), t.into());
        }
    }
    crate::publish(&device.event_topic(), &Value::Object(env));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_features_are_created() {
        assert_eq!(
            feature_of("/features/Container:a"),
            Some("/features/Container:a")
        );
        assert_eq!(
            feature_of("/features/Container:a/properties/status/state"),
            None
        );
        assert_eq!(feature_of("/features/"), None);
        assert_eq!(feature_of("/attributes"), None);
    }
}
