//! gantry's ARM frontend: Azure Container Instances' `Microsoft.ContainerInstance`
//! resource provider (container groups, their containers' logs, long-running
//! operations, provider and location lists) over the host's `control`
//! interface, as the caller the host authenticated.
//!
//! Subscriptions and resource groups are namespaces of the control plane
//! (`/subscriptions/<sub>/resourcegroups/<rg>`, lower-cased as ARM names are
//! case-insensitive): a container group is a workload like any other, listed
//! by the other frontends for the same owner.

mod api_version;
mod cloud_error;
mod operation;
mod path;
mod provider;
mod resources;
mod spec;
mod view;

use cloud_error::CloudError;
use gantry_sdk::http::{self, Request};
use gantry_sdk::http_frontend::exports::wasi::http::incoming_handler::Guest;
use gantry_sdk::http_frontend::gantry::plugin::config;
use gantry_sdk::http_frontend::gantry::plugin::control::{
    self, CreateRequest, PageRequest, StopOptions, WorkloadFilter,
};
use gantry_sdk::http_frontend::gantry::plugin::types::{
    Caller, DesiredState, Error, LogOptions, Workload,
};
use gantry_sdk::wasip2::http::types::{IncomingRequest, Method, ResponseOutparam};
use operation::{Kind, Operation};
use path::{ContainerEndpoint, GroupAction, LocationList, ResourceGroup, Route};
use serde_json::{Value, json};

/// Rows per page of a list; more come through `nextLink`.
const PAGE_ROWS: u32 = 100;

/// Seconds clients wait between polls of a long-running operation.
const RETRY_AFTER: &str = "1";

struct Arm;

/// A successful answer.
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Value,
}

impl Reply {
    fn ok(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body,
        }
    }

    fn empty(status: u16) -> Self {
        Self::ok(status, Value::Null)
    }
}

type Answer = Result<Reply, CloudError>;

/// What every handler knows about the request.
struct Ctx<'a> {
    req: &'a Request,
    caller: Caller,
    api_version: String,
}

impl Ctx<'_> {
    fn is_admin(&self) -> bool {
        self.caller.is_admin()
    }

    /// Scheme and authority clients reach this frontend at, for absolute URLs.
    fn base_url(&self) -> String {
        config::get("public-base-url")
            .map(|u| u.trim_end_matches('/').to_string())
            .unwrap_or_else(|| {
                format!(
                    "{}://{}",
                    self.req.scheme,
                    self.req.authority.as_deref().unwrap_or("127.0.0.1")
                )
            })
    }

    /// Headers announcing a long-running operation.
    fn async_headers(
        &self,
        subscription: &str,
        location: &str,
        op: &Operation,
    ) -> Vec<(&'static str, String)> {
        let url = format!(
            "{}/subscriptions/{subscription}/providers/{}/locations/{location}/operations/{}?api-version={}",
            self.base_url(),
            path::PROVIDER,
            op.id(),
            self.api_version
        );
        vec![
            ("azure-asyncoperation", url),
            ("retry-after", RETRY_AFTER.to_string()),
        ]
    }

    fn filter(&self) -> WorkloadFilter {
        WorkloadFilter {
            all_owners: self.is_admin(),
            ..WorkloadFilter::default()
        }
    }
}

/// The model codes of the host's GPUs (or its catalogue).
fn gpu_codes() -> Vec<String> {
    control::gpu_models().into_iter().map(|m| m.code).collect()
}

/// The container group of `w`, with the GPUs its containers hold.
fn group_view(w: &Workload, group: &ResourceGroup, provisioning: Option<&str>) -> Value {
    let gpus = if w.spec.containers.iter().any(|c| c.wants_gpu()) {
        control::gpus(&w.id).unwrap_or_default()
    } else {
        Vec::new()
    };
    view::group(w, group, provisioning, &gpus)
}

fn parse_body<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, CloudError> {
    if let Some(ct) = req.header("content-type")
        && !ct.to_ascii_lowercase().contains("json")
    {
        return Err(CloudError::new(
            415,
            "UnsupportedMediaType",
            format!(
                "The content media type '{ct}' is not supported. Only 'application/json' is supported."
            ),
        ));
    }
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Err(CloudError::invalid(vec![(
            String::new(),
            "the request body is required".into(),
        )]));
    }
    gantry_sdk::json::from_slice(&req.body)
        .map_err(|e| CloudError::invalid(vec![(String::new(), e.to_string())]))
}

/// The container group `name` of `group`, if the caller can see it.
fn find(ctx: &Ctx, group: &ResourceGroup, name: &str) -> Result<Option<Workload>, CloudError> {
    let filter = WorkloadFilter {
        namespace: Some(group.namespace()),
        name: Some(name.to_string()),
        ..ctx.filter()
    };
    Ok(control::list(&filter, PageRequest { page: 1, rows: 1 })?
        .items
        .into_iter()
        .next())
}

fn must_find(ctx: &Ctx, group: &ResourceGroup, name: &str) -> Result<Workload, CloudError> {
    find(ctx, group, name)?.ok_or_else(|| CloudError::group_not_found(name, &group.name))
}

fn location_of(w: &Workload) -> String {
    view::annotation(w, spec::keys::LOCATION)
        .unwrap_or("local")
        .to_string()
}

/// A page of workloads as ARM's `{value, nextLink}`.
fn list(ctx: &Ctx, filter: WorkloadFilter, fallback: &ResourceGroup) -> Answer {
    let page = match ctx.req.param("$skipToken") {
        None => 1,
        Some(t) => t.parse::<u32>().ok().filter(|p| *p >= 1).ok_or_else(|| {
            CloudError::new(
                400,
                "InvalidSkipToken",
                format!("'{t}' is not a skip token this API issued"),
            )
        })?,
    };
    let result = control::list(
        &filter,
        PageRequest {
            page,
            rows: PAGE_ROWS,
        },
    )?;
    let value: Vec<Value> = result
        .items
        .iter()
        .map(|w| group_view(w, fallback, None))
        .collect();
    let mut body = json!({ "value": value });
    if u64::from(page) * u64::from(PAGE_ROWS) < result.total {
        body["nextLink"] = format!(
            "{}{}?api-version={}&$skipToken={}",
            ctx.base_url(),
            ctx.req.path,
            ctx.api_version,
            page + 1
        )
        .into();
    }
    Ok(Reply::ok(200, body))
}

fn create_or_update(ctx: &Ctx, group: &ResourceGroup, name: &str) -> Answer {
    if !spec::valid_name(name) {
        return Err(CloudError::new(
            400,
            "InvalidContainerGroupName",
            format!(
                "The container group name '{name}' is invalid: use 1-63 lower-case letters, digits or '-', not starting or ending with '-'."
            ),
        ));
    }
    let body: spec::GroupBody = parse_body(ctx.req)?;
    let desired = spec::desired(body, group, &gpu_codes())?;
    let location = desired.location.clone();
    let Some(current) = find(ctx, group, name)? else {
        let w = control::create(&CreateRequest {
            name: name.to_string(),
            namespace: group.namespace(),
            spec: desired.spec,
            annotations: desired.annotations,
            start: true,
        })?;
        let op = Operation {
            kind: Kind::Put,
            workload: w.id.clone(),
            revision: w.revision,
        };
        return Ok(Reply {
            status: 201,
            headers: ctx.async_headers(&group.subscription, &location, &op),
            body: group_view(&w, group, None),
        });
    };
    if location_of(&current) != location
        && view::annotation(&current, spec::keys::LOCATION).is_some()
    {
        return Err(CloudError::new(
            409,
            "LocationCannotBeChanged",
            format!(
                "The container group '{name}' is in '{}'; its location cannot be changed to '{location}'.",
                location_of(&current)
            ),
        ));
    }
    // Secure values are never handed back, so a definition carrying them
    // cannot be compared with the stored one: it always makes a new revision.
    let has_secrets = desired
        .spec
        .containers
        .iter()
        .flat_map(|c| &c.env)
        .any(|v| v.secret);
    let changed = has_secrets
        || serde_json::to_value(&desired.spec).ok() != serde_json::to_value(&current.spec).ok();
    let mut annotations: Vec<(String, String)> = current
        .annotations
        .iter()
        // What the new definition says replaces what the old one said.
        .filter(|(k, _)| !k.starts_with("arm.") && !k.starts_with("io.gantry.ingress."))
        .cloned()
        .collect();
    annotations.extend(desired.annotations);
    // A new revision and its annotations change in one step, or not at all.
    let w = if changed {
        control::revise(
            &current.id,
            &control::UpdateRequest {
                spec: desired.spec,
                annotations: Some(annotations),
            },
        )?
    } else {
        control::set_annotations(&current.id, &annotations)?
    };
    let op = Operation {
        kind: Kind::Put,
        workload: w.id.clone(),
        revision: w.revision,
    };
    Ok(Reply {
        status: 200,
        headers: ctx.async_headers(&group.subscription, &location, &op),
        body: group_view(&w, group, None),
    })
}

fn patch_tags(ctx: &Ctx, group: &ResourceGroup, name: &str) -> Answer {
    #[derive(serde::Deserialize)]
    struct Patch {
        tags: Option<std::collections::BTreeMap<String, String>>,
    }
    let patch: Patch = parse_body(ctx.req)?;
    let w = must_find(ctx, group, name)?;
    let Some(tags) = patch.tags else {
        return Ok(Reply::ok(200, group_view(&w, group, None)));
    };
    let mut annotations: Vec<(String, String)> = w
        .annotations
        .into_iter()
        .filter(|(k, _)| k != spec::keys::TAGS)
        .collect();
    annotations.push((
        spec::keys::TAGS.to_string(),
        serde_json::to_string(&tags).unwrap_or_default(),
    ));
    let w = control::set_annotations(&w.id, &annotations)?;
    Ok(Reply::ok(200, group_view(&w, group, None)))
}

fn delete(ctx: &Ctx, group: &ResourceGroup, name: &str) -> Answer {
    let Some(w) = find(ctx, group, name)? else {
        return Ok(Reply::empty(204));
    };
    control::delete(&w.id, true)?;
    let op = Operation {
        kind: Kind::Delete,
        workload: w.id.clone(),
        revision: w.revision,
    };
    Ok(Reply {
        status: 200,
        headers: ctx.async_headers(&group.subscription, &location_of(&w), &op),
        body: group_view(&w, group, Some("Deleting")),
    })
}

fn action(ctx: &Ctx, group: &ResourceGroup, name: &str, action: GroupAction) -> Answer {
    let w = must_find(ctx, group, name)?;
    let stopped = w.desired == DesiredState::Stopped;
    let long_running = |kind: Kind, status: u16, w: Workload| Reply {
        status,
        headers: ctx.async_headers(
            &group.subscription,
            &location_of(&w),
            &Operation {
                kind,
                workload: w.id.clone(),
                revision: w.revision,
            },
        ),
        body: Value::Null,
    };
    match action {
        GroupAction::Stop if stopped => Ok(Reply::empty(204)),
        GroupAction::Stop => {
            control::stop(
                &w.id,
                &StopOptions {
                    signal: None,
                    timeout_seconds: None,
                    force: false,
                },
            )?;
            Ok(Reply::empty(204))
        }
        GroupAction::Start if view::group_state(&w) == "Running" => Ok(Reply::empty(204)),
        GroupAction::Start => Ok(long_running(Kind::Start, 202, control::start(&w.id)?)),
        // A stopped group restarts by starting, as in ACI.
        GroupAction::Restart if stopped => {
            Ok(long_running(Kind::Restart, 204, control::start(&w.id)?))
        }
        GroupAction::Restart => Ok(long_running(Kind::Restart, 204, control::restart(&w.id)?)),
    }
}

fn container_logs(ctx: &Ctx, group: &ResourceGroup, name: &str, container: &str) -> Answer {
    let w = must_find(ctx, group, name)?;
    if !w.spec.containers.iter().any(|c| c.name == container) {
        return Err(CloudError::new(
            404,
            "ResourceNotFound",
            format!("The container '{container}' of container group '{name}' was not found."),
        ));
    }
    let tail = match ctx.req.param("tail") {
        None | Some("") => None,
        Some(t) => Some(t.parse::<u32>().map_err(|_| {
            CloudError::invalid(vec![(
                "tail".into(),
                format!("'{t}' is not a non-negative integer"),
            )])
        })?),
    };
    let timestamps = match ctx.req.param("timestamps") {
        None | Some("") => false,
        Some(t) if t.eq_ignore_ascii_case("true") => true,
        Some(t) if t.eq_ignore_ascii_case("false") => false,
        Some(t) => {
            return Err(CloudError::invalid(vec![(
                "timestamps".into(),
                format!("'{t}' is not true or false"),
            )]));
        }
    };
    let reader = control::logs(
        &w.id,
        &LogOptions {
            container: Some(container.to_string()),
            tail,
            since: None,
            follow: false,
            timestamps,
        },
    )?;
    let mut content = String::new();
    // Without `follow` the stream ends by itself; the bound only guards a
    // runtime that never says so.
    for _ in 0..200 {
        match reader.next(2_000)? {
            None => break,
            Some(lines) => {
                for l in lines {
                    if let Some(at) = l
                        .timestamp
                        .as_ref()
                        .filter(|_| timestamps)
                        .and_then(view::rfc3339)
                    {
                        content.push_str(&at);
                        content.push(' ');
                    }
                    content.push_str(&l.line);
                    content.push('\n');
                }
            }
        }
    }
    Ok(Reply::ok(200, json!({ "content": content })))
}

fn operation_status(subscription: &str, location: &str, id: &str) -> Answer {
    let not_found = || {
        CloudError::new(
            404,
            "OperationNotFound",
            format!("The operation '{id}' was not found."),
        )
    };
    let op = Operation::parse(id).ok_or_else(not_found)?;
    let now = control::get(&op.workload);
    if let Ok(w) = &now
        && view::annotation(w, spec::keys::SUBSCRIPTION)
            .is_some_and(|s| !s.eq_ignore_ascii_case(subscription))
    {
        return Err(not_found());
    }
    let status = match op.status(now.as_ref()) {
        Ok(s) => s,
        Err(Error::Forbidden(_)) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    let mut body = json!({
        "id": format!("/subscriptions/{subscription}/providers/{}/locations/{location}/operations/{id}", path::PROVIDER),
        "name": id,
        "status": status.status,
    });
    if let Some((code, message)) = status.error {
        body["error"] = json!({"code": code, "message": message});
    }
    Ok(Reply::ok(200, body))
}

fn location_list(ctx: &Ctx, subscription: &str, location: &str, what: LocationList) -> Answer {
    let location = spec::normalize_location(location);
    Ok(Reply::ok(
        200,
        match what {
            LocationList::Usages => {
                let filter = WorkloadFilter {
                    namespace_prefix: Some(format!(
                        "{}/",
                        path::subscription_namespace(subscription)
                    )),
                    annotations: vec![(spec::keys::LOCATION.to_string(), location)],
                    ..ctx.filter()
                };
                let mut all = Vec::new();
                for page in 1.. {
                    let result = control::list(&filter, PageRequest { page, rows: 1000 })?;
                    let done = result.items.is_empty()
                        || all.len() + result.items.len() >= result.total as usize;
                    all.extend(result.items);
                    if done {
                        break;
                    }
                }
                provider::usages(&all)
            }
            LocationList::Capabilities => provider::capabilities(&location, &gpu_codes()),
            LocationList::CachedImages => json!({ "value": [] }),
        },
    ))
}

fn not_supported(what: &str) -> CloudError {
    CloudError::new(
        501,
        "OperationNotSupported",
        format!("Container {what} is not supported by this gantry version yet."),
    )
}

/// The methods a route answers, for 405s.
fn allowed(route: &Route) -> &'static str {
    match route {
        Route::Group { .. } => "GET, PUT, PATCH, DELETE",
        Route::GroupAction { .. } => "POST",
        Route::Container {
            what: ContainerEndpoint::Logs,
            ..
        } => "GET",
        Route::Container { .. } => "POST",
        _ => "GET",
    }
}

fn dispatch(ctx: &Ctx, route: &Route) -> Option<Answer> {
    let m = &ctx.req.method;
    let get = matches!(m, Method::Get);
    let post = matches!(m, Method::Post);
    Some(match route {
        Route::ProviderOperations if get => Ok(Reply::ok(200, provider::operations())),
        Route::SubscriptionGroups { subscription } if get => {
            let filter = WorkloadFilter {
                namespace_prefix: Some(format!("{}/", path::subscription_namespace(subscription))),
                ..ctx.filter()
            };
            let fallback = ResourceGroup {
                subscription: subscription.clone(),
                name: String::new(),
            };
            list(ctx, filter, &fallback)
        }
        Route::Location {
            subscription,
            location,
            what,
        } if get => location_list(ctx, subscription, location, *what),
        Route::OperationStatus {
            subscription,
            location,
            operation,
        } if get => operation_status(subscription, location, operation),
        Route::ResourceGroupGroups { group } if get => {
            let filter = WorkloadFilter {
                namespace: Some(group.namespace()),
                ..ctx.filter()
            };
            list(ctx, filter, group)
        }
        Route::Group { group, name } => match m {
            Method::Get => {
                must_find(ctx, group, name).map(|w| Reply::ok(200, group_view(&w, group, None)))
            }
            Method::Put => create_or_update(ctx, group, name),
            Method::Patch => patch_tags(ctx, group, name),
            Method::Delete => delete(ctx, group, name),
            _ => return None,
        },
        Route::GroupAction {
            group,
            name,
            action: a,
        } if post => action(ctx, group, name, *a),
        Route::Container {
            group,
            name,
            container,
            what: ContainerEndpoint::Logs,
        } if get => container_logs(ctx, group, name, container),
        Route::Container {
            what: ContainerEndpoint::Exec,
            ..
        } if post => Err(not_supported("exec")),
        Route::Container {
            what: ContainerEndpoint::Attach,
            ..
        } if post => Err(not_supported("attach")),
        _ => return None,
    })
}

impl From<CloudError> for Reply {
    fn from(e: CloudError) -> Self {
        Reply::ok(e.status, e.body())
    }
}

impl Reply {
    fn with_header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }
}

/// What a request path addresses: the container-instance provider, or the
/// resource manager's own subscriptions and resource groups.
enum Target {
    Provider(Route),
    Resources(resources::Route),
}

impl Target {
    fn parse(path: &str) -> Option<Self> {
        path::parse(path)
            .map(Target::Provider)
            .or_else(|| resources::parse(path).map(Target::Resources))
    }

    fn api_version(&self, values: &[&str]) -> Result<String, CloudError> {
        match self {
            Target::Provider(_) => api_version::check(values),
            Target::Resources(r) => api_version::check_for(values, r.kind(), r.versions()),
        }
    }

    fn dispatch(&self, ctx: &Ctx) -> Option<Answer> {
        match self {
            Target::Provider(route) => dispatch(ctx, route),
            Target::Resources(route) => resources::dispatch(ctx, route),
        }
    }

    fn allowed(&self) -> &'static str {
        match self {
            Target::Provider(route) => allowed(route),
            Target::Resources(route) => resources::allowed(route),
        }
    }

    /// Refuse a caller that does not hold the path's subscription, with
    /// ARM's 403 for the action it asked for, whatever lies there. The PUT
    /// of a container group claims a subscription nobody holds yet.
    fn authorize(&self, ctx: &Ctx) -> Result<(), CloudError> {
        let (write, delete) = (
            matches!(ctx.req.method, Method::Put | Method::Patch | Method::Post),
            matches!(ctx.req.method, Method::Delete),
        );
        let (subscription, action, claim) = match self {
            Target::Provider(route) => (
                route.subscription(),
                route.action(write, delete),
                matches!(route, Route::Group { .. }) && matches!(ctx.req.method, Method::Put),
            ),
            Target::Resources(route) => (route.subscription(), route.action().to_string(), false),
        };
        let Some(subscription) = subscription else {
            return Ok(());
        };
        match control::scope_access(&path::subscription_namespace(subscription), claim) {
            Ok(()) => Ok(()),
            Err(Error::Forbidden(_)) => Err(CloudError::authorization_failed(
                &ctx.caller.subject,
                &action,
                ctx.req.path.trim_end_matches('/'),
            )),
            Err(e) => Err(e.into()),
        }
    }
}

/// Answer one request: route, authenticate, check the api-version, dispatch.
fn handle(req: &Request) -> Reply {
    let Some(target) = Target::parse(&req.path) else {
        return CloudError::new(
            404,
            "InvalidResourceType",
            format!(
                "The resource type for '{}' could not be found in the namespace 'Microsoft.ContainerInstance'.",
                req.path
            ),
        )
        .into();
    };
    let caller = match req.caller() {
        Ok(c) => c,
        Err(e) => {
            return Reply::from(CloudError::from(e)).with_header("www-authenticate", "Bearer");
        }
    };
    let versions: Vec<&str> = req
        .query
        .iter()
        .filter(|(k, _)| k == "api-version")
        .map(|(_, v)| v.as_str())
        .collect();
    let api_version = match target.api_version(&versions) {
        Ok(v) => v,
        Err(e) => return e.into(),
    };
    let ctx = Ctx {
        req,
        caller,
        api_version,
    };
    if let Err(e) = target.authorize(&ctx) {
        return e.into();
    }
    match target.dispatch(&ctx) {
        Some(Ok(reply)) => reply,
        Some(Err(e)) => e.into(),
        None => {
            let allow = target.allowed();
            Reply::from(CloudError::new(
                405,
                "MethodNotAllowed",
                format!(
                    "The requested resource does not support http method '{:?}'; it supports {allow}.",
                    req.method
                ),
            ))
            .with_header("allow", allow)
        }
    }
}

impl Guest for Arm {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let req = match Request::read(&request) {
            Ok(r) => r,
            Err(e) => {
                let err = CloudError::new(413, "RequestEntityTooLarge", e);
                return http::json(out, err.status, &err.body());
            }
        };
        let client_request_id = req.header("x-ms-client-request-id").map(str::to_string);
        let mut reply = handle(&req);
        if let Some(id) = client_request_id {
            reply = reply.with_header("x-ms-client-request-id", &id);
        }
        let headers: Vec<(&str, &str)> = reply
            .headers
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        if reply.body.is_null() {
            drop(http::start(out, reply.status, &headers));
        } else {
            http::json_with(out, reply.status, &headers, &reply.body);
        }
    }
}

gantry_sdk::http_frontend::export_http_frontend!(Arm);
