//! The backend conformance suite against the containerd plugin on the
//! harness's containerd, and what only this backend does itself: pulling
//! images from a registry (containerd 1.6 has no pull call).

use gantry::bindings::types::{Error, RestartKind};
use gantry_tests::backends::Backend;
use gantry_tests::config::ConfigBuilder;
use gantry_tests::gantry::Gantry;
use gantry_tests::registry::Registry;
use gantry_tests::rpc::{Rpc, busybox, running, workload};
use gantry_tests::runtimes::TEST_IMAGE;

crate::conformance_suite!(Backend::Containerd);

fn ctr_has_image(name: &str) -> bool {
    let out = std::process::Command::new("ctr")
        .arg("-a")
        .arg(&gantry_tests::runtimes::runtimes().containerd_sock)
        .args([
            "-n",
            gantry_tests::runtimes::CONTAINERD_NAMESPACE,
            "images",
            "ls",
            "-q",
        ])
        .output()
        .expect("ctr");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == name)
}

#[test]
fn an_absent_image_is_pulled_from_a_granted_registry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = Registry::start(dir.path());
    let repository = format!("gantry-test/pulled-{}:1.0", std::process::id());
    let image = registry.push(TEST_IMAGE, &repository);
    assert!(!ctr_has_image(&image), "not in containerd before the pull");
    let config = ConfigBuilder::new("pull-tests")
        .http_frontend("rpc", &gantry_tests::plugins::control_rpc(), "/rpc")
        .containerd_backend_pulling_from(Some(&registry.address))
        .build();
    let home = tempfile::tempdir().expect("tempdir");
    let g = Gantry::start_in(home.path(), &config);
    let rpc = Rpc::new(&g, "puller", &["USER"]);
    let mut c = busybox("main", "exec sleep 3600");
    c.image = image.clone();
    let w = rpc
        .create("pulled", workload(vec![c], RestartKind::No))
        .unwrap_or_else(|e| panic!("create pulls the image: {e:?}\n{}", g.log()));
    assert!(running(&w), "{w:?}");
    assert!(
        ctr_has_image(&image),
        "the image is in containerd's namespace"
    );
    assert!(
        g.log().contains(&format!("pulling {image}")),
        "the pull was reported as progress"
    );
    rpc.delete(&w.id).expect("delete");
    // Absent from the registry too: a typed not-found naming it, nothing left.
    let mut missing = busybox("main", "true");
    missing.image = format!("{}/gantry-test/never-pushed:1.0", registry.address);
    match rpc.create("never", workload(vec![missing], RestartKind::No)) {
        Err(Error::NotFound(m)) => assert!(m.contains("never-pushed"), "{m}"),
        other => panic!("expected not-found, got {other:?}"),
    }
    assert!(rpc.list().is_empty());
    assert!(
        Backend::Containerd
            .all_gantry_containers()
            .iter()
            .all(|o| !o.name.contains("never")),
        "nothing left behind"
    );
}
