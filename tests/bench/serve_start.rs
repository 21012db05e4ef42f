//! `bench serve-start`: `gantry serve` until `/readyz` answers ready, with
//! six plugins (the control-rpc fixture, REST, ARM, Kanto on the embedded
//! broker, Docker, containerd), with a cold component cache and a warm one,
//! against the same host with no plugins, measured in the same run; and
//! the idle RSS of the six-plugin host. Run by `cargo xtask bench`.

use anyhow::{Result, bail};
use gantry_tests::bench::{Row, Samples, count, report_with, rss_mib};
use gantry_tests::config::ConfigBuilder;
use gantry_tests::plugins::{self, gantry_bin};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a start may take.
const LIMIT: Duration = Duration::from_secs(300);

/// The six-plugin config; `{port}` and `{dir}` left to substitute.
fn six_plugins(mqtt: u16) -> String {
    gantry_tests::rpc::frontends("bench-serve-start", 3600, 10_000)
        .mqtt_frontend(
            "kanto",
            &plugins::kanto(),
            &format!("broker = \"embedded\", listen = \"127.0.0.1:{mqtt}\""),
            "config = { device-id = \"edge:device\", tenant-id = \"t1\" }\n",
        )
        .docker_backend()
        .containerd_backend()
        .build()
}

/// Start gantry on `config` in `dir` and wait until it is ready: the time
/// that took, and the process (to measure, then stop).
fn start(dir: &Path, config: &str) -> Result<(Duration, Child)> {
    let port = gantry_tests::free_port();
    let path = dir.join("gantry.toml");
    std::fs::write(
        &path,
        config
            .replace("{port}", &port.to_string())
            .replace("{dir}", &dir.display().to_string()),
    )?;
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()?;
    let t = Instant::now();
    let mut child = Command::new(gantry_bin())
        .args(["serve", "--config"])
        .arg(&path)
        .env_remove("RUST_BACKTRACE")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    loop {
        let ready = http
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .is_ok_and(|r| r.status() == 200);
        if ready {
            return Ok((t.elapsed(), child));
        }
        if let Some(status) = child.try_wait()? {
            bail!("gantry exited with {status} before it was ready");
        }
        if t.elapsed() > LIMIT {
            let _ = child.kill();
            bail!("gantry not ready within {LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn stop(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

pub fn main() -> Result<()> {
    let bare = ConfigBuilder::new("bench-serve-start").build();
    let (mut none, mut cold, mut warm) =
        (Samples::default(), Samples::default(), Samples::default());
    let mut rss = 0.0;
    for i in 0..count(3, 1) {
        let dir = tempfile::tempdir()?;
        let config = six_plugins(gantry_tests::free_port());
        // A fresh directory: no compiled components yet.
        let (d, child) = start(dir.path(), &config)?;
        cold.push(d);
        stop(child);
        for j in 0..count(5, 1) {
            let (d, child) = start(dir.path(), &config)?;
            warm.push(d);
            if i == 0 && j == 0 {
                // Settled, as an idle host is.
                std::thread::sleep(Duration::from_secs(if gantry_tests::bench::smoke() {
                    1
                } else {
                    5
                }));
                rss = rss_mib(child.id())?;
            }
            stop(child);
        }
        let empty = tempfile::tempdir()?;
        for _ in 0..count(5, 1) {
            let (d, child) = start(empty.path(), &bare)?;
            none.push(d);
            stop(child);
        }
    }
    report_with(
        "serve_start",
        "gantry serve with no plugins",
        &[
            Row::new("serve→ready, 6 plugins, warm cache", &warm, &none),
            Row::new("serve→ready, 6 plugins, cold cache", &cold, &none),
        ],
        &[("idle RSS MiB, 6 plugins".to_string(), rss)],
    )
}
