//! Creating a deployment: its images (pulled if missing), its pod, its
//! containers, all or nothing; and starting containers, telling a command
//! that cannot run from other failures.

use crate::client::{Response, call, enc, error, invalid, open};
use crate::members::{Listed, inspect_one, state};
use crate::spec;
use gantry_sdk::backend::exports::gantry::plugin::driver::Deployment;
use gantry_sdk::backend::gantry::plugin::logging::{Level, log};
use gantry_sdk::backend::gantry::plugin::progress;
use gantry_sdk::backend::gantry::plugin::types::{ContainerState, Error, NetworkMode};
use gantry_sdk::client::Line;
use gantry_sdk::gpus::{self, GpuNeed};
use gantry_sdk::wasip2::http::types::Method;

/// libpod's causes for a start whose command cannot run (its `define`
/// errors `ErrOCIRuntimeNotFound` and `ErrOCIRuntimePermDenied`).
const COMMAND_NOT_FOUND: &str = "OCI runtime attempted to invoke a command that was not found";
const COMMAND_DENIED: &str = "OCI permission denied";

/// A start Podman refused because the command cannot run is the caller's
/// input: an executable the image lacks is not found (as a missing image
/// is), one it cannot execute is invalid. Other failures are the workload's.
pub fn start_refused(resp: &Response, container: &str) -> Option<Error> {
    let msg = resp.message();
    let message = format!("container `{container}`: its command cannot run: {msg}");
    match crate::client::cause(resp).as_str() {
        COMMAND_NOT_FOUND => Some(Error::NotFound(message)),
        COMMAND_DENIED if msg.contains("exec") => Some(invalid("command", message)),
        _ => None,
    }
}

/// Start each target (running already is fine). A command that cannot run
/// is a typed error; another failure is Podman's.
pub fn start_each(targets: &[Listed]) -> Result<(), Error> {
    for c in targets {
        let resp = call(Method::Post, &format!("/containers/{}/start", c.id), None)?;
        if resp.ok() || resp.status == 304 {
            continue;
        }
        return Err(start_refused(&resp, c.member())
            .unwrap_or_else(|| error(&resp, &format!("starting {}", c.member()))));
    }
    Ok(())
}

fn image_present(image: &str) -> Result<bool, Error> {
    let resp = call(Method::Get, &format!("/images/{}/exists", enc(image)), None)?;
    match resp.status {
        204 => Ok(true),
        404 => Ok(false),
        _ => Err(error(&resp, &format!("looking up image {image}"))),
    }
}

/// Make sure `image` is present, pulling it (progress reported to the host) if not.
pub fn ensure_image(workload: &str, image: &str) -> Result<(), Error> {
    if image_present(image)? {
        return Ok(());
    }
    let mut stream = open(
        Method::Post,
        &format!("/images/pull?reference={}&policy=missing", enc(image)),
    )?;
    if stream.status != 200 {
        let r = stream.read_all()?;
        return Err(Error::NotFound(format!(
            "image {image}: not present and cannot be pulled: {}",
            r.message()
        )));
    }
    // libpod streams one JSON object per line: `stream` (progress text),
    // `error` (the pull failed), `images`/`id` (done).
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
            return Err(Error::NotFound(format!(
                "image {image}: not present and cannot be pulled: {e}"
            )));
        }
        if let Some(s) = v.get("stream").and_then(|s| s.as_str()) {
            progress::report(workload, &format!("pulling {image}: {}", s.trim()), None);
        }
    }
    if image_present(image)? {
        Ok(())
    } else {
        Err(Error::NotFound(format!(
            "image {image}: not present after pull"
        )))
    }
}

/// Remove what a failed create made: containers, then the pod (whose
/// removal takes its infra container and any member left).
fn roll_back(containers: &[String], pod: Option<&str>) {
    for id in containers.iter().rev() {
        if let Err(e) = call(
            Method::Delete,
            &format!("/containers/{id}?force=true&v=true"),
            None,
        ) {
            log(Level::Warn, &format!("removing container {id}: {e:?}"));
        }
    }
    if let Some(p) = pod
        && let Err(e) = call(Method::Delete, &format!("/pods/{p}?force=true"), None)
    {
        log(Level::Warn, &format!("removing pod {p}: {e:?}"));
    }
}

fn created_id(resp: &Response, what: &str) -> Result<String, Error> {
    if resp.status != 201 && resp.status != 200 {
        return Err(error(resp, what));
    }
    let v: serde_json::Value = resp.json()?;
    v.get("Id")
        .and_then(|i| i.as_str())
        .map(str::to_string)
        .ok_or_else(|| Error::Backend(format!("{what}: libpod answered without an Id")))
}

/// GPUs named by a scheduler are handed over as devices, mounts and
/// environment; GPUs by count cannot be placed: `Err(reason)`.
fn with_gpus(d: &Deployment) -> Result<Result<Option<Deployment>, String>, Error> {
    if d.spec
        .containers
        .iter()
        .all(|c| gpus::need(c) == GpuNeed::None)
    {
        return Ok(Ok(None));
    }
    if let Some(why) = gpus::unplaced(&d.spec) {
        return Ok(Err(why));
    }
    let mut d = d.clone();
    for c in &mut d.spec.containers {
        gpus::hand_over(c)?;
    }
    Ok(Ok(Some(d)))
}

/// `driver.create`: every container of the revision (in a pod when there
/// are several), started when asked.
pub fn create(d: &Deployment, start: bool) -> Result<Vec<ContainerState>, Error> {
    gantry_sdk::replicas::one_copy_each(&d.spec, "the podman backend")?;
    let handed = match with_gpus(d)? {
        Ok(h) => h,
        // Nothing is created; the workload fails with the reason.
        Err(why) => return Ok(gpus::not_run(&d.spec, &why)),
    };
    let d = handed.as_ref().unwrap_or(d);
    if d.spec.containers.is_empty() {
        return Err(invalid(
            "containers",
            "a deployment needs at least one container",
        ));
    }
    spec::validate(d)?;
    if d.spec
        .containers
        .iter()
        .any(|c| c.resources.ephemeral_storage_bytes.is_some())
    {
        log(
            Level::Warn,
            &format!(
                "workload {}: ephemeral storage limits are not enforced by this backend",
                d.workload_id
            ),
        );
    }
    if spec::needs_pod(d)
        && d.spec.network == NetworkMode::Isolated
        && !d.spec.extra_hosts.is_empty()
    {
        log(
            Level::Warn,
            &format!(
                "workload {}: Podman 4.3 drops a pod's extra hosts when its network is `none`",
                d.workload_id
            ),
        );
    }
    let mut images: Vec<&str> = d.spec.containers.iter().map(|c| c.image.as_str()).collect();
    images.sort_unstable();
    images.dedup();
    for image in images {
        ensure_image(&d.workload_id, image)?;
    }
    let mut pod: Option<String> = None;
    let mut created: Vec<String> = Vec::new();
    let made = (|| -> Result<(), Error> {
        if spec::needs_pod(d) {
            let resp = call(Method::Post, "/pods/create", Some(&spec::pod_body(d)))?;
            pod = Some(created_id(&resp, "creating the pod")?);
        }
        for i in 0..d.spec.containers.len() {
            let body = spec::container_body(d, i, pod.as_deref());
            let resp = call(Method::Post, "/containers/create", Some(&body))?;
            let what = format!("creating container `{}`", d.spec.containers[i].name);
            created.push(created_id(&resp, &what)?);
        }
        Ok(())
    })();
    if let Err(e) = made {
        roll_back(&created, pod.as_deref());
        return Err(e);
    }
    let mut failed: Option<(usize, String)> = None;
    if start {
        for (i, id) in created.iter().enumerate() {
            let name = d.spec.containers[i].name.as_str();
            let resp = match call(Method::Post, &format!("/containers/{id}/start"), None) {
                Ok(r) => r,
                Err(e) => {
                    roll_back(&created, pod.as_deref());
                    return Err(e);
                }
            };
            if resp.ok() || resp.status == 304 {
                continue;
            }
            if let Some(refused) = start_refused(&resp, name) {
                roll_back(&created, pod.as_deref());
                return Err(refused);
            }
            // Not a refused request: the containers stay, and their state
            // carries Podman's error.
            log(
                Level::Warn,
                &format!(
                    "workload {}: container `{name}` failed to start: {}",
                    d.workload_id,
                    resp.message()
                ),
            );
            failed = Some((i, resp.message()));
            break;
        }
    }
    let mut states = Vec::with_capacity(created.len());
    for (n, id) in created.iter().enumerate() {
        match inspect_one(id) {
            Ok(i) => {
                let mut s = state(&i);
                // libpod keeps no error of a failed start: say it here.
                if let Some((_, why)) = failed.as_ref().filter(|(f, _)| *f == n) {
                    s.error.get_or_insert_with(|| why.clone());
                }
                states.push(s);
            }
            Err(e) => {
                roll_back(&created, pod.as_deref());
                return Err(e);
            }
        }
    }
    Ok(states)
}
