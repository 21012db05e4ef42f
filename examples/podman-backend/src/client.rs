//! A small synchronous HTTP/1.1 client for Podman's libpod REST API, over the
//! host's outgoing `wasi:http`, addressed by the granted endpoint's name
//! (config key `endpoint`, default `podman`). Every path is under
//! [`API`]: libpod's own API, not the Docker-compatible one.

use gantry_sdk::backend::gantry::plugin::config;
use gantry_sdk::backend::gantry::plugin::types::{Error, FieldError, InvalidInput};
use gantry_sdk::wasip2::clocks::monotonic_clock;
use gantry_sdk::wasip2::http::outgoing_handler;
use gantry_sdk::wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingResponse, Method, OutgoingBody, OutgoingRequest,
    Scheme,
};
use gantry_sdk::wasip2::io::poll;
use gantry_sdk::wasip2::io::streams::{InputStream, StreamError};
use serde::de::DeserializeOwned;

/// The libpod API prefix. Podman 4 serves every 4.x version at any
/// `/v4.x.y/libpod` path; 4.0.0 is the oldest it accepts.
pub const API: &str = "/v4.0.0/libpod";

/// libpod's cause for an operation on a container in the wrong state
/// (pausing an exited one, killing a stopped one).
pub const STATE_IMPROPER: &str = "container state improper";

fn endpoint() -> String {
    config::get("endpoint").unwrap_or_else(|| "podman".to_string())
}

/// A completed response.
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    fn field(&self, key: &str) -> Option<String> {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()?
            .get(key)?
            .as_str()
            .map(str::to_string)
    }

    /// libpod's error message (`message`), or the body as text.
    pub fn message(&self) -> String {
        self.field("message")
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).trim().to_string())
    }

    /// libpod's error cause (`cause`): a fixed phrase naming the kind of
    /// failure, e.g. `no such container` or `image not known`.
    pub fn cause(&self) -> String {
        self.field("cause").unwrap_or_default()
    }

    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Decode a JSON body.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::Backend(format!("unexpected libpod answer: {e}")))
    }
}

/// An open response body, read incrementally (logs, events, pulls).
pub struct BodyStream {
    // Field order matters: the stream is dropped before its body, the body before the response.
    stream: InputStream,
    _body: IncomingBody,
    _response: IncomingResponse,
    /// HTTP status.
    pub status: u16,
    closed: bool,
}

fn stream_failed(e: &gantry_sdk::wasip2::io::error::Error) -> Error {
    Error::Unavailable(format!("podman stream failed: {}", e.to_debug_string()))
}

impl BodyStream {
    /// What is available, waiting at most `wait_ns` for the first bytes: an
    /// empty chunk when none came in time, `None` once the body has ended.
    pub fn read(&mut self, wait_ns: u64) -> Result<Option<Vec<u8>>, Error> {
        if self.closed {
            return Ok(None);
        }
        match self.stream.read(64 * 1024) {
            Ok(b) if !b.is_empty() => return Ok(Some(b)),
            Ok(_) => {}
            Err(StreamError::Closed) => {
                self.closed = true;
                return Ok(None);
            }
            Err(StreamError::LastOperationFailed(e)) => return Err(stream_failed(&e)),
        }
        let ready = self.stream.subscribe();
        let timeout = monotonic_clock::subscribe_duration(wait_ns);
        poll::poll(&[&ready, &timeout]);
        match self.stream.read(64 * 1024) {
            Ok(b) => Ok(Some(b)),
            Err(StreamError::Closed) => {
                self.closed = true;
                Ok(None)
            }
            Err(StreamError::LastOperationFailed(e)) => Err(stream_failed(&e)),
        }
    }

    /// The rest of the body.
    pub fn read_all(mut self) -> Result<Response, Error> {
        let mut body = Vec::new();
        while let Some(chunk) = self.read(60_000_000_000)? {
            body.extend(chunk);
        }
        Ok(Response {
            status: self.status,
            body,
        })
    }
}

fn unreachable(code: &ErrorCode) -> Error {
    Error::Unavailable(format!("podman service unreachable: {code:?}"))
}

fn send(method: &Method, path: &str, body: Option<&[u8]>) -> Result<BodyStream, Error> {
    let headers = Fields::new();
    if body.is_some() {
        let _ = headers.set("content-type", &[b"application/json".to_vec()]);
    }
    let len = body.map_or(0, <[u8]>::len);
    let _ = headers.set("content-length", &[len.to_string().into_bytes()]);
    let req = OutgoingRequest::new(headers);
    let bad = |what: &str| Error::Internal(format!("cannot build a libpod request: {what}"));
    req.set_method(method).map_err(|()| bad("method"))?;
    req.set_scheme(Some(&Scheme::Http))
        .map_err(|()| bad("scheme"))?;
    req.set_authority(Some(&endpoint()))
        .map_err(|()| bad("authority"))?;
    req.set_path_with_query(Some(&format!("{API}{path}")))
        .map_err(|()| bad("path"))?;
    let out = req.body().map_err(|()| bad("body"))?;
    if let Some(bytes) = body {
        let w = out.write().map_err(|()| bad("body stream"))?;
        for chunk in bytes.chunks(4096) {
            w.blocking_write_and_flush(chunk)
                .map_err(|e| Error::Unavailable(format!("writing to podman: {e:?}")))?;
        }
    }
    let fut = outgoing_handler::handle(req, None).map_err(|c| unreachable(&c))?;
    OutgoingBody::finish(out, None).map_err(|c| unreachable(&c))?;
    let resp = loop {
        match fut.get() {
            Some(Ok(Ok(r))) => break r,
            Some(Ok(Err(code))) => return Err(unreachable(&code)),
            Some(Err(())) => return Err(Error::Internal("response already taken".into())),
            None => fut.subscribe().block(),
        }
    };
    let status = resp.status();
    let body = resp
        .consume()
        .map_err(|()| Error::Internal("response body already taken".into()))?;
    let stream = body
        .stream()
        .map_err(|()| Error::Internal("response stream already taken".into()))?;
    Ok(BodyStream {
        stream,
        _body: body,
        _response: resp,
        status,
        closed: false,
    })
}

/// A libpod request (`path` under [`API`]); the whole answer.
pub fn call(
    method: Method,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<Response, Error> {
    let bytes = body.map(|b| b.to_string().into_bytes());
    send(&method, path, bytes.as_deref())?.read_all()
}

/// A libpod request whose answer is streamed.
pub fn open(method: Method, path: &str) -> Result<BodyStream, Error> {
    send(&method, path, None)
}

/// Percent-encode a path segment or query value.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
    let cause = r.cause();
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
        let r = |status, cause: &str| Response {
            status,
            body: serde_json::json!({"cause": cause, "message": "m", "response": status})
                .to_string()
                .into_bytes(),
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
