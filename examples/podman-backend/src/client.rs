//! Podman's libpod REST API over the SDK's HTTP client
//! (`gantry_sdk::client`), addressed by the granted endpoint's name (config
//! key `endpoint`, default `podman`). Every path is under
//! [`API`]: libpod's own API, not the Docker-compatible one.

use gantry_sdk::backend::gantry::plugin::types::{Error, FieldError, InvalidInput};
use gantry_sdk::client::Endpoint;
pub use gantry_sdk::client::{BodyStream, Response, enc};
use gantry_sdk::wasip2::http::types::Method;

/// The libpod API prefix. Podman 4 serves every 4.x version at any
/// `/v4.x.y/libpod` path; 4.0.0 is the oldest it accepts.
pub const API: &str = "/v4.0.0/libpod";

/// libpod's cause for an operation on a container in the wrong state
/// (pausing an exited one, killing a stopped one).
pub const STATE_IMPROPER: &str = "container state improper";

/// libpod, through the endpoint the config names (default `podman`).
fn podman() -> Endpoint {
    Endpoint::configured("podman", "podman service")
}

/// A libpod request (`path` under [`API`]); the whole answer.
pub fn call(
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<Response, Error> {
    podman().call(&method, &format!("{API}{path}"), body)
}

/// A libpod request whose answer is streamed.
pub fn open(method: Method, path: &str) -> Result<BodyStream, Error> {
    podman().send(&method, &format!("{API}{path}"), None)
}

/// libpod's `cause`: a fixed phrase naming the kind of failure, e.g.
/// `no such container` or `image not known`.
pub fn cause(r: &Response) -> String {
    r.field("cause").unwrap_or_default()
}

/// An `invalid` error about one field of the spec.
pub fn invalid(field: &str, message: impl Into<String>) -> Error {
    let message = message.into();
    Error::Invalid(InvalidInput {
        message: message.clone(),
        fields: vec![FieldError {
            field: field.to_string(),
            message,
        }],
    })
}

/// A libpod error answer as a typed error; `what` names the operation.
/// libpod answers most failures with 500 and says what it was in `cause`.
pub fn error(r: &Response, what: &str) -> Error {
    let msg = r.message();
    let cause = cause(r);
    match (r.status, cause.as_str()) {
        (400, _) => Error::Invalid(InvalidInput {
            message: format!("{what}: {msg}"),
            fields: Vec::new(),
        }),
        (404, _) | (_, "no such container" | "no such pod" | "image not known") => {
            Error::NotFound(format!("{what}: {msg}"))
        }
        (409, _) | (_, STATE_IMPROPER | "container already exists" | "pod already exists") => {
            Error::Conflict(format!("{what}: {msg}"))
        }
        (503, _) => Error::Unavailable(format!("{what}: {msg}")),
        _ => Error::Backend(format!("{what}: podman answered {}: {msg}", r.status)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_image_names_and_filters() {
        assert_eq!(
            enc("gantry-test/busybox:1.0"),
            "gantry-test%2Fbusybox%3A1.0"
        );
        assert_eq!(enc("{\"a\":1}"), "%7B%22a%22%3A1%7D");
    }

    #[test]
    fn maps_libpod_causes_to_typed_errors() {
        let r = |status, cause: &str| {
            let body = serde_json::json!({"cause": cause, "message": "m", "response": status});
            Response::new(status, body.to_string(), "podman service")
        };
        assert!(matches!(
            error(&r(500, "image not known"), "x"),
            Error::NotFound(_)
        ));
        assert!(matches!(
            error(&r(500, STATE_IMPROPER), "x"),
            Error::Conflict(_)
        ));
        assert!(matches!(error(&r(500, "other"), "x"), Error::Backend(_)));
    }
}
