//! gantry's Docker backend: every `driver` operation over the Docker Engine
//! API, reached through the endpoint the host grants (config key `endpoint`,
//! default `engine`). Engine API types come from `bollard-stubs`.
//!
//! A workload revision is a group of containers labelled with the workload
//! id, revision, container name and index; container 0 holds the network
//! namespace the others join. Restart policies are the host's job: containers
//! are created with Docker's restart policy `no`.

mod engine;
mod logs;
mod mapping;

use bollard_stubs::models::{
    ContainerInspectResponse, ContainerStatsResponse, ContainerSummary, EventMessage,
};
use engine::{call, enc, error, open};
use gantry_sdk::backend::exports::gantry::plugin::driver::{
    BackendCapabilities, Deployment, Guest, GuestLogReader, InstanceRef, InstanceSummary,
    LogReader, RuntimeAction, RuntimeEvent,
};
use gantry_sdk::backend::gantry::plugin::logging::{Level, log};
use gantry_sdk::backend::gantry::plugin::progress;
use gantry_sdk::backend::gantry::plugin::types::{
    ContainerState, ContainerStats, Error, LogOptions, Resources, RestartPolicy, Timestamp,
};
use gantry_sdk::wasip2::http::types::Method;
use mapping::labels;
use serde_json::json;

struct Docker;

/// Containers carrying every one of `labels` (`key` or `key=value`), stopped ones included.
fn labelled(labels: &[String]) -> Result<Vec<ContainerSummary>, Error> {
    let filters = json!({ "label": labels });
    let resp = call(
        Method::Get,
        &format!(
            "/containers/json?all=1&filters={}",
            enc(&filters.to_string())
        ),
        None,
    )?;
    if resp.status != 200 {
        return Err(error(&resp, "listing containers"));
    }
    resp.json()
}

/// The containers of one revision: the namespace holder (if any) first, then spec order.
fn members(r: &InstanceRef) -> Result<Vec<ContainerSummary>, Error> {
    let mut list = labelled(&[
        format!("{}={}", labels::WORKLOAD, r.workload_id),
        format!("{}={}", labels::REVISION, r.revision),
    ])?;
    list.sort_by_key(|c| {
        if is_holder(c) {
            return -1;
        }
        c.labels
            .as_ref()
            .and_then(|l| l.get(labels::INDEX))
            .and_then(|i| i.parse::<i64>().ok())
            .unwrap_or(0)
    });
    Ok(list)
}

/// Whether a container is a revision's namespace holder, not one of its spec.
fn is_holder(c: &ContainerSummary) -> bool {
    label(c, labels::ROLE) == Some(labels::HOLDER)
}

/// Start the revision's namespace holder, if it has one (running already is fine).
fn start_holder(r: &InstanceRef) -> Result<(), Error> {
    let holders: Vec<ContainerSummary> = members(r)?.into_iter().filter(is_holder).collect();
    each(&holders, "start", "", &[304])
}

/// The holder's image (config `holder_image`, default: the workload's first
/// image) and command (config `holder_command`, default `sleep 2147483647`).
fn holder_process(d: &Deployment) -> (String, Vec<String>) {
    use gantry_sdk::backend::gantry::plugin::config;
    let image = config::get("holder_image").unwrap_or_else(|| d.spec.containers[0].image.clone());
    let command = config::get("holder_command")
        .map(|c| c.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| vec!["sleep".into(), "2147483647".into()]);
    (image, command)
}

/// A start the engine refused because the command cannot run is the
/// caller's input: an executable the image does not have is not found (as an
/// image it does not have is), one it cannot execute is invalid.
fn start_refused(resp: &engine::Response, container: &str) -> Option<Error> {
    let msg = resp.message();
    let m = msg.to_ascii_lowercase();
    let message = format!("container `{container}`: its command cannot run: {msg}");
    // runc's words for an exec that failed: `exec: "x": executable file not
    // found in $PATH`, or `exec: "/x": stat /x: no such file or directory`
    // (a missing mount source says "no such file" too, without `exec:`).
    let exec = m.contains("exec:") || m.contains("executable file not found");
    if exec && (m.contains("not found") || m.contains("no such file or directory")) {
        return Some(Error::NotFound(message));
    }
    (exec && m.contains("permission denied")).then(|| {
        Error::Invalid(gantry_sdk::backend::gantry::plugin::types::InvalidInput {
            message,
            fields: vec![gantry_sdk::backend::gantry::plugin::types::FieldError {
                field: "command".into(),
                message: msg.clone(),
            }],
        })
    })
}

/// The members an operation applies to: one by name, or all.
fn targets(r: &InstanceRef, container: Option<&str>) -> Result<Vec<ContainerSummary>, Error> {
    let all: Vec<ContainerSummary> = members(r)?.into_iter().filter(|c| !is_holder(c)).collect();
    if all.is_empty() {
        return Err(Error::NotFound(format!(
            "workload {} revision {} has no containers on this engine",
            r.workload_id, r.revision
        )));
    }
    match container {
        None => Ok(all),
        Some(name) => {
            let one: Vec<_> = all
                .into_iter()
                .filter(|c| label(c, labels::CONTAINER) == Some(name))
                .collect();
            if one.is_empty() {
                return Err(Error::NotFound(format!(
                    "container `{name}` of workload {}",
                    r.workload_id
                )));
            }
            Ok(one)
        }
    }
}

fn label<'a>(c: &'a ContainerSummary, key: &str) -> Option<&'a str> {
    c.labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map(String::as_str)
}

fn id(c: &ContainerSummary) -> Result<&str, Error> {
    c.id.as_deref()
        .ok_or_else(|| Error::Backend("engine listed a container without an id".into()))
}

/// POST an action to each target; `idempotent` statuses count as success.
fn each(
    targets: &[ContainerSummary],
    action: &str,
    query: &str,
    idempotent: &[u16],
) -> Result<(), Error> {
    for c in targets {
        let resp = call(
            Method::Post,
            &format!("/containers/{}/{action}{query}", id(c)?),
            None,
        )?;
        if !(200..300).contains(&resp.status) && !idempotent.contains(&resp.status) {
            return Err(error(
                &resp,
                &format!("{action} {}", label(c, labels::CONTAINER).unwrap_or("?")),
            ));
        }
    }
    Ok(())
}

fn inspect_one(id: &str) -> Result<ContainerInspectResponse, Error> {
    let resp = call(Method::Get, &format!("/containers/{id}/json"), None)?;
    if resp.status != 200 {
        return Err(error(&resp, "inspecting container"));
    }
    resp.json()
}

fn remove_ids(ids: &[String]) {
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
fn ensure_image(workload: &str, image: &str) -> Result<(), Error> {
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
    let mut pending = Vec::new();
    while let Some(chunk) = stream.read(60_000_000_000)? {
        pending.extend(chunk);
        while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=pos).collect();
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
fn host_cpus() -> Option<f64> {
    let info: serde_json::Value = call(Method::Get, "/info", None).ok()?.json().ok()?;
    info.get("NCPU")
        .and_then(|n| n.as_f64())
        .filter(|n| *n >= 1.0)
}

/// A CPU limit the engine accepts: Docker refuses limits above the host's
/// CPU count, which are no limit at all; cap them and say so.
fn cap_cpu(workload: &str, cpu: f64, host: Option<f64>) -> f64 {
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

/// Whether the storage driver can enforce a writable-layer size (overlay2 on xfs with pquota).
fn storage_enforced() -> bool {
    let Ok(resp) = call(Method::Get, "/info", None) else {
        return false;
    };
    let Ok(info) = resp.json::<serde_json::Value>() else {
        return false;
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
    (driver == "overlay2" && backing == "xfs") || driver == "btrfs" || driver == "zfs"
}

fn now() -> Timestamp {
    let t = gantry_sdk::wasip2::clocks::wall_clock::now();
    Timestamp {
        seconds: i64::try_from(t.seconds).unwrap_or(i64::MAX),
        nanoseconds: t.nanoseconds,
    }
}

fn create(d: &Deployment, start: bool) -> Result<Vec<ContainerState>, Error> {
    if d.spec.containers.is_empty() {
        return Err(Error::Invalid(
            gantry_sdk::backend::gantry::plugin::types::InvalidInput {
                message: "a deployment needs at least one container".into(),
                fields: Vec::new(),
            },
        ));
    }
    for c in &d.spec.containers {
        ensure_image(&d.workload_id, &c.image)?;
    }
    let holder_process = mapping::needs_holder(d).then(|| holder_process(d));
    if let Some((image, _)) = &holder_process {
        ensure_image(&d.workload_id, image)?;
    }
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
    let mut d = d.clone();
    if d.spec.containers.iter().any(|c| c.resources.cpu.is_some()) {
        let host = host_cpus();
        for c in &mut d.spec.containers {
            c.resources.cpu = c
                .resources
                .cpu
                .map(|cpu| cap_cpu(&d.workload_id, cpu, host));
        }
    }
    let d = &d;
    let mut created: Vec<String> = Vec::new();
    let mut holder: Option<String> = None;
    let result = (|| -> Result<(), Error> {
        if let Some((image, command)) = holder_process {
            let body = mapping::holder_body(d, &image, command);
            let name = mapping::holder_name(&d.name, d.revision);
            let value = serde_json::to_value(&body).map_err(|e| Error::Internal(e.to_string()))?;
            let resp = call(
                Method::Post,
                &format!("/containers/create?name={}", enc(&name)),
                Some(&value),
            )?;
            if resp.status != 201 {
                return Err(error(&resp, &format!("creating {name}")));
            }
            let v: serde_json::Value = resp.json()?;
            let id = v
                .get("Id")
                .and_then(|i| i.as_str())
                .ok_or_else(|| Error::Backend("create answered without an Id".into()))?;
            created.push(id.to_string());
            holder = Some(id.to_string());
        }
        for i in 0..d.spec.containers.len() {
            let body = mapping::create_body(d, i, holder.as_deref(), enforce);
            let name = mapping::container_name(&d.name, d.revision, &d.spec.containers[i].name);
            let value = serde_json::to_value(&body).map_err(|e| Error::Internal(e.to_string()))?;
            let resp = call(
                Method::Post,
                &format!("/containers/create?name={}", enc(&name)),
                Some(&value),
            )?;
            if resp.status != 201 {
                return Err(error(&resp, &format!("creating {name}")));
            }
            let v: serde_json::Value = resp.json()?;
            let id = v
                .get("Id")
                .and_then(|i| i.as_str())
                .ok_or_else(|| Error::Backend("create answered without an Id".into()))?;
            created.push(id.to_string());
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

fn stats(r: &InstanceRef, container: Option<&str>) -> Result<ContainerStats, Error> {
    let t = targets(r, container)?;
    let c = t
        .first()
        .ok_or_else(|| Error::NotFound("no container".into()))?;
    let resp = call(
        Method::Get,
        &format!("/containers/{}/stats?stream=false", id(c)?),
        None,
    )?;
    if resp.status != 200 {
        return Err(error(&resp, "stats"));
    }
    let s: ContainerStatsResponse = resp.json()?;
    let cpu = s.cpu_stats.as_ref();
    let pre = s.precpu_stats.as_ref();
    let total = |c: Option<&bollard_stubs::models::ContainerCpuStats>| {
        c.and_then(|c| c.cpu_usage.as_ref())
            .and_then(|u| u.total_usage)
            .unwrap_or(0)
    };
    let system = |c: Option<&bollard_stubs::models::ContainerCpuStats>| {
        c.and_then(|c| c.system_cpu_usage).unwrap_or(0)
    };
    let cpu_delta = total(cpu).saturating_sub(total(pre)) as f64;
    let sys_delta = system(cpu).saturating_sub(system(pre)) as f64;
    let online = cpu
        .and_then(|c| c.online_cpus)
        .map(f64::from)
        .unwrap_or(1.0);
    let mem = s.memory_stats.as_ref();
    let usage = mem.and_then(|m| m.usage).unwrap_or(0);
    let cache = mem
        .and_then(|m| m.stats.as_ref())
        .and_then(|st| {
            st.get("inactive_file")
                .or_else(|| st.get("total_inactive_file"))
                .or_else(|| st.get("cache"))
                .copied()
        })
        .unwrap_or(0);
    let (mut read, mut write) = (0u64, 0u64);
    for e in s
        .blkio_stats
        .as_ref()
        .and_then(|b| b.io_service_bytes_recursive.as_ref())
        .into_iter()
        .flatten()
    {
        match e.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => read += e.value.unwrap_or(0),
            Some("write") => write += e.value.unwrap_or(0),
            _ => {}
        }
    }
    let (rx, tx) = s.networks.as_ref().map_or((0, 0), |n| {
        n.values().fold((0u64, 0u64), |(r, t), v| {
            (r + v.rx_bytes.unwrap_or(0), t + v.tx_bytes.unwrap_or(0))
        })
    });
    Ok(ContainerStats {
        container: label(c, labels::CONTAINER).unwrap_or("").to_string(),
        cpu_percent: if sys_delta > 0.0 {
            cpu_delta / sys_delta * online * 100.0
        } else {
            0.0
        },
        cpu_total_nanos: total(cpu),
        memory_used_bytes: usage.saturating_sub(cache),
        memory_limit_bytes: mem.and_then(|m| m.limit).unwrap_or(0),
        io_read_bytes: read,
        io_write_bytes: write,
        net_rx_bytes: rx,
        net_tx_bytes: tx,
        pids: s
            .pids_stats
            .as_ref()
            .and_then(|p| p.current)
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(0),
        at: now(),
    })
}

fn event(e: &EventMessage) -> Option<RuntimeEvent> {
    let attrs = e.actor.as_ref()?.attributes.as_ref()?;
    if attrs.get(labels::ROLE).map(String::as_str) == Some(labels::HOLDER) {
        return None;
    }
    let action = e.action.as_deref().unwrap_or("");
    let kind = match action.split(':').next().unwrap_or("") {
        "create" => RuntimeAction::Created,
        "start" => RuntimeAction::Started,
        "die" => RuntimeAction::Exited,
        "oom" => RuntimeAction::OomKilled,
        "pause" => RuntimeAction::Paused,
        "unpause" => RuntimeAction::Resumed,
        "destroy" => RuntimeAction::Removed,
        _ => RuntimeAction::Other,
    };
    let nanos = e.time_nano.unwrap_or(0);
    Some(RuntimeEvent {
        workload_id: attrs.get(labels::WORKLOAD)?.clone(),
        revision: attrs.get(labels::REVISION)?.parse().ok()?,
        container: attrs.get(labels::CONTAINER).cloned().unwrap_or_default(),
        action: kind,
        exit_code: attrs.get("exitCode").and_then(|c| c.parse().ok()),
        at: Timestamp {
            seconds: nanos.div_euclid(1_000_000_000),
            nanoseconds: u32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or(0),
        },
    })
}

fn watch(since: Option<Timestamp>, wait_ms: u32) -> Result<Vec<RuntimeEvent>, Error> {
    let now = now();
    // `since` is inclusive in the Engine: step one nanosecond past the last event seen.
    let since = since.map_or(format!("{}.{:09}", now.seconds, now.nanoseconds), |t| {
        let n = i128::from(t.seconds) * 1_000_000_000 + i128::from(t.nanoseconds) + 1;
        format!(
            "{}.{:09}",
            n.div_euclid(1_000_000_000),
            n.rem_euclid(1_000_000_000)
        )
    });
    let until_secs = now.seconds + i64::from(wait_ms.div_ceil(1000).max(1));
    let filters = json!({"type": ["container"], "label": [labels::WORKLOAD]});
    let mut stream = open(
        Method::Get,
        &format!(
            "/events?since={since}&until={until_secs}&filters={}",
            enc(&filters.to_string())
        ),
    )?;
    if stream.status != 200 {
        let r = stream.read_all()?;
        return Err(error(&r, "events"));
    }
    let mut events = Vec::new();
    let mut pending = Vec::new();
    let mut wait_ns = u64::from(wait_ms) * 1_000_000;
    while let Some(chunk) = stream.read(wait_ns)? {
        if chunk.is_empty() {
            break;
        }
        pending.extend(chunk);
        while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=pos).collect();
            if let Some(ev) = serde_json::from_slice::<EventMessage>(&line)
                .ok()
                .as_ref()
                .and_then(event)
            {
                events.push(ev);
            }
        }
        if !events.is_empty() {
            // Collect what follows closely, then answer.
            wait_ns = 50_000_000;
        }
    }
    Ok(events)
}

impl Guest for Docker {
    type LogReader = logs::LogReader;

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
        create(&deployment, start)
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
        let list = labelled(&wanted)?;
        let mut out: Vec<InstanceSummary> = Vec::new();
        for c in list.iter().filter(|c| !is_holder(c)) {
            let (Some(w), Some(rev)) = (
                label(c, labels::WORKLOAD),
                label(c, labels::REVISION).and_then(|r| r.parse::<u32>().ok()),
            ) else {
                continue;
            };
            let state = ContainerState {
                name: label(c, labels::CONTAINER).unwrap_or("").to_string(),
                runtime_id: c.id.clone(),
                status: mapping::status(
                    c.state
                        .as_ref()
                        .map(|s| s.to_string())
                        .as_deref()
                        .unwrap_or(""),
                ),
                pid: None,
                exit_code: None,
                started_at: None,
                finished_at: None,
                oom_killed: false,
                restart_count: 0,
                error: None,
            };
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
        stats(&r, container.as_deref())
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
        watch(since, wait_ms)
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
        let demux = logs::Demuxer::new(
            label(c, labels::CONTAINER).unwrap_or("").to_string(),
            tty,
            options.timestamps,
        );
        Ok(LogReader::new(logs::LogReader::new(stream, demux)))
    }
}

impl GuestLogReader for logs::LogReader {
    fn next(
        &self,
        wait_ms: u32,
    ) -> Result<Option<Vec<gantry_sdk::backend::gantry::plugin::types::LogLine>>, Error> {
        logs::LogReader::next(self, wait_ms)
    }
}

gantry_sdk::backend::export_backend!(Docker);
