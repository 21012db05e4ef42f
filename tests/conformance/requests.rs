//! Requests the backend must refuse or scope: bad input, other owners, failed updates.

use super::{assert_running, declared, runtime_id, start};
use gantry::bindings::types::{Error, RestartKind};
use gantry_tests::backends::Backend;
use gantry_tests::rpc::{Rpc, busybox, workload};

/// Unknown image, bad memory, a command that does not exist, duplicate
/// names, more replicas than one machine runs: typed errors, and nothing
/// left behind on the runtime.
pub fn bad_input_is_a_typed_error_and_leaves_nothing_behind(backend: Backend) {
    let (_dir, g) = start(backend, 30);
    let rpc = Rpc::new(&g, "erin", &["USER"]);
    let cluster = declared(&g, backend).cluster;
    let before: Vec<String> = backend
        .all_gantry_containers()
        .into_iter()
        .map(|o| o.id)
        .collect();
    let mut missing = busybox("main", "true");
    missing.image = "gantry-test/does-not-exist:9.9".into();
    match rpc.create("no-such-image", workload(vec![missing], RestartKind::No)) {
        Err(Error::NotFound(msg)) => assert!(msg.contains("does-not-exist"), "{msg}"),
        other => panic!("expected not-found, got {other:?}"),
    }
    let mut tiny = busybox("main", "sleep 3600");
    tiny.resources.memory_bytes = Some(1024);
    match rpc.create("too-small", workload(vec![tiny], RestartKind::No)) {
        Err(Error::Invalid(i)) => assert!(i.message.to_lowercase().contains("memory"), "{i:?}"),
        other => panic!("expected invalid, got {other:?}"),
    }
    let mut nocmd = busybox("main", "true");
    nocmd.command = Some(vec!["/bin/no-such-command".into()]);
    // An executable the image does not have is not found, as an image it does not have is.
    match rpc.create("no-command", workload(vec![nocmd], RestartKind::No)) {
        Err(Error::NotFound(msg)) => assert!(
            msg.contains("no-such-command"),
            "the error names the command: {msg}"
        ),
        other => panic!("expected not-found, got {other:?}"),
    }
    // A two-container workload whose second image is missing: the first is removed too.
    let mut second = busybox("second", "true");
    second.image = "gantry-test/also-missing:1.0".into();
    match rpc.create(
        "half",
        workload(
            vec![busybox("first", "sleep 3600"), second],
            RestartKind::No,
        ),
    ) {
        Err(Error::NotFound(msg)) => assert!(msg.contains("also-missing"), "{msg}"),
        other => panic!("expected not-found, got {other:?}"),
    }
    let dup = workload(
        vec![busybox("same", "true"), busybox("same", "true")],
        RestartKind::No,
    );
    assert!(matches!(rpc.create("dup", dup), Err(Error::Invalid(_))));
    // Replicas: a malformed count is the host's to refuse; more than one,
    // a backend of one machine's (only a cluster backend runs copies).
    let replicas = |n: &str| {
        let mut c = busybox("main", "sleep 3600");
        c.labels = vec![(gantry::control::labels::REPLICAS.to_string(), n.to_string())];
        workload(vec![c], RestartKind::No)
    };
    match rpc.create("many", replicas("3")) {
        Ok(w) if cluster => {
            assert_running(backend, &w);
            rpc.delete(&w.id).expect("delete");
        }
        Err(Error::Unsupported(msg)) if !cluster => {
            assert!(msg.contains("3 replicas"), "{msg}")
        }
        other => panic!("expected unsupported on one machine, a run on a cluster, got {other:?}"),
    }
    match rpc.create("many", replicas("zero")) {
        Err(Error::Invalid(i)) => assert!(i.message.contains("io.gantry.replicas"), "{i:?}"),
        other => panic!("expected invalid, got {other:?}"),
    }
    assert!(
        rpc.list().is_empty(),
        "no record of a failed create remains"
    );
    let leftovers = || -> Vec<_> {
        backend
            .all_gantry_containers()
            .into_iter()
            .filter(|o| !before.contains(&o.id))
            .filter(|o| {
                [
                    "no-such-image",
                    "too-small",
                    "no-command",
                    "half",
                    "dup",
                    "many",
                ]
                .iter()
                .any(|bad| o.name.contains(bad))
            })
            .collect()
    };
    let leftovers = backend.after_removal(leftovers);
    assert!(leftovers.is_empty(), "orphaned containers: {leftovers:?}");
}

/// Only the owner and admins see a workload.
pub fn owners_and_admins_are_the_only_ones_who_see_a_workload(backend: Backend) {
    let (_dir, g) = start(backend, 30);
    let alice = Rpc::new(&g, "owner-1", &["USER"]);
    let mallory = Rpc::new(&g, "other-1", &["USER"]);
    let admin = Rpc::new(&g, "root-1", &["ADMIN"]);
    let w = alice
        .create(
            "private",
            workload(vec![busybox("main", "exec sleep 3600")], RestartKind::No),
        )
        .expect("create");
    assert!(matches!(mallory.get(&w.id), Err(Error::Forbidden(_))));
    assert!(matches!(mallory.delete(&w.id), Err(Error::Forbidden(_))));
    assert!(mallory.list().is_empty());
    assert_eq!(admin.get(&w.id).expect("admin get").owner, "owner-1");
    admin.delete(&w.id).expect("admin delete");
    assert!(
        backend
            .after_removal(|| backend.containers_of(&w.id))
            .is_empty()
    );
}

/// An update deploys revision 2 in a new container and removes revision 1
/// (on a cluster, a rolling update of the same service); a failed update
/// changes nothing.
pub fn update_deploys_a_new_revision_and_removes_the_old_one(backend: Backend) {
    let (_dir, g) = start(backend, 30);
    let rpc = Rpc::new(&g, "frank", &["USER"]);
    let cluster = declared(&g, backend).cluster;
    let w = rpc
        .create(
            "versioned",
            workload(
                vec![busybox("main", "echo v1; exec sleep 3600")],
                RestartKind::No,
            ),
        )
        .expect("create");
    let old = runtime_id(&w, 0);
    let old_pid = backend.observe(&old).pid;
    assert!(old_pid.is_some(), "revision 1 runs");
    let w2 = rpc
        .update(
            &w.id,
            workload(
                vec![busybox("main", "echo v2; exec sleep 3600")],
                RestartKind::No,
            ),
        )
        .expect("update");
    assert_eq!(w2.revision, 2);
    assert_running(backend, &w2);
    let members = backend.members_of(&w.id);
    assert_eq!(
        members.len(),
        1,
        "only the new revision's container remains"
    );
    if cluster {
        assert_eq!(members[0].id, old, "the service is updated in place");
    } else {
        assert_ne!(members[0].id, old, "a new container");
    }
    assert!(
        members[0].pid.is_some() && members[0].pid != old_pid,
        "revision 2 runs a new process: {members:?}"
    );
    assert_eq!(
        members[0]
            .labels
            .get("io.gantry.revision")
            .map(String::as_str),
        Some("2")
    );
    let mut broken = busybox("main", "true");
    broken.image = "gantry-test/missing:0".into();
    assert!(matches!(
        rpc.update(&w.id, workload(vec![broken], RestartKind::No)),
        Err(Error::NotFound(_))
    ));
    assert_eq!(rpc.get(&w.id).expect("get").revision, 2);
    assert_eq!(backend.members_of(&w.id).len(), 1);
    rpc.delete(&w.id).expect("delete");
}
