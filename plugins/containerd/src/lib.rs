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
mod clock;
mod containers;
mod deploy;
mod events;
mod grpc;
mod image;
mod lease;
mod logs;
mod oci;
mod registry;
mod spec;
mod state;
mod stats;
mod task;

use api::containerd::v1::types::Process;
use containers::{Member, labels, members, targets};
use deploy::{remove_one, start_targets};
use gantry_sdk::backend::exports::gantry::plugin::driver::{
    BackendCapabilities, Deployment, Guest, GuestLogReader, InstanceRef, InstanceSummary,
    LogReader, RuntimeEvent,
};
use gantry_sdk::backend::gantry::plugin::types::{
    ContainerState, ContainerStats, Error, LogLine, LogOptions, Resources, RestartPolicy, Timestamp,
};
use gantry_sdk::listing::Summaries;
use grpc::unary;
use spec::invalid;
use state::{inspect_members, state_of};
use std::collections::HashMap;

struct Containerd;

/// Seconds a stop waits after its signal when the caller names none.
const DEFAULT_STOP_TIMEOUT: u32 = 10;

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
            gpu: true,
            ephemeral_storage_enforced: false,
            logs_follow: logs::available(),
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
            task::pause(&m.id)?;
        }
        Ok(())
    }

    fn resume(r: InstanceRef, container: Option<String>) -> Result<(), Error> {
        for m in targets(&r, container.as_deref())? {
            task::resume(&m.id)?;
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
        let mut out = Summaries::default();
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
            out.push(w, rev, state);
        }
        Ok(out.finish())
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
