//! Reading requests and writing responses over `wasi:http`, for
//! `http-frontend` plugins: a request read whole, a streaming body writer and
//! whole JSON answers.

use wasip2::http::types::{
    Fields, IncomingBody, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};
use wasip2::io::streams::{OutputStream, StreamError};

use crate::http_frontend::gantry::plugin::types::{Caller, Error};

pub use crate::CALLER_HEADER;

/// The largest request body a frontend reads: as Azure's resource manager
/// allows, 4 MiB, room for a spec at its `[bounds]`.
const MAX_BODY: usize = 4 << 20;

/// A request, read whole ([`Request::read`]); fields may be added, so it is
/// not built by hand.
#[non_exhaustive]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Path without the query.
    pub path: String,
    /// Query pairs, percent-decoded.
    pub query: Vec<(String, String)>,
    /// `https` when the request came over the host's TLS listener, else `http`.
    pub scheme: &'static str,
    /// The `Host` the client addressed (authority), if any.
    pub authority: Option<String>,
    /// Header pairs, names lower-case.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Request {
    /// Read `req`, body included (up to 1 MiB; more is `Err`).
    pub fn read(req: &IncomingRequest) -> Result<Request, String> {
        let full = req.path_with_query().unwrap_or_else(|| "/".into());
        let (path, q) = full.split_once('?').unwrap_or((full.as_str(), ""));
        let query = q
            .split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (decode(k), decode(v))
            })
            .collect();
        let mut body = Vec::new();
        if let Ok(b) = req.consume() {
            if let Ok(stream) = b.stream() {
                loop {
                    match stream.blocking_read(64 * 1024) {
                        Ok(chunk) => {
                            body.extend(chunk);
                            if body.len() > MAX_BODY {
                                return Err("request body larger than 4 MiB".into());
                            }
                        }
                        Err(StreamError::Closed) => break,
                        Err(e) => return Err(format!("reading the request body: {e:?}")),
                    }
                }
            }
            drop(IncomingBody::finish(b));
        }
        Ok(Request {
            method: req.method(),
            path: path.to_string(),
            query,
            scheme: match req.scheme() {
                Some(wasip2::http::types::Scheme::Https) => "https",
                _ => "http",
            },
            authority: req.authority(),
            headers: req.headers().entries(),
            body,
        })
    }

    /// A request header's value, as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The caller the host authenticated for this request, read from the
    /// `gantry-caller` header the host sets on every request (dropping any a
    /// client sent), so no host call is needed to learn it. `control` calls
    /// act as the same caller.
    pub fn caller(&self) -> Result<Caller, Error> {
        #[derive(serde::Deserialize)]
        struct Seen {
            subject: Option<String>,
            #[serde(default)]
            roles: Vec<String>,
            unauthenticated: Option<String>,
        }
        let seen: Seen = self
            .header(CALLER_HEADER)
            .and_then(|h| serde_json::from_str(h).ok())
            .ok_or_else(|| Error::Unauthenticated("the host named no caller".into()))?;
        match (seen.subject, seen.unauthenticated) {
            (Some(subject), _) => Ok(Caller {
                subject,
                roles: seen.roles,
            }),
            (None, reason) => Err(Error::Unauthenticated(
                reason.unwrap_or_else(|| "no credentials".into()),
            )),
        }
    }

    /// A query parameter.
    pub fn param(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Start a response; the body is written through the returned writer.
pub fn start(out: ResponseOutparam, status: u16, headers: &[(&str, &str)]) -> Option<BodyWriter> {
    let fields = Fields::new();
    for (k, v) in headers {
        let _ = fields.append(k, v.as_bytes());
    }
    let resp = OutgoingResponse::new(fields);
    let _ = resp.set_status_code(status);
    let body = resp.body().ok()?;
    ResponseOutparam::set(out, Ok(resp));
    let stream = body.write().ok()?;
    Some(BodyWriter {
        stream: Some(stream),
        body: Some(body),
    })
}

/// A response body being written.
pub struct BodyWriter {
    stream: Option<OutputStream>,
    body: Option<OutgoingBody>,
}

impl BodyWriter {
    /// Write and flush; `false` once the client has gone.
    pub fn write(&mut self, bytes: &[u8]) -> bool {
        let Some(s) = &self.stream else { return false };
        crate::stream::write_all(s, bytes).is_ok()
    }
}

impl Drop for BodyWriter {
    fn drop(&mut self) {
        drop(self.stream.take());
        if let Some(b) = self.body.take() {
            let _ = OutgoingBody::finish(b, None);
        }
    }
}

/// A whole JSON response (no body for 204).
pub fn json(out: ResponseOutparam, status: u16, value: &serde_json::Value) {
    json_with(out, status, &[], value);
}

/// A whole JSON response with extra headers (no body for 204).
pub fn json_with(
    out: ResponseOutparam,
    status: u16,
    headers: &[(&str, &str)],
    value: &serde_json::Value,
) {
    if status == 204 {
        drop(start(out, status, headers));
        return;
    }
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    if let Some(mut w) = start(out, status, &all) {
        w.write(value.to_string().as_bytes());
    }
}
