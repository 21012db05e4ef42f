//! gantry's containerd backend: every `driver` operation over containerd's
//! gRPC API (HTTP/2 through the endpoint the host grants, config key
//! `endpoint`, default `containerd`), in its own namespace (config key
//! `namespace`, default `gantry`). Message types are generated from
//! containerd's published `.proto` files at build time.
//!
//! A workload revision is a set of containerd containers labelled with the
//! workload id, revision, container name and index; a multi-container one
//! also has a holder task whose network namespace the others join, so a
//! sibling's restart never takes the namespace away. Output goes through
//! gantry's logger (config keys `logger`, `log_dir`) into Docker's json-file
//! format, which `logs` reads from `log_dir` (a directory the host grants
//! read-only). Restart policies are the host's job.

mod api;
mod containers;
mod events;
mod grpc;
mod image;
mod lease;
mod logs;
mod spec;
mod stats;
mod task;

use api::containerd::services::containers::v1::{
    Container, CreateContainerRequest, CreateContainerResponse, container::Runtime,
};
use api::containerd::services::snapshots::v1::{PrepareSnapshotRequest, PrepareSnapshotResponse};
use api::containerd::v1::types::Process;
use containers::{Member, container_id, labels, members, targets};
use gantry_sdk::backend::exports::gantry::plugin::driver::{
    BackendCapabilities, Deployment, Guest, GuestLogReader, InstanceRef, InstanceSummary,
    LogReader, RuntimeEvent,
};
use gantry_sdk::backend::gantry::plugin::config;
use gantry_sdk::backend::gantry::plugin::logging::{Level, log};
use gantry_sdk::backend::gantry::plugin::types::{
    ContainerState, ContainerStats, ContainerStatus, Error, FieldError, InvalidInput, LogLine,
    LogOptions, NetworkMode, Resources, RestartPolicy, Timestamp,
};
use grpc::unary;
use image::{ImageConfig, SNAPSHOTTER};
use std::collections::HashMap;

struct Containerd;

/// The runtime containers run under.
const RUNTIME: &str = "io.containerd.runc.v2";

/// Seconds a stop waits after its signal when the caller names none.
const DEFAULT_STOP_TIMEOUT: u32 = 10;

fn now() -> Timestamp {
    let t = gantry_sdk::wasip2::clocks::wall_clock::now();
    Timestamp {
        seconds: i64::try_from(t.seconds).unwrap_or(i64::MAX),
        nanoseconds: t.nanoseconds,
    }
}

/// A protobuf time as gantry's; containerd's zero time (year 1) is none.
fn timestamp(t: Option<&prost_types::Timestamp>) -> Option<Timestamp> {
    let t = t?;
    (t.seconds > 0).then(|| Timestamp {
        seconds: t.seconds,
        nanoseconds: u32::try_from(t.nanos).unwrap_or(0),
    })
}

fn rfc3339(t: Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp(t.seconds)
        .map(|d| d + time::Duration::nanoseconds(i64::from(t.nanoseconds)))
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let d = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some(Timestamp {
        seconds: d.unix_timestamp(),
        nanoseconds: d.nanosecond(),
    })
}

/// A container's observed state from its record and task.
fn state_of(m: &Member, task: Option<&Process>) -> ContainerState {
    let (status, pid, exit_code, finished_at) = match task {
        None => (ContainerStatus::Created, None, None, None),
        Some(p) => match p.status {
            task::status::CREATED => (ContainerStatus::Created, Some(p.pid), None, None),
            task::status::RUNNING => (ContainerStatus::Running, Some(p.pid), None, None),
            task::status::PAUSED | task::status::PAUSING => {
                (ContainerStatus::Paused, Some(p.pid), None, None)
            }
            task::status::STOPPED => (
                ContainerStatus::Exited,
                None,
                Some(i32::try_from(p.exit_status).unwrap_or(i32::MAX)),
                timestamp(p.exited_at.as_ref()),
            ),
            _ => (ContainerStatus::Unknown, None, None, None),
        },
    };
    let exited_killed = exit_code == Some(137);
    ContainerState {
        name: m.name().to_string(),
        runtime_id: Some(m.id.clone()),
        status,
        pid: pid.filter(|p| *p > 0),
        exit_code,
        started_at: m.label(labels::STARTED).and_then(parse_rfc3339),
        finished_at,
        oom_killed: exited_killed && m.label(labels::OOM).is_some(),
        restart_count: m
            .label(labels::RESTARTS)
            .and_then(|r| r.parse().ok())
            .unwrap_or(0),
        error: None,
    }
}

fn inspect_members(all: &[Member]) -> Result<Vec<ContainerState>, Error> {
    all.iter()
        .filter(|m| !m.is_holder())
        .map(|m| Ok(state_of(m, task::get(&m.id)?.as_ref())))
        .collect()
}

fn invalid(field: &str, message: String) -> Error {
    Error::Invalid(InvalidInput {
        message: message.clone(),
        fields: vec![FieldError {
            field: field.into(),
            message,
        }],
    })
}

/// Remove containers with their tasks and snapshots, last first. Errors are logged.
fn remove_ids(ids: &[String]) {
    for id in ids.iter().rev() {
        if let Err(e) = remove_one(id, true) {
            log(Level::Warn, &format!("removing container {id}: {e:?}"));
        }
    }
}

/// Task, container and snapshot of one container, all gone.
fn remove_one(id: &str, force: bool) -> Result<(), Error> {
    if let Some(p) = task::get(id)? {
        let live = matches!(
            p.status,
            task::status::RUNNING | task::status::PAUSED | task::status::PAUSING
        );
        if live && !force {
            return Err(Error::Conflict(format!(
                "container {id} is running; stop it or remove with force"
            )));
        }
        if live || p.status == task::status::CREATED {
            if p.status != task::status::RUNNING {
                let _ = unary::<_, ()>(
                    "/containerd.services.tasks.v1.Tasks/Resume",
                    &api::containerd::services::tasks::v1::ResumeTaskRequest {
                        container_id: id.into(),
                    },
                );
            }
            task::kill(id, 9, true)?;
            task::wait(id, 10_000_000_000)?;
        }
        task::delete(id)?;
    }
    containers::delete(id)?;
    image::remove_snapshot(id)?;
    Ok(())
}

/// The command the namespace holder runs (config `holder_command`, split on
/// whitespace; default `sleep 2147483647`), from the image of `holder_image`
/// (default: the workload's first image).
fn holder_args() -> Vec<String> {
    config::get("holder_command")
        .map(|c| c.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| vec!["sleep".into(), "2147483647".into()])
}

/// A classified failure to start a task: a command that cannot run is the caller's input.
fn start_failure(container: &str, s: grpc::Status) -> Error {
    let m = s.message.to_ascii_lowercase();
    if m.contains("executable file not found")
        || m.contains("no such file or directory")
        || m.contains("permission denied")
    {
        invalid(
            "command",
            format!(
                "container `{container}`: its command cannot run: {}",
                s.message
            ),
        )
    } else {
        s.into()
    }
}

/// Prepare the rootfs snapshot and create the container record.
fn create_container(
    id: &str,
    image: &ImageConfig,
    spec: &serde_json::Value,
    labels: HashMap<String, String>,
) -> Result<(), Error> {
    let _: PrepareSnapshotResponse = unary(
        "/containerd.services.snapshots.v1.Snapshots/Prepare",
        &PrepareSnapshotRequest {
            snapshotter: SNAPSHOTTER.into(),
            key: id.into(),
            parent: image.top().into(),
            labels: Default::default(),
        },
    )?;
    let created: Result<CreateContainerResponse, grpc::Status> = unary(
        "/containerd.services.containers.v1.Containers/Create",
        &CreateContainerRequest {
            container: Some(Container {
                id: id.into(),
                labels,
                image: image.name.clone(),
                runtime: Some(Runtime {
                    name: RUNTIME.into(),
                    options: None,
                }),
                spec: Some(api::spec_any(spec)),
                snapshotter: SNAPSHOTTER.into(),
                snapshot_key: id.into(),
                ..Default::default()
            }),
        },
    );
    if let Err(s) = created {
        let _ = image::remove_snapshot(id);
        return Err(s.into());
    }
    Ok(())
}

/// The network namespace path of a running task.
fn netns(pid: u32) -> String {
    format!("/proc/{pid}/ns/net")
}

/// Make sure the holder runs; returns its pid.
fn ensure_holder(holder: &Member) -> Result<u32, Error> {
    match task::get(&holder.id)? {
        Some(p) if p.status == task::status::RUNNING => Ok(p.pid),
        existing => {
            if existing.is_some() {
                task::kill(&holder.id, 9, true)?;
                task::delete(&holder.id)?;
            }
            task::create(&holder.id, "")?;
            Ok(task::start(&holder.id)?)
        }
    }
}

/// Point a joiner's spec at the holder's current namespace.
fn rejoin(member: &Member, holder_pid: u32) -> Result<(), Error> {
    let c = containers::get(&member.id)?;
    let Some(any) = c.spec else { return Ok(()) };
    let mut spec: serde_json::Value = serde_json::from_slice(&any.value)
        .map_err(|e| Error::Backend(format!("container {}: unreadable spec: {e}", member.id)))?;
    let want = netns(holder_pid);
    let mut changed = false;
    if let Some(ns) = spec
        .pointer_mut("/linux/namespaces")
        .and_then(|n| n.as_array_mut())
    {
        for n in ns.iter_mut() {
            if n["type"] == "network" && n["path"].as_str().is_some_and(|p| p != want) {
                n["path"] = serde_json::json!(want);
                changed = true;
            }
        }
    }
    if changed {
        containers::set_spec(&member.id, &spec)?;
    }
    Ok(())
}

/// Start (or start again) one container's task.
fn start_member(m: &Member, holder_pid: Option<u32>) -> Result<(), Error> {
    let existing = task::get(&m.id)?;
    let mut restarts: Option<u32> = None;
    match &existing {
        Some(p)
            if matches!(
                p.status,
                task::status::RUNNING | task::status::PAUSED | task::status::PAUSING
            ) =>
        {
            return Ok(());
        }
        Some(p) if p.status == task::status::CREATED => {
            task::start(&m.id).map_err(|s| start_failure(m.name(), s))?;
        }
        _ => {
            if let Some(p) = &existing {
                task::delete(&m.id)?;
                if p.status == task::status::STOPPED {
                    let before: u32 = m
                        .label(labels::RESTARTS)
                        .and_then(|r| r.parse().ok())
                        .unwrap_or(0);
                    restarts = Some(before + 1);
                }
            }
            if let Some(pid) = holder_pid {
                rejoin(m, pid)?;
            }
            let c = containers::get(&m.id)?;
            let log = c
                .labels
                .get(logs::LOG_CONFIG_LABEL)
                .and_then(|l| serde_json::from_str::<logs::StoredLogConfig>(l).ok())
                .map(logs::StoredLogConfig::into_wit);
            task::create(&m.id, &task::output_uri(log.as_ref()))
                .map_err(|s| start_failure(m.name(), s))?;
            if let Err(s) = task::start(&m.id) {
                let _ = task::delete(&m.id);
                return Err(start_failure(m.name(), s));
            }
        }
    }
    let started = rfc3339(now());
    let count = restarts.map(|r| r.to_string());
    let mut values: Vec<(&str, &str)> = vec![(labels::STARTED, &started), (labels::OOM, "")];
    if let Some(c) = &count {
        values.push((labels::RESTARTS, c));
    }
    containers::set_labels(&m.id, &values)?;
    Ok(())
}

fn start_targets(r: &InstanceRef, container: Option<&str>) -> Result<(), Error> {
    let all = members(r)?;
    let holder_pid = match all.iter().find(|m| m.is_holder()) {
        Some(h) => Some(ensure_holder(h)?),
        None => None,
    };
    for m in targets(r, container)? {
        start_member(&m, holder_pid)?;
    }
    Ok(())
}

fn create(d: &Deployment, start: bool) -> Result<Vec<ContainerState>, Error> {
    if d.spec.containers.is_empty() {
        return Err(invalid(
            "containers",
            "a deployment needs at least one container".into(),
        ));
    }
    if d.spec.network == NetworkMode::Bridge {
        return Err(Error::Unsupported(
            "bridge networking needs CNI, which the containerd backend does not use; choose isolated or host".into(),
        ));
    }
    if !d.spec.extra_hosts.is_empty() {
        return Err(Error::Unsupported(
            "extra /etc/hosts entries are not supported by the containerd backend".into(),
        ));
    }
    for c in &d.spec.containers {
        spec::check_supported(c)?;
    }
    lease::with_lease(|| create_under_lease(d, start))?;
    let r = InstanceRef {
        workload_id: d.workload_id.clone(),
        revision: d.revision,
    };
    inspect_members(&members(&r)?)
}

/// Images, snapshots and containers of a deployment (and their tasks when
/// `start`); on failure, nothing created here remains.
fn create_under_lease(d: &Deployment, start: bool) -> Result<(), Error> {
    let mut images: HashMap<String, ImageConfig> = HashMap::new();
    for c in &d.spec.containers {
        if !images.contains_key(&c.image) {
            let i = image::resolve(&c.image)?;
            image::ensure_unpacked(&i, &d.workload_id)?;
            images.insert(c.image.clone(), i);
        }
    }
    let ns = grpc::namespace();
    let base_labels = |extra: &[(&str, String)]| -> HashMap<String, String> {
        let mut l: HashMap<String, String> = d.labels.iter().cloned().collect();
        l.insert(labels::NAME.into(), d.name.clone());
        for (k, v) in extra {
            l.insert((*k).into(), v.clone());
        }
        l
    };
    let mut created: Vec<String> = Vec::new();
    let result = (|| -> Result<(), Error> {
        let pod = d.spec.containers.len() > 1 && d.spec.network != NetworkMode::Host;
        let holder_pid = if pod {
            let first = &d.spec.containers[0];
            let holder_image = match config::get("holder_image") {
                Some(name) => {
                    let i = image::resolve(&name)?;
                    image::ensure_unpacked(&i, &d.workload_id)?;
                    i
                }
                None => images[&first.image].clone(),
            };
            let id = container_id(&d.workload_id, d.revision, labels::HOLDER);
            let holder = gantry_sdk::backend::gantry::plugin::types::ContainerSpec::new(
                "holder",
                &holder_image.name,
            );
            let spec = spec::build(&spec::SpecInput {
                container: &holder,
                image: &holder_image,
                cgroups_path: format!("/{ns}/{id}"),
                hostname: d.spec.hostname.clone(),
                join_network: None,
                host_network: false,
                args_override: Some(holder_args()),
            })?;
            create_container(
                &id,
                &holder_image,
                &spec,
                base_labels(&[(labels::ROLE, labels::HOLDER.into())]),
            )?;
            created.push(id.clone());
            task::create(&id, "")?;
            Some(task::start(&id).map_err(|s| start_failure("holder", s))?)
        } else {
            None
        };
        for (i, c) in d.spec.containers.iter().enumerate() {
            let id = container_id(&d.workload_id, d.revision, &i.to_string());
            let spec = spec::build(&spec::SpecInput {
                container: c,
                image: &images[&c.image],
                cgroups_path: format!("/{ns}/{id}"),
                hostname: d.spec.hostname.clone().or_else(|| Some(c.name.clone())),
                join_network: holder_pid.map(netns),
                host_network: d.spec.network == NetworkMode::Host,
                args_override: None,
            })?;
            let mut l = base_labels(&[
                (labels::CONTAINER, c.name.clone()),
                (labels::INDEX, i.to_string()),
            ]);
            l.extend(c.labels.iter().cloned());
            if let Some(log) = &c.log {
                l.insert(
                    logs::LOG_CONFIG_LABEL.into(),
                    serde_json::to_string(&logs::StoredLogConfig::from_wit(log))
                        .unwrap_or_default(),
                );
            }
            create_container(&id, &images[&c.image], &spec, l)?;
            created.push(id);
        }
        if start {
            let r = InstanceRef {
                workload_id: d.workload_id.clone(),
                revision: d.revision,
            };
            for m in targets(&r, None)? {
                start_member(&m, holder_pid)?;
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        remove_ids(&created);
        return Err(e);
    }
    Ok(())
}

fn signal_of(signal: Option<&str>, default: u32) -> Result<u32, Error> {
    match signal {
        None => Ok(default),
        Some(s) => {
            task::signal_number(s).ok_or_else(|| invalid("signal", format!("unknown signal `{s}`")))
        }
    }
}

fn version() -> Result<String, Error> {
    let v: api::containerd::services::version::v1::VersionResponse =
        unary("/containerd.services.version.v1.Version/Version", &())?;
    Ok(v.version)
}

impl Guest for Containerd {
    type LogReader = logs::LogReader;

    fn capabilities() -> Result<BackendCapabilities, Error> {
        Ok(BackendCapabilities {
            runtime: format!(
                "containerd {} (namespace {})",
                version()?,
                grpc::namespace()
            ),
            multi_container: true,
            pause: true,
            gpu: false,
            ephemeral_storage_enforced: false,
            logs_follow: logs::available(),
            stats: true,
            events: true,
            update_in_place: true,
            rename: true,
        })
    }

    fn create(deployment: Deployment, start: bool) -> Result<Vec<ContainerState>, Error> {
        create(&deployment, start)
    }

    fn start(r: InstanceRef, container: Option<String>) -> Result<(), Error> {
        start_targets(&r, container.as_deref())
    }

    fn stop(
        r: InstanceRef,
        container: Option<String>,
        signal: Option<String>,
        timeout: Option<u32>,
    ) -> Result<(), Error> {
        let sig = signal_of(signal.as_deref(), 15)?;
        let secs = timeout.filter(|t| *t > 0).unwrap_or(DEFAULT_STOP_TIMEOUT);
        for m in targets(&r, container.as_deref())?.iter().rev() {
            task::stop(&m.id, sig, secs)?;
        }
        Ok(())
    }

    fn kill(
        r: InstanceRef,
        container: Option<String>,
        signal: Option<String>,
    ) -> Result<(), Error> {
        let sig = signal_of(signal.as_deref(), 9)?;
        for m in targets(&r, container.as_deref())?.iter().rev() {
            task::kill(&m.id, sig, false)?;
        }
        Ok(())
    }

    fn restart(
        r: InstanceRef,
        container: Option<String>,
        timeout: Option<u32>,
    ) -> Result<(), Error> {
        let secs = timeout.unwrap_or(DEFAULT_STOP_TIMEOUT);
        for m in targets(&r, container.as_deref())?.iter().rev() {
            task::stop(&m.id, 15, secs)?;
        }
        start_targets(&r, container.as_deref())
    }

    fn pause(r: InstanceRef, container: Option<String>) -> Result<(), Error> {
        for m in targets(&r, container.as_deref())? {
            match unary::<_, ()>(
                "/containerd.services.tasks.v1.Tasks/Pause",
                &api::containerd::services::tasks::v1::PauseTaskRequest {
                    container_id: m.id.clone(),
                },
            ) {
                Ok(()) => {}
                Err(s) if task::get(&m.id)?.is_some_and(|p| p.status == task::status::PAUSED) => {
                    let _ = s;
                }
                Err(s) => return Err(s.into()),
            }
        }
        Ok(())
    }

    fn resume(r: InstanceRef, container: Option<String>) -> Result<(), Error> {
        for m in targets(&r, container.as_deref())? {
            match unary::<_, ()>(
                "/containerd.services.tasks.v1.Tasks/Resume",
                &api::containerd::services::tasks::v1::ResumeTaskRequest {
                    container_id: m.id.clone(),
                },
            ) {
                Ok(()) => {}
                Err(s) if task::get(&m.id)?.is_some_and(|p| p.status == task::status::RUNNING) => {
                    let _ = s;
                }
                Err(s) => return Err(s.into()),
            }
        }
        Ok(())
    }

    fn remove(r: InstanceRef, force: bool) -> Result<(), Error> {
        let all = members(&r)?;
        if !force {
            for m in all.iter().filter(|m| !m.is_holder()) {
                if task::get(&m.id)?.is_some_and(|p| p.status != task::status::STOPPED) {
                    return Err(Error::Conflict(format!(
                        "container `{}` is running; stop it or remove with force",
                        m.name()
                    )));
                }
            }
        }
        // Holder first in the list: remove it last.
        for m in all.iter().rev() {
            remove_one(&m.id, true)?;
        }
        Ok(())
    }

    fn inspect(r: InstanceRef) -> Result<Vec<ContainerState>, Error> {
        inspect_members(&members(&r)?)
    }

    fn list(selector: Vec<(String, String)>) -> Result<Vec<InstanceSummary>, Error> {
        let mut wanted: Vec<(&str, Option<&str>)> = vec![(labels::WORKLOAD, None)];
        wanted.extend(selector.iter().map(|(k, v)| (k.as_str(), Some(v.as_str()))));
        let found = containers::labelled(&wanted)?;
        let tasks: HashMap<String, Process> = task::list()?
            .into_iter()
            .map(|p| (p.container_id.clone(), p))
            .collect();
        let mut out: Vec<InstanceSummary> = Vec::new();
        let mut sorted: Vec<&Member> = found.iter().filter(|m| !m.is_holder()).collect();
        sorted.sort_by_key(|m| {
            m.label(labels::INDEX)
                .and_then(|i| i.parse::<u32>().ok())
                .unwrap_or(0)
        });
        for m in sorted {
            let (Some(w), Some(rev)) = (
                m.label(labels::WORKLOAD),
                m.label(labels::REVISION)
                    .and_then(|r| r.parse::<u32>().ok()),
            ) else {
                continue;
            };
            let state = state_of(m, tasks.get(&m.id));
            match out
                .iter_mut()
                .find(|s| s.workload_id == w && s.revision == rev)
            {
                Some(s) => s.containers.push(state),
                None => out.push(InstanceSummary {
                    workload_id: w.to_string(),
                    revision: rev,
                    containers: vec![state],
                }),
            }
        }
        Ok(out)
    }

    fn stats(r: InstanceRef, container: Option<String>) -> Result<ContainerStats, Error> {
        let t = targets(&r, container.as_deref())?;
        let m = t
            .first()
            .ok_or_else(|| Error::NotFound("no container".into()))?;
        stats::sample(&m.id, m.name())
    }

    fn update(
        r: InstanceRef,
        container: Option<String>,
        resources: Option<Resources>,
        _restart: Option<RestartPolicy>,
    ) -> Result<(), Error> {
        // The restart policy lives in the host; only resources reach the runtime.
        let Some(res) = resources else { return Ok(()) };
        let linux = spec::resources(&res)?;
        for m in targets(&r, container.as_deref())? {
            if task::get(&m.id)?.is_some_and(|p| p.status != task::status::STOPPED) {
                unary::<_, ()>(
                    "/containerd.services.tasks.v1.Tasks/Update",
                    &api::containerd::services::tasks::v1::UpdateTaskRequest {
                        container_id: m.id.clone(),
                        resources: Some(api::resources_any(&linux)),
                        annotations: Default::default(),
                    },
                )?;
            }
            // Tasks created later (a restart) read the container's spec.
            let c = containers::get(&m.id)?;
            if let Some(any) = c.spec {
                let mut spec: serde_json::Value =
                    serde_json::from_slice(&any.value).map_err(|e| {
                        Error::Backend(format!("container {}: unreadable spec: {e}", m.id))
                    })?;
                spec["linux"]["resources"] = linux.clone();
                containers::set_spec(&m.id, &spec)?;
            }
        }
        Ok(())
    }

    fn rename(r: InstanceRef, name: String) -> Result<(), Error> {
        for m in members(&r)? {
            containers::set_labels(&m.id, &[(labels::NAME, &name)])?;
        }
        Ok(())
    }

    fn watch(since: Option<Timestamp>, wait_ms: u32) -> Result<Vec<RuntimeEvent>, Error> {
        events::watch(since, wait_ms)
    }

    fn logs(r: InstanceRef, options: LogOptions) -> Result<LogReader, Error> {
        let t = targets(&r, options.container.as_deref())?;
        let m = t
            .first()
            .ok_or_else(|| Error::NotFound("no container".into()))?;
        Ok(LogReader::new(logs::LogReader::open(
            &m.id,
            m.name(),
            &options,
        )?))
    }
}

impl GuestLogReader for logs::LogReader {
    fn next(&self, wait_ms: u32) -> Result<Option<Vec<LogLine>>, Error> {
        logs::LogReader::next(self, wait_ms)
    }
}

gantry_sdk::backend::export_backend!(Containerd);
