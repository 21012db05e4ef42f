//! Creating a deployment: its images (pulled if missing), the namespace
//! holder, its containers; and what a create needs to know of the engine.

use crate::engine::{self, call, enc, error, open};
use crate::mapping;
use crate::members::{each, inspect_one, is_holder, members};
use bollard_stubs::models::{ContainerCreateBody, ContainerSummary};
use gantry_sdk::backend::exports::gantry::plugin::driver::{Deployment, InstanceRef};
use gantry_sdk::backend::gantry::plugin::logging::{Level, log};
use gantry_sdk::backend::gantry::plugin::progress;
use gantry_sdk::backend::gantry::plugin::types::{ContainerState, Error};
use gantry_sdk::client::Line;
use gantry_sdk::gpus::{self, GpuNeed};
use gantry_sdk::wasip2::http::types::Method;

/// Start the revision's namespace holder, if it has one (running already is fine).
pub(crate) fn start_holder(r: &InstanceRef) -> Result<(), Error> {
    let holders: Vec<ContainerSummary> = members(r)?.into_iter().filter(is_holder).collect();
    each(&holders, "start", "", &[304])
}

/// The holder's image (config `holder_image`, default: the workload's first
/// image) and command (config `holder_command`, default `sleep 2147483647`).
pub(crate) fn holder_process(d: &Deployment) -> (String, Vec<String>) {
    use gantry_sdk::backend::gantry::plugin::config;
    let image = config::get("holder_image").unwrap_or_else(|| d.spec.containers[0].image.clone());
    let command = config::get("holder_command")
        .map(|c| c.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| vec!["sleep".into(), "2147483647".into()]);
    (image, command)
}

/// A start the engine refused because the command cannot run is the
/// caller's input ([`gantry_sdk::command::cannot_run`]).
pub(crate) fn start_refused(resp: &engine::Response, container: &str) -> Option<Error> {
    gantry_sdk::command::cannot_run(container, &resp.message())
}

pub(crate) fn remove_ids(ids: &[String]) {
    for id in ids.iter().rev() {
        if let Err(e) = call(
            Method::Delete,
            &format!("/containers/{id}?force=1&v=1"),
            None,
        ) {
            log(Level::Warn, &format!("removing container {id}: {e:?}"));
        }
    }
}

/// Make sure `image` is present, pulling it (with progress reported to the host) if not.
pub(crate) fn ensure_image(workload: &str, image: &str) -> Result<(), Error> {
    let resp = call(Method::Get, &format!("/images/{}/json", enc(image)), None)?;
    if resp.status == 200 {
        return Ok(());
    }
    let mut stream = open(
        Method::Post,
        &format!("/images/create?fromImage={}", enc(image)),
    )?;
    if stream.status != 200 {
        let r = stream.read_all()?;
        return Err(Error::NotFound(format!(
            "image {image}: not present and cannot be pulled: {}",
            r.message()
        )));
    }
    loop {
        let line = match stream.next_line(60_000_000_000)? {
            Line::Text(line) => line,
            Line::Waiting => continue,
            Line::Ended => break,
        };
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(&line) else {
            continue;
        };
        if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
            return Err(Error::NotFound(format!("image {image}: pull failed: {e}")));
        }
        let status = v.get("status").and_then(|s| s.as_str()).unwrap_or("");
        let detail = v.get("progressDetail");
        let pct = detail
            .and_then(|d| Some((d.get("current")?.as_u64()?, d.get("total")?.as_u64()?)))
            .and_then(|(c, t)| {
                (t > 0).then(|| u8::try_from(c.saturating_mul(100) / t).unwrap_or(100))
            });
        progress::report(workload, &format!("pulling {image}: {status}"), pct);
    }
    let resp = call(Method::Get, &format!("/images/{}/json", enc(image)), None)?;
    if resp.status == 200 {
        Ok(())
    } else {
        Err(Error::NotFound(format!(
            "image {image}: not present after pull"
        )))
    }
}

/// The engine host's CPU count, if it says.
pub(crate) fn host_cpus() -> Option<f64> {
    let info: serde_json::Value = call(Method::Get, "/info", None).ok()?.json().ok()?;
    info.get("NCPU")
        .and_then(|n| n.as_f64())
        .filter(|n| *n >= 1.0)
}

/// A CPU limit the engine accepts: Docker refuses limits above the host's
/// CPU count, which are no limit at all; cap them and say so.
pub(crate) fn cap_cpu(workload: &str, cpu: f64, host: Option<f64>) -> f64 {
    match host {
        Some(n) if cpu > n => {
            log(
                Level::Warn,
                &format!(
                    "workload {workload}: CPU limit {cpu} exceeds the host's {n} CPUs; capped at {n}"
                ),
            );
            n
        }
        _ => cpu,
    }
}

/// Create one container named `name` for `workload`; its id. The engine is
/// asked first and the rare cases handled when it refuses, as the Docker
/// CLI does: an image it does not have is pulled, and a CPU limit above the
/// host's CPUs is capped (Docker refuses those; they are no limit at all).
/// The common create is then one engine call, not three.
fn create_one(workload: &str, name: &str, body: &ContainerCreateBody) -> Result<String, Error> {
    let resp = post_create(name, body)?;
    let resp = match resp.status {
        404 if resp.message().contains("No such image") => {
            let image = body.image.as_deref().unwrap_or_default();
            ensure_image(workload, image)?;
            post_create(name, body)?
        }
        400 if resp.message().contains("Range of CPUs") => {
            let mut capped = body.clone();
            if let Some(h) = capped.host_config.as_mut()
                && let Some(nano) = h.nano_cpus
            {
                let cpu = cap_cpu(workload, nano as f64 / 1e9, host_cpus());
                h.nano_cpus = Some((cpu * 1e9).round() as i64);
            }
            post_create(name, &capped)?
        }
        _ => resp,
    };
    if resp.status != 201 {
        return Err(error(&resp, &format!("creating {name}")));
    }
    let v: serde_json::Value = resp.json()?;
    v.get("Id")
        .and_then(|i| i.as_str())
        .map(str::to_string)
        .ok_or_else(|| Error::Backend("create answered without an Id".into()))
}

fn post_create(name: &str, body: &ContainerCreateBody) -> Result<crate::engine::Response, Error> {
    let value = serde_json::to_value(body).map_err(|e| Error::Internal(e.to_string()))?;
    call(
        Method::Post,
        &format!("/containers/create?name={}", enc(name)),
        Some(&value),
    )
}

/// What `/info` says that deployments depend on. Asked once per instance:
/// `/info` is among the engine's slowest calls, and neither changes without
/// a daemon restart (an instance lives for at most `limits.max_reuse` calls).
#[derive(Clone, Copy, Default)]
struct EngineInfo {
    /// The storage driver can enforce a writable-layer size (overlay2 on
    /// xfs with pquota, btrfs, zfs).
    storage_enforced: bool,
    /// The engine has the `nvidia` runtime, which picks and mounts GPUs for
    /// a `DeviceRequest` itself.
    nvidia_runtime: bool,
}

fn engine_info() -> EngineInfo {
    static INFO: std::sync::OnceLock<EngineInfo> = std::sync::OnceLock::new();
    *INFO.get_or_init(ask_engine_info)
}

/// Whether the storage driver can enforce a writable-layer size.
pub(crate) fn storage_enforced() -> bool {
    engine_info().storage_enforced
}

fn ask_engine_info() -> EngineInfo {
    let Ok(resp) = call(Method::Get, "/info", None) else {
        return EngineInfo::default();
    };
    let Ok(info) = resp.json::<serde_json::Value>() else {
        return EngineInfo::default();
    };
    let driver = info.get("Driver").and_then(|d| d.as_str()).unwrap_or("");
    let backing = info
        .get("DriverStatus")
        .and_then(|s| s.as_array())
        .and_then(|rows| {
            rows.iter()
                .find(|r| r.get(0).and_then(|k| k.as_str()) == Some("Backing Filesystem"))
        })
        .and_then(|r| r.get(1))
        .and_then(|v| v.as_str())
        .unwrap_or("");
    EngineInfo {
        storage_enforced: (driver == "overlay2" && backing == "xfs")
            || driver == "btrfs"
            || driver == "zfs",
        nvidia_runtime: info.get("Runtimes").and_then(|r| r.get("nvidia")).is_some(),
    }
}

/// What a deployment's GPUs need of the engine.
enum GpuPlan {
    /// Nothing to change: no GPUs, or the `nvidia` runtime's `DeviceRequests`
    /// do the work (the mapping asks for them).
    AsIs,
    /// The GPUs a scheduler named, handed over as device nodes, mounts and
    /// environment.
    HandedOver(Box<Deployment>),
    /// GPUs by count with no `nvidia` runtime to pick them: why.
    Impossible(String),
}

fn gpu_plan(d: &Deployment) -> Result<GpuPlan, Error> {
    let wanted = d
        .spec
        .containers
        .iter()
        .any(|c| gpus::need(c) != GpuNeed::None);
    if !wanted || engine_info().nvidia_runtime {
        return Ok(GpuPlan::AsIs);
    }
    if let Some(why) = gpus::unplaced(&d.spec) {
        return Ok(GpuPlan::Impossible(format!(
            "{why} (or give this Docker engine the NVIDIA container toolkit's `nvidia` runtime)"
        )));
    }
    let mut d = d.clone();
    for c in &mut d.spec.containers {
        gpus::hand_over(c)?;
    }
    Ok(GpuPlan::HandedOver(Box::new(d)))
}

pub(crate) fn create(d: &Deployment, start: bool) -> Result<Vec<ContainerState>, Error> {
    gantry_sdk::replicas::one_copy_each(&d.spec, "the docker backend")?;
    let handed = match gpu_plan(d)? {
        GpuPlan::AsIs => None,
        GpuPlan::HandedOver(h) => Some(h),
        // Nothing is created; the workload fails with the reason.
        GpuPlan::Impossible(why) => return Ok(gpus::not_run(&d.spec, &why)),
    };
    let d = handed.as_deref().unwrap_or(d);
    if d.spec.containers.is_empty() {
        return Err(Error::Invalid(
            gantry_sdk::backend::gantry::plugin::types::InvalidInput {
                message: "a deployment needs at least one container".into(),
                fields: Vec::new(),
            },
        ));
    }
    let holder_process = mapping::needs_holder(d).then(|| holder_process(d));
    let wants_storage = d
        .spec
        .containers
        .iter()
        .any(|c| c.resources.ephemeral_storage_bytes.is_some());
    let enforce = wants_storage && storage_enforced();
    if wants_storage && !enforce {
        log(
            Level::Warn,
            &format!(
                "workload {}: ephemeral storage limits are not enforced by this engine's storage driver",
                d.workload_id
            ),
        );
    }
    let mut created: Vec<String> = Vec::new();
    let mut holder: Option<String> = None;
    let result = (|| -> Result<(), Error> {
        if let Some((image, command)) = holder_process {
            let body = mapping::holder_body(d, &image, command);
            let id = create_one(
                &d.workload_id,
                &mapping::holder_name(&d.name, d.revision),
                &body,
            )?;
            created.push(id.clone());
            holder = Some(id);
        }
        for i in 0..d.spec.containers.len() {
            let body = mapping::create_body(d, i, holder.as_deref(), enforce);
            let name = mapping::container_name(&d.name, d.revision, &d.spec.containers[i].name);
            created.push(create_one(&d.workload_id, &name, &body)?);
        }
        Ok(())
    })();
    if let Err(e) = result {
        remove_ids(&created);
        return Err(e);
    }
    if start {
        // A command that cannot run is refused, and nothing stays. Another
        // failure to start (a bad mount...) is the workload's failure, not a
        // refused request: the containers stay, and their state carries the
        // engine's error.
        for (n, id) in created.iter().enumerate() {
            let resp = match call(Method::Post, &format!("/containers/{id}/start"), None) {
                Ok(r) => r,
                Err(e) => {
                    remove_ids(&created);
                    return Err(e);
                }
            };
            if resp.status != 204 && resp.status != 304 {
                let member = n - usize::from(holder.is_some());
                let name = if holder.is_some() && n == 0 {
                    "holder"
                } else {
                    d.spec
                        .containers
                        .get(member)
                        .map_or("?", |c| c.name.as_str())
                };
                if let Some(refused) = start_refused(&resp, name) {
                    remove_ids(&created);
                    return Err(refused);
                }
                log(
                    Level::Warn,
                    &format!(
                        "workload {}: container {id} failed to start: {}",
                        d.workload_id,
                        resp.message()
                    ),
                );
                break;
            }
        }
    }
    let members: Vec<&String> = created.iter().skip(usize::from(holder.is_some())).collect();
    let mut states = Vec::new();
    for id in members {
        match inspect_one(id) {
            Ok(i) => states.push(mapping::state(&i)),
            Err(e) => {
                remove_ids(&created);
                return Err(e);
            }
        }
    }
    Ok(states)
}
