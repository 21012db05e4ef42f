//! The backend conformance suite: what every backend plugin must do, the
//! same way, checked through the host (control plane + control-rpc fixture
//! frontend) and against an independent view of the runtime
//! ([`Backend`]'s bollard / `ctr` / `podman` / docker CLI and `/proc` readings).
//!
//! What a backend declares absent (its capabilities, and whether it drives
//! a cluster, as the host reports them: [`declared`]) is checked to be
//! refused as `unsupported` instead of done; a cluster backend's containers
//! reach each other by name where a pod's share one network namespace.
//!
//! A test binary runs it for one backend with [`conformance_suite!`] (in a
//! module of its own; the suite is the binary's `conformance` module); the
//! runtime-restart case restarts a runtime every test shares, so it runs in
//! a binary of its own (`tests/restarts`).
#![allow(dead_code)]

pub mod lifecycle;
pub mod logs;
pub mod requests;
pub mod restarts;

use gantry::bindings::types::Workload;
use gantry_tests::backends::Backend;
use gantry_tests::gantry::Gantry;
use gantry_tests::rpc::Rpc;
use serde_json::{Value, json};

/// One `#[test]` per case, for `$backend`; with `guard`, each case holds
/// what that expression returns while it runs (a turn on a shared swarm).
#[macro_export]
macro_rules! conformance_suite {
    ($backend:expr) => {
        $crate::conformance_suite!($backend, guard = std::marker::PhantomData::<()>);
    };
    ($backend:expr, guard = $guard:expr) => {
        #[test]
        fn one_container_workload_full_lifecycle() {
            let _guard = $guard;
            $crate::conformance::lifecycle::one_container_workload_full_lifecycle($backend);
        }
        #[test]
        fn two_containers_of_a_workload_reach_each_other() {
            let _guard = $guard;
            $crate::conformance::lifecycle::two_containers_of_a_workload_reach_each_other($backend);
        }
        #[test]
        fn logs_follow_sees_a_line_printed_after_the_call_started() {
            let _guard = $guard;
            $crate::conformance::logs::logs_follow_sees_a_line_printed_after_the_call_started($backend);
        }
        #[test]
        fn logs_tell_stdout_from_stderr_and_tail() {
            let _guard = $guard;
            $crate::conformance::logs::logs_tell_stdout_from_stderr_and_tail($backend);
        }
        #[test]
        fn exited_containers_are_restarted_by_always_and_not_by_no() {
            let _guard = $guard;
            $crate::conformance::restarts::exited_containers_are_restarted_by_always_and_not_by_no(
                $backend,
            );
        }
        #[test]
        fn bad_input_is_a_typed_error_and_leaves_nothing_behind() {
            let _guard = $guard;
            $crate::conformance::requests::bad_input_is_a_typed_error_and_leaves_nothing_behind($backend);
        }
        #[test]
        fn a_megabyte_request_reaches_the_runtime() {
            let _guard = $guard;
            $crate::conformance::requests::a_megabyte_request_reaches_the_runtime($backend);
        }
        #[test]
        fn owners_and_admins_are_the_only_ones_who_see_a_workload() {
            let _guard = $guard;
            $crate::conformance::requests::owners_and_admins_are_the_only_ones_who_see_a_workload($backend);
        }
        #[test]
        fn update_deploys_a_new_revision_and_removes_the_old_one() {
            let _guard = $guard;
            $crate::conformance::requests::update_deploys_a_new_revision_and_removes_the_old_one($backend);
        }
        #[test]
        fn a_host_restart_adopts_running_containers_without_duplicates() {
            let _guard = $guard;
            $crate::conformance::restarts::a_host_restart_adopts_running_containers_without_duplicates(
                $backend,
            );
        }
    };
}

pub(crate) fn start(backend: Backend, resync: u64) -> (tempfile::TempDir, Gantry) {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = Gantry::start_in(dir.path(), &backend.config(resync));
    (dir, g)
}

pub(crate) fn call(rpc: &Rpc, op: &str, id: &str) -> Workload {
    rpc.call::<Workload>(op, json!([id]))
        .unwrap_or_else(|e| panic!("{op}: {e:?}"))
}

/// `w` (returned by an operation on `backend`) runs; if not, the panic
/// carries what the runtime says of it.
pub(crate) fn assert_running(backend: Backend, w: &Workload) {
    assert!(
        gantry_tests::rpc::running(w),
        "{w:?}\n{}",
        backend.explain(&w.id)
    );
}

pub(crate) fn runtime_id(w: &Workload, i: usize) -> String {
    w.containers[i].runtime_id.clone().expect("runtime id")
}

/// What a backend declares, as the host reports it (`GET /-/backends/{name}`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Declared {
    /// It drives a cluster: containers may run on different machines.
    pub cluster: bool,
    /// A workload may have several containers.
    pub multi_container: bool,
    /// A workload's containers share one network namespace.
    pub shared_network_namespace: bool,
    pub pause: bool,
    pub stats: bool,
    pub rename: bool,
}

pub(crate) fn declared(g: &Gantry, backend: Backend) -> Declared {
    let token = g.token("conformance", &["USER"]);
    let resp = reqwest::blocking::Client::new()
        .get(g.url(&format!("/-/backends/{}", backend.name())))
        .bearer_auth(token)
        .send()
        .expect("GET /-/backends/{name}");
    assert!(resp.status().is_success(), "{resp:?}");
    let v: Value = resp.json().expect("a backend profile");
    let flag = |pointer: &str| {
        v.pointer(pointer)
            .and_then(Value::as_bool)
            .unwrap_or_else(|| panic!("{pointer} in {v}"))
    };
    Declared {
        cluster: flag("/cluster"),
        multi_container: flag("/capabilities/multi_container"),
        shared_network_namespace: flag("/shared_network_namespace"),
        pause: flag("/capabilities/pause"),
        stats: flag("/capabilities/stats"),
        rename: flag("/capabilities/rename"),
    }
}

/// `op` on workload `id` is refused as `unsupported` (and nothing changes).
pub(crate) fn refused(rpc: &Rpc, op: &str, args: Value) {
    match rpc.call::<Value>(op, args) {
        Err(gantry::bindings::types::Error::Unsupported(_)) => {}
        other => panic!("{op}: a backend declaring it absent refuses it, got {other:?}"),
    }
}
