//! Kanto's `SoftwareUpdatable` feature (hawkBit's
//! `org.eclipse.hawkbit.swupdatable:SoftwareUpdatable:2.0.0`, module type
//! `oci:container`): `install` downloads each software module's artifacts,
//! container descriptors, through the host's `artifacts` capability (the
//! URLs the config grants, checksums checked), creates and starts their
//! containers, and reports each step in `status/lastOperation` (and a
//! failure in `status/lastFailedOperation` first); `remove` deletes the
//! containers named by id. `status/installedDependencies` lists every
//! container, however it was created.
//!
//! As in Kanto, a command is answered (204) once its value is checked, and
//! the work happens after: here on a timer, so the answer goes out first.

mod artifact;
mod dependencies;
mod descriptor;

use dependencies::Dependency;
pub use dependencies::{added, after_feature, dependencies_due, removed, reset_dependencies};

use crate::envelope::Failure;
use crate::policy::Policy;
use gantry_sdk::mqtt_frontend::gantry::plugin::control::{self, CreateRequest};
use gantry_sdk::mqtt_frontend::gantry::plugin::mqtt_client;
use gantry_sdk::mqtt_frontend::gantry::plugin::types::{ContainerStatus, Workload, WorkloadPhase};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

/// The feature's id.
pub const FEATURE: &str = "SoftwareUpdatable";
/// Its definition.
pub const DEFINITION: &str = "org.eclipse.hawkbit.swupdatable:SoftwareUpdatable:2.0.0";
/// The software module type it installs.
pub const MODULE_TYPE: &str = "oci:container";
/// The timer that runs queued operations.
pub const WORK_TIMER: &str = "su:work";
/// The timer that publishes `installedDependencies` changes held back.
pub const DEPENDENCIES_TIMER: &str = "su:dependencies";
/// Prefix of the timers bounding how long installed containers may take to run.
pub const DEADLINE_PREFIX: &str = "su:deadline:";
/// How long a module's containers may take to run after they are started.
const START_WITHIN_MS: u32 = 120_000;

/// A software module's identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModuleId {
    name: String,
    version: String,
}

#[derive(Debug, Deserialize)]
struct Link {
    url: String,
}

#[derive(Debug, Deserialize)]
struct ArtifactAction {
    #[serde(default)]
    filename: String,
    #[serde(default)]
    download: HashMap<String, Link>,
    #[serde(default)]
    checksums: HashMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModuleAction {
    software_module: ModuleId,
    #[serde(default)]
    artifacts: Vec<ArtifactAction>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UpdateAction {
    correlation_id: String,
    #[serde(default)]
    software_modules: Vec<ModuleAction>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RemoveAction {
    correlation_id: String,
    #[serde(default)]
    software: Vec<Dependency>,
    #[serde(default)]
    forced: bool,
}

enum Job {
    Install(UpdateAction),
    Remove(RemoveAction),
}

/// A module whose containers were started and are not yet running.
struct Awaiting {
    correlation_id: String,
    module: ModuleId,
    workloads: Vec<String>,
    timer: String,
}

thread_local! {
    static QUEUE: RefCell<VecDeque<Job>> = const { RefCell::new(VecDeque::new()) };
    static AWAITING: RefCell<Vec<Awaiting>> = const { RefCell::new(Vec::new()) };
    static NEXT_DEADLINE: RefCell<u64> = const { RefCell::new(0) };
}

/// Where progress is written: the device's twin.
pub trait Twin {
    /// Modify `path` of the containers thing to `value`.
    fn modify(&self, path: &str, value: Value);
    /// Delete `path` (a whole feature) from the containers thing.
    fn delete(&self, path: &str);
    /// Merge `patch` (a JSON merge patch) into `path`.
    fn merge(&self, path: &str, patch: Value);
}

/// A SoftwareUpdatable operation: checked, queued, answered with no value.
pub fn operation(op: &str, value: &Option<Value>) -> Result<Option<Value>, Failure> {
    let parse = |v: &Option<Value>| -> Result<Value, Failure> {
        match v {
            None | Some(Value::Null) => Err(Failure::invalid(format!("{op} needs a value"))),
            Some(v) => Ok(v.clone()),
        }
    };
    let job = match op {
        "install" => {
            let a: UpdateAction = serde_json::from_value(parse(value)?)
                .map_err(|e| Failure::invalid(format!("install: {e}")))?;
            if a.software_modules.is_empty() {
                return Err(Failure::invalid(
                    "there are no SoftwareModules to be installed",
                ));
            }
            if let Some(m) = a.software_modules.iter().find(|m| m.artifacts.is_empty()) {
                return Err(Failure::invalid(format!(
                    "there are no SoftwareArtifacts referenced for SoftwareModule [Name.version] = [{}.{}]",
                    m.software_module.name, m.software_module.version
                )));
            }
            Job::Install(a)
        }
        "remove" => {
            let a: RemoveAction = serde_json::from_value(parse(value)?)
                .map_err(|e| Failure::invalid(format!("remove: {e}")))?;
            if a.software.is_empty() {
                return Err(Failure::invalid(
                    "there are no DependencyDescriptions to be removed",
                ));
            }
            Job::Remove(a)
        }
        _ => {
            return Err(Failure::not_found(format!(
                "unsupported operation called [operationId = {op}]"
            )));
        }
    };
    QUEUE.with(|q| q.borrow_mut().push_back(job));
    mqtt_client::set_timer(WORK_TIMER, 1, false);
    Ok(None)
}

/// Run the next queued operation (the work timer fired).
pub fn work(twin: &dyn Twin) {
    let Some(job) = QUEUE.with(|q| q.borrow_mut().pop_front()) else {
        return;
    };
    match job {
        Job::Install(a) => {
            for m in &a.software_modules {
                install_module(twin, &a.correlation_id, m);
            }
        }
        Job::Remove(a) => remove(twin, &a),
    }
    if QUEUE.with(|q| !q.borrow().is_empty()) {
        mqtt_client::set_timer(WORK_TIMER, 1, false);
    }
}

fn report(
    twin: &dyn Twin,
    correlation_id: &str,
    status: &str,
    module: &ModuleId,
    message: Option<&str>,
) {
    let mut v =
        json!({"correlationId": correlation_id, "status": status, "softwareModule": module});
    if let Some(m) = message {
        v["message"] = m.into();
    }
    write_status(twin, status, v);
}

fn write_status(twin: &dyn Twin, status: &str, v: Value) {
    if status == "FINISHED_ERROR" || status == "FINISHED_REJECTED" {
        twin.modify(&status_path("lastFailedOperation"), v.clone());
    }
    twin.modify(&status_path("lastOperation"), v);
}

fn status_path(property: &str) -> String {
    format!("/features/{FEATURE}/properties/status/{property}")
}

/// How a module's install ended early: the final status and why.
#[derive(Debug)]
struct Stop(&'static str, String);

fn install_module(twin: &dyn Twin, correlation_id: &str, m: &ModuleAction) {
    let id = &m.software_module;
    report(twin, correlation_id, "STARTED", id, None);
    report(twin, correlation_id, "DOWNLOADING", id, None);
    let mut specs = Vec::new();
    let policy = Policy::from_settings();
    for a in &m.artifacts {
        match artifact::download(a).and_then(|body| descriptor::read(a, &body, &policy)) {
            Ok(spec) => specs.push(spec),
            Err(Stop(status, why)) => return report(twin, correlation_id, status, id, Some(&why)),
        }
    }
    report(twin, correlation_id, "DOWNLOADED", id, None);
    report(twin, correlation_id, "INSTALLING", id, None);
    let mut created: Vec<String> = Vec::new();
    for (name, spec) in specs {
        let request = CreateRequest {
            name,
            namespace: String::new(),
            spec,
            annotations: vec![
                ("kanto.created".into(), "true".into()),
                (
                    "kanto.software-module".into(),
                    format!("{}:{}", id.name, id.version),
                ),
            ],
            start: false,
        };
        match control::create(&request) {
            Ok(w) => {
                dependencies::installed(twin, &w);
                created.push(w.id)
            }
            Err(e) => {
                // All of a module or none of it.
                for w in &created {
                    let _ = control::delete(w, true);
                    dependencies::removing(twin, w);
                }
                let why = format!("creating container `{}`: {e:?}", request.name);
                return report(twin, correlation_id, "FINISHED_ERROR", id, Some(&why));
            }
        }
    }
    report(twin, correlation_id, "INSTALLED", id, None);
    for w in &created {
        if let Err(e) = control::start(w) {
            let why = format!("starting container {w}: {e:?}");
            return report(twin, correlation_id, "FINISHED_ERROR", id, Some(&why));
        }
    }
    let timer = NEXT_DEADLINE.with(|n| {
        let mut n = n.borrow_mut();
        *n += 1;
        format!("{DEADLINE_PREFIX}{n}")
    });
    mqtt_client::set_timer(&timer, START_WITHIN_MS, false);
    let started = created.clone();
    AWAITING.with(|a| {
        a.borrow_mut().push(Awaiting {
            correlation_id: correlation_id.to_string(),
            module: id.clone(),
            workloads: created,
            timer,
        })
    });
    // They may be running already.
    for w in started {
        if let Ok(w) = control::get(&w) {
            observe(twin, &w);
        }
    }
}

/// A workload changed: finish the installs waiting on it.
pub fn observe(twin: &dyn Twin, w: &Workload) {
    let finished: Vec<(Awaiting, Option<String>)> = AWAITING.with(|a| {
        let mut a = a.borrow_mut();
        let mut done = Vec::new();
        let mut i = 0;
        while i < a.len() {
            if !a[i].workloads.contains(&w.id) {
                i += 1;
                continue;
            }
            match verdict(&a[i].workloads) {
                Some(outcome) => done.push((a.remove(i), outcome)),
                None => i += 1,
            }
        }
        done
    });
    for (job, failure) in finished {
        mqtt_client::cancel_timer(&job.timer);
        match failure {
            None => report(
                twin,
                &job.correlation_id,
                "FINISHED_SUCCESS",
                &job.module,
                None,
            ),
            Some(why) => report(
                twin,
                &job.correlation_id,
                "FINISHED_ERROR",
                &job.module,
                Some(&why),
            ),
        }
    }
}

/// Whether a module's containers are all running (`Some(None)`), one failed
/// (`Some(Some(why))`), or not yet (`None`).
fn verdict(workloads: &[String]) -> Option<Option<String>> {
    for id in workloads {
        let w = match control::get(id) {
            Ok(w) => w,
            Err(e) => return Some(Some(format!("container {id}: {e:?}"))),
        };
        if w.phase == WorkloadPhase::Failed {
            return Some(Some(
                w.message
                    .unwrap_or_else(|| format!("container {id} failed to start")),
            ));
        }
        let running = w.phase == WorkloadPhase::Deployed
            && !w.containers.is_empty()
            && w.containers
                .iter()
                .all(|c| c.status == ContainerStatus::Running);
        if !running {
            return None;
        }
    }
    Some(None)
}

/// A deadline timer fired: the module's containers did not all run in time.
pub fn deadline(twin: &dyn Twin, timer: &str) {
    let expired = AWAITING.with(|a| {
        let mut a = a.borrow_mut();
        a.iter().position(|x| x.timer == timer).map(|i| a.remove(i))
    });
    if let Some(job) = expired {
        let why = format!(
            "the containers did not run within {} s of being started",
            START_WITHIN_MS / 1000
        );
        report(
            twin,
            &job.correlation_id,
            "FINISHED_ERROR",
            &job.module,
            Some(&why),
        );
    }
}

fn remove(twin: &dyn Twin, a: &RemoveAction) {
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    let mut rejected = Vec::new();
    let mut errors = Vec::new();
    for item in &a.software {
        if !failed.is_empty() && !a.forced {
            rejected.push(item.clone());
            continue;
        }
        let status =
            |s: &str| json!({"correlationId": a.correlation_id, "status": s, "software": [item]});
        write_status(twin, "REMOVING", status("REMOVING"));
        let outcome = match control::get(&item.name) {
            Err(_) => Err(format!("container with ID = {} does not exist", item.name)),
            Ok(w) => {
                control::delete(&w.id, true).map_err(|e| format!("removing {}: {e:?}", item.name))
            }
        };
        match outcome {
            Ok(()) => {
                dependencies::removing(twin, &item.name);
                write_status(twin, "REMOVED", status("REMOVED"));
                removed.push(item.clone());
            }
            Err(why) => {
                errors.push(why);
                failed.push(item.clone());
            }
        }
    }
    let end = |status: &str, software: &[Dependency], message: Option<String>| {
        let mut v =
            json!({"correlationId": a.correlation_id, "status": status, "software": software});
        if let Some(m) = message {
            v["message"] = m.into();
        }
        write_status(twin, status, v);
    };
    if !rejected.is_empty() {
        end(
            "FINISHED_REJECTED",
            &rejected,
            Some("not removed after an earlier failure (not forced)".into()),
        );
    }
    if !failed.is_empty() {
        end("FINISHED_ERROR", &failed, Some(errors.join("; ")));
    }
    if !removed.is_empty() {
        end("FINISHED_SUCCESS", &removed, None);
    }
}

/// The whole feature, as created at (re)connection.
pub fn feature() -> Value {
    let mut status = json!({"softwareModuleType": MODULE_TYPE});
    let deps = dependencies::for_feature();
    if !deps.is_null() {
        status["installedDependencies"] = deps;
    }
    json!({"definition": [DEFINITION], "properties": {"status": status}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_feature_is_registered_as_kanto_does() {
        let f = feature();
        assert_eq!(
            f["definition"],
            json!(["org.eclipse.hawkbit.swupdatable:SoftwareUpdatable:2.0.0"])
        );
        assert_eq!(
            f["properties"]["status"]["softwareModuleType"],
            "oci:container"
        );
        assert!(
            f["properties"]["status"]
                .get("installedDependencies")
                .is_none(),
            "omitted while no container exists"
        );
    }

    #[test]
    fn install_and_remove_values_are_checked_before_anything_is_queued() {
        let none = operation(
            "install",
            &Some(json!({"correlationId": "c", "softwareModules": []})),
        );
        assert_eq!(
            none.expect_err("empty").message,
            "there are no SoftwareModules to be installed"
        );
        let bare = operation(
            "install",
            &Some(json!({"correlationId": "c", "softwareModules": [
                {"softwareModule": {"name": "m", "version": "1"}, "artifacts": []}]})),
        );
        assert!(bare.expect_err("no artifacts").message.contains("[m.1]"));
        let nothing = operation(
            "remove",
            &Some(json!({"correlationId": "c", "software": []})),
        );
        assert_eq!(
            nothing.expect_err("empty").message,
            "there are no DependencyDescriptions to be removed"
        );
        assert_eq!(
            operation("download", &Some(json!({})))
                .expect_err("stub")
                .status,
            404
        );
        assert!(QUEUE.with(|q| q.borrow().is_empty()));
    }
}
