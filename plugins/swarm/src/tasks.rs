//! A service's tasks rolled up into the one container state the workload
//! shows for that container, and listed one by one for the nodes view.
//!
//! Each replica slot counts by its newest task. A container is `running`
//! when every slot's newest task runs as desired; `restarting` while some do
//! and others are being replaced (the error says how many run and why the
//! others do not); `exited` when none runs and none is coming (a stopped
//! service, or a `no` restart policy after the exit), with the exit code;
//! `created` while tasks are on their way. A service none of whose tasks
//! ever ran, with an error (an image no node has, a mount missing), has
//! failed to start. A task on a node that died still says `running` for a
//! while: only the swarm's own verdict (desired state and state) counts.

use crate::model::{Service, Task, labels};
use gantry_sdk::backend::gantry::plugin::types::{ContainerState, ContainerStatus, Timestamp};
use gantry_sdk::clock::{parse_rfc3339, timestamp};
use std::collections::BTreeMap;

/// `(seconds, nanoseconds)` of an RFC 3339 time, for ordering.
pub fn instant(s: &str) -> (i64, u32) {
    parse_rfc3339(s).unwrap_or((0, 0))
}

/// The newest task of each slot, by slot.
pub fn newest_per_slot<'a>(tasks: &[&'a Task]) -> BTreeMap<u32, &'a Task> {
    let mut out: BTreeMap<u32, &Task> = BTreeMap::new();
    for t in tasks {
        let newer = out
            .get(&t.slot)
            .is_none_or(|o| instant(&t.created_at) > instant(&o.created_at));
        if newer {
            out.insert(t.slot, t);
        }
    }
    out
}

fn at(s: &str) -> Option<Timestamp> {
    timestamp(s)
}

/// The state of the container `svc` runs, from `tasks` (the service's).
pub fn state(svc: &Service, tasks: &[&Task]) -> ContainerState {
    let mut st = ContainerState::bare(
        svc.container(),
        Some(svc.id.clone()),
        ContainerStatus::Created,
        None,
    );
    let scale = u32::try_from(svc.scale()).unwrap_or(u32::MAX);
    let newest = newest_per_slot(tasks);
    let latest = tasks.iter().max_by_key(|t| instant(&t.created_at)).copied();
    // Restarts the swarm made: tasks that ended by themselves, beyond the newest of their slot.
    st.restart_count = u32::try_from(
        tasks
            .iter()
            .filter(|t| matches!(t.status.state.as_str(), "failed" | "complete"))
            .filter(|t| newest.get(&t.slot).is_some_and(|n| n.id != t.id))
            .count(),
    )
    .unwrap_or(0);

    if scale == 0 {
        st.status = if svc.label(labels::LIFE) == Some("created") {
            ContainerStatus::Created
        } else {
            ContainerStatus::Exited
        };
        if let Some(t) = latest.filter(|t| t.ended()) {
            st.exit_code = t.exit_code();
            st.finished_at = at(&t.status.timestamp);
        }
        return st;
    }

    // The slots the service has now: a slot scaled away ends with its task
    // shut down by the swarm (which slots go is the swarm's choice).
    let slots: Vec<&Task> = newest
        .values()
        .filter(|t| t.wanted() || t.status.state != "shutdown")
        .copied()
        .collect();
    let running: Vec<&&Task> = slots.iter().filter(|t| t.wanted() && t.running()).collect();
    if running.len() >= scale as usize {
        st.status = ContainerStatus::Running;
        st.started_at = running
            .iter()
            .map(|t| instant(&t.status.timestamp))
            .max()
            .map(|(seconds, nanoseconds)| Timestamp {
                seconds,
                nanoseconds,
            });
        return st;
    }
    // Why slots do not run: a task the swarm could not place yet, or one that ended.
    let why = slots
        .iter()
        .filter(|t| !(t.wanted() && t.running()))
        .find_map(|t| t.status.err.clone().map(|e| (t.slot, e)));
    let ever_ran = tasks
        .iter()
        .any(|t| !t.never_ran() && (t.running() || t.exit_code().is_some()));
    if !running.is_empty() {
        st.status = ContainerStatus::Restarting;
        st.started_at = at(&running[0].status.timestamp);
        st.error = Some(match why {
            Some((slot, e)) => format!(
                "{} of {scale} replicas running; slot {slot}: {e}",
                running.len()
            ),
            None => format!("{} of {scale} replicas running", running.len()),
        });
        return st;
    }
    let failed = tasks
        .iter()
        .filter(|t| t.ended() && t.never_ran())
        .filter_map(|t| t.status.err.clone())
        .next_back();
    if !ever_ran && let Some(e) = failed {
        // Refused or failed before any container ran, anywhere: failed to
        // start, with the engine's reason.
        st.status = ContainerStatus::Exited;
        st.error = Some(e);
        return st;
    }
    if let Some((_, e)) = why.filter(|_| slots.iter().any(|t| t.wanted() && !t.ended())) {
        // Waiting to be placed ("no suitable node"): on its way, and why not yet.
        st.status = ContainerStatus::Creating;
        st.error = Some(e);
        return st;
    }
    // A replacement on its way (desired `ready` during the restart delay).
    let coming = slots.iter().any(|t| !t.ended());
    let last_exit = tasks
        .iter()
        .filter(|t| t.ended() && t.status.state != "shutdown")
        .max_by_key(|t| instant(&t.created_at));
    match last_exit {
        Some(t) if !coming => {
            st.status = ContainerStatus::Exited;
            st.exit_code = t.exit_code();
            st.finished_at = at(&t.status.timestamp);
        }
        Some(t) if ever_ran && t.exit_code().is_some() => {
            // Exited, and the swarm is bringing it back by its restart policy.
            st.status = ContainerStatus::Restarting;
            st.exit_code = t.exit_code();
            st.finished_at = at(&t.status.timestamp);
        }
        None if !coming && latest.is_some() => st.status = ContainerStatus::Exited,
        _ => st.status = ContainerStatus::Created,
    }
    st
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ContainerStatus as Cs, TaskStatus};
    use serde_json::json;

    fn service(scale: u64, life: &str) -> Service {
        Service {
            id: "svc".into(),
            spec: json!({
                "Labels": {labels::CONTAINER: "main", labels::LIFE: life},
                "Mode": {"Replicated": {"Replicas": scale}},
            }),
            ..Service::default()
        }
    }

    fn task(id: &str, slot: u32, desired: &str, state: &str, secs: u32) -> Task {
        Task {
            id: id.into(),
            service_id: "svc".into(),
            slot,
            desired_state: desired.into(),
            created_at: format!("2026-01-01T00:00:{secs:02}Z"),
            status: TaskStatus {
                timestamp: format!("2026-01-01T00:00:{secs:02}.5Z"),
                state: state.into(),
                ..TaskStatus::default()
            },
            ..Task::default()
        }
    }

    fn exited(mut t: Task, code: i32, err: Option<&str>) -> Task {
        t.status.container_status = Some(Cs {
            container_id: "c".into(),
            exit_code: Some(code),
        });
        t.status.err = err.map(str::to_string);
        t
    }

    #[test]
    fn every_slot_running_is_running() {
        let ts = [
            task("a", 1, "running", "running", 1),
            task("b", 2, "running", "running", 2),
            exited(
                task("old", 2, "shutdown", "failed", 0),
                1,
                Some("task: non-zero exit (1)"),
            ),
        ];
        let refs: Vec<&Task> = ts.iter().collect();
        let s = state(&service(2, "running"), &refs);
        assert_eq!(s.status, ContainerStatus::Running);
        assert_eq!(s.runtime_id.as_deref(), Some("svc"));
        assert_eq!(s.restart_count, 1);
        assert!(s.started_at.is_some());
    }

    #[test]
    fn a_task_not_placed_yet_is_on_its_way_with_the_reason() {
        let mut t = task("a", 1, "running", "pending", 1);
        t.status.err = Some("no suitable node (3 nodes not available for new tasks)".into());
        let s = state(&service(1, "running"), &[&t]);
        assert_eq!(s.status, ContainerStatus::Creating, "deploying, not failed");
        assert!(
            s.error
                .as_deref()
                .is_some_and(|e| e.starts_with("no suitable node"))
        );
    }

    #[test]
    fn a_slot_being_replaced_is_restarting_with_the_reason() {
        let ts = [task("a", 1, "running", "running", 1), {
            let mut t = task("b", 2, "running", "pending", 2);
            t.status.err = Some("no suitable node".into());
            t
        }];
        let refs: Vec<&Task> = ts.iter().collect();
        let s = state(&service(2, "running"), &refs);
        assert_eq!(s.status, ContainerStatus::Restarting);
        assert_eq!(
            s.error.as_deref(),
            Some("1 of 2 replicas running; slot 2: no suitable node")
        );
    }

    #[test]
    fn never_ran_with_an_error_failed_to_start() {
        let mut t = task("a", 1, "shutdown", "rejected", 1);
        t.status.err = Some("No such image: nope:1".into());
        let refs = [&t];
        let s = state(&service(1, "running"), &refs);
        assert_eq!(s.status, ContainerStatus::Exited);
        assert_eq!(s.error.as_deref(), Some("No such image: nope:1"));
        assert!(s.started_at.is_none());
    }

    #[test]
    fn a_start_the_engine_refused_failed_to_start_despite_runcs_exit_code() {
        let why = "starting container failed: OCI runtime create failed: exec: \"/bin/nope\": \
                   stat /bin/nope: no such file or directory: unknown";
        let t = exited(task("a", 1, "shutdown", "failed", 1), 127, Some(why));
        let refs = [&t];
        let s = state(&service(1, "running"), &refs);
        assert_eq!((s.status, s.exit_code), (ContainerStatus::Exited, None));
        assert_eq!(s.error.as_deref(), Some(why));
    }

    #[test]
    fn an_exit_under_no_restart_is_exited_with_its_code() {
        let t = exited(
            task("a", 1, "shutdown", "failed", 3),
            3,
            Some("task: non-zero exit (3)"),
        );
        let refs = [&t];
        let s = state(&service(1, "running"), &refs);
        assert_eq!((s.status, s.exit_code), (ContainerStatus::Exited, Some(3)));
        assert!(s.error.is_none(), "it ran: the exit code says it all");
    }

    #[test]
    fn a_crash_loop_is_restarting_with_the_last_exit_code() {
        let old = exited(
            task("a", 1, "shutdown", "failed", 1),
            2,
            Some("task: non-zero exit (2)"),
        );
        let next = task("b", 1, "ready", "ready", 2);
        let s = state(&service(1, "running"), &[&old, &next]);
        assert_eq!(
            (s.status, s.exit_code),
            (ContainerStatus::Restarting, Some(2))
        );
    }

    #[test]
    fn after_a_scale_down_the_slots_left_count_whatever_their_number() {
        let ts = [
            task("a", 1, "running", "running", 1),
            task("b", 2, "shutdown", "shutdown", 2),
            task("c", 3, "running", "running", 3),
        ];
        let refs: Vec<&Task> = ts.iter().collect();
        assert_eq!(
            state(&service(2, "running"), &refs).status,
            ContainerStatus::Running
        );
    }

    #[test]
    fn a_stopped_service_is_exited_and_a_new_one_created() {
        assert_eq!(
            state(&service(0, "stopped"), &[]).status,
            ContainerStatus::Exited
        );
        assert_eq!(
            state(&service(0, "created"), &[]).status,
            ContainerStatus::Created
        );
        let t = task("a", 1, "running", "preparing", 1);
        assert_eq!(
            state(&service(1, "running"), &[&t]).status,
            ContainerStatus::Created
        );
    }
}
