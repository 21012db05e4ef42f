//! `bench hot-swap`: what swapping the REST frontend costs the requests
//! around it. Eight keep-alive connections `GET /v1/openapi.json` without
//! pause; first with nothing else happening (the baseline), then while the
//! plugin is swapped back and forth between two builds (`POST /-/reload`
//! after each file is dropped in). Requests sent while a reload ran are
//! compared with those of the baseline, same host, same run; the reloads'
//! own times (the first of each build compiles it, later ones load the
//! component cache) are reported beside them. Any failed request fails the
//! benchmark. Run by `cargo xtask bench`.

use anyhow::{Result, bail};
use gantry_tests::bench::{Row, Samples, count, report_with, smoke};
use gantry_tests::builds;
use gantry_tests::config::ConfigBuilder;
use gantry_tests::gantry::Gantry;
use gantry_tests::plugins;
use gantry_tests::swap::BuildLoad;
use std::path::Path;
use std::time::{Duration, Instant};

/// Connections of the load.
const CONNECTIONS: usize = 8;
/// Longest the load may run.
const BUDGET: Duration = Duration::from_secs(120);

pub fn main() -> Result<()> {
    let builds = [plugins::rest(), builds::rest_with_build_id("bench-b")];
    let dir = tempfile::tempdir()?;
    let served = dir.path().join("rest.wasm");
    builds::replace_file(&builds[0], &served);
    let config = ConfigBuilder::new("bench-hot-swap")
        .http_frontend("rest", Path::new("{dir}/rest.wasm"), "/v1")
        .build();
    let g = Gantry::start_in(dir.path(), &config);
    let token = g.token("bench", &["USER"]);
    let admin = g.token("bench-admin", &["ADMIN"]);
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()?;
    let addr = format!("127.0.0.1:{}", g.port).parse()?;

    let warmup = Duration::from_millis(if smoke() { 200 } else { 1000 });
    let baseline_for = Duration::from_millis(if smoke() { 500 } else { 5000 });
    let swaps = count(12, 2);
    let load = BuildLoad::start(addr, &token, CONNECTIONS, 1_000_000, BUDGET);
    std::thread::sleep(warmup + baseline_for);
    let baseline_until = load.now();

    let mut windows = Vec::new();
    let (mut compiled, mut cached) = (Samples::default(), Samples::default());
    for i in 0..swaps {
        builds::replace_file(&builds[(i + 1) % 2], &served);
        let from = load.now();
        let t = Instant::now();
        let resp = http.post(g.url("/-/reload")).bearer_auth(&admin).send()?;
        let took = t.elapsed();
        let status = resp.status().as_u16();
        let report: serde_json::Value = resp.json()?;
        if status != 200 || report["outcome"] != "applied" {
            bail!("swap {i} was not applied ({status}): {report}");
        }
        windows.push((from, load.now(), i == 0));
        // The host compiled the first build when it started: only the first
        // swap, to the second build, compiles; later ones load the cache.
        if i == 0 { &mut compiled } else { &mut cached }.push(took);
        std::thread::sleep(Duration::from_millis(300));
    }
    let answers = load.stop();

    let failed: Vec<_> = answers.iter().filter(|a| a.status != 200).collect();
    if !failed.is_empty() {
        bail!(
            "{} of {} requests failed around the swaps, first: {:?}",
            failed.len(),
            answers.len(),
            failed[0]
        );
    }
    let mut baseline = Samples::default();
    let (mut during, mut while_compiling, mut from_cache) =
        (Samples::default(), Samples::default(), Samples::default());
    for a in &answers {
        if a.sent >= warmup && a.sent < baseline_until {
            baseline.push(a.latency);
        } else if let Some((_, _, compiling)) =
            windows.iter().find(|(f, t, _)| a.sent >= *f && a.sent < *t)
        {
            during.push(a.latency);
            if *compiling {
                &mut while_compiling
            } else {
                &mut from_cache
            }
            .push(a.latency);
        }
    }
    if baseline.is_empty() || during.is_empty() {
        bail!(
            "too few requests to compare ({} before, {} during)",
            baseline.len(),
            during.len()
        );
    }
    let ratio_p99 = during.quantile(0.99).as_secs_f64() / baseline.quantile(0.99).as_secs_f64();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    report_with(
        "bench-hot-swap",
        "GET /v1/openapi.json, 8 connections, no swap",
        &[
            Row::new("GET during any swap", &during, &baseline),
            Row::new("GET during the compiling swap", &while_compiling, &baseline),
            Row::new("GET during swaps from the cache", &from_cache, &baseline),
        ],
        &[
            ("p99 during swap / p99 before".into(), ratio_p99),
            ("requests during swaps".into(), during.len() as f64),
            ("swaps".into(), swaps as f64),
            ("failed requests".into(), failed.len() as f64),
            ("reload ms, compiling".into(), ms(compiled.quantile(0.5))),
            (
                "reload ms, from the cache (p50)".into(),
                if cached.is_empty() {
                    f64::NAN
                } else {
                    ms(cached.quantile(0.5))
                },
            ),
        ],
    )
}
