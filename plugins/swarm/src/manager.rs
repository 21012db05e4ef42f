//! The swarm's managers: the Engine API (1.41, what Debian's dockerd speaks)
//! through the endpoints the host grants, with failover.
//!
//! Config key `managers` lists grant names separated by `,` (default: the
//! `endpoint` key, else `manager`). Every call goes to the manager that
//! answered last; one that cannot be reached, or that answers it is no
//! manager or has no leader (a follower cut off from the quorum), is passed
//! over for the next. Followers forward to the leader, so any manager that
//! is part of the quorum serves every call.

use gantry_sdk::backend::gantry::plugin::config;
use gantry_sdk::backend::gantry::plugin::types::{Error, InvalidInput};
use gantry_sdk::client::Endpoint;
pub use gantry_sdk::client::{BodyStream, Response, enc};
use gantry_sdk::wasip2::http::types::Method;
use std::cell::Cell;

/// The Engine API version spoken: swarm services as Docker 20.10 has them.
const API: &str = "/v1.41";

thread_local! {
    // Which manager answered last: a hint kept while the instance lives.
    static LAST_GOOD: Cell<usize> = const { Cell::new(0) };
}

/// The managers' grant names, in the order configured.
pub fn managers() -> Vec<String> {
    let listed = config::get("managers")
        .or_else(|| config::get("endpoint"))
        .unwrap_or_else(|| "manager".to_string());
    listed
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Why `r` says this manager cannot serve the swarm now (no manager, no
/// leader, cut off from the quorum); `None` when it served.
fn not_serving(r: &Response) -> Option<String> {
    let msg = r.message();
    let lower = msg.to_ascii_lowercase();
    let refused = r.status == 503
        || (r.status == 500
            && (lower.contains("leader")
                || lower.contains("not a swarm manager")
                || lower.contains("deadline exceeded")));
    refused.then_some(msg)
}

/// Send to the managers in turn, from the last that answered, until one
/// serves. `refusal` says why an answer is a manager refusing to serve.
fn each_manager<T>(
    mut attempt: impl FnMut(&Endpoint) -> Result<T, Error>,
    refusal: impl Fn(&T) -> Option<String>,
) -> Result<T, Error> {
    let all = managers();
    if all.is_empty() {
        return Err(Error::Invalid(InvalidInput {
            message: "config `managers` names no endpoint".into(),
            fields: Vec::new(),
        }));
    }
    let first = LAST_GOOD.with(Cell::get) % all.len();
    let mut last_err = None;
    for k in 0..all.len() {
        let i = (first + k) % all.len();
        let endpoint = Endpoint::named(&all[i], "swarm manager");
        match attempt(&endpoint) {
            Ok(answer) => match refusal(&answer) {
                None => {
                    LAST_GOOD.with(|c| c.set(i));
                    return Ok(answer);
                }
                Some(why) => {
                    last_err = Some(Error::Unavailable(format!(
                        "manager `{}` cannot serve the swarm now: {why}",
                        all[i]
                    )))
                }
            },
            // Unreachable (a dead manager refuses the connection): the next.
            Err(e @ Error::Unavailable(_)) => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| Error::Unavailable("no manager answered".into())))
}

/// A request to the API; the whole answer, from a manager that serves.
pub fn call(
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<Response, Error> {
    let bytes = body.map(|b| b.to_string().into_bytes());
    each_manager(
        |m| {
            m.send(&method, &format!("{API}{path}"), bytes.as_deref())?
                .read_all()
        },
        not_serving,
    )
}

/// A request whose answer is streamed (logs).
pub fn open(method: Method, path: &str) -> Result<BodyStream, Error> {
    each_manager(
        |m| m.send(&method, &format!("{API}{path}"), None),
        |s| (s.status == 503).then(|| "503".to_string()),
    )
}

/// `GET path`, decoded, or the engine's error.
pub fn get<T: serde::de::DeserializeOwned>(path: &str, what: &str) -> Result<T, Error> {
    let r = call(Method::Get, path, None)?;
    if r.status != 200 {
        return Err(error(&r, what));
    }
    r.json()
}

/// Map an engine error answer to a typed error. `what` names the object.
pub fn error(r: &Response, what: &str) -> Error {
    let msg = r.message();
    match r.status {
        400 => Error::Invalid(InvalidInput {
            message: format!("{what}: {msg}"),
            fields: Vec::new(),
        }),
        404 => Error::NotFound(format!("{what}: {msg}")),
        409 => Error::Conflict(format!("{what}: {msg}")),
        503 => Error::Unavailable(format!("{what}: {msg}")),
        _ => Error::Backend(format!("{what}: the manager answered {}: {msg}", r.status)),
    }
}

/// A JSON filter argument, URL-encoded: `{"key": ["value", ...]}`.
pub fn filters(pairs: &[(&str, &[String])]) -> String {
    let map: serde_json::Map<String, serde_json::Value> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), serde_json::json!(v)))
        .collect();
    enc(&serde_json::Value::Object(map).to_string())
}
