//! The Docker Engine API over the SDK's HTTP client: the API version
//! negotiated once per instance, and the engine's error answers as typed
//! errors.

use gantry_sdk::backend::gantry::plugin::types::Error;
use gantry_sdk::client::Endpoint;
pub use gantry_sdk::client::{BodyStream, Response, enc};
use gantry_sdk::wasip2::http::types::Method;
use std::cell::RefCell;

/// Newest Engine API version this plugin speaks; older engines are addressed at theirs.
const MAX_API: (u32, u32) = (1, 47);

thread_local! {
    static VERSION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The Engine API, through the endpoint the config names (default `engine`).
fn engine() -> Endpoint {
    Endpoint::configured("engine", "docker engine")
}

fn send(method: Method, path: &str, body: Option<&[u8]>) -> Result<BodyStream, Error> {
    engine().send(&method, path, body)
}

fn versioned(path: &str) -> Result<String, Error> {
    Ok(format!("/v{}{path}", api_version()?))
}

/// The API version to address: the engine's own, capped at what we speak.
pub fn api_version() -> Result<String, Error> {
    if let Some(v) = VERSION.with(|v| v.borrow().clone()) {
        return Ok(v);
    }
    let r = send(Method::Get, "/version", None)?.read_all()?;
    if r.status != 200 {
        return Err(Error::Unavailable(format!(
            "GET /version answered {}: {}",
            r.status,
            r.message()
        )));
    }
    let v: serde_json::Value = r.json()?;
    let engine = v
        .get("ApiVersion")
        .and_then(|a| a.as_str())
        .unwrap_or("1.24");
    let parsed = engine
        .split_once('.')
        .and_then(|(a, b)| Some((a.parse::<u32>().ok()?, b.parse::<u32>().ok()?)))
        .unwrap_or((1, 24));
    let chosen = if parsed < MAX_API {
        engine.to_string()
    } else {
        format!("{}.{}", MAX_API.0, MAX_API.1)
    };
    VERSION.with(|v| *v.borrow_mut() = Some(chosen.clone()));
    Ok(chosen)
}

/// Forget the negotiated version (after the engine went away).
pub fn forget_version() {
    VERSION.with(|v| *v.borrow_mut() = None);
}

/// A request to a versioned path; the whole answer.
pub fn call(
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<Response, Error> {
    let bytes = body.map(|b| b.to_string().into_bytes());
    let r = send(method, &versioned(path)?, bytes.as_deref());
    if let Err(Error::Unavailable(_)) = &r {
        forget_version();
    }
    r?.read_all()
}

/// A request to a versioned path whose answer is streamed.
pub fn open(method: Method, path: &str) -> Result<BodyStream, Error> {
    let r = send(method, &versioned(path)?, None);
    if let Err(Error::Unavailable(_)) = &r {
        forget_version();
    }
    r
}

/// Map an engine error answer to a typed error. `what` names the object.
pub fn error(r: &Response, what: &str) -> Error {
    let msg = r.message();
    match r.status {
        400 => Error::Invalid(gantry_sdk::backend::gantry::plugin::types::InvalidInput {
            message: msg,
            fields: Vec::new(),
        }),
        404 => Error::NotFound(format!("{what}: {msg}")),
        409 => Error::Conflict(format!("{what}: {msg}")),
        503 => Error::Unavailable(msg),
        _ => Error::Backend(format!("{what}: engine answered {}: {msg}", r.status)),
    }
}
