//! Reading and changing the swarm's services: the services of a workload or
//! a revision, their tasks, an update at the service's version, and waiting
//! for the swarm to converge.

use crate::manager::{call, error, filters, get};
use crate::model::{Service, Task, labels};
use crate::stall::Stalls;
use gantry_sdk::backend::exports::gantry::plugin::driver::InstanceRef;
use gantry_sdk::backend::gantry::plugin::logging::{Level, log};
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
    crate::service::setting("converge-timeout-ms", 60_000)
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
    if force { forced(spec) } else { spec }
}

/// `spec` with its tasks to be replaced even if nothing else changed.
pub fn forced(mut spec: Value) -> Value {
    let n = spec
        .pointer("/TaskTemplate/ForceUpdate")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    spec["TaskTemplate"]["ForceUpdate"] = json!(n + 1);
    spec
}

/// A service whose task template a call changed: the rolling update that
/// follows is told from earlier ones by its start time differing from
/// `before` (the manager's own clock on both sides).
#[derive(Debug, Clone)]
pub struct Rollout {
    /// The service.
    pub id: String,
    /// When its last update had started, before this one.
    pub before: Option<String>,
    /// Whether tasks are replaced one batch at a time: a service that had
    /// none, or will have none, gets no rolling update (nor its status).
    pub rolling: bool,
}

impl Rollout {
    /// The rollout of `svc`'s new spec at `new_scale` replicas.
    pub fn of(svc: &Service, new_scale: u64) -> Rollout {
        Rollout {
            id: svc.id.clone(),
            before: svc.update_status.as_ref().map(|u| u.started_at.clone()),
            rolling: svc.scale() > 0 && new_scale > 0,
        }
    }
}

/// Wait until every task of `ids` is `settled`, but on nodes that are down
/// (they cannot say; the swarm tidies theirs when they return); `false` when
/// the converge timeout passed first.
pub fn wait_tasks(ids: &[String], settled: impl Fn(&Task) -> bool) -> Result<bool, Error> {
    wait_tasks_within(converge_timeout_ms(), ids, settled)
}

/// [`wait_tasks`], for at most `ms`.
pub fn wait_tasks_within(
    ms: u64,
    ids: &[String],
    settled: impl Fn(&Task) -> bool,
) -> Result<bool, Error> {
    wait_within(ms, || {
        let down = crate::nodes::down()?;
        Ok(tasks(ids)?
            .iter()
            .all(|t| settled(t) || down.contains(&t.node_id)))
    })
}

/// Scale each of `svcs` to its replicas (`run`) or to none, and wait for it;
/// with `force`, replace every task (a restart).
pub fn scale_all(svcs: &[Service], run: bool, force: bool) -> Result<(), Error> {
    let mut rollouts = Vec::new();
    for s in svcs {
        let scale = if run { s.replicas() } else { 0 };
        let life = if run { "running" } else { "stopped" };
        if force {
            rollouts.push(Rollout::of(s, scale));
        }
        update(s, &rescaled(s, scale, life, force), "")?;
    }
    let ids: Vec<String> = svcs.iter().map(|s| s.id.clone()).collect();
    if !run {
        wait_tasks(&ids, |t| !t.running())?;
        return Ok(());
    }
    // A service woken from no replicas still lists its last tasks, shut
    // down: wait for the swarm to want new ones, or they would read as
    // settled (exited) before the orchestrator has acted.
    let woken: Vec<&String> = svcs
        .iter()
        .filter(|s| s.scale() == 0 && s.replicas() > 0)
        .map(|s| &s.id)
        .collect();
    let mut stalls = Stalls::default();
    let wanted = woken.is_empty()
        || wait_until(|| {
            let ts = tasks(&ids)?;
            let mut all = true;
            for id in &woken {
                let mine: Vec<&Task> = ts.iter().filter(|t| &&t.service_id == id).collect();
                if !mine.iter().any(|t| t.wanted()) {
                    all = false;
                    stalls.check(&reread(id)?, &mine)?;
                }
            }
            Ok(all)
        })?;
    if !wanted {
        // Still on its way after the converge timeout: the host keeps watching.
        return Ok(());
    }
    match converge(&ids, &rollouts)? {
        // Still on its way: the host keeps watching.
        Converged::Settled | Converged::TimedOut => Ok(()),
        Converged::Failed(why) => Err(Error::Conflict(why)),
    }
}

/// Poll `done` until it holds (`true`) or the converge timeout passes (`false`).
pub fn wait_until(done: impl FnMut() -> Result<bool, Error>) -> Result<bool, Error> {
    wait_within(converge_timeout_ms(), done)
}

/// Poll `done` until it holds (`true`) or `ms` pass (`false`).
pub fn wait_within(ms: u64, mut done: impl FnMut() -> Result<bool, Error>) -> Result<bool, Error> {
    let deadline = now_ms() + ms;
    while !done()? {
        if now_ms() >= deadline {
            return Ok(false);
        }
        sleep_ms(200);
    }
    Ok(true)
}

/// How waiting for services ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Converged {
    /// Every replica runs, or a task cannot start, or the container exited
    /// or crash-loops: the states tell.
    Settled,
    /// A rolling update failed: the swarm rolled the service back (or
    /// paused it), and why.
    Failed(String),
    /// The converge timeout passed first.
    TimedOut,
}

/// How our rolling update of `svc` stands: `None` while it runs (or has
/// not begun), `Some(Ok(()))` once complete, `Some(Err(why))` once the
/// swarm rolled it back or paused it.
fn rollout_outcome(svc: &Service, r: &Rollout, ts: &[Task]) -> Option<Result<(), String>> {
    let u = svc
        .update_status
        .as_ref()
        .filter(|u| Some(&u.started_at) != r.before.as_ref())?;
    let failed = |what: &str| {
        let why = ts
            .iter()
            .filter(|t| t.service_id == svc.id)
            .filter(|t| matches!(t.status.state.as_str(), "rejected" | "failed"))
            .max_by_key(|t| crate::tasks::instant(&t.created_at))
            .and_then(|t| t.status.err.clone());
        let mut msg = format!("service {} {what}: {}", svc.name(), u.message);
        if let Some(w) = why {
            msg.push_str(&format!(" ({w})"));
        }
        Some(Err(msg))
    };
    match u.state.as_str() {
        "completed" => Some(Ok(())),
        "rollback_completed" | "rollback_paused" => failed("was rolled back"),
        "paused" => failed("was paused"),
        _ => None,
    }
}

/// Wait until every replica of `ids` runs the current spec (or cannot
/// start, or exits), and every rolling update in `rollouts` is complete or
/// has failed.
pub fn converge(ids: &[String], rollouts: &[Rollout]) -> Result<Converged, Error> {
    use gantry_sdk::backend::gantry::plugin::types::ContainerStatus as S;
    let mut outcome = Converged::Settled;
    let mut stalls = Stalls::default();
    // What the last poll waited on, for the log when time runs out.
    let mut waiting = String::new();
    let done = wait_until(|| {
        let ts = tasks(ids)?;
        for id in ids {
            let svc = reread(id)?;
            if let Some(r) = rollouts.iter().find(|r| &r.id == id && r.rolling) {
                match rollout_outcome(&svc, r, &ts) {
                    None => {
                        waiting = format!("service {}: its rolling update", svc.name());
                        return Ok(false);
                    }
                    Some(Err(why)) => {
                        outcome = Converged::Failed(why);
                        return Ok(true);
                    }
                    Some(Ok(())) => {}
                }
            }
            let mine: Vec<&Task> = ts.iter().filter(|t| &t.service_id == id).collect();
            let st = crate::tasks::state(&svc, &mine);
            let settled = svc.scale() == 0
                || matches!(st.status, S::Running | S::Exited)
                || (st.status == S::Restarting && st.exit_code.is_some());
            if !settled {
                waiting = format!(
                    "service {}: {:?}, tasks {:?}",
                    svc.name(),
                    st.status,
                    mine.iter()
                        .map(|t| (&t.id, &t.node_id, &t.desired_state, &t.status.state))
                        .collect::<Vec<_>>()
                );
                stalls.check(&svc, &mine)?;
                return Ok(false);
            }
        }
        Ok(true)
    })?;
    if !done {
        log(
            Level::Warn,
            &format!("the swarm had not converged when the wait ended; {waiting}"),
        );
    }
    Ok(if done { outcome } else { Converged::TimedOut })
}
