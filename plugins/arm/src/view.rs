//! A workload as ARM answers it: a container group resource whose
//! `instanceView`s come from the state the control plane observed.

use crate::path::ResourceGroup;
use crate::spec::{IpAddress, ResourceRequirements, keys};
use gantry_sdk::http_frontend::gantry::plugin::config;
use gantry_sdk::http_frontend::gantry::plugin::types::{
    ContainerSpec, ContainerState, ContainerStatus, DesiredState, GpuAssignment, PortProtocol,
    RestartKind, Timestamp, Workload, WorkloadPhase,
};
use serde_json::{Map, Value, json};

/// The annotation `key` of `w`.
pub fn annotation<'a>(w: &'a Workload, key: &str) -> Option<&'a str> {
    w.annotations
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// RFC 3339, UTC.
pub fn rfc3339(t: &Timestamp) -> Option<String> {
    gantry_sdk::clock::rfc3339(t.seconds, t.nanoseconds)
}

/// The resource group a workload lives in: its ARM annotations, or the
/// namespace of a workload created by another frontend.
pub fn resource_group_of(w: &Workload, fallback: &ResourceGroup) -> ResourceGroup {
    match (
        annotation(w, keys::SUBSCRIPTION),
        annotation(w, keys::RESOURCE_GROUP),
    ) {
        (Some(s), Some(g)) => ResourceGroup {
            subscription: s.to_string(),
            name: g.to_string(),
        },
        _ => fallback.clone(),
    }
}

/// `provisioningState`: whether the deployment itself went through. A group
/// whose containers later crash is still `Succeeded`, as in ACI.
pub fn provisioning_state(w: &Workload) -> &'static str {
    match w.phase {
        WorkloadPhase::Deploying => "Creating",
        WorkloadPhase::Deleting => "Deleting",
        WorkloadPhase::Failed if w.containers.iter().all(|c| c.started_at.is_none()) => "Failed",
        _ => "Succeeded",
    }
}

/// `instanceView.state` of the group.
pub fn group_state(w: &Workload) -> &'static str {
    let terminated = |c: &ContainerState| {
        matches!(
            c.status,
            ContainerStatus::Exited | ContainerStatus::Stopped | ContainerStatus::Dead
        )
    };
    if w.desired == DesiredState::Stopped {
        return "Stopped";
    }
    match w.phase {
        WorkloadPhase::Deploying => "Pending",
        WorkloadPhase::Failed => "Failed",
        WorkloadPhase::Stopped => "Stopped",
        _ if w.containers.iter().any(|c| {
            matches!(
                c.status,
                ContainerStatus::Running | ContainerStatus::Paused | ContainerStatus::Restarting
            )
        }) =>
        {
            "Running"
        }
        _ if !w.containers.is_empty() && w.containers.iter().all(terminated) => {
            if w.containers.iter().all(|c| c.exit_code == Some(0)) {
                "Succeeded"
            } else {
                "Failed"
            }
        }
        _ => "Pending",
    }
}

fn time_field(obj: &mut Map<String, Value>, key: &str, t: &Option<Timestamp>) {
    if let Some(s) = t.as_ref().and_then(rfc3339) {
        obj.insert(key.into(), Value::String(s));
    }
}

fn current_state(c: &ContainerState) -> Value {
    let mut s = Map::new();
    let (state, detail) = match c.status {
        ContainerStatus::Running => ("Running", String::new()),
        ContainerStatus::Paused => ("Running", "Paused".to_string()),
        ContainerStatus::Restarting => ("Waiting", "CrashLoopBackOff".to_string()),
        ContainerStatus::Creating | ContainerStatus::Created => (
            "Waiting",
            c.error
                .clone()
                .unwrap_or_else(|| "ContainerCreating".into()),
        ),
        ContainerStatus::Exited | ContainerStatus::Stopped | ContainerStatus::Dead => (
            "Terminated",
            c.error.clone().unwrap_or_else(|| {
                if c.exit_code == Some(0) {
                    "Completed"
                } else {
                    "Error"
                }
                .to_string()
            }),
        ),
        ContainerStatus::Unknown => ("Waiting", "Unknown".to_string()),
    };
    s.insert("state".into(), state.into());
    time_field(&mut s, "startTime", &c.started_at);
    if state == "Terminated" {
        if let Some(code) = c.exit_code {
            s.insert("exitCode".into(), code.into());
        }
        time_field(&mut s, "finishTime", &c.finished_at);
    }
    s.insert("detailStatus".into(), detail.into());
    Value::Object(s)
}

/// The state before the last restart, as far as the runtime tells: the
/// previous run ended when the current one started.
fn previous_state(c: &ContainerState) -> Option<Value> {
    if c.restart_count == 0 {
        return None;
    }
    let mut s = Map::new();
    s.insert("state".into(), "Terminated".into());
    time_field(&mut s, "finishTime", &c.started_at);
    s.insert("detailStatus".into(), "Restarted".into());
    Some(Value::Object(s))
}

fn event(name: &str, kind: &str, message: String, at: &Option<Timestamp>, count: u32) -> Value {
    let mut e = Map::new();
    e.insert("count".into(), count.into());
    time_field(&mut e, "firstTimestamp", at);
    time_field(&mut e, "lastTimestamp", at);
    e.insert("name".into(), name.into());
    e.insert("message".into(), message.into());
    e.insert("type".into(), kind.into());
    Value::Object(e)
}

fn container_events(
    spec: &ContainerSpec,
    c: &ContainerState,
    gpus: &[&GpuAssignment],
) -> Vec<Value> {
    let mut events = Vec::new();
    if c.held_back() {
        let why = c.error.clone().unwrap_or_default();
        events.push(event("Pending", "Normal", why, &None, 1));
        return events;
    }
    if !gpus.is_empty() {
        let held: Vec<String> = gpus
            .iter()
            .map(|g| {
                format!(
                    "GPU {} ({} {})",
                    g.index,
                    crate::spec::sku_of(&g.model),
                    g.uuid
                )
            })
            .collect();
        events.push(event(
            "Assigned",
            "Normal",
            format!("Assigned {}", held.join(", ")),
            &c.started_at,
            1,
        ));
    }
    if c.started_at.is_some() {
        events.push(event(
            "Started",
            "Normal",
            format!("Started container {} ({})", spec.name, spec.image),
            &c.started_at,
            c.restart_count + 1,
        ));
    }
    if let Some(err) = &c.error {
        events.push(event("Failed", "Warning", err.clone(), &c.finished_at, 1));
    } else if c.finished_at.is_some() && c.status != ContainerStatus::Running {
        events.push(event(
            "Killed",
            "Normal",
            format!(
                "Container {} terminated with exit code {}",
                spec.name,
                c.exit_code.unwrap_or_default()
            ),
            &c.finished_at,
            1,
        ));
    }
    events
}

fn protocol(p: PortProtocol) -> &'static str {
    match p {
        PortProtocol::Tcp => "TCP",
        PortProtocol::Udp => "UDP",
        PortProtocol::Sctp => "SCTP",
    }
}

fn gb(bytes: u64) -> f64 {
    (bytes as f64 / (1u64 << 30) as f64 * 100.0).round() / 100.0
}

/// `resources` as given at creation, if they still describe the spec;
/// otherwise derived from the spec (a later update through another frontend).
fn resources(spec: &ContainerSpec, given: Option<&Value>) -> Value {
    let derived_cpu = spec.resources.cpu.unwrap_or(1.0);
    let derived_mem = spec.resources.memory_bytes.map(gb).unwrap_or(1.5);
    if let Some(r) =
        given.and_then(|v| serde_json::from_value::<ResourceRequirements>(v.clone()).ok())
    {
        let cap = r.limits.as_ref();
        let cpu = cap.and_then(|l| l.cpu).or(r.requests.cpu);
        let mem = cap.and_then(|l| l.memory_in_gb).or(r.requests.memory_in_gb);
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 0.01);
        if close(cpu, derived_cpu) && close(mem, derived_mem) {
            return serde_json::to_value(r).unwrap_or(Value::Null);
        }
    }
    let mut requests = json!({"memoryInGB": derived_mem, "cpu": derived_cpu});
    if let Some(g) = &spec.gpu {
        let sku = g
            .models
            .first()
            .map_or_else(|| "K80".to_string(), |m| crate::spec::sku_of(m));
        requests["gpu"] = json!({"count": g.count, "sku": sku});
    }
    json!({ "requests": requests })
}

fn container(
    spec: &ContainerSpec,
    state: Option<&ContainerState>,
    given: Option<&Value>,
    gpus: &[GpuAssignment],
) -> Value {
    let mut p = Map::new();
    p.insert("image".into(), spec.image.clone().into());
    if let Some(cmd) = &spec.command {
        let mut all = cmd.clone();
        all.extend(spec.args.clone().unwrap_or_default());
        p.insert("command".into(), json!(all));
    }
    p.insert(
        "ports".into(),
        spec.ports
            .iter()
            .map(|port| json!({"protocol": protocol(port.protocol), "port": port.container_port}))
            .collect(),
    );
    p.insert(
        "environmentVariables".into(),
        spec.env
            .iter()
            .map(|v| {
                // A secure value is never returned, only its name.
                if v.secret {
                    json!({"name": v.name})
                } else {
                    json!({"name": v.name, "value": v.value})
                }
            })
            .collect(),
    );
    if let Some(s) = state {
        let mut view = Map::new();
        view.insert("restartCount".into(), s.restart_count.into());
        view.insert("currentState".into(), current_state(s));
        if let Some(prev) = previous_state(s) {
            view.insert("previousState".into(), prev);
        }
        let mine: Vec<&GpuAssignment> = gpus.iter().filter(|g| g.container == spec.name).collect();
        view.insert("events".into(), container_events(spec, s, &mine).into());
        p.insert("instanceView".into(), Value::Object(view));
    }
    p.insert("resources".into(), resources(spec, given));
    json!({"name": spec.name, "properties": p})
}

fn restart_policy(k: RestartKind) -> &'static str {
    match k {
        RestartKind::Always | RestartKind::UnlessStopped => "Always",
        RestartKind::OnFailure => "OnFailure",
        RestartKind::No => "Never",
    }
}

/// The host's ingress domain: a group's FQDN is `<label>.<location>.<domain>`.
fn ingress_domain() -> String {
    config::get(gantry_sdk::ingress::DOMAIN_KEY)
        .unwrap_or_else(|| gantry_sdk::ingress::DEFAULT_DOMAIN.into())
}

/// The container group resource for `w`. `provisioning` overrides the
/// derived `provisioningState` (e.g. `Deleting` in a DELETE answer).
/// The container group of `w`, whose containers hold `gpus`.
pub fn group(
    w: &Workload,
    fallback: &ResourceGroup,
    provisioning: Option<&str>,
    gpus: &[GpuAssignment],
) -> Value {
    let rg = resource_group_of(w, fallback);
    let location = annotation(w, keys::LOCATION).unwrap_or("local").to_string();
    let given: Value = annotation(w, keys::RESOURCES)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    let containers: Vec<Value> = w
        .spec
        .containers
        .iter()
        .map(|c| {
            let state = w.containers.iter().find(|s| s.name == c.name);
            container(c, state, given.get(&c.name), gpus)
        })
        .collect();
    let mut props = Map::new();
    props.insert(
        "provisioningState".into(),
        provisioning.unwrap_or(provisioning_state(w)).into(),
    );
    props.insert("containers".into(), containers.into());
    props.insert(
        "restartPolicy".into(),
        restart_policy(w.spec.restart.kind).into(),
    );
    if let Some(ip) =
        annotation(w, keys::IP_ADDRESS).and_then(|s| serde_json::from_str::<IpAddress>(s).ok())
    {
        let mut v = serde_json::to_value(&ip).unwrap_or(Value::Null);
        // The address the group is reached at: the host's ingress.
        if let Some(address) = config::get(gantry_sdk::ingress::ADDRESS_KEY) {
            v["ip"] = address.into();
        }
        if let Some(label) = &ip.dns_name_label {
            v["fqdn"] = format!("{label}.{location}.{}", ingress_domain()).into();
        }
        props.insert("ipAddress".into(), v);
    }
    props.insert("osType".into(), "Linux".into());
    props.insert(
        "sku".into(),
        annotation(w, keys::SKU).unwrap_or("Standard").into(),
    );
    let mut group_events = Vec::new();
    if let Some(m) = &w.message {
        let (name, kind) = if w.phase == WorkloadPhase::Deploying {
            ("Pending", "Normal")
        } else {
            ("Failed", "Warning")
        };
        group_events.push(event(
            name,
            kind,
            m.clone(),
            &w.updated_at.or(Some(w.created_at)),
            1,
        ));
    }
    props.insert(
        "instanceView".into(),
        json!({"events": group_events, "state": group_state(w)}),
    );
    let mut g = Map::new();
    g.insert("id".into(), rg.group_id(&w.name).into());
    g.insert("name".into(), w.name.clone().into());
    g.insert(
        "type".into(),
        "Microsoft.ContainerInstance/containerGroups".into(),
    );
    g.insert("location".into(), location.into());
    if let Some(tags) =
        annotation(w, keys::TAGS).and_then(|s| serde_json::from_str::<Value>(s).ok())
    {
        g.insert("tags".into(), tags);
    }
    g.insert("properties".into(), Value::Object(props));
    Value::Object(g)
}
