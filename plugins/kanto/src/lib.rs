//! gantry's Kanto frontend: Eclipse Kanto's container management over MQTT.
//! Commands arrive as Hono commands carrying Ditto envelopes, are dispatched
//! on the envelope's path to the features of the device's containers thing
//! (ContainerFactory, Container:<id>, Metrics, SoftwareUpdatable), act on the host's `control`
//! interface, and are answered on Hono's response topic. Every control-plane
//! event becomes a Ditto twin update on `e/<tenant>/<thingId>`, so workloads
//! created through other frontends appear as Container features too.

mod config;
mod envelope;
mod features;
mod metrics;
mod policy;
mod software;
mod thing;
mod twin;

use envelope::{Command, Failure};
use gantry_sdk::mqtt_frontend::exports::gantry::plugin::mqtt_handler::{
    Guest, Message, Subscription,
};
use gantry_sdk::mqtt_frontend::gantry::plugin::control::{
    self, CreateRequest, PageRequest, ReconfigureRequest, StopOptions, WorkloadFilter,
};
use gantry_sdk::mqtt_frontend::gantry::plugin::mqtt_client::{self, Qos};
use gantry_sdk::mqtt_frontend::gantry::plugin::types::{Error, Event, EventKind, Workload};
use gantry_sdk::mqtt_frontend::gantry::plugin::{config as host_config, logging};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use thing::{Device, Spelling};

/// Where Kanto asks the cloud connector who the device is.
const BOOTSTRAP_REQUEST: &str = "edge/thing/request";
/// Where the answer comes.
const BOOTSTRAP_RESPONSE: &str = "edge/thing/response";
/// The timer repeating the bootstrap request until it is answered.
const BOOTSTRAP_TIMER: &str = "bootstrap";
/// How often the request is repeated.
const BOOTSTRAP_EVERY_MS: u32 = 2_000;

thread_local! {
    /// The device, once known (from config or the bootstrap answer).
    static DEVICE: RefCell<Option<Device>> = const { RefCell::new(None) };
    /// The last state published per container, so repeated events publish once.
    static PUBLISHED: RefCell<HashMap<String, Value>> = RefCell::new(HashMap::new());
}

struct Kanto;

fn device() -> Option<Device> {
    DEVICE.with(|d| d.borrow().clone())
}

fn configured_device() -> Option<Device> {
    let device_id = host_config::get("device-id").filter(|s| !s.is_empty())?;
    Some(Device {
        device_id,
        tenant_id: host_config::get("tenant-id").unwrap_or_else(|| "default".into()),
    })
}

fn log(level: logging::Level, message: &str) {
    logging::log(level, message);
}

/// Publish `value` on `topic` (QoS 1, not retained), logging a failure.
fn publish(topic: &str, value: &Value) {
    if let Err(e) =
        mqtt_client::publish(topic, value.to_string().as_bytes(), Qos::AtLeastOnce, false)
    {
        log(
            logging::Level::Warn,
            &format!("publishing to {topic}: {e:?}"),
        );
    }
}

/// Every workload the device may see, and whether that is all of them (a
/// listing that failed part way, or a device without ADMIN, sees less).
fn every_workload() -> (Vec<Workload>, bool) {
    let mut all = Vec::new();
    for page in 1.. {
        let filter = WorkloadFilter {
            all_owners: true,
            ..WorkloadFilter::default()
        };
        match control::list(&filter, PageRequest { page, rows: 1000 }) {
            Ok(p) => {
                let done = p.items.is_empty() || all.len() + p.items.len() >= p.total as usize;
                all.extend(p.items);
                if done {
                    return (all, true);
                }
            }
            // Without ADMIN, the device sees the workloads it created.
            Err(Error::Forbidden(_)) if page == 1 => {
                let filter = WorkloadFilter {
                    all_owners: false,
                    ..filter
                };
                if let Ok(p) = control::list(
                    &filter,
                    PageRequest {
                        page: 1,
                        rows: 1000,
                    },
                ) {
                    all = p.items;
                }
                return (all, false);
            }
            Err(e) => {
                log(logging::Level::Warn, &format!("listing workloads: {e:?}"));
                return (all, false);
            }
        }
    }
    (all, false)
}

/// The whole twin, as after a (re)connection: the factory, metrics and
/// every container (and the deletion of containers removed meanwhile).
fn publish_twin(device: &Device) {
    let (all, complete) = every_workload();
    let mut now: HashSet<String> = [
        "/features/ContainerFactory".to_string(),
        "/features/Metrics".to_string(),
        format!("/features/{}", software::FEATURE),
    ]
    .into();
    now.extend(
        all.iter()
            .map(|w| format!("/features/{}", features::container_feature_id(&w.id))),
    );
    for waiting in software::reset_dependencies(&all) {
        twin::delete(device, &waiting);
    }
    // Only a complete listing says what is gone.
    if complete {
        for gone in twin::gone_since(&now) {
            twin::delete(device, &gone);
        }
    }
    twin::put(
        device,
        "/features/ContainerFactory",
        json!({"definition": [features::FACTORY_DEFINITION]}),
    );
    twin::put(
        device,
        "/features/Metrics",
        json!({"definition": [features::METRICS_DEFINITION]}),
    );
    twin::put(
        device,
        &format!("/features/{}", software::FEATURE),
        software::feature(),
    );
    software::after_feature(&DeviceTwin(device));
    for w in all {
        remember(&w.id, features::state(&w));
        twin::put(
            device,
            &format!("/features/{}", features::container_feature_id(&w.id)),
            features::container(&w),
        );
    }
}

/// The device's twin, where SoftwareUpdatable writes its progress.
struct DeviceTwin<'a>(&'a Device);

impl software::Twin for DeviceTwin<'_> {
    fn modify(&self, path: &str, value: Value) {
        twin::put(self.0, path, value);
    }

    fn delete(&self, path: &str) {
        twin::delete(self.0, path);
    }

    fn merge(&self, path: &str, patch: Value) {
        twin::merge(self.0, path, patch);
    }
}

/// Record `state` as the last published of container `id`; the one before.
fn remember(id: &str, state: Value) -> Option<Value> {
    PUBLISHED.with(|p| p.borrow_mut().insert(id.to_string(), state))
}

/// Record `w`'s state as published; the state, unless it already was.
fn new_state(w: &Workload) -> Option<Value> {
    let state = features::state(w);
    let before = remember(&w.id, state.clone());
    (before.as_ref() != Some(&state)).then_some(state)
}

fn control_failure(e: Error) -> Failure {
    match e {
        Error::Invalid(i) => Failure::invalid(i.message),
        Error::NotFound(m) => Failure::invalid(format!("unknown feature: {m}")),
        Error::Conflict(m) | Error::Backend(m) | Error::Unavailable(m) | Error::Internal(m) => {
            Failure::failed(m)
        }
        Error::Forbidden(m) | Error::Unauthenticated(m) | Error::Unsupported(m) => {
            Failure::failed(m)
        }
    }
}

fn arg<T: serde::de::DeserializeOwned>(value: &Option<Value>, what: &str) -> Result<T, Failure> {
    let v = match value {
        None | Some(Value::Null) => json!({}),
        Some(v) => v.clone(),
    };
    serde_json::from_value(v).map_err(|e| Failure::invalid(format!("{what}: {e}")))
}

/// A default container name from an image reference (`docker.io/library/nginx:1` → `nginx`).
fn name_from_image(image: &str) -> String {
    let last = image.rsplit('/').next().unwrap_or(image);
    let base = last.split(['@', ':']).next().unwrap_or(last);
    if base.is_empty() {
        "container".into()
    } else {
        base.to_string()
    }
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateArgs {
    image_ref: String,
    name: Option<String>,
    config: Option<config::ContainerConfig>,
    #[serde(default)]
    start: bool,
}

fn factory(op: &str, value: &Option<Value>) -> Result<Option<Value>, Failure> {
    let args: CreateArgs = match op {
        "create" | "createWithConfig" => arg(value, op)?,
        _ => {
            return Err(Failure::not_found(format!(
                "ContainerFactory has no operation `{op}`"
            )));
        }
    };
    if op == "create" && (args.config.is_some() || args.name.is_some()) {
        return Err(Failure::invalid(
            "create takes imageRef and start; use createWithConfig for a name or config",
        ));
    }
    let name = args
        .name
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| name_from_image(&args.image_ref));
    let spec = config::spec(
        &name,
        &args.image_ref,
        args.config.unwrap_or_default(),
        &policy::Policy::from_settings(),
    )?;
    // Created first and started after, so the twin sees CREATED, then RUNNING.
    let w = control::create(&CreateRequest {
        name,
        namespace: String::new(),
        spec,
        annotations: vec![("kanto.created".into(), "true".into())],
        start: false,
    })
    .map_err(control_failure)?;
    if args.start {
        control::start(&w.id).map_err(control_failure)?;
    }
    Ok(Some(Value::String(w.id)))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct StopArgs {
    signal: Option<String>,
    timeout: Option<i64>,
    #[serde(default)]
    force: bool,
    /// Kanto's documented, unused `name`.
    #[serde(default, rename = "name")]
    _name: Option<String>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateArgs {
    restart_policy: Option<config::RestartPolicyConfig>,
    resources: Option<config::ResourcesConfig>,
}

fn container(id: &str, op: &str, value: &Option<Value>) -> Result<Option<Value>, Failure> {
    let w = control::get(id).map_err(control_failure)?;
    let done = |r: Result<Workload, Error>| r.map(|_| None).map_err(control_failure);
    match op {
        "start" => done(control::start(id)),
        "stop" => done(control::stop(
            id,
            &StopOptions {
                signal: None,
                timeout_seconds: None,
                force: false,
            },
        )),
        "stopWithOptions" => {
            let a: StopArgs = arg(value, "stopWithOptions")?;
            let timeout_seconds = a
                .timeout
                .filter(|t| *t > 0)
                .map(|t| u32::try_from(t).unwrap_or(u32::MAX));
            done(control::stop(
                id,
                &StopOptions {
                    signal: a.signal.filter(|s| !s.is_empty()),
                    timeout_seconds,
                    force: a.force,
                },
            ))
        }
        "pause" => done(control::pause(id)),
        "resume" => done(control::resume(id)),
        "rename" => match value {
            Some(Value::String(name)) if !name.is_empty() => done(control::rename(id, name)),
            _ => Err(Failure::invalid(
                "rename takes the new name as a JSON string",
            )),
        },
        "update" => {
            let a: UpdateArgs = arg(value, "update")?;
            let restart = a
                .restart_policy
                .as_ref()
                .map(config::restart_policy)
                .transpose()?;
            let resources = match (&a.resources, w.spec.containers.first()) {
                (Some(r), Some(c)) => Some(config::resources(r, &c.resources)?),
                _ => None,
            };
            done(control::reconfigure(
                id,
                &ReconfigureRequest {
                    container: None,
                    resources,
                    restart,
                },
            ))
        }
        "remove" => {
            let force = match value {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(Failure::invalid("remove takes `force` as a JSON boolean")),
            };
            control::delete(id, force)
                .map(|()| None)
                .map_err(control_failure)
        }
        _ => Err(Failure::not_found(format!(
            "Container has no operation `{op}`"
        ))),
    }
}

fn metrics_request(op: &str, value: &Option<Value>) -> Result<Option<Value>, Failure> {
    if op != "request" {
        return Err(Failure::not_found(format!(
            "Metrics has no operation `{op}`"
        )));
    }
    let r: metrics::Request = arg(value, "request")?;
    let ms = metrics::parse_duration(&r.frequency)?;
    let filters = r.filter.unwrap_or_default();
    let id = metrics::timer_id(&filters);
    // One request at a time, as in Kanto: a new one replaces the last.
    if let Some(old) = METRICS_TIMER.with(|t| t.borrow_mut().take()) {
        mqtt_client::cancel_timer(&old);
    }
    if ms > 0 {
        mqtt_client::set_timer(&id, u32::try_from(ms).unwrap_or(u32::MAX), true);
        METRICS_TIMER.with(|t| *t.borrow_mut() = Some(id));
    }
    Ok(None)
}

thread_local! {
    static METRICS_TIMER: RefCell<Option<String>> = const { RefCell::new(None) };
}

fn metrics_tick(device: &Device, timer: &str) {
    let Some(filters) = metrics::filters_of(timer) else {
        return;
    };
    let mut snapshot = Vec::new();
    for w in every_workload().0 {
        let originator = features::container_feature_id(&w.id);
        let ids = metrics::wanted(&filters, &originator);
        if ids.is_empty() {
            continue;
        }
        if let Ok(stats) = control::stats(&w.id, None) {
            snapshot.push(json!({"originator": originator, "measurements": metrics::measurements(&stats, &ids)}));
        }
    }
    let now = control::now();
    let prefix = thing::ditto_prefix(&device.thing_id());
    let env = json!({
        "topic": format!("{prefix}/things/live/messages/data"),
        "headers": {"response-required": false, "content-type": "application/json"},
        "path": "/features/Metrics/outbox/messages/data",
        "value": {"snapshot": snapshot, "timestamp": now.seconds},
    });
    publish(&device.event_topic(), &env);
}

/// `/features/<feature>/inbox/messages/<op>`.
fn parse_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/features/")?;
    let (feature, op) = rest.split_once("/inbox/messages/")?;
    (!feature.is_empty() && !op.is_empty() && !op.contains('/')).then_some((feature, op))
}

fn dispatch(device: &Device, spelling: Spelling, cmd: &Command) -> Result<Option<Value>, Failure> {
    let prefix = thing::ditto_prefix(&device.thing_for(spelling));
    let Some(op_in_topic) = cmd
        .topic
        .strip_prefix(&format!("{prefix}/things/live/messages/"))
    else {
        return Err(Failure::not_found(format!(
            "`{}` does not address thing {}",
            cmd.topic,
            device.thing_for(spelling)
        )));
    };
    let (feature, op) = parse_path(&cmd.path).ok_or_else(|| {
        Failure::invalid(format!(
            "path `{}` is not /features/<id>/inbox/messages/<operation>",
            cmd.path
        ))
    })?;
    if op != op_in_topic {
        return Err(Failure::invalid(format!(
            "topic operation `{op_in_topic}` and path operation `{op}` differ"
        )));
    }
    match feature {
        "ContainerFactory" => factory(op, &cmd.value),
        "Metrics" => metrics_request(op, &cmd.value),
        software::FEATURE => software::operation(op, &cmd.value),
        f => match f.strip_prefix("Container:") {
            Some(id) if !id.is_empty() => container(id, op, &cmd.value),
            _ => Err(Failure::invalid(format!("unknown feature `{f}`"))),
        },
    }
}

fn on_command(device: &Device, topic: &thing::CommandTopic, payload: &[u8]) {
    let Some(spelling) = device.spelling_of(&topic.thing) else {
        return;
    };
    // Kanto answers only with a request id; the seed's documented spelling
    // answers on `res/<reqId>/<operation>` whatever the request id.
    let answer_topic = |status: u16| match spelling {
        Spelling::Kanto => (!topic.req_id.is_empty())
            .then(|| format!("command//{}/res/{}/{status}", topic.thing, topic.req_id)),
        Spelling::Documented => Some(format!(
            "command//{}/res/{}/{}",
            topic.thing, topic.req_id, topic.subject
        )),
    };
    let cmd = match envelope::parse(payload) {
        Ok(c) => c,
        Err((failure, correlation_id)) => {
            if let Some(t) = answer_topic(failure.status) {
                publish(&t, &envelope::unreadable(&failure, correlation_id));
            }
            return;
        }
    };
    let result = dispatch(device, spelling, &cmd);
    if let Err(f) = &result {
        log(
            logging::Level::Info,
            &format!("{} {}: {} {}", cmd.path, topic.req_id, f.code, f.message),
        );
    }
    if !cmd.response_required {
        return;
    }
    let (status, env) = envelope::response(&cmd, &result);
    if let Some(t) = answer_topic(status) {
        publish(&t, &env);
    }
}

fn on_bootstrap(payload: &[u8]) -> Result<(), String> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| format!("bootstrap answer: {e}"))?;
    let device_id = v
        .get("deviceId")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or("bootstrap answer without deviceId")?;
    let d = Device {
        device_id: device_id.to_string(),
        tenant_id: v
            .get("tenantId")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string(),
    };
    mqtt_client::cancel_timer(BOOTSTRAP_TIMER);
    DEVICE.with(|cell| *cell.borrow_mut() = Some(d.clone()));
    publish_twin(&d);
    Ok(())
}

impl Guest for Kanto {
    fn subscriptions() -> Vec<Subscription> {
        let mut subs = vec![Subscription {
            filter: "command//+/req/#".into(),
            qos: Qos::AtLeastOnce,
        }];
        if configured_device().is_none() {
            subs.push(Subscription {
                filter: BOOTSTRAP_RESPONSE.into(),
                qos: Qos::AtLeastOnce,
            });
        }
        subs
    }

    fn on_connect() {
        PUBLISHED.with(|p| p.borrow_mut().clear());
        if let Err(why) = twin::configured_form() {
            log(logging::Level::Error, &why);
        }
        if let Some(d) = configured_device() {
            DEVICE.with(|cell| *cell.borrow_mut() = Some(d));
        }
        match device() {
            Some(d) => publish_twin(&d),
            None => {
                publish(BOOTSTRAP_REQUEST, &json!({}));
                mqtt_client::set_timer(BOOTSTRAP_TIMER, BOOTSTRAP_EVERY_MS, true);
            }
        }
    }

    fn on_message(message: Message) -> Result<(), String> {
        if message.topic == BOOTSTRAP_RESPONSE {
            return on_bootstrap(&message.payload);
        }
        let Some(topic) = thing::parse_command(&message.topic) else {
            return Err(format!("not a command topic: {}", message.topic));
        };
        let Some(d) = device() else {
            return Err("the device is not known yet (no bootstrap answer)".into());
        };
        on_command(&d, &topic, &message.payload);
        Ok(())
    }

    fn on_event(event: Event) {
        let Some(d) = device() else { return };
        let feature = format!(
            "/features/{}",
            features::container_feature_id(&event.workload_id)
        );
        let state_path = format!("{feature}/properties/status/state");
        let device_twin = DeviceTwin(&d);
        match (event.kind, event.workload) {
            // As Kanto: the feature, then its state (unless still being
            // created: the state that follows says CREATED), then the
            // dependency it adds.
            (EventKind::Created, Some(w)) => {
                let state = features::state(&w);
                remember(&w.id, state.clone());
                twin::put(&d, &feature, features::container(&w));
                if state["status"] != "CREATING" {
                    twin::put(&d, &state_path, state);
                }
                software::added(&device_twin, &w);
            }
            // Published once per distinct state.
            (EventKind::StateChanged, Some(w)) => {
                if let Some(state) = new_state(&w) {
                    twin::put(&d, &state_path, state);
                }
                software::observe(&device_twin, &w);
            }
            (EventKind::Renamed, Some(w)) => {
                twin::put(
                    &d,
                    &format!("{feature}/properties/status/name"),
                    Value::String(w.name.clone()),
                );
                software::observe(&device_twin, &w);
            }
            (EventKind::Updated, Some(w)) => {
                twin::put(
                    &d,
                    &format!("{feature}/properties/status/config"),
                    config::twin_config(&w.spec),
                );
                if let Some(state) = new_state(&w) {
                    twin::put(&d, &state_path, state);
                }
                software::observe(&device_twin, &w);
            }
            // As Kanto: the container's last state (DEAD), the dependencies
            // without it, then the feature's deletion. Only containers this
            // twin showed have a feature (the host does not say whose a
            // removed workload was).
            (EventKind::Removed, _) => {
                let last = PUBLISHED.with(|p| p.borrow_mut().remove(&event.workload_id));
                if let Some(last) = &last {
                    twin::put(&d, &state_path, features::dead(last));
                }
                software::removed(&device_twin, &event.workload_id, last.map(|_| feature));
            }
            // A container-level change without the workload precedes the
            // workload-level event that carries the new state.
            _ => {}
        }
    }

    fn on_timer(id: String) {
        match device() {
            None if id == BOOTSTRAP_TIMER => publish(BOOTSTRAP_REQUEST, &json!({})),
            Some(_) if id == BOOTSTRAP_TIMER => mqtt_client::cancel_timer(BOOTSTRAP_TIMER),
            Some(d) if id.starts_with(metrics::TIMER_PREFIX) => metrics_tick(&d, &id),
            Some(d) if id == software::WORK_TIMER => software::work(&DeviceTwin(&d)),
            Some(d) if id == software::DEPENDENCIES_TIMER => {
                software::dependencies_due(&DeviceTwin(&d))
            }
            Some(d) if id.starts_with(software::DEADLINE_PREFIX) => {
                software::deadline(&DeviceTwin(&d), &id)
            }
            _ => {}
        }
    }
}

gantry_sdk::mqtt_frontend::export_mqtt_frontend!(Kanto);
