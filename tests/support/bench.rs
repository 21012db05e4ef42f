//! What the benchmark binaries share: timing samples, their summary, and the
//! report (a table on stdout, JSON under `target/bench/`). Every figure is
//! read against a baseline measured in the same run.

use serde::Serialize;
use std::time::Duration;

/// Whether this is a smoke pass (`GANTRY_BENCH_SMOKE`): a few iterations,
/// to prove the benchmark still runs; its figures mean nothing.
pub fn smoke() -> bool {
    std::env::var_os("GANTRY_BENCH_SMOKE").is_some()
}

/// `full` iterations, or `smoke` of them in a smoke pass.
pub fn count(full: usize, smoke: usize) -> usize {
    if self::smoke() { smoke } else { full }
}

/// Latency samples of one measured operation.
#[derive(Debug, Default, Clone)]
pub struct Samples(Vec<Duration>);

impl Samples {
    /// Add one sample.
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    /// Add every sample of `other`.
    pub fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    /// The `q` quantile (0..=1), nearest rank; zero when empty.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.0.is_empty() {
            return Duration::ZERO;
        }
        let mut v = self.0.clone();
        v.sort();
        let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
        v[rank - 1]
    }

    /// The sum of every sample.
    pub fn total(&self) -> Duration {
        self.0.iter().sum()
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One row of a report: a measured case against its baseline.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// What was measured.
    pub case: String,
    /// Samples of each side.
    pub samples: usize,
    /// Median of the measured side, ms.
    pub p50_ms: f64,
    /// 95th percentile of the measured side, ms.
    pub p95_ms: f64,
    /// 99th percentile of the measured side, ms.
    pub p99_ms: f64,
    /// Median of the baseline, ms.
    pub baseline_p50_ms: f64,
    /// 95th percentile of the baseline, ms.
    pub baseline_p95_ms: f64,
    /// 99th percentile of the baseline, ms.
    pub baseline_p99_ms: f64,
    /// Measured median / baseline median.
    pub ratio_p50: f64,
    /// Measured p95 / baseline p95.
    pub ratio_p95: f64,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Row {
    /// Summarise `measured` against `baseline`.
    pub fn new(case: &str, measured: &Samples, baseline: &Samples) -> Row {
        let ratio = |a: Duration, b: Duration| {
            if b.is_zero() {
                f64::NAN
            } else {
                a.as_secs_f64() / b.as_secs_f64()
            }
        };
        Row {
            case: case.to_string(),
            samples: measured.len().min(baseline.len()),
            p50_ms: ms(measured.quantile(0.5)),
            p95_ms: ms(measured.quantile(0.95)),
            p99_ms: ms(measured.quantile(0.99)),
            baseline_p50_ms: ms(baseline.quantile(0.5)),
            baseline_p95_ms: ms(baseline.quantile(0.95)),
            baseline_p99_ms: ms(baseline.quantile(0.99)),
            ratio_p50: ratio(measured.quantile(0.5), baseline.quantile(0.5)),
            ratio_p95: ratio(measured.quantile(0.95), baseline.quantile(0.95)),
        }
    }
}

/// Print `rows` as a table and write them to `target/bench/<name>.json`.
pub fn report(name: &str, baseline: &str, rows: &[Row]) -> anyhow::Result<()> {
    report_with(name, baseline, rows, &[])
}

/// [`report`], with further figures that are not latencies (CPU, memory...).
pub fn report_with(
    name: &str,
    baseline: &str,
    rows: &[Row],
    figures: &[(String, f64)],
) -> anyhow::Result<()> {
    if smoke() {
        println!("\n{name}: smoke pass (debug host, a few iterations; not figures)");
    }
    println!("\n{name} (baseline: {baseline})");
    println!(
        "{:<34} {:>4} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7}",
        "case",
        "n",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "base p50",
        "base p95",
        "base p99",
        "x p50",
        "x p95"
    );
    for r in rows {
        println!(
            "{:<34} {:>4} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>7.2} {:>7.2}",
            r.case,
            r.samples,
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.baseline_p50_ms,
            r.baseline_p95_ms,
            r.baseline_p99_ms,
            r.ratio_p50,
            r.ratio_p95
        );
    }
    for (k, v) in figures {
        println!("{k:<40} {v:>10.2}");
    }
    let dir = crate::workspace_root().join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let path = dir.join(if smoke() {
        format!("{name}.smoke.json")
    } else {
        format!("{name}.json")
    });
    std::fs::write(
        &path,
        serde_json::to_string_pretty(&serde_json::json!({
            "bench": name,
            "baseline": baseline,
            "rows": rows,
            "figures": figures.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
        }))?,
    )?;
    println!("written to {}", path.display());
    Ok(())
}

/// Resident memory of process `pid`, in MiB.
pub fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for pid {pid}"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb / 1024.0)
}

/// Longest a single create may take before a benchmark gives up.
pub const CREATE_LIMIT: Duration = Duration::from_secs(60);

/// `POST /v1/containers` (`name`, the test image, `sleep 3600`), then `GET`
/// until the container is deployed: its id and the time that took.
pub fn rest_post_to_running(
    api: &crate::api::Api,
    token: &str,
    name: &str,
) -> anyhow::Result<(String, Duration)> {
    let t = std::time::Instant::now();
    let (s, c) = api.send(
        "POST",
        "/v1/containers",
        Some(token),
        Some(serde_json::json!({
            "name": name, "image": crate::runtimes::TEST_IMAGE, "command": ["sleep", "3600"]
        })),
    );
    if s != 201 {
        anyhow::bail!("POST answered {s}: {c}");
    }
    let id = c["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("created without an id: {c}"))?
        .to_string();
    loop {
        let (s, c) = api.send("GET", &format!("/v1/containers/{id}"), Some(token), None);
        if s == 200 && c["status"] == "deployed" {
            return Ok((id, t.elapsed()));
        }
        if c["status"] == "failed" {
            anyhow::bail!("{name} failed: {c}");
        }
        if t.elapsed() > CREATE_LIMIT {
            anyhow::bail!("{name} not deployed within {CREATE_LIMIT:?}: {c}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// `f` on every item at once, one thread each; the results in order.
pub fn in_parallel<T: Send>(
    items: &[String],
    f: impl Fn(&str) -> anyhow::Result<T> + Sync,
) -> Vec<anyhow::Result<T>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = items.iter().map(|i| s.spawn(|| f(i))).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("worker panicked")))
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut s = Samples::default();
        for ms in [5, 1, 3, 2, 4] {
            s.push(Duration::from_millis(ms));
        }
        assert_eq!(s.quantile(0.5), Duration::from_millis(3));
        assert_eq!(s.quantile(0.95), Duration::from_millis(5));
        let r = Row::new("x", &s, &s);
        assert!((r.ratio_p50 - 1.0).abs() < 1e-9);
    }
}
