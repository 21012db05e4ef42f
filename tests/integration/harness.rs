//! The test harness's runtimes are real: dockerd and containerd answer, and
//! the test image is in both.

use gantry_tests::runtimes::{CONTAINERD_NAMESPACE, TEST_IMAGE, runtimes};
use std::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn dockerd_runs_with_the_test_image() {
    let rt = runtimes();
    let docker = rt.docker().await;
    let version = docker.version().await.expect("docker version");
    assert!(version.api_version.is_some(), "{version:?}");
    let image = docker
        .inspect_image(TEST_IMAGE)
        .await
        .expect("test image in dockerd");
    assert!(image.id.is_some_and(|id| id.starts_with("sha256:")));
}

#[test]
fn containerd_runs_with_the_test_image() {
    let rt = runtimes();
    let out = Command::new("ctr")
        .arg("-a")
        .arg(&rt.containerd_sock)
        .args(["-n", CONTAINERD_NAMESPACE, "images", "ls", "-q"])
        .output()
        .expect("ctr");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(list.contains(&format!("docker.io/{TEST_IMAGE}")), "{list}");
}
