//! Reading and changing the swarm's services: the services of a workload or
//! a revision, their tasks, an update at the service's version, and waiting
//! for the swarm to converge.

use crate::manager::{call, error, filters, get};
use crate::model::{Service, Task, labels};
use gantry_sdk::backend::exports::gantry::plugin::driver::InstanceRef;
use gantry_sdk::backend::gantry::plugin::config;
use gantry_sdk::backend::gantry::plugin::types::Error;
use gantry_sdk::wasip2::clocks::monotonic_clock;
use gantry_sdk::wasip2::http::types::Method;
use serde_json::{Value, json};

/// Pause `ms` milliseconds.
pub fn sleep_ms(ms: u64) {
    monotonic_clock::subscribe_duration(ms * 1_000_000).block();
}

/// Milliseconds on a monotonic clock.
pub fn now_ms() -> u64 {
    monotonic_clock::now() / 1_000_000
}

/// How long a call waits for the swarm to converge (`converge-timeout-ms`,
/// 60 s); keep it under the plugin's call deadline.
pub fn converge_timeout_ms() -> u64 {
    config::get("converge-timeout-ms")
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(60_000)
}

/// Every service carrying all of `selector` (`key=value` strings).
pub fn labelled(selector: &[String]) -> Result<Vec<Service>, Error> {
    get(
        &format!("/services?filters={}", filters(&[("label", selector)])),
        "listing services",
    )
}

/// Every service of a workload, whatever its revision.
pub fn of_workload(workload_id: &str) -> Result<Vec<Service>, Error> {
    labelled(&[format!("{}={workload_id}", labels::WORKLOAD)])
}

/// The services of a deployed revision, in spec order; `container` narrows to one.
pub fn of_revision(r: &InstanceRef, container: Option<&str>) -> Result<Vec<Service>, Error> {
    let mut list: Vec<Service> = of_workload(&r.workload_id)?
        .into_iter()
        .filter(|s| s.revision() == Some(r.revision))
        .filter(|s| container.is_none_or(|c| s.container() == c))
        .collect();
    list.sort_by_key(Service::index);
    Ok(list)
}

/// [`of_revision`], refusing a revision (or container) that has none.
pub fn targets(r: &InstanceRef, container: Option<&str>) -> Result<Vec<Service>, Error> {
    let list = of_revision(r, container)?;
    if list.is_empty() {
        return Err(Error::NotFound(match container {
            Some(c) => format!(
                "container `{c}` of workload {} revision {} has no service on the swarm",
                r.workload_id, r.revision
            ),
            None => format!(
                "workload {} revision {} has no service on the swarm",
                r.workload_id, r.revision
            ),
        }));
    }
    Ok(list)
}

/// The tasks of these services (all of them, when `ids` is empty). A
/// service removed meanwhile has its tasks still listed until its nodes
/// have removed their containers.
pub fn tasks(ids: &[String]) -> Result<Vec<Task>, Error> {
    if ids.is_empty() {
        return get("/tasks", "listing tasks");
    }
    match get(
        &format!("/tasks?filters={}", filters(&[("service", ids)])),
        "listing tasks",
    ) {
        // The filter names a service that is gone: filter here instead.
        Err(Error::NotFound(_)) => Ok(get::<Vec<Task>>("/tasks", "listing tasks")?
            .into_iter()
            .filter(|t| ids.contains(&t.service_id))
            .collect()),
        other => other,
    }
}

/// A service read again.
pub fn reread(id: &str) -> Result<Service, Error> {
    get(&format!("/services/{id}"), "reading a service")
}

/// Send `spec` as the new spec of `svc` (at its version); `query` adds
/// parameters such as `&rollback=previous`.
pub fn update(svc: &Service, spec: &Value, query: &str) -> Result<(), Error> {
    let r = call(
        Method::Post,
        &format!(
            "/services/{}/update?version={}{query}",
            svc.id, svc.version.index
        ),
        Some(spec),
    )?;
    if r.status != 200 {
        return Err(error(&r, &format!("updating service {}", svc.name())));
    }
    Ok(())
}

/// `svc`'s spec at `scale` replicas, in `life`; with `force`, its tasks
/// are replaced even if nothing else changed (a restart, a new revision).
pub fn rescaled(svc: &Service, scale: u64, life: &str, force: bool) -> Value {
    let mut spec = svc.spec.clone();
    spec["Mode"] = json!({"Replicated": {"Replicas": scale}});
    if !spec["Labels"].is_object() {
        spec["Labels"] = json!({});
    }
    spec["Labels"][labels::LIFE] = json!(life);
    if force {
        let n = spec
            .pointer("/TaskTemplate/ForceUpdate")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        spec["TaskTemplate"]["ForceUpdate"] = json!(n + 1);
    }
    spec
}

/// Scale each of `svcs` to its replicas (`run`) or to none, and wait for it.
pub fn scale_all(svcs: &[Service], run: bool, force: bool) -> Result<(), Error> {
    let since = wall_now();
    for s in svcs {
        let scale = if run { s.replicas() } else { 0 };
        let life = if run { "running" } else { "stopped" };
        update(s, &rescaled(s, scale, life, force), "")?;
    }
    let ids: Vec<String> = svcs.iter().map(|s| s.id.clone()).collect();
    if run {
        let updated = if force { ids.clone() } else { Vec::new() };
        match converge(&ids, &updated, since)? {
            Converged::Settled => Ok(()),
            Converged::RolledBack(why) => Err(Error::Conflict(format!("rolled back: {why}"))),
        }
    } else {
        wait_until(|| Ok(tasks(&ids)?.iter().all(|t| !t.running())))
    }
}

/// Poll `done` until it holds or the converge timeout passes (not an error:
/// the swarm goes on, and the host keeps watching).
pub fn wait_until(mut done: impl FnMut() -> Result<bool, Error>) -> Result<(), Error> {
    let deadline = now_ms() + converge_timeout_ms();
    while !done()? {
        if now_ms() >= deadline {
            return Ok(());
        }
        sleep_ms(200);
    }
    Ok(())
}

/// How waiting for services ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Converged {
    /// Every replica runs (or it ran out of time, or a task failed to start:
    /// the states tell).
    Settled,
    /// A rolling update failed and the swarm rolled the service back: why.
    RolledBack(String),
}

/// Now on the wall clock, as `(seconds, nanoseconds)`: updates the swarm
/// began at or after it are ours.
pub fn wall_now() -> (i64, u32) {
    let t = gantry_sdk::clock::now();
    (t.seconds, t.nanoseconds)
}

/// Why the rolling update of `svc` (begun at or after `since`) ended in a
/// rollback, once it has; `None` while it runs, or if it did not roll back.
fn rolled_back(svc: &Service, ts: &[Task], since: (i64, u32)) -> Option<Option<String>> {
    let u = svc.update_status.as_ref()?;
    if crate::tasks::instant(&u.started_at) < since {
        return None; // an earlier update's outcome
    }
    match u.state.as_str() {
        "rollback_started" => Some(None),
        "rollback_completed" | "rollback_paused" | "paused" => {
            let why = ts
                .iter()
                .filter(|t| t.service_id == svc.id)
                .filter(|t| matches!(t.status.state.as_str(), "rejected" | "failed"))
                .max_by_key(|t| crate::tasks::instant(&t.created_at))
                .and_then(|t| t.status.err.clone());
            let mut msg = format!("service {}: {}", svc.name(), u.message);
            if let Some(w) = why {
                msg.push_str(&format!(" ({w})"));
            }
            Some(Some(msg))
        }
        _ => None,
    }
}

/// Wait until every replica of `ids` runs the current spec, a task cannot
/// start, or a rolling update begun at or after `since` (wall clock, from
/// [`wall_now`]) rolls back. The services in `updated` had their task
/// template changed: their rolling update must be seen to complete.
pub fn converge(ids: &[String], updated: &[String], since: (i64, u32)) -> Result<Converged, Error> {
    use gantry_sdk::backend::gantry::plugin::types::ContainerStatus as S;
    let mut outcome = Converged::Settled;
    wait_until(|| {
        let ts = tasks(ids)?;
        for id in ids {
            let svc = reread(id)?;
            match rolled_back(&svc, &ts, since) {
                Some(Some(why)) => {
                    outcome = Converged::RolledBack(why);
                    return Ok(true);
                }
                Some(None) => return Ok(false),
                None => {}
            }
            let fresh = svc
                .update_status
                .as_ref()
                .filter(|u| crate::tasks::instant(&u.started_at) >= since);
            let completed = fresh.is_some_and(|u| u.state == "completed");
            if fresh.is_some_and(|u| u.state == "updating") || (updated.contains(id) && !completed)
            {
                return Ok(false);
            }
            let mine: Vec<&Task> = ts.iter().filter(|t| &t.service_id == id).collect();
            let settled = svc.scale() == 0
                || matches!(
                    crate::tasks::state(&svc, &mine).status,
                    S::Running | S::Exited
                );
            if !settled {
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    Ok(outcome)
}
