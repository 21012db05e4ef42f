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

/// The sizes [`a_megabyte_request_reaches_the_runtime`] sends: pieces of
/// 64 KiB (below the 128 KiB Linux takes in one string).
const PIECE: usize = 64 << 10;

/// What the container printed of its environment and arguments, once it has.
fn counted(rpc: &Rpc, id: &str) -> (usize, usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let lines = rpc.log_lines(id, "follow=1&wait=2000&reads=3");
        let found = lines.iter().find_map(|l| {
            let at = l.find("env=")?;
            let mut words = l[at..].split(|c: char| !c.is_ascii_alphanumeric() && c != '=');
            let env = words.next()?.strip_prefix("env=")?.parse().ok()?;
            let args = words.find_map(|w| w.strip_prefix("args="))?.parse().ok()?;
            Some((env, args))
        });
        if let Some(f) = found {
            return f;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the container never said what it got: {lines:?}"
        );
    }
}

/// A create carrying about a megabyte (environment and command line
/// through REST, environment through ARM, labels through `control`): each
/// is answered, and the process on the runtime holds all of it.
pub fn a_megabyte_request_reaches_the_runtime(backend: Backend) {
    use serde_json::{Value, json};
    let (_dir, g) = start(backend, 30);
    let rpc = Rpc::new(&g, "bulky", &["USER"]);
    let token = g.token("bulky", &["USER"]);
    let http = reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(240))
        .build()
        .expect("client");
    let script = "echo env=$(env | wc -c) args=$#; exec sleep 3600";
    let piece = |c: char| c.to_string().repeat(PIECE);

    // REST: 512 KiB of environment, 512 KiB of arguments.
    let env: serde_json::Map<String, Value> = (0..8)
        .map(|i| (format!("BIG{i}"), json!(piece('e'))))
        .collect();
    let mut arguments = vec![json!(script), json!("sh")];
    arguments.extend((0..8).map(|_| json!(piece('a'))));
    let body = json!({"name": "bulky-rest", "image": gantry_tests::runtimes::TEST_IMAGE,
                      "command": ["sh", "-c"], "arguments": arguments, "env": env});
    let r = http
        .post(g.url("/v1/containers"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .expect("REST create");
    let status = r.status().as_u16();
    let created: Value = r.json().expect("JSON");
    assert_eq!(
        status,
        201,
        "{}",
        created.to_string().chars().take(500).collect::<String>()
    );
    let id = created["id"].as_str().expect("id").to_string();
    let w = rpc.wait_for(
        &id,
        120,
        "the REST workload to run",
        gantry_tests::rpc::running,
    );
    assert_running(backend, &w);
    let (env_bytes, args) = counted(&rpc, &id);
    assert!(
        env_bytes >= 8 * PIECE,
        "env of {env_bytes} bytes reached the process"
    );
    assert_eq!(args, 8, "every argument reached the process");
    rpc.delete(&id).expect("delete");

    // ARM: a megabyte of environment, names and values (the bound's whole).
    let variables: Vec<Value> = (0..16)
        .map(|i| json!({"name": format!("BIG{i:02}"), "value": "v".repeat(PIECE - 16)}))
        .collect();
    let group = json!({"location": "westeurope", "properties": {"osType": "Linux",
        "restartPolicy": "Never", "containers": [{"name": "main", "properties": {
            "image": gantry_tests::runtimes::TEST_IMAGE, "command": ["sh", "-c", script],
            "environmentVariables": variables,
            "resources": {"requests": {"cpu": 0.5, "memoryInGB": 0.5}}}}]}});
    let r = http
        .put(g.url("/subscriptions/bulky-sub/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/bulky-arm?api-version=2023-05-01"))
        .bearer_auth(&token)
        .json(&group)
        .send()
        .expect("ARM PUT");
    let status = r.status().as_u16();
    let text = r.text().unwrap_or_default();
    assert!(
        status == 200 || status == 201,
        "{status}: {}",
        text.chars().take(500).collect::<String>()
    );
    let id = rpc
        .list()
        .into_iter()
        .find(|w| w.name == "bulky-arm")
        .expect("the ARM group's workload")
        .id;
    let w = rpc.wait_for(
        &id,
        120,
        "the ARM workload to run",
        gantry_tests::rpc::running,
    );
    assert_running(backend, &w);
    let (env_bytes, _) = counted(&rpc, &id);
    assert!(
        env_bytes >= 16 * (PIECE - 16),
        "env of {env_bytes} bytes reached the process"
    );
    rpc.delete(&id).expect("delete");

    // Labels: 240 KiB on one container, in labels of 4 KiB (what
    // containerd takes of one).
    let label = |i: usize| (format!("bulky.{i:02}"), "l".repeat(4096 - 8));
    let mut labelled = busybox("main", "exec sleep 3600");
    labelled.labels = (0..60).map(label).collect();
    let w = rpc
        .create("bulky-labels", workload(vec![labelled], RestartKind::No))
        .expect("create with labels");
    assert_running(backend, &w);
    let seen = backend
        .containers_of(&w.id)
        .into_iter()
        .filter(|o| o.labels.contains_key("bulky.00"))
        .map(|o| (0..60).all(|i| o.labels.get(&label(i).0) == Some(&label(i).1)))
        .collect::<Vec<_>>();
    assert_eq!(
        seen,
        [true],
        "the runtime holds every label whole: {}",
        backend.explain(&w.id)
    );
    rpc.delete(&w.id).expect("delete");
}
