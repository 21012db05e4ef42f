//! A small synchronous HTTP/1.1 client over the host's outgoing `wasi:http`,
//! for backends that drive a runtime's HTTP API (Docker's Engine API,
//! Podman's libpod) through an endpoint the host grants by name: the plugin
//! addresses the grant (`http://<grant>/path`), the host routes it to the
//! socket or address the config gives, and to nothing else.
//!
//! Every failure is a typed [`Error`]: the runtime unreachable or its stream
//! broken is `unavailable`, an answer that does not decode is `backend`.

use crate::backend::gantry::plugin::config;
use crate::backend::gantry::plugin::types::Error;
use serde::de::DeserializeOwned;
use wasip2::clocks::monotonic_clock;
use wasip2::http::outgoing_handler;
use wasip2::http::types::{
    ErrorCode, Fields, FutureIncomingResponse, IncomingBody, IncomingResponse, Method,
    OutgoingBody, OutgoingRequest, Scheme,
};
use wasip2::io::poll;
use wasip2::io::streams::{InputStream, StreamError};

/// How long [`BodyStream::read_all`] waits for each chunk.
const CHUNK_WAIT_NS: u64 = 60_000_000_000;

/// A runtime API reached through a granted endpoint.
#[derive(Debug, Clone)]
pub struct Endpoint {
    grant: String,
    runtime: &'static str,
}

impl Endpoint {
    /// The endpoint the plugin's config names (key `endpoint`), or
    /// `default_grant`; `runtime` names the runtime in messages ("docker
    /// engine", "podman service").
    pub fn configured(default_grant: &str, runtime: &'static str) -> Self {
        Self {
            grant: config::get("endpoint").unwrap_or_else(|| default_grant.to_string()),
            runtime,
        }
    }

    /// The endpoint granted as `grant`; `runtime` names the runtime in messages.
    pub fn named(grant: &str, runtime: &'static str) -> Self {
        Self {
            grant: grant.to_string(),
            runtime,
        }
    }

    /// The grant it is reached through.
    pub fn grant(&self) -> &str {
        &self.grant
    }

    /// Send a request (`path` with its query), with a JSON `body` if any;
    /// the answer's status and its body, open for reading.
    pub fn send(
        &self,
        method: &Method,
        path: &str,
        body: Option<&[u8]>,
    ) -> Result<BodyStream, Error> {
        let headers = Fields::new();
        if body.is_some() {
            let _ = headers.set("content-type", &[b"application/json".to_vec()]);
        }
        // An explicit length: without one the body goes out chunked, which
        // some APIs read as a non-empty body on calls that take none.
        let len = body.map_or(0, <[u8]>::len);
        let _ = headers.set("content-length", &[len.to_string().into_bytes()]);
        let req = OutgoingRequest::new(headers);
        let bad = |what: &str| {
            Error::Internal(format!("cannot build a {} request: {what}", self.runtime))
        };
        req.set_method(method).map_err(|()| bad("method"))?;
        req.set_scheme(Some(&Scheme::Http))
            .map_err(|()| bad("scheme"))?;
        req.set_authority(Some(&self.grant))
            .map_err(|()| bad("authority"))?;
        req.set_path_with_query(Some(path))
            .map_err(|()| bad("path"))?;
        let out = req.body().map_err(|()| bad("body"))?;
        let unreachable =
            |c: &ErrorCode| Error::Unavailable(format!("{} unreachable: {c:?}", self.runtime));
        // The request goes out first: its body is read while it is in flight,
        // so a body larger than the stream buffers never waits for a reader.
        let fut = outgoing_handler::handle(req, None).map_err(|c| unreachable(&c))?;
        let mut early = None;
        if let Some(bytes) = body {
            let w = out.write().map_err(|()| bad("body stream"))?;
            let written = crate::stream::write_all(&w, bytes);
            drop(w);
            if written.is_err() {
                // The body could not all go out: the runtime answered early
                // (its answer is the one to read) or the request failed (its
                // error code says why).
                early = Some(wait(&fut).map_err(|c| unreachable(&c))?);
            }
        }
        let resp = match early {
            Some(resp) => resp,
            None => {
                OutgoingBody::finish(out, None).map_err(|c| unreachable(&c))?;
                wait(&fut).map_err(|c| unreachable(&c))?
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
            runtime: self.runtime,
            pending: Vec::new(),
        })
    }

    /// [`Self::send`] with a JSON body, the answer read whole.
    pub fn call(
        &self,
        method: &Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<Response, Error> {
        let bytes = body.map(|b| b.to_string().into_bytes());
        self.send(method, path, bytes.as_deref())?.read_all()
    }
}

/// The answer to a request sent, once its headers have come.
fn wait(fut: &FutureIncomingResponse) -> Result<IncomingResponse, ErrorCode> {
    loop {
        match fut.get() {
            Some(Ok(r)) => return r,
            // Taken already: only this module takes it, once.
            Some(Err(())) => {
                return Err(ErrorCode::InternalError(Some(
                    "response already taken".into(),
                )));
            }
            None => fut.subscribe().block(),
        }
    }
}

/// A completed response.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The whole body.
    pub body: Vec<u8>,
    runtime: &'static str,
}

impl Response {
    /// A response of `runtime` (as named in messages), for tests of the
    /// code that reads one.
    pub fn new(status: u16, body: impl Into<Vec<u8>>, runtime: &'static str) -> Self {
        Self {
            status,
            body: body.into(),
            runtime,
        }
    }

    /// A string field of a JSON body.
    pub fn field(&self, key: &str) -> Option<String> {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()?
            .get(key)?
            .as_str()
            .map(str::to_string)
    }

    /// The runtime's error message (a JSON body's `message`, as Docker and
    /// libpod write it), or the body as text.
    pub fn message(&self) -> String {
        self.field("message")
            .unwrap_or_else(|| String::from_utf8_lossy(&self.body).trim().to_string())
    }

    /// Whether the status is 2xx.
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Decode a JSON body.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::Backend(format!("unexpected {} answer: {e}", self.runtime)))
    }
}

/// An open response body, read incrementally (a followed log, an event stream).
pub struct BodyStream {
    // Field order matters: the stream is dropped before its body, the body
    // before the response.
    stream: InputStream,
    _body: IncomingBody,
    _response: IncomingResponse,
    /// HTTP status.
    pub status: u16,
    closed: bool,
    runtime: &'static str,
    /// Bytes read past the last line [`BodyStream::next_line`] returned.
    pending: Vec<u8>,
}

/// The next line of a line-delimited body ([`BodyStream::next_line`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A complete line, without its newline.
    Text(Vec<u8>),
    /// No complete line came within the wait.
    Waiting,
    /// The body ended (a last piece without a newline is dropped).
    Ended,
}

impl BodyStream {
    /// The next newline-terminated line of a line-delimited body (JSON
    /// lines: pull progress, an event stream), waiting at most `wait_ns` for
    /// more bytes when no complete line is buffered.
    pub fn next_line(&mut self, wait_ns: u64) -> Result<Line, Error> {
        loop {
            if let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=pos).collect();
                line.pop();
                return Ok(Line::Text(line));
            }
            match self.read(wait_ns)? {
                Some(chunk) if chunk.is_empty() => return Ok(Line::Waiting),
                Some(chunk) => self.pending.extend(chunk),
                None => return Ok(Line::Ended),
            }
        }
    }

    /// What is available, waiting at most `wait_ns` for the first bytes: an
    /// empty chunk when none came in time, `None` once the body has ended.
    pub fn read(&mut self, wait_ns: u64) -> Result<Option<Vec<u8>>, Error> {
        if self.closed {
            return Ok(None);
        }
        if let Some(chunk) = self.read_now(false)? {
            return Ok(Some(chunk));
        }
        if self.closed {
            return Ok(None);
        }
        let ready = self.stream.subscribe();
        let timeout = monotonic_clock::subscribe_duration(wait_ns);
        poll::poll(&[&ready, &timeout]);
        match self.read_now(true)? {
            Some(chunk) => Ok(Some(chunk)),
            None => Ok(None),
        }
    }

    /// One non-blocking read: a chunk, or (`empty_too`) an empty one; `None`
    /// when nothing came, or the body ended (then `closed` is set).
    fn read_now(&mut self, empty_too: bool) -> Result<Option<Vec<u8>>, Error> {
        match self.stream.read(64 * 1024) {
            Ok(b) if !b.is_empty() || empty_too => Ok(Some(b)),
            Ok(_) => Ok(None),
            Err(StreamError::Closed) => {
                self.closed = true;
                Ok(None)
            }
            Err(StreamError::LastOperationFailed(e)) => Err(Error::Unavailable(format!(
                "{} stream failed: {}",
                self.runtime,
                e.to_debug_string()
            ))),
        }
    }

    /// The rest of the body.
    pub fn read_all(mut self) -> Result<Response, Error> {
        let mut body = Vec::new();
        while let Some(chunk) = self.read(CHUNK_WAIT_NS)? {
            body.extend(chunk);
        }
        Ok(Response {
            status: self.status,
            body,
            runtime: self.runtime,
        })
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(enc("a b/c=d"), "a%20b%2Fc%3Dd");
        assert_eq!(enc("io.gantry.workload"), "io.gantry.workload");
    }

    #[test]
    fn messages_come_from_the_body() {
        let r = Response {
            status: 500,
            body: br#"{"cause":"no such pod","message":"no pod x"}"#.to_vec(),
            runtime: "podman service",
        };
        assert_eq!(r.message(), "no pod x");
        assert_eq!(r.field("cause").as_deref(), Some("no such pod"));
        assert!(!r.ok());
        let plain = Response {
            status: 404,
            body: b"page not found\n".to_vec(),
            runtime: "docker engine",
        };
        assert_eq!(plain.message(), "page not found");
    }
}
