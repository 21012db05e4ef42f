//! `bench containerd-create`: POST→running through gantry's REST frontend on
//! the containerd backend, against raw containerd create+start (`ctr run -d`
//! with the same image, command and log driver) measured in the same run,
//! at concurrency 1 and 10. Run by `cargo xtask bench`.
//!
//! Each gantry sample is the time from sending `POST /v1/containers` until
//! `GET` reports the container deployed; each baseline sample is the wall
//! time of one `ctr run -d`. Cleanup is not timed. Runs are interleaved so
//! drift on the machine hits both sides alike.

use anyhow::{Result, bail};
use gantry_tests::api::Api;
use gantry_tests::backends::Backend;
use gantry_tests::bench::{Row, Samples, count, in_parallel, report, rest_post_to_running};
use gantry_tests::runtimes::{CONTAINERD_NAMESPACE, TEST_IMAGE, runtimes};
use std::process::Command;
use std::time::{Duration, Instant};

/// Samples per side at concurrency 1.
const SEQUENTIAL: usize = 20;
/// Workers, and rounds per worker, at concurrency 10.
const WORKERS: usize = 10;
const ROUNDS: usize = 3;
/// A smoke pass: the same cases, a couple of iterations.
const SMOKE: usize = 2;

fn ctr() -> Command {
    let mut c = Command::new("ctr");
    c.arg("-a")
        .arg(&runtimes().containerd_sock)
        .args(["-n", CONTAINERD_NAMESPACE]);
    c
}

/// The log URI gantry's containerd backend gives its containers, so both
/// sides pay for the same log driver.
fn log_uri() -> String {
    format!(
        "binary://{}?dir={}",
        gantry_tests::plugins::containerd_logger().display(),
        runtimes().containerd_logs().display()
    )
}

fn raw_create(id: &str) -> Result<Duration> {
    let t = Instant::now();
    let out = ctr()
        .args(["run", "-d", "--log-uri", &log_uri()])
        .arg(format!("docker.io/{TEST_IMAGE}"))
        .arg(id)
        .args(["sleep", "3600"])
        .output()?;
    let took = t.elapsed();
    if !out.status.success() {
        bail!("ctr run {id}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(took)
}

fn raw_remove(id: &str) {
    let _ = ctr().args(["tasks", "kill", "-s", "9", id]).output();
    for _ in 0..50 {
        let out = ctr().args(["tasks", "rm", id]).output();
        if out.is_ok_and(|o| o.status.success()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = ctr().args(["containers", "rm", id]).output();
}

/// One round at concurrency `workers`: every worker creates one on each side.
fn round(
    api: &Api,
    token: &str,
    tag: &str,
    workers: usize,
    gantry: &mut Samples,
    raw: &mut Samples,
) -> Result<()> {
    let names: Vec<String> = (0..workers).map(|w| format!("bench-{tag}-{w}")).collect();
    let results = in_parallel(&names, |name| rest_post_to_running(api, token, name));
    let mut ids = Vec::new();
    for r in results {
        let (id, d) = r?;
        gantry.push(d);
        ids.push(id);
    }
    for id in &ids {
        api.send("DELETE", &format!("/v1/containers/{id}"), Some(token), None);
    }
    let raw_ids: Vec<String> = (0..workers)
        .map(|w| format!("bench-raw-{tag}-{w}"))
        .collect();
    let results = in_parallel(&raw_ids, raw_create);
    for id in &raw_ids {
        raw_remove(id);
    }
    for r in results {
        raw.push(r?);
    }
    Ok(())
}

pub fn main() -> Result<()> {
    let api = Api::start_on(Backend::Containerd, 30);
    let token = api.token("bench-user", "USER");
    // Warm both paths (component instances, image unpacked, caches).
    let (mut g, mut r) = (Samples::default(), Samples::default());
    round(&api, &token, "warm", 2, &mut g, &mut r)?;
    let mut rows = Vec::new();
    let (mut g, mut r) = (Samples::default(), Samples::default());
    for i in 0..count(SEQUENTIAL, SMOKE) {
        round(&api, &token, &format!("c1-{i}"), 1, &mut g, &mut r)?;
    }
    rows.push(Row::new("POST→running, c1", &g, &r));
    let (mut g, mut r) = (Samples::default(), Samples::default());
    for i in 0..count(ROUNDS, 1) {
        round(
            &api,
            &token,
            &format!("c10-{i}"),
            count(WORKERS, SMOKE),
            &mut g,
            &mut r,
        )?;
    }
    rows.push(Row::new("POST→running, c10", &g, &r));
    report(
        "containerd_create",
        "ctr run -d (same image, command and log driver)",
        &rows,
    )
}
