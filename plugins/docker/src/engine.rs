//! A small synchronous HTTP client for the Docker Engine API over the
//! host's outgoing `wasi:http`, addressed by the granted endpoint's name.

use gantry_sdk::backend::gantry::plugin::types::Error;
use gantry_sdk::wasip2::clocks::monotonic_clock;
use gantry_sdk::wasip2::http::outgoing_handler;
use gantry_sdk::wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingResponse, Method, OutgoingBody, OutgoingRequest,
    Scheme,
};
use gantry_sdk::wasip2::io::poll;
use gantry_sdk::wasip2::io::streams::{InputStream, StreamError};
use serde::de::DeserializeOwned;
use std::cell::RefCell;

/// Newest Engine API version this plugin speaks; older engines are addressed at theirs.
const MAX_API: (u32, u32) = (1, 47);

thread_local! {
    static VERSION: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// The endpoint name (from the plugin's config, default `engine`).
fn endpoint() -> String {
    gantry_sdk::backend::gantry::plugin::config::get("endpoint")
        .unwrap_or_else(|| "engine".to_string())
}

/// A completed response.
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// The engine's error message, if the body has one.
    pub fn message(&self) -> String {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).trim().to_string())
    }

    /// Decode a JSON body.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::Backend(format!("unexpected engine answer: {e}")))
    }
}

/// An open response body, read incrementally.
pub struct BodyStream {
    // Field order matters: the stream must be dropped before its body, and the body before the response.
    stream: InputStream,
    _body: IncomingBody,
    _response: IncomingResponse,
    /// HTTP status.
    pub status: u16,
    closed: bool,
}

impl BodyStream {
    /// Read what is available, waiting at most `wait_ns` for the first bytes.
    /// `Ok(None)` once the body has ended.
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
            Err(StreamError::LastOperationFailed(e)) => {
                return Err(Error::Unavailable(format!(
                    "engine stream failed: {}",
                    e.to_debug_string()
                )));
            }
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
            Err(StreamError::LastOperationFailed(e)) => Err(Error::Unavailable(format!(
                "engine stream failed: {}",
                e.to_debug_string()
            ))),
        }
    }

    /// Read the rest of the body.
    pub fn read_all(mut self) -> Result<Response, Error> {
        let mut body = Vec::new();
        while let Some(chunk) = self.read(30_000_000_000)? {
            body.extend(chunk);
        }
        Ok(Response {
            status: self.status,
            body,
        })
    }
}

fn unavailable(code: &ErrorCode) -> Error {
    Error::Unavailable(format!("docker engine unreachable: {code:?}"))
}

fn send(method: Method, path: &str, body: Option<&[u8]>) -> Result<BodyStream, Error> {
    let headers = Fields::new();
    if body.is_some() {
        let _ = headers.set("content-type", &[b"application/json".to_vec()]);
    }
    // An explicit length: without one the body goes out chunked, which the
    // Engine reads as a (deprecated) non-empty body on `start`.
    let len = body.map_or(0, <[u8]>::len);
    let _ = headers.set("content-length", &[len.to_string().into_bytes()]);
    let req = OutgoingRequest::new(headers);
    let bad = |what: &str| Error::Internal(format!("cannot build request: {what}"));
    req.set_method(&method).map_err(|_| bad("method"))?;
    req.set_scheme(Some(&Scheme::Http))
        .map_err(|_| bad("scheme"))?;
    req.set_authority(Some(&endpoint()))
        .map_err(|_| bad("authority"))?;
    req.set_path_with_query(Some(path))
        .map_err(|_| bad("path"))?;
    let out = req.body().map_err(|_| bad("body"))?;
    if let Some(bytes) = body {
        let w = out.write().map_err(|_| bad("body stream"))?;
        for chunk in bytes.chunks(4096) {
            w.blocking_write_and_flush(chunk)
                .map_err(|e| Error::Unavailable(format!("writing to the engine: {e:?}")))?;
        }
    }
    let fut = outgoing_handler::handle(req, None).map_err(|c| unavailable(&c))?;
    OutgoingBody::finish(out, None).map_err(|c| unavailable(&c))?;
    let resp = loop {
        match fut.get() {
            Some(Ok(Ok(r))) => break r,
            Some(Ok(Err(code))) => return Err(unavailable(&code)),
            Some(Err(())) => return Err(Error::Internal("response already taken".into())),
            None => fut.subscribe().block(),
        }
    };
    let status = resp.status();
    let body = resp
        .consume()
        .map_err(|_| Error::Internal("response body already taken".into()))?;
    let stream = body
        .stream()
        .map_err(|_| Error::Internal("response stream already taken".into()))?;
    Ok(BodyStream {
        stream,
        _body: body,
        _response: resp,
        status,
        closed: false,
    })
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

/// Percent-encode a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
