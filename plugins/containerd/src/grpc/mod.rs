//! gRPC over the host's outgoing `wasi:http` (HTTP/2 with prior knowledge on
//! the endpoint the host grants): length-prefixed protobuf messages, the
//! namespace header on every call, and `grpc-status` read from the trailers
//! (or from the headers, for a Trailers-Only answer).

use gantry_sdk::backend::gantry::plugin::config;
use gantry_sdk::wasip2::clocks::monotonic_clock;
use gantry_sdk::wasip2::http::outgoing_handler::{self, FutureIncomingResponse};
use gantry_sdk::wasip2::http::types::{
    ErrorCode, Fields, IncomingBody, IncomingResponse, Method, OutgoingBody, OutgoingRequest,
    Scheme,
};
use gantry_sdk::wasip2::io::poll;
use gantry_sdk::wasip2::io::streams::{InputStream, OutputStream, StreamError};
use prost::Message;

mod frame;
mod status;

pub use frame::{frame, unframe};
use status::percent_decode;
pub use status::{Code, GrpcResult, Status};

thread_local! {
    /// The lease calls are made under, if any (see [`crate::lease`]).
    static LEASE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Make the calls that follow under `lease` (none: without one).
pub fn set_lease(lease: Option<String>) {
    LEASE.with(|l| *l.borrow_mut() = lease);
}

/// The endpoint name (plugin config `endpoint`, default `containerd`).
fn endpoint() -> String {
    config::get("endpoint").unwrap_or_else(|| "containerd".to_string())
}

/// The containerd namespace (plugin config `namespace`, default `gantry`).
pub fn namespace() -> String {
    config::get("namespace").unwrap_or_else(|| "gantry".to_string())
}

fn transport(what: &str, code: &ErrorCode) -> Status {
    Status::new(
        Code::Unavailable,
        format!("containerd unreachable ({what}): {code:?}"),
    )
}

fn header(fields: &Fields, name: &str) -> Option<String> {
    fields
        .get(name)
        .first()
        .map(|v| String::from_utf8_lossy(v).to_string())
}

/// `Ok` for status 0, the status otherwise; `None` when the fields carry none.
fn status_of(fields: &Fields) -> Option<GrpcResult<()>> {
    let code: u32 = header(fields, "grpc-status")?.trim().parse().ok()?;
    if code == 0 {
        return Some(Ok(()));
    }
    let message = header(fields, "grpc-message")
        .map(|m| percent_decode(&m))
        .unwrap_or_default();
    Some(Err(Status::new(Code::from_number(code), message)))
}

/// An answer whose headers have arrived: its body is read as a stream of messages.
pub struct Call {
    // Field order matters: the stream before its body, the body before the response.
    stream: Option<InputStream>,
    body: Option<IncomingBody>,
    _response: IncomingResponse,
    buf: Vec<u8>,
    /// Set once the status is known (Trailers-Only, or after the trailers).
    done: Option<GrpcResult<()>>,
}

fn new_request(path: &str) -> GrpcResult<(OutgoingRequest, OutgoingBody)> {
    let headers = Fields::new();
    let set = |k: &str, v: &str| {
        headers
            .set(k, &[v.as_bytes().to_vec()])
            .map_err(|e| Status::new(Code::Other(13), format!("header {k}: {e:?}")))
    };
    set("content-type", "application/grpc")?;
    set("te", "trailers")?;
    set("containerd-namespace", &namespace())?;
    if let Some(lease) = LEASE.with(|l| l.borrow().clone()) {
        set("containerd-lease", &lease)?;
    }
    let req = OutgoingRequest::new(headers);
    let bad = |what: &str| Status::new(Code::Other(13), format!("cannot build request: {what}"));
    req.set_method(&Method::Post).map_err(|()| bad("method"))?;
    req.set_scheme(Some(&Scheme::Http))
        .map_err(|()| bad("scheme"))?;
    req.set_authority(Some(&endpoint()))
        .map_err(|()| bad("authority"))?;
    req.set_path_with_query(Some(path))
        .map_err(|()| bad("path"))?;
    let out = req.body().map_err(|()| bad("body"))?;
    Ok((req, out))
}

fn write_all(stream: &OutputStream, bytes: &[u8]) -> GrpcResult<()> {
    gantry_sdk::stream::write_all(stream, bytes)
        .map_err(|e| Status::new(Code::Unavailable, format!("writing to containerd: {e:?}")))
}

fn start(path: &str, request: &[u8]) -> GrpcResult<FutureIncomingResponse> {
    let (req, out) = new_request(path)?;
    // Sent before its body is written: the body is read while the request is
    // in flight, so a message larger than the stream buffers cannot stall.
    let fut = outgoing_handler::handle(req, None).map_err(|c| transport(path, &c))?;
    let w = out
        .write()
        .map_err(|()| Status::new(Code::Other(13), "body stream"))?;
    let written = gantry_sdk::stream::write_all(&w, request);
    drop(w);
    // A body that could not all go out leaves the request unfinished (it is
    // dropped, not finished): its answer says why, an error of the
    // connection or a status containerd sent early.
    if written.is_ok() {
        OutgoingBody::finish(out, None).map_err(|c| transport(path, &c))?;
    }
    Ok(fut)
}

/// A client-streaming call being sent: messages go out as they are given
/// (the request is already on its way), then [`Upload::finish`] ends it.
pub struct Upload {
    // Field order matters: the stream before its body.
    stream: Option<OutputStream>,
    body: Option<OutgoingBody>,
    fut: FutureIncomingResponse,
    path: String,
}

impl Upload {
    /// Start a client-streaming call to `path`.
    pub fn open(path: &str) -> GrpcResult<Upload> {
        let (req, out) = new_request(path)?;
        let stream = out
            .write()
            .map_err(|()| Status::new(Code::Other(13), "body stream"))?;
        let fut = outgoing_handler::handle(req, None).map_err(|c| transport(path, &c))?;
        Ok(Upload {
            stream: Some(stream),
            body: Some(out),
            fut,
            path: path.to_string(),
        })
    }

    /// Send one message.
    pub fn send<M: Message>(&mut self, msg: &M) -> GrpcResult<()> {
        match &self.stream {
            Some(s) => write_all(s, &frame(msg)),
            None => Err(Status::new(Code::Other(13), "upload already finished")),
        }
    }

    /// End the request; the answer is read from the returned [`Pending`].
    pub fn finish(mut self) -> GrpcResult<Pending> {
        self.stream = None;
        if let Some(body) = self.body.take() {
            OutgoingBody::finish(body, None).map_err(|c| transport(&self.path, &c))?;
        }
        Ok(Pending {
            fut: self.fut,
            path: self.path,
        })
    }
}

/// A request sent whose answer has not been looked at yet.
pub struct Pending {
    fut: FutureIncomingResponse,
    path: String,
}

/// Send `request` to `path` (`/package.Service/Method`) without waiting for the answer.
pub fn start_call<M: Message>(path: &str, request: &M) -> GrpcResult<Pending> {
    Ok(Pending {
        fut: start(path, &frame(request))?,
        path: path.to_string(),
    })
}

impl Call {
    /// Send `request` to `path` and wait at most `wait_ns` for the answer's
    /// headers (none: as long as it takes). See [`Call::wait`].
    pub fn open<M: Message>(
        path: &str,
        request: &M,
        wait_ns: Option<u64>,
    ) -> GrpcResult<Option<Call>> {
        Call::wait(start_call(path, request)?, wait_ns)
    }

    /// Wait at most `wait_ns` for a sent request's answer headers.
    /// `Ok(None)`: none in time (containerd sends them with the first
    /// message); the request is dropped, which resets its stream.
    pub fn wait(pending: Pending, wait_ns: Option<u64>) -> GrpcResult<Option<Call>> {
        let Pending { fut, path } = pending;
        let path = path.as_str();
        let resp = loop {
            match fut.get() {
                Some(Ok(Ok(r))) => break r,
                Some(Ok(Err(code))) => return Err(transport(path, &code)),
                Some(Err(())) => {
                    return Err(Status::new(Code::Other(13), "response already taken"));
                }
                None => match wait_ns {
                    None => fut.subscribe().block(),
                    Some(ns) => {
                        let ready = fut.subscribe();
                        let timeout = monotonic_clock::subscribe_duration(ns);
                        poll::poll(&[&ready, &timeout]);
                        if !ready.ready() {
                            return Ok(None);
                        }
                    }
                },
            }
        };
        let status = resp.status();
        let headers = resp.headers();
        let trailers_only = status_of(&headers);
        drop(headers);
        if status != 200 {
            return Err(Status::new(
                Code::Unavailable,
                format!("containerd answered HTTP {status} on {path}"),
            ));
        }
        let body = resp
            .consume()
            .map_err(|()| Status::new(Code::Other(13), "response body already taken"))?;
        let stream = body
            .stream()
            .map_err(|()| Status::new(Code::Other(13), "response stream already taken"))?;
        Ok(Some(Call {
            stream: Some(stream),
            body: Some(body),
            _response: resp,
            buf: Vec::new(),
            done: trailers_only,
        }))
    }

    /// The next message, waiting at most `wait_ns` for it. `Ok(None)` when
    /// none came in time or the stream ended (then [`Call::ended`] is true).
    pub fn next<R: Message + Default>(&mut self, wait_ns: u64) -> GrpcResult<Option<R>> {
        let deadline = monotonic_clock::now().saturating_add(wait_ns);
        loop {
            let mut ready = unframe(&mut self.buf)?;
            if !ready.is_empty() {
                let first = ready.remove(0);
                // Put back what follows, framed again, for the next call.
                let mut rest = Vec::new();
                for m in ready {
                    rest.push(0);
                    rest.extend_from_slice(&u32::try_from(m.len()).unwrap_or(0).to_be_bytes());
                    rest.extend(m);
                }
                rest.extend(std::mem::take(&mut self.buf));
                self.buf = rest;
                return R::decode(first.as_slice())
                    .map(Some)
                    .map_err(|e| Status::new(Code::Other(13), format!("undecodable answer: {e}")));
            }
            if let Some(done) = &self.done {
                return done.clone().map(|()| None);
            }
            let Some(stream) = &self.stream else {
                return Ok(None);
            };
            match stream.read(64 * 1024) {
                Ok(b) if !b.is_empty() => {
                    self.buf.extend(b);
                    continue;
                }
                Ok(_) => {}
                Err(StreamError::Closed) => {
                    self.finish();
                    continue;
                }
                Err(StreamError::LastOperationFailed(e)) => {
                    let s = Status::new(
                        Code::Unavailable,
                        format!("containerd stream failed: {}", e.to_debug_string()),
                    );
                    self.done = Some(Err(s.clone()));
                    return Err(s);
                }
            }
            let now = monotonic_clock::now();
            if now >= deadline {
                return Ok(None);
            }
            let ready = stream.subscribe();
            let timeout = monotonic_clock::subscribe_duration(deadline - now);
            poll::poll(&[&ready, &timeout]);
        }
    }

    /// Whether the answer is complete (status known).
    pub fn ended(&self) -> bool {
        self.done.is_some()
    }

    /// The body ended: read the trailers for the status.
    fn finish(&mut self) {
        // The stream is a child of the body: it must go before `finish`.
        self.stream = None;
        let status = match self.body.take() {
            None => Err(Status::new(Code::Other(13), "body already finished")),
            Some(body) => {
                let trailers = IncomingBody::finish(body);
                trailers.subscribe().block();
                match trailers.get() {
                    Some(Ok(Ok(Some(t)))) => status_of(&t).unwrap_or_else(|| {
                        Err(Status::new(
                            Code::Other(2),
                            "answer ended without a grpc-status",
                        ))
                    }),
                    Some(Ok(Ok(None))) => Err(Status::new(
                        Code::Unavailable,
                        "answer ended without trailers",
                    )),
                    Some(Ok(Err(code))) => Err(transport("trailers", &code)),
                    _ => Err(Status::new(Code::Other(13), "trailers unavailable")),
                }
            }
        };
        self.done = Some(status);
    }
}

/// A unary call: one request, one answer.
pub fn unary<Q: Message, R: Message + Default>(path: &str, request: &Q) -> GrpcResult<R> {
    let call = Call::open(path, request, None)?
        .ok_or_else(|| Status::new(Code::Unavailable, "no answer"))?;
    last_answer(call, path)
}

/// The last answer of a call, once its status is known (a message followed
/// by an error status is the error).
pub fn last_answer<R: Message + Default>(mut call: Call, path: &str) -> GrpcResult<R> {
    let mut last: Option<R> = call.next(u64::MAX)?;
    while !call.ended() {
        if let Some(m) = call.next(u64::MAX)? {
            last = Some(m);
        }
    }
    if let Some(Err(e)) = &call.done {
        return Err(e.clone());
    }
    last.ok_or_else(|| Status::new(Code::Other(13), format!("{path} answered no message")))
}
