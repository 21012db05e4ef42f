//! A third-party gantry backend for Podman: every `driver` operation over
//! Podman's own libpod REST API (`/v4.0.0/libpod/...`, served by
//! `podman system service`), reached through the endpoint the host grants
//! (config key `endpoint`, default `podman`).
//!
//! A workload revision is a set of Podman containers labelled with the
//! workload id, revision, container name and index. A multi-container
//! revision lives in a libpod pod, also labelled, whose infra container owns
//! the network namespace the members join, so a member's restart never takes
//! it from the others. A single container gets a namespace of its own.
//! Restart policies are the host's job: containers are created with
//! Podman's restart policy `no`.

// Natively (unit tests) the component's exports are not compiled, so what
// only they reach is unused there.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

mod client;
mod deploy;
mod events;
mod members;
mod spec;
mod stats;

use client::{call, enc, error};
use gantry_sdk::backend::exports::gantry::plugin::driver::{
    BackendCapabilities, Deployment, Guest, InstanceRef, InstanceSummary, LogReader, RuntimeEvent,
};
use gantry_sdk::backend::gantry::plugin::types::{
    ContainerState, ContainerStats, Error, LogOptions, Resources, RestartPolicy, Timestamp,
};
use gantry_sdk::listing::Summaries;
use gantry_sdk::logs::{Demuxer, StreamedLogs};
use gantry_sdk::wasip2::clocks::monotonic_clock;
use gantry_sdk::wasip2::http::types::Method;
use members::{Listed, each, everything, inspect_one, labelled, members, pods, targets};
use spec::labels;

struct Podman;

/// States a container is not running in: stopping or killing it is done.
const NOT_RUNNING: &[&str] = &["configured", "created", "stopped", "exited"];

/// Seconds a stop waits after its signal when the caller names none.
const DEFAULT_STOP_TIMEOUT: u32 = 10;

/// The wall clock, as the host's timestamps.
/// RFC 3339 with nanoseconds, as libpod's `since` and `until` take it.
pub(crate) fn rfc3339(t: &Timestamp) -> String {
    gantry_sdk::clock::rfc3339(t.seconds, t.nanoseconds)
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

/// Send `signal`, then wait up to `secs` for each target to stop, and kill
/// those that did not. libpod's stop takes no signal (it uses the image's).
fn stop_with(t: &[Listed], signal: &str, secs: u32) -> Result<(), Error> {
    each(t, "kill", &format!("?signal={}", enc(signal)), NOT_RUNNING)?;
    let deadline = monotonic_clock::now() + u64::from(secs) * 1_000_000_000;
    for c in t {
        loop {
            let state = inspect_one(&c.id)?.state.status;
            if NOT_RUNNING.contains(&state.as_str()) {
                break;
            }
            if monotonic_clock::now() >= deadline {
                each(
                    std::slice::from_ref(c),
                    "kill",
                    "?signal=SIGKILL",
                    NOT_RUNNING,
                )?;
                break;
            }
            monotonic_clock::subscribe_duration(100_000_000).block();
        }
    }
    Ok(())
}

/// DELETE a container or pod; a missing one is already removed (by a
/// concurrent call, say: libpod then answers 404, or 500 `no such pod`).
fn delete(path: &str, what: &str) -> Result<(), Error> {
    let resp = call(Method::Delete, path, None)?;
    let cause = client::cause(&resp);
    if resp.status == 404 || cause == "no such container" || cause == "no such pod" {
        return Ok(());
    }
    if !resp.ok() {
        return Err(error(&resp, &format!("removing {what}")));
    }
    // libpod answers removals with per-object reports, `Err` set on failure.
    let reports: Vec<serde_json::Value> = match resp.json::<serde_json::Value>() {
        Ok(serde_json::Value::Array(a)) => a,
        Ok(one @ serde_json::Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    let failed = reports.iter().find_map(|r| {
        r.get("Err")
            .and_then(|e| e.as_str())
            .filter(|e| !e.is_empty() && !e.contains("no such"))
    });
    match failed {
        Some(e) => Err(Error::Backend(format!("removing {what}: {e}"))),
        None => Ok(()),
    }
}

impl Guest for Podman {
    type LogReader = StreamedLogs;

    fn capabilities() -> Result<BackendCapabilities, Error> {
        let resp = call(Method::Get, "/version", None)?;
        if !resp.ok() {
            return Err(Error::Unavailable(format!(
                "podman answered {} to /version: {}",
                resp.status,
                resp.message()
            )));
        }
        let v: serde_json::Value = resp.json()?;
        let api = v
            .pointer("/Components/0/Details/APIVersion")
            .and_then(|a| a.as_str())
            .unwrap_or("?");
        Ok(BackendCapabilities {
            runtime: format!(
                "podman {} (libpod API {api})",
                v.get("Version").and_then(|x| x.as_str()).unwrap_or("?")
            ),
            multi_container: true,
            pause: true,
            gpu: true,
            ephemeral_storage_enforced: false,
            logs_follow: true,
            stats: true,
            events: true,
            update_in_place: true,
            rename: true,
        })
    }

    fn create(deployment: Deployment, start: bool) -> Result<Vec<ContainerState>, Error> {
        deploy::create(&deployment, start)
    }

    fn start(r: InstanceRef, container: Option<String>) -> Result<(), Error> {
        // A pod member's start starts the pod's infra container first.
        deploy::start_each(&targets(&r, container.as_deref())?)
    }

    fn stop(
        r: InstanceRef,
        container: Option<String>,
        signal: Option<String>,
        timeout: Option<u32>,
    ) -> Result<(), Error> {
        let mut t = targets(&r, container.as_deref())?;
        t.reverse();
        let secs = timeout.filter(|t| *t > 0).unwrap_or(DEFAULT_STOP_TIMEOUT);
        match signal {
            None => each(&t, "stop", &format!("?timeout={secs}"), NOT_RUNNING),
            Some(sig) => stop_with(&t, &sig, secs),
        }
    }

    fn kill(
        r: InstanceRef,
        container: Option<String>,
        signal: Option<String>,
    ) -> Result<(), Error> {
        let sig = signal.unwrap_or_else(|| "SIGKILL".into());
        let mut t = targets(&r, container.as_deref())?;
        t.reverse();
        each(&t, "kill", &format!("?signal={}", enc(&sig)), NOT_RUNNING)
    }

    fn restart(
        r: InstanceRef,
        container: Option<String>,
        timeout: Option<u32>,
    ) -> Result<(), Error> {
        let secs = timeout.unwrap_or(DEFAULT_STOP_TIMEOUT);
        each(
            &targets(&r, container.as_deref())?,
            "restart",
            &format!("?t={secs}"),
            &[],
        )
    }

    fn pause(r: InstanceRef, container: Option<String>) -> Result<(), Error> {
        each(
            &targets(&r, container.as_deref())?,
            "pause",
            "",
            &["paused"],
        )
    }

    fn resume(r: InstanceRef, container: Option<String>) -> Result<(), Error> {
        each(
            &targets(&r, container.as_deref())?,
            "unpause",
            "",
            &["running"],
        )
    }

    fn remove(r: InstanceRef, force: bool) -> Result<(), Error> {
        for c in members(&r)?.iter().rev() {
            delete(
                &format!("/containers/{}?force={force}&v=true", c.id),
                &format!("container `{}`", c.member()),
            )?;
        }
        // The pod goes with its infra container, which is gantry's own.
        for p in pods(&r)? {
            delete(&format!("/pods/{}?force=true", p.id), "the pod")?;
        }
        Ok(())
    }

    fn inspect(r: InstanceRef) -> Result<Vec<ContainerState>, Error> {
        members(&r)?
            .iter()
            .map(|c| Ok(members::state(&inspect_one(&c.id)?)))
            .collect()
    }

    fn list(selector: Vec<(String, String)>) -> Result<Vec<InstanceSummary>, Error> {
        let mut wanted = vec![labels::WORKLOAD.to_string()];
        wanted.extend(selector.iter().map(|(k, v)| format!("{k}={v}")));
        let mut out = Summaries::default();
        for c in labelled(&wanted)?.iter().filter(|c| !c.is_infra) {
            let (Some(w), Some(rev)) = (
                c.label(labels::WORKLOAD),
                c.label(labels::REVISION)
                    .and_then(|r| r.parse::<u32>().ok()),
            ) else {
                continue;
            };
            let state = ContainerState::bare(
                c.member(),
                Some(c.id.clone()),
                members::status(&c.state),
                None,
            );
            out.push(w, rev, state);
        }
        Ok(out.finish())
    }

    fn stats(r: InstanceRef, container: Option<String>) -> Result<ContainerStats, Error> {
        stats::stats(&r, container.as_deref())
    }

    fn update(
        r: InstanceRef,
        container: Option<String>,
        resources: Option<Resources>,
        _restart: Option<RestartPolicy>,
    ) -> Result<(), Error> {
        // The restart policy lives in the host; only resources reach Podman.
        let Some(res) = resources else { return Ok(()) };
        let body = spec::resource_limits(&res);
        for c in targets(&r, container.as_deref())? {
            let resp = call(
                Method::Post,
                &format!("/containers/{}/update", c.id),
                Some(&body),
            )?;
            if !resp.ok() {
                return Err(error(&resp, &format!("updating `{}`", c.member())));
            }
        }
        Ok(())
    }

    fn rename(r: InstanceRef, name: String) -> Result<(), Error> {
        for c in everything(&r)? {
            let new_name = if c.is_infra {
                spec::infra_name(&name, r.revision)
            } else {
                spec::container_name(&name, r.revision, c.member())
            };
            let resp = call(
                Method::Post,
                &format!("/containers/{}/rename?name={}", c.id, enc(&new_name)),
                None,
            )?;
            if !resp.ok() {
                return Err(error(&resp, "renaming"));
            }
        }
        Ok(())
    }

    fn watch(since: Option<Timestamp>, wait_ms: u32) -> Result<Vec<RuntimeEvent>, Error> {
        events::watch(since, wait_ms)
    }

    fn logs(r: InstanceRef, options: LogOptions) -> Result<LogReader, Error> {
        let t = targets(&r, options.container.as_deref())?;
        let c = t
            .first()
            .ok_or_else(|| Error::NotFound("no container".into()))?;
        let mut q = format!(
            "stdout=true&stderr=true&follow={}&timestamps={}",
            options.follow, options.timestamps
        );
        if let Some(n) = options.tail {
            q.push_str(&format!("&tail={n}"));
        }
        if let Some(s) = options.since {
            q.push_str(&format!("&since={}", enc(&rfc3339(&s))));
        }
        let stream = client::open(Method::Get, &format!("/containers/{}/logs?{q}", c.id))?;
        if stream.status != 200 {
            let resp = stream.read_all()?;
            return Err(error(&resp, "logs"));
        }
        // libpod frames every log answer, a TTY's too.
        let demuxer = Demuxer::new(c.member().to_string(), true, options.timestamps);
        Ok(LogReader::new(StreamedLogs::new(stream, demuxer)))
    }
}

// Exported from the component only: a native build (unit tests) has no
// host to export to, and its linker cannot name WIT's exports.
#[cfg(target_arch = "wasm32")]
gantry_sdk::backend::export_backend!(Podman);
