//! Creating a deployment (images, snapshots, containers, the namespace
//! holder, tasks), starting its containers again, and removing them with
//! everything they own.

use crate::api;
use crate::api::containerd::services::containers::v1::{
    Container, CreateContainerRequest, CreateContainerResponse, container::Runtime,
};
use crate::api::containerd::services::snapshots::v1::{
    PrepareSnapshotRequest, PrepareSnapshotResponse,
};
use crate::containers::{self, Member, container_id, labels, members, targets};
use crate::grpc::{self, unary};
use crate::image::{self, ImageConfig, SNAPSHOTTER};
use crate::spec::invalid;
use crate::state::inspect_members;
use crate::{lease, logs, spec, task};
use gantry_sdk::backend::exports::gantry::plugin::driver::{Deployment, InstanceRef};
use gantry_sdk::backend::gantry::plugin::config;
use gantry_sdk::backend::gantry::plugin::logging::{Level, log};
use gantry_sdk::backend::gantry::plugin::types::{ContainerState, Error, NetworkMode};
use gantry_sdk::clock::{now, rfc3339};
use gantry_sdk::gpus;
use std::collections::HashMap;

/// The runtime containers run under.
const RUNTIME: &str = "io.containerd.runc.v2";

/// Remove containers with their tasks and snapshots, last first. Errors are logged.
pub fn remove_ids(ids: &[String]) {
    for id in ids.iter().rev() {
        if let Err(e) = remove_one(id, true) {
            log(Level::Warn, &format!("removing container {id}: {e:?}"));
        }
    }
}

/// Task, container and snapshot of one container, all gone.
pub fn remove_one(id: &str, force: bool) -> Result<(), Error> {
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
                task::thaw(id);
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

/// A task containerd could not start: when runc's words say its command
/// cannot run, the caller's input ([`gantry_sdk::command::cannot_run`]).
fn start_failure(container: &str, s: grpc::Status) -> Error {
    gantry_sdk::command::cannot_run(container, &s.message).unwrap_or_else(|| s.into())
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
pub fn start_member(m: &Member, holder_pid: Option<u32>) -> Result<(), Error> {
    let existing = task::get(&m.id)?;
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
            if existing.is_some() {
                task::delete(&m.id)?;
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
    let at = now();
    let started = rfc3339(at.seconds, at.nanoseconds).unwrap_or_default();
    containers::set_labels(&m.id, &[(labels::STARTED, &started), (labels::OOM, "")])?;
    Ok(())
}

pub fn start_targets(r: &InstanceRef, container: Option<&str>) -> Result<(), Error> {
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

pub fn create(d: &Deployment, start: bool) -> Result<Vec<ContainerState>, Error> {
    gantry_sdk::replicas::one_copy_each(&d.spec, "the containerd backend")?;
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
    if let Some(why) = gpus::unplaced(&d.spec) {
        // Nothing is created; the workload fails with the reason.
        return Ok(gpus::not_run(&d.spec, &why));
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
            let i = image::resolve(&c.image, &d.workload_id)?;
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
                    let i = image::resolve(&name, &d.workload_id)?;
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
                gpus: None,
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
            let gpus = gpus::edits(c)?;
            let spec = spec::build(&spec::SpecInput {
                container: c,
                image: &images[&c.image],
                cgroups_path: format!("/{ns}/{id}"),
                hostname: d.spec.hostname.clone().or_else(|| Some(c.name.clone())),
                join_network: holder_pid.map(netns),
                host_network: d.spec.network == NetworkMode::Host,
                args_override: None,
                gpus: gpus.as_ref(),
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
