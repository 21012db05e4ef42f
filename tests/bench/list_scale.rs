//! `bench list-scale`: the REST list page (`GET /v1/containers?rows=10`)
//! at 1,000 and 10,000 workloads of one owner against the same page with
//! none, measured in the same run; the host's idle CPU and RSS at each
//! size; and Kanto creates (over the embedded broker) at each size against
//! the same at none. Workloads are created stopped on the harness's dockerd
//! (so 10,000 fit on this machine); the list page is measured once the host
//! has settled after the creates. `GANTRY_BENCH_SIZES` overrides the sizes
//! (comma-separated). Run by `cargo xtask bench`.

use anyhow::{Context, Result, bail};
use gantry::bindings::types::RestartKind;
use gantry_tests::api::Api;
use gantry_tests::bench::{Row, Samples, count, report_with, rss_mib, smoke};
use gantry_tests::mqtt::TestClient;
use gantry_tests::rpc::{Rpc, busybox, frontends, workload};
use serde_json::json;
use std::time::{Duration, Instant};

/// List requests per measurement.
const REQUESTS: usize = 300;
/// Kanto creates per measurement.
const KANTO_CREATES: usize = 100;
const THING: &str = "edge:device:edge:containers";
/// Creating workers.
const WORKERS: usize = 8;
/// How long idle CPU is sampled (it spans a resync at the bench's 30 s).
const IDLE: Duration = Duration::from_secs(45);

/// `REQUESTS` list pages, each checked to count `expect` workloads.
fn list_page(api: &Api, token: &str, expect: usize) -> Result<Samples> {
    let mut s = Samples::default();
    for _ in 0..count(REQUESTS, 20) {
        let t = Instant::now();
        let (status, body) = api.send("GET", "/v1/containers?rows=10", Some(token), None);
        s.push(t.elapsed());
        if status != 200 || body["total"] != expect {
            bail!("list answered {status}, expected {expect} in all: {body}");
        }
    }
    Ok(s)
}

/// CPU seconds (user + system) the process has used.
fn cpu_seconds(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = stat.rsplit_once(')').context("stat format")?.1;
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).context("utime")?.parse::<f64>()? + f.get(12).context("stime")?.parse::<f64>()?;
    Ok(ticks / 100.0)
}

/// `KANTO_CREATES` stopped containers created through Kanto, one after another.
fn kanto_creates(client: &TestClient, tag: &str) -> Result<Samples> {
    let mut s = Samples::default();
    for i in 0..count(KANTO_CREATES, 3) {
        let t = Instant::now();
        let env = client.kanto_command(
            THING,
            (
                &format!("{tag}-{i}"),
                "ContainerFactory",
                "createWithConfig",
            ),
            json!({"imageRef": gantry_tests::runtimes::TEST_IMAGE, "name": format!("k-{tag}-{i}"),
                   "start": false, "config": {"cmd": ["sleep", "3600"]}}),
            Duration::from_secs(60),
        );
        s.push(t.elapsed());
        if env["status"] != 200 {
            bail!("Kanto create answered {env}");
        }
    }
    Ok(s)
}

/// Operations per second, one after another.
fn per_second(s: &Samples) -> f64 {
    s.len() as f64 / s.total().as_secs_f64().max(1e-9)
}

/// Wait until the host has settled after a burst of creates (the events
/// of thousands of containers are still being reconciled for a while):
/// until it used under 10 % of a core over two seconds, for at most two minutes.
fn settle(pid: u32) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let before = cpu_seconds(pid)?;
        std::thread::sleep(Duration::from_secs(2));
        if (cpu_seconds(pid)? - before) / 2.0 < 0.10 {
            break;
        }
    }
    Ok(())
}

/// The host's CPU use over the idle window, in % of a core.
fn idle_cpu(pid: u32) -> Result<f64> {
    let cpu0 = cpu_seconds(pid)?;
    let idle_for = if smoke() {
        Duration::from_secs(2)
    } else {
        IDLE
    };
    std::thread::sleep(idle_for);
    Ok((cpu_seconds(pid)? - cpu0) / idle_for.as_secs_f64() * 100.0)
}

fn create_stopped(rpc: &Rpc, from: usize, to: usize) -> Result<()> {
    let next = std::sync::atomic::AtomicUsize::new(from);
    let failures = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..WORKERS {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= to {
                        return;
                    }
                    let spec = workload(vec![busybox("main", "sleep 3600")], RestartKind::No);
                    if rpc.create_with(&format!("scale-{i}"), spec, false).is_err() {
                        failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    let failed = failures.into_inner();
    if failed > 0 {
        bail!("{failed} creates failed");
    }
    Ok(())
}

pub fn main() -> Result<()> {
    let sizes: Vec<usize> = std::env::var("GANTRY_BENCH_SIZES")
        .unwrap_or_else(|_| if smoke() { "20" } else { "1000,10000" }.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let mqtt = gantry_tests::free_port();
    let api = Api::start_with(
        &frontends("bench-list-scale", 30, 10_000)
            .mqtt_frontend(
                "kanto",
                &gantry_tests::plugins::kanto(),
                &format!("broker = \"embedded\", listen = \"127.0.0.1:{mqtt}\", subject = \"kanto-device\", roles = [\"ADMIN\"]"),
                "config = { device-id = \"edge:device\", tenant-id = \"t1\" }\n",
            )
            .docker_backend()
            .build(),
    );
    let client = TestClient::connect(mqtt, "bench-list-scale", &["command//+/res/#"]);
    let pid = api.g.pid().context("gantry's pid")?;
    let mut figures = Vec::new();
    let owner = "bench-owner";
    let token = api.token(owner, "USER");
    let rpc = Rpc::new(&api.g, owner, &["USER"]);
    let empty = list_page(&api, &token, 0)?;
    figures.push(("idle CPU % of a core at 0".to_string(), idle_cpu(pid)?));
    figures.push(("RSS MiB at 0".to_string(), rss_mib(pid)?));
    let kanto_at_0 = kanto_creates(&client, "at-0")?;
    figures.push(("Kanto creates/s at 0".to_string(), per_second(&kanto_at_0)));
    let mut rows = Vec::new();
    let mut have = 0;
    for n in sizes {
        let t = Instant::now();
        create_stopped(&rpc, have, n)?;
        let rate = (n - have) as f64 / t.elapsed().as_secs_f64();
        have = n;
        figures.push((format!("creates/s up to {n}"), rate));
        settle(pid)?;
        let page = list_page(&api, &token, n)?;
        rows.push(Row::new(
            &format!("list page at {n} vs at 0"),
            &page,
            &empty,
        ));
        figures.push((format!("idle CPU % of a core at {n}"), idle_cpu(pid)?));
        figures.push((format!("RSS MiB at {n}"), rss_mib(pid)?));
        let kanto = kanto_creates(&client, &format!("at-{n}"))?;
        figures.push((format!("Kanto creates/s at {n}"), per_second(&kanto)));
        rows.push(Row::new(
            &format!("Kanto create at {n} vs at 0"),
            &kanto,
            &kanto_at_0,
        ));
    }
    report_with(
        "list_scale",
        "the same list page with no workloads",
        &rows,
        &figures,
    )
}
