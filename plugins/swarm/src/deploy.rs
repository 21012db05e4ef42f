//! Creating a revision: new services, or a rolling update of the services
//! an earlier revision of the same workload runs (the same container name);
//! removing a revision; and what `inspect` reads.
//!
//! A new revision updates the previous revision's services in place, with
//! Swarm's rolling update (`FailureAction: rollback`): the swarm replaces
//! tasks batch by batch and, when the new ones fail, rolls the service back
//! to the previous spec, which still carries the previous revision's labels.
//! The create then fails with the swarm's reason, after rolling back every
//! other service it had updated and removing what it created, so the host
//! keeps the previous revision running and its removal of the failed
//! revision finds nothing. Containers the new revision drops keep their
//! services until the host removes the previous revision.

use crate::manager::{call, error};
use crate::model::{Service, labels};
use crate::service::{self, Settings};
use crate::services::{self, Converged, Rollout};
use gantry_sdk::backend::exports::gantry::plugin::driver::{Deployment, InstanceRef};
use gantry_sdk::backend::gantry::plugin::logging::{Level, log};
use gantry_sdk::backend::gantry::plugin::types::{ContainerState, Error};
use gantry_sdk::wasip2::http::types::Method;
use serde_json::{Value, json};

/// What a create did so far, to undo on failure.
#[derive(Default)]
struct Done {
    network: Option<String>,
    created: Vec<String>,
    updated: Vec<Rollout>,
}

impl Done {
    fn undo(&self) {
        for r in &self.updated {
            let id = &r.id;
            let rolled = services::reread(id).and_then(|s| {
                let spec = s.spec.clone();
                services::update(&s, &spec, "&rollback=previous")
            });
            if let Err(e) = rolled {
                log(Level::Warn, &format!("rolling back service {id}: {e:?}"));
            }
        }
        for id in &self.created {
            let _ = call(Method::Delete, &format!("/services/{id}"), None);
        }
        // Their containers go with their tasks: wait (10 s at most), so
        // none outlives the call.
        if !self.created.is_empty() {
            match services::wait_tasks_within(UNDO_WAIT_MS, &self.created, |_| false) {
                Ok(true) => {}
                Ok(false) => log(
                    Level::Warn,
                    "removed services still had tasks after 10 s: the nodes remove them later",
                ),
                Err(e) => log(
                    Level::Warn,
                    &format!("waiting for removed services' tasks: {e:?}"),
                ),
            }
        }
        if let Some(n) = &self.network {
            remove_network(n);
        }
    }
}

fn ensure_network(d: &Deployment, done: &mut Done) -> Result<(), Error> {
    let name = service::network_name(&d.workload_id);
    let r = call(Method::Get, &format!("/networks/{name}"), None)?;
    if r.status == 200 {
        return Ok(());
    }
    let mut l: serde_json::Map<String, Value> = d
        .labels
        .iter()
        .filter(|(k, _)| k != labels::REVISION)
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    l.insert(labels::NETWORK.into(), json!(d.workload_id));
    let body = json!({"Name": name, "Driver": "overlay", "CheckDuplicate": true, "Labels": l});
    let r = call(Method::Post, "/networks/create", Some(&body))?;
    if r.status != 201 {
        return Err(error(&r, &format!("creating network {name}")));
    }
    done.network = Some(name);
    Ok(())
}

/// Remove a workload's network, waiting (at most 10 s) for its last tasks
/// to leave it; one a down node still holds goes with the next removal.
fn remove_network(name: &str) {
    let _ = services::wait_within(10_000, || {
        let r = call(Method::Delete, &format!("/networks/{name}"), None)?;
        Ok(r.status == 204 || r.status == 200 || r.status == 404)
    });
}

fn apply(d: &Deployment, start: bool, s: &Settings, done: &mut Done) -> Result<(), Error> {
    let existing = services::of_workload(&d.workload_id)?;
    if service::needs_network(d) {
        ensure_network(d, done)?;
    }
    for (i, c) in d.spec.containers.iter().enumerate() {
        let replicas = gantry_sdk::replicas::of(&c.labels).unwrap_or(1);
        let earlier = existing
            .iter()
            .filter(|e| e.container() == c.name && e.revision().is_some_and(|r| r < d.revision))
            .max_by_key(|e| e.revision());
        match earlier {
            Some(old) => {
                let life = if start {
                    "running"
                } else {
                    old.label(labels::LIFE).unwrap_or("stopped")
                };
                let scale = if start { replicas } else { 0 };
                let mut spec = service::spec(d, i, scale, life, s);
                // Keep the name the service has (a rename does not reach the swarm).
                spec["Name"] = json!(old.name());
                let force = old
                    .spec
                    .pointer("/TaskTemplate/ForceUpdate")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                spec["TaskTemplate"]["ForceUpdate"] = json!(force + 1);
                let rollout = Rollout::of(old, u64::from(scale));
                services::update(old, &spec, "")?;
                done.updated.push(rollout);
            }
            None => {
                let scale = if start { replicas } else { 0 };
                let life = if start { "running" } else { "created" };
                let spec = service::spec(d, i, scale, life, s);
                let r = call(Method::Post, "/services/create", Some(&spec))?;
                if r.status != 201 {
                    return Err(error(&r, &format!("creating the service of `{}`", c.name)));
                }
                let id = r
                    .json::<Value>()?
                    .get("ID")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| Error::Backend("the manager named no service id".into()))?;
                done.created.push(id);
            }
        }
    }
    Ok(())
}

/// How long undoing a create waits for removed services' tasks.
const UNDO_WAIT_MS: u64 = 10_000;

/// A node's words for an overlay network whose subnet it still holds for a
/// network just removed (the manager hands freed subnets out again at
/// once, and nodes let go of theirs a moment later): worth another try.
const STALE_SUBNET: &str = "Pool overlaps with other one on this address space";

/// Tries of a create that failed on a stale subnet, while it has taken
/// less than [`RETRY_WINDOW_MS`] (such a failure shows within seconds).
const STALE_TRIES: u64 = 3;
const RETRY_WINDOW_MS: u64 = 15_000;

/// Create (or roll out) deployment `d`; with `start`, wait for its
/// replicas. A create that failed on a node's stale subnet is undone and
/// tried again, a second apart and more ([`STALE_TRIES`] in all); the last
/// try keeps what it made, as any other container that cannot start does.
pub fn create(d: &Deployment, start: bool) -> Result<Vec<ContainerState>, Error> {
    service::check(d)?;
    let began = services::now_ms();
    let mut tries: u64 = 1;
    loop {
        let again = tries < STALE_TRIES && services::now_ms() - began < RETRY_WINDOW_MS;
        match create_once(d, start, again) {
            Err(Error::Conflict(m)) if again && m.contains(STALE_SUBNET) => {
                log(
                    Level::Warn,
                    &format!("{m}: trying again (the node is letting go of a removed network)"),
                );
                services::sleep_ms(1000 * tries);
                tries += 1;
            }
            other => return other,
        }
    }
}

/// One try of [`create`]; with `retry_stale`, a stale subnet fails it.
fn create_once(
    d: &Deployment,
    start: bool,
    retry_stale: bool,
) -> Result<Vec<ContainerState>, Error> {
    let settings = Settings::configured();
    let mut done = Done::default();
    if let Err(e) = apply(d, start, &settings, &mut done) {
        done.undo();
        return Err(e);
    }
    let r = InstanceRef {
        workload_id: d.workload_id.clone(),
        revision: d.revision,
    };
    if !start && done.updated.is_empty() {
        return inspect(&r);
    }
    let ids: Vec<String> = done
        .created
        .iter()
        .cloned()
        .chain(done.updated.iter().map(|u| u.id.clone()))
        .collect();
    let failure = match services::converge(&ids, &done.updated) {
        Ok(Converged::Settled) => None,
        Ok(Converged::TimedOut) if done.updated.iter().any(|u| u.rolling) => {
            Some(Error::Unavailable(format!(
                "the rolling update to revision {} did not finish within the converge timeout; \
                 it was rolled back",
                d.revision
            )))
        }
        // A new service still on its way: the host keeps watching.
        Ok(Converged::TimedOut) => None,
        Ok(Converged::Failed(why)) => Some(refusal(
            &why,
            format!(
                "the rolling update to revision {} failed and the swarm rolled it back: {why}",
                d.revision
            ),
        )),
        Err(e) => Some(e),
    };
    if let Some(e) = failure {
        done.undo();
        return Err(e);
    }
    let states = inspect(&r)?;
    // A container the swarm could not start because of the caller's input
    // (an image or command that does not exist) fails the create, which
    // leaves nothing behind, as on one machine; for any other reason the
    // states say so and the workload fails, as on one machine. A service
    // updated in place always fails the create: it carries the previous
    // revision's replicas, which the host's cleanup of a revision that
    // cannot start would remove.
    if start && let Some(c) = states.iter().find(|c| failed_to_start(c)) {
        let why = c.error.clone().unwrap_or_default();
        let e = refusal(
            &why,
            format!(
                "revision {} could not start: container `{}`: {why}",
                d.revision, c.name
            ),
        );
        let callers_input = matches!(e, Error::NotFound(_) | Error::Invalid(_));
        let stale = retry_stale && why.contains(STALE_SUBNET);
        if callers_input || stale || !done.updated.is_empty() {
            done.undo();
            return Err(e);
        }
    }
    Ok(states)
}

/// The error for a revision the swarm could not run, by the nodes' `reason`:
/// an image no node has, or a command the image does not have, is the
/// caller's input (not found), as on one machine; a command that cannot
/// execute is invalid; anything else conflicts with the swarm's state.
fn refusal(reason: &str, message: String) -> Error {
    if reason.contains("No such image") {
        return Error::NotFound(message);
    }
    match gantry_sdk::command::cannot_run("", reason) {
        Some(Error::NotFound(_)) => Error::NotFound(message),
        Some(Error::Invalid(mut i)) => {
            i.message = message;
            Error::Invalid(i)
        }
        _ => Error::Conflict(message),
    }
}

/// Whether a container never ran because the swarm could not start it.
fn failed_to_start(c: &ContainerState) -> bool {
    c.error.is_some()
        && matches!(
            c.status,
            gantry_sdk::backend::gantry::plugin::types::ContainerStatus::Exited
        )
        && c.started_at.is_none()
        && c.exit_code.is_none()
}

/// The containers of a revision, one state per service, in spec order.
pub fn inspect(r: &InstanceRef) -> Result<Vec<ContainerState>, Error> {
    let svcs = services::of_revision(r, None)?;
    if svcs.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = svcs.iter().map(|s| s.id.clone()).collect();
    let ts = services::tasks(&ids)?;
    Ok(svcs
        .iter()
        .map(|s| {
            let mine: Vec<_> = ts.iter().filter(|t| t.service_id == s.id).collect();
            crate::tasks::state(s, &mine)
        })
        .collect())
}

/// Remove a revision's services, wait for their tasks to go (so no
/// container is left on any node), and the workload's network with its last service.
pub fn remove(r: &InstanceRef) -> Result<(), Error> {
    let svcs = services::of_revision(r, None)?;
    for s in &svcs {
        let resp = call(Method::Delete, &format!("/services/{}", s.id), None)?;
        if !(200..300).contains(&resp.status) && resp.status != 404 {
            return Err(error(&resp, &format!("removing service {}", s.name())));
        }
    }
    let ids: Vec<String> = svcs.iter().map(|s| s.id.clone()).collect();
    if !ids.is_empty() {
        // No task left (a node that is down cannot confirm its containers
        // gone: the swarm removes them when it comes back).
        services::wait_tasks(&ids, |_| false)?;
    }
    if services::of_workload(&r.workload_id)?.is_empty() {
        let nets: Vec<Value> = crate::manager::get(
            &format!(
                "/networks?filters={}",
                crate::manager::filters(&[(
                    "label",
                    &[format!("{}={}", labels::NETWORK, r.workload_id)]
                )])
            ),
            "listing networks",
        )?;
        for n in nets {
            if let Some(id) = n.get("Id").and_then(Value::as_str) {
                remove_network(id);
            }
        }
    }
    Ok(())
}

/// Change resources (and the restart policy) of a revision's services: a
/// rolling update of their tasks.
pub fn reconfigure(
    svcs: &[Service],
    resources: Option<&gantry_sdk::backend::gantry::plugin::types::Resources>,
    restart: Option<&gantry_sdk::backend::gantry::plugin::types::RestartPolicy>,
) -> Result<(), Error> {
    let settings = Settings::configured();
    let mut updated = Vec::new();
    for s in svcs {
        let mut spec = s.spec.clone();
        if let Some(res) = resources {
            if res.memory_swap_bytes.is_some() {
                return Err(Error::Unsupported(
                    "a swap limit is not available on a Swarm service".into(),
                ));
            }
            let limits = &mut spec["TaskTemplate"]["Resources"]["Limits"];
            if let Some(cpu) = res.cpu {
                limits["NanoCPUs"] = json!((cpu * 1e9).round() as i64);
            }
            if let Some(m) = res.memory_bytes {
                limits["MemoryBytes"] = json!(m);
            }
            if let Some(p) = res.pids_limit {
                limits["Pids"] = json!(p);
            }
            if let Some(m) = res.memory_reservation_bytes {
                spec["TaskTemplate"]["Resources"]["Reservations"]["MemoryBytes"] = json!(m);
            }
        }
        if let Some(p) = restart {
            spec["TaskTemplate"]["RestartPolicy"] = service::restart_policy(p, &settings);
        }
        if spec != s.spec {
            let rollout = Rollout::of(s, s.scale());
            services::update(s, &spec, "")?;
            updated.push(rollout);
        }
    }
    let ids: Vec<String> = updated.iter().map(|r| r.id.clone()).collect();
    match services::converge(&ids, &updated)? {
        Converged::Settled => Ok(()),
        Converged::TimedOut => Err(Error::Unavailable(
            "the change is still rolling out after the converge timeout".into(),
        )),
        Converged::Failed(why) => Err(Error::Conflict(format!(
            "the swarm rolled the change back: {why}"
        ))),
    }
}
