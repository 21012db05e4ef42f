//! gantry's REST frontend: the Container Service API (`/v1/containers`,
//! revisions, Server-Sent-Event logs, GPU models) over the host's `control`
//! interface, as the caller the host authenticated.
//!
//! Conventions of the API's lineage: pages are `?page=` (from 1) and `?rows=`
//! (default 10) in an `{items, total, page, rowsPerPage}` envelope; errors are
//! `{"error": msg}`, with `"fields": {field: msg}` for a 400.

mod model;

use gantry_sdk::http::{self, Request};
use gantry_sdk::http_frontend::exports::wasi::http::incoming_handler::Guest;
use gantry_sdk::http_frontend::gantry::plugin::config;
use gantry_sdk::http_frontend::gantry::plugin::control::{self, PageRequest, WorkloadFilter};
use gantry_sdk::http_frontend::gantry::plugin::types::{Caller, Error, LogOptions, Workload};
use gantry_sdk::wasip2::http::types::{IncomingRequest, Method, ResponseOutparam};
use model::FieldErrors;
use serde_json::{Value, json};

/// The OpenAPI 3 document of this API, served at `/v1/openapi.json`.
const OPENAPI: &str = include_str!("../openapi.json");

/// Which build of this plugin answers, as `info.x-gantry-build` of the
/// served document: the crate version, and the `GANTRY_BUILD_ID` the build
/// was given (a CI run, a commit), so an operator swapping builds sees which
/// one serves.
fn build() -> String {
    let version = env!("CARGO_PKG_VERSION");
    match option_env!("GANTRY_BUILD_ID") {
        Some(id) if !id.is_empty() => format!("{version}+{id}"),
        _ => version.to_string(),
    }
}

fn openapi() -> Answer {
    let mut doc = serde_json::from_str::<Value>(OPENAPI)
        .map_err(|e| fail(500, format!("openapi document: {e}")))?;
    if let Some(info) = doc.get_mut("info").and_then(Value::as_object_mut) {
        info.insert("x-gantry-build".into(), Value::String(build()));
    }
    Ok((200, doc))
}

struct Rest;

/// A failed request: status and body.
struct Failure(u16, Value);

type Answer = Result<(u16, Value), Failure>;

fn fail(status: u16, msg: impl Into<String>) -> Failure {
    Failure(status, json!({"error": msg.into()}))
}

fn invalid(fields: FieldErrors) -> Failure {
    let msg = fields
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("; ");
    Failure(
        400,
        json!({"error": format!("validation failed: {msg}"), "fields": fields}),
    )
}

/// This API's name for a field the host or a scheduler named in spec
/// terms (its one container is `containers[0]`).
fn field_name(spec_field: &str) -> &str {
    match spec_field {
        "containers[0].gpu.count" | "containers[0].gpu.device-ids" => "gpu",
        "containers[0].gpu.models" => "desiredGPUs",
        "containers[0].gpu.memory" => "gpuMemory",
        "containers[0].image" => "image",
        "containers[0].resources.cpu" => "cpu",
        "containers[0].resources.memory" => "ram",
        "containers[0].env" => "env",
        "containers[0].command" => "command",
        other => other,
    }
}

/// The container object of `w`, with the GPUs it holds.
fn view(w: &Workload, domain: &str) -> Value {
    let mut c = model::container(w, domain);
    if w.spec.containers.first().is_some_and(|c| c.wants_gpu()) {
        let names = control::gpu_models();
        c.assigned_gpus = Some(
            control::gpus(&w.id)
                .unwrap_or_default()
                .into_iter()
                .map(|g| model::AssignedGpu {
                    model: names
                        .iter()
                        .find(|m| m.code == g.model)
                        .map_or(g.model.clone(), |m| m.name.clone()),
                    index: g.index,
                    uuid: g.uuid,
                })
                .collect(),
        );
    }
    to_value(c)
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(m) => fail(404, format!("not found: {m}")),
            Error::Invalid(i) => {
                let fields: FieldErrors = i
                    .fields
                    .into_iter()
                    .map(|f| (field_name(&f.field).to_string(), f.message))
                    .collect();
                if fields.is_empty() {
                    Failure(400, json!({"error": i.message, "fields": {}}))
                } else {
                    invalid(fields)
                }
            }
            Error::Forbidden(m) => fail(403, format!("forbidden: {m}")),
            Error::Unauthenticated(m) => fail(401, format!("unauthorized: {m}")),
            Error::Conflict(m) => fail(409, m),
            // Something this deployment cannot do (GPUs with no GPU placement,
            // a feature the backend lacks): the request's fault, not a failure.
            Error::Unsupported(m) => fail(400, m),
            Error::Unavailable(m) => fail(503, m),
            Error::Backend(m) | Error::Internal(m) => fail(500, m),
        }
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Failure> {
    gantry_sdk::json::from_slice(body).map_err(|e| {
        let msg = e.to_string();
        let mut fields = FieldErrors::new();
        if let Some(rest) = msg.strip_prefix("unknown field `") {
            let name = rest.split('`').next().unwrap_or("").to_string();
            fields.insert(name, "unknown field".into());
        } else if let Some(rest) = msg
            .strip_prefix("invalid type: ")
            .or_else(|| msg.strip_prefix("invalid value: "))
        {
            fields.insert("body".into(), rest.to_string());
        } else {
            fields.insert("body".into(), msg.clone());
        }
        Failure(
            400,
            json!({"error": format!("invalid request body: {msg}"), "fields": fields}),
        )
    })
}

fn page(req: &Request, default_rows: u32) -> Result<(u32, u32), Failure> {
    let num = |key: &str, default: u32| -> Result<u32, Failure> {
        let bad = || {
            invalid(FieldErrors::from([(
                key.to_string(),
                "must be given once, as an integer from 1 to 1000".to_string(),
            )]))
        };
        let mut values = req
            .query
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str());
        match (values.next(), values.next()) {
            (None, _) => Ok(default),
            (Some(v), None) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=1000).contains(n))
                .ok_or_else(bad),
            (Some(_), Some(_)) => Err(bad()),
        }
    };
    Ok((num("page", 1)?, num("rows", default_rows)?))
}

fn envelope(items: Vec<Value>, total: u64, page: u32, rows: u32) -> Value {
    json!({"items": items, "total": total, "page": page, "rowsPerPage": rows})
}

fn ingress_domain() -> String {
    config::get(gantry_sdk::ingress::DOMAIN_KEY)
        .unwrap_or_else(|| gantry_sdk::ingress::DEFAULT_DOMAIN.into())
}

fn caller(req: &Request) -> Result<Caller, Failure> {
    req.caller().map_err(Failure::from)
}

fn to_value(c: model::Container) -> Value {
    serde_json::to_value(c).unwrap_or(Value::Null)
}

fn list(req: &Request) -> Answer {
    let me = caller(req)?;
    let (p, rows) = page(req, 10)?;
    let filter = WorkloadFilter {
        all_owners: me.is_admin(),
        ..WorkloadFilter::default()
    };
    let result = control::list(&filter, PageRequest { page: p, rows })?;
    let domain = ingress_domain();
    let items = result.items.iter().map(|w| view(w, &domain)).collect();
    Ok((200, envelope(items, result.total, p, rows)))
}

fn create(req: &Request) -> Answer {
    caller(req)?;
    let body: model::CreateBody = parse_json(&req.body)?;
    let desired = model::from_create(body, &control::gpu_models()).map_err(invalid)?;
    let request = control::CreateRequest {
        name: desired.name,
        namespace: String::new(),
        spec: desired.spec,
        annotations: desired.annotations,
        start: true,
    };
    let w = control::create(&request)?;
    Ok((201, view(&w, &ingress_domain())))
}

fn get(id: &str, req: &Request) -> Answer {
    caller(req)?;
    let w = control::get(id)?;
    Ok((200, view(&w, &ingress_domain())))
}

fn update(id: &str, req: &Request) -> Answer {
    caller(req)?;
    let current = control::get(id)?;
    let body: model::UpdateBody = parse_json(&req.body)?;
    let desired = model::from_update(&current, body, &control::gpu_models()).map_err(invalid)?;
    let mut annotations: Vec<(String, String)> = current
        .annotations
        .into_iter()
        .filter(|(k, _)| !k.starts_with("rest."))
        .collect();
    annotations.extend(desired.annotations);
    // The new revision and its annotations change in one step, or not at all.
    let request = control::UpdateRequest {
        spec: desired.spec,
        annotations: Some(annotations),
    };
    // While the workload exists, a not-found is about what the new revision
    // names (an image, a command). Like a revision that cannot
    // start, it is refused (409) and the current revision keeps running
    // (the host's message says which); a 404 would say the container
    // itself is gone.
    let w = control::revise(id, &request).map_err(|e| match e {
        Error::NotFound(m) if control::get(id).is_ok() => {
            Error::Conflict(format!("the new revision cannot be deployed: {m}"))
        }
        e => e,
    })?;
    Ok((200, view(&w, &ingress_domain())))
}

fn delete(id: &str, req: &Request) -> Answer {
    caller(req)?;
    control::delete(id, true)?;
    Ok((204, Value::Null))
}

fn revisions(id: &str, req: &Request) -> Answer {
    caller(req)?;
    let (p, rows) = page(req, 10)?;
    let result = control::revisions(id, PageRequest { page: p, rows })?;
    Ok((
        200,
        envelope(
            result.items.iter().map(model::revision).collect(),
            result.total,
            p,
            rows,
        ),
    ))
}

fn gpu_models(req: &Request) -> Answer {
    caller(req)?;
    let (p, rows) = page(req, 100)?;
    let all = control::gpu_models();
    let total = all.len() as u64;
    let items = all
        .into_iter()
        .skip(((p - 1) * rows) as usize)
        .take(rows as usize)
        .map(|m| json!({"code": m.code, "name": m.name}))
        .collect();
    Ok((200, envelope(items, total, p, rows)))
}

/// Server-Sent Events: one `data:` event per log line, following new output
/// until the client leaves or the container goes away.
fn logs(id: &str, req: &Request, out: ResponseOutparam) {
    let opened = caller(req).and_then(|_| {
        let tail = match req.param("tail") {
            None | Some("") => Some(100),
            Some(v) => Some(v.parse::<u32>().map_err(|_| {
                invalid(FieldErrors::from([(
                    "tail".to_string(),
                    "must be a non-negative integer".to_string(),
                )]))
            })?),
        };
        let options = LogOptions {
            container: None,
            tail,
            since: None,
            follow: true,
            timestamps: false,
        };
        control::logs(id, &options).map_err(Failure::from)
    });
    let reader = match opened {
        Ok(r) => r,
        Err(Failure(status, body)) => return http::json(out, status, &body),
    };
    let Some(mut w) = http::start(
        out,
        200,
        &[
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache"),
        ],
    ) else {
        return;
    };
    if !w.write(b": connected\n\n") {
        return;
    }
    loop {
        match reader.next(15_000) {
            Ok(Some(lines)) if lines.is_empty() => {
                if !w.write(b": keep-alive\n\n") {
                    return;
                }
            }
            Ok(Some(lines)) => {
                // Unnamed events, so an `EventSource`'s `onmessage` sees every line.
                let mut chunk = String::new();
                for l in lines {
                    chunk.push_str(&format!("data: {}\n\n", l.line.replace(['\r', '\n'], " ")));
                }
                if !w.write(chunk.as_bytes()) {
                    return;
                }
            }
            Ok(None) => {
                w.write(b"event: end\ndata: container removed\n\n");
                return;
            }
            Err(e) => {
                let Failure(_, body) = Failure::from(e);
                w.write(format!("event: error\ndata: {body}\n\n").as_bytes());
                return;
            }
        }
    }
}

fn method_not_allowed(out: ResponseOutparam, allow: &str) {
    if let Some(mut w) = http::start(
        out,
        405,
        &[("content-type", "application/json"), ("allow", allow)],
    ) {
        w.write(
            json!({"error": format!("method not allowed; allowed: {allow}")})
                .to_string()
                .as_bytes(),
        );
    }
}

fn route(req: &Request, out: ResponseOutparam) {
    let segments: Vec<&str> = req.path.trim_end_matches('/').split('/').skip(1).collect();
    let answer: Answer = match (&req.method, segments.as_slice()) {
        (Method::Get, ["v1", "openapi.json"]) => openapi(),
        (Method::Get, ["v1", "containers"]) => list(req),
        (Method::Post, ["v1", "containers"]) => create(req),
        (Method::Get, ["v1", "containers", id]) => get(id, req),
        (Method::Put, ["v1", "containers", id]) => update(id, req),
        (Method::Delete, ["v1", "containers", id]) => delete(id, req),
        (Method::Get, ["v1", "containers", id, "revisions"]) => revisions(id, req),
        (Method::Get, ["v1", "containers", id, "logs"]) => return logs(id, req, out),
        (Method::Get, ["v1", "gpu-models"]) => gpu_models(req),
        (_, ["v1", "containers"]) => return method_not_allowed(out, "GET, POST"),
        (_, ["v1", "containers", _]) => return method_not_allowed(out, "GET, PUT, DELETE"),
        (
            _,
            ["v1", "containers", _, "revisions" | "logs"]
            | ["v1", "gpu-models"]
            | ["v1", "openapi.json"],
        ) => {
            return method_not_allowed(out, "GET");
        }
        _ => Err(fail(404, format!("no such endpoint: {}", req.path))),
    };
    match answer {
        Ok((status, body)) => http::json(out, status, &body),
        Err(Failure(status, body)) => http::json(out, status, &body),
    }
}

impl Guest for Rest {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        match Request::read(&request) {
            Ok(req) => route(&req, out),
            Err(e) => http::json(out, 413, &json!({"error": e})),
        }
    }
}

gantry_sdk::http_frontend::export_http_frontend!(Rest);
