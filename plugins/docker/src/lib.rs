//! gantry's Docker backend: every `driver` operation over the Docker Engine
//! API, reached through the endpoint the host grants (config key `endpoint`,
//! default `engine`). Engine API types come from `bollard-stubs`.
//!
//! A workload revision is a group of containers labelled with the workload
//! id, revision, container name and index; a multi-container one also has a
//! holder container owning the network namespace the others join, so one of
//! them restarting never takes it from the rest. Restart policies are the
//! host's job: containers are created with Docker's restart policy `no`.

mod deploy;
mod engine;
mod events;
mod mapping;
mod members;
mod stats;

use deploy::{cap_cpu, host_cpus, start_holder, storage_enforced};
use engine::{call, enc, error, open};
use gantry_sdk::backend::exports::gantry::plugin::driver::{
    BackendCapabilities, Deployment, Guest, InstanceRef, InstanceSummary, LogReader, RuntimeEvent,
};
use gantry_sdk::backend::gantry::plugin::types::{
    ContainerState, ContainerStats, Error, LogOptions, Resources, RestartPolicy, Timestamp,
};
use gantry_sdk::listing::Summaries;
use gantry_sdk::logs::{Demuxer, StreamedLogs};
use gantry_sdk::wasip2::http::types::Method;
use mapping::labels;
use members::{Listed, each, id, inspect_one, is_holder, label, labelled_as, members, targets};
use serde_json::json;

struct Docker;

fn stop(
    r: &InstanceRef,
    container: Option<&str>,
    signal: Option<&str>,
    timeout: Option<u32>,
) -> Result<(), Error> {
    let mut t = targets(r, container)?;
    t.reverse();
    let secs = timeout.filter(|t| *t > 0).unwrap_or(10);
    match signal {
        None => each(&t, "stop", &format!("?t={secs}"), &[304]),
        Some(sig) => {
            // API 1.41 has no stop signal parameter: signal, wait, then kill.
            each(&t, "kill", &format!("?signal={}", enc(sig)), &[409])?;
            for c in &t {
                let mut waited = open(
                    Method::Post,
                    &format!("/containers/{}/wait?condition=not-running", id(c)?),
                )?;
                let deadline = u64::from(secs) * 1_000_000_000;
                if matches!(waited.read(deadline), Ok(Some(ref b)) if b.is_empty()) {
                    each(std::slice::from_ref(c), "kill", "", &[409])?;
                }
            }
            Ok(())
        }
    }
}

impl Guest for Docker {
    type LogReader = StreamedLogs;

    fn capabilities() -> Result<BackendCapabilities, Error> {
        let resp = call(Method::Get, "/version", None)?;
        let v: serde_json::Value = resp.json()?;
        Ok(BackendCapabilities {
            runtime: format!(
                "docker {} (API {})",
                v.get("Version").and_then(|x| x.as_str()).unwrap_or("?"),
                engine::api_version()?
            ),
            multi_container: true,
            pause: true,
            gpu: true,
            ephemeral_storage_enforced: storage_enforced(),
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
        start_holder(&r)?;
        each(&targets(&r, container.as_deref())?, "start", "", &[304])
    }

    fn stop(
        r: InstanceRef,
        container: Option<String>,
        signal: Option<String>,
        timeout: Option<u32>,
    ) -> Result<(), Error> {
        stop(&r, container.as_deref(), signal.as_deref(), timeout)
    }

    fn kill(
        r: InstanceRef,
        container: Option<String>,
        signal: Option<String>,
    ) -> Result<(), Error> {
        let q = signal
            .map(|s| format!("?signal={}", enc(&s)))
            .unwrap_or_default();
        let mut t = targets(&r, container.as_deref())?;
        t.reverse();
        each(&t, "kill", &q, &[409])
    }

    fn restart(
        r: InstanceRef,
        container: Option<String>,
        timeout: Option<u32>,
    ) -> Result<(), Error> {
        start_holder(&r)?;
        each(
            &targets(&r, container.as_deref())?,
            "restart",
            &format!("?t={}", timeout.unwrap_or(10)),
            &[],
        )
    }

    fn pause(r: InstanceRef, container: Option<String>) -> Result<(), Error> {
        each(&targets(&r, container.as_deref())?, "pause", "", &[])
    }

    fn resume(r: InstanceRef, container: Option<String>) -> Result<(), Error> {
        each(&targets(&r, container.as_deref())?, "unpause", "", &[])
    }

    fn remove(r: InstanceRef, force: bool) -> Result<(), Error> {
        let all = members(&r)?;
        for c in all.iter().rev() {
            let resp = call(
                Method::Delete,
                &format!("/containers/{}?v=1&force={}", id(c)?, u8::from(force)),
                None,
            )?;
            if !(200..300).contains(&resp.status) && resp.status != 404 {
                return Err(error(
                    &resp,
                    &format!("removing {}", label(c, labels::CONTAINER).unwrap_or("?")),
                ));
            }
        }
        Ok(())
    }

    fn inspect(r: InstanceRef) -> Result<Vec<ContainerState>, Error> {
        members(&r)?
            .iter()
            .filter(|c| !is_holder(c))
            .map(|c| Ok(mapping::state(&inspect_one(id(c)?)?)))
            .collect()
    }

    fn list(selector: Vec<(String, String)>) -> Result<Vec<InstanceSummary>, Error> {
        let mut wanted = vec![labels::WORKLOAD.to_string()];
        wanted.extend(selector.iter().map(|(k, v)| format!("{k}={v}")));
        let list: Vec<Listed> = labelled_as(&wanted)?;
        let mut out = Summaries::default();
        for c in list
            .iter()
            .filter(|c| c.label(labels::ROLE) != Some(labels::HOLDER))
        {
            let (Some(w), Some(rev)) = (
                c.label(labels::WORKLOAD),
                c.label(labels::REVISION)
                    .and_then(|r| r.parse::<u32>().ok()),
            ) else {
                continue;
            };
            let state = ContainerState::bare(
                c.label(labels::CONTAINER).unwrap_or(""),
                Some(c.id.clone()),
                mapping::status(&c.state),
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
        // The restart policy lives in the host; only resources reach the engine.
        let Some(res) = resources else { return Ok(()) };
        let mut body = serde_json::Map::new();
        if let Some(cpu) = res.cpu {
            let cpu = cap_cpu(&r.workload_id, cpu, host_cpus());
            body.insert("NanoCpus".into(), json!((cpu * 1e9).round() as i64));
        }
        if let Some(m) = res.memory_bytes {
            body.insert("Memory".into(), json!(m));
            body.insert(
                "MemorySwap".into(),
                json!(res.memory_swap_bytes.unwrap_or(-1)),
            );
        }
        if let Some(m) = res.memory_reservation_bytes {
            body.insert("MemoryReservation".into(), json!(m));
        }
        if let Some(p) = res.pids_limit {
            body.insert("PidsLimit".into(), json!(p));
        }
        let body = serde_json::Value::Object(body);
        for c in targets(&r, container.as_deref())? {
            let resp = call(
                Method::Post,
                &format!("/containers/{}/update", id(&c)?),
                Some(&body),
            )?;
            if resp.status != 200 {
                return Err(error(&resp, "updating resources"));
            }
        }
        Ok(())
    }

    fn rename(r: InstanceRef, name: String) -> Result<(), Error> {
        for c in members(&r)? {
            let member = label(&c, labels::CONTAINER).unwrap_or("c");
            let new_name = mapping::container_name(&name, r.revision, member);
            let resp = call(
                Method::Post,
                &format!("/containers/{}/rename?name={}", id(&c)?, enc(&new_name)),
                None,
            )?;
            if resp.status != 204 {
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
        let info = inspect_one(id(c)?)?;
        let tty = info.config.as_ref().and_then(|c| c.tty).unwrap_or(false);
        let mut q = format!(
            "stdout=1&stderr=1&follow={}&timestamps={}",
            u8::from(options.follow),
            u8::from(options.timestamps)
        );
        if let Some(n) = options.tail {
            q.push_str(&format!("&tail={n}"));
        }
        if let Some(s) = options.since {
            q.push_str(&format!("&since={}.{:09}", s.seconds, s.nanoseconds));
        }
        let stream = open(Method::Get, &format!("/containers/{}/logs?{q}", id(c)?))?;
        if stream.status != 200 {
            let r = stream.read_all()?;
            return Err(error(&r, "logs"));
        }
        // A TTY's output comes raw; everything else framed.
        let demuxer = Demuxer::new(
            label(c, labels::CONTAINER).unwrap_or("").to_string(),
            !tty,
            options.timestamps,
        );
        Ok(LogReader::new(StreamedLogs::new(stream, demuxer)))
    }
}

gantry_sdk::backend::export_backend!(Docker);
