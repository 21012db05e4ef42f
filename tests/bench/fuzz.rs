//! `bench fuzz`: every frontend's request decoding fed mutated requests —
//! REST bodies and queries, ARM bodies and paths, Ditto envelopes over MQTT
//! ([`gantry_tests::fuzz`]) — looking for hangs as well as crashes. Every
//! HTTP request must be answered within its deadline and not with a 5xx;
//! after each batch of envelopes a valid Kanto command must be answered;
//! after all of it the host is healthy: `/healthz` and `/readyz` 200, no
//! frontend trapped or was cut. Bounded in count and time. The figures are
//! the latency of mutated requests against the valid seed request of the
//! same frontend, in the same run.
//!
//! The backend is the stall fixture answering every call at once: what is
//! fuzzed is decoding, not a runtime. `GANTRY_FUZZ_SEED` replays a run.

use anyhow::{Result, bail};
use gantry_tests::bench::{Row, Samples, count, report_with, smoke};
use gantry_tests::config::ConfigBuilder;
use gantry_tests::fuzz::{Rng, mutate, mutate_path, mutate_query};
use gantry_tests::gantry::Gantry;
use gantry_tests::mqtt::TestClient;
use gantry_tests::plugins;
use serde_json::json;
use std::time::{Duration, Instant};

/// How long one request may take to be answered.
const DEADLINE: Duration = Duration::from_secs(10);
/// Envelopes published between two checks that Kanto still answers.
const BATCH: usize = 25;
const THING: &str = "edge:device:edge:containers";

const GROUPS: &str =
    "/subscriptions/fuzz/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups";

/// One request to send: method, path with query, body.
type Input = (String, String, Option<Vec<u8>>);

/// What went wrong, each with the input that did it.
#[derive(Default)]
struct Findings(Vec<String>);

impl Findings {
    fn add(&mut self, what: String, input: &[u8]) {
        let shown: String = String::from_utf8_lossy(input).chars().take(300).collect();
        self.0
            .push(format!("{what}; input ({} bytes): {shown}", input.len()));
    }
}

struct Target<'a> {
    client: &'a reqwest::blocking::Client,
    g: &'a Gantry,
    token: &'a str,
}

impl Target<'_> {
    /// Send one request; its latency, or a finding.
    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        findings: &mut Findings,
    ) -> Option<Duration> {
        let url = format!("http://127.0.0.1:{}{path}", self.g.port);
        let mut req = self
            .client
            .request(method.parse().expect("method"), url)
            .bearer_auth(self.token);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_vec());
        }
        let started = Instant::now();
        let input = body.unwrap_or(path.as_bytes());
        match req.send() {
            Err(e) if e.is_timeout() => {
                findings.add(
                    format!("{method} {path}: no answer within {DEADLINE:?}"),
                    input,
                );
                None
            }
            Err(e) if e.is_builder() => None, // a URL no client can send
            Err(e) => {
                findings.add(format!("{method}: {e}"), input);
                None
            }
            Ok(r) if r.status().is_server_error() => {
                let status = r.status();
                let text: String = r.text().unwrap_or_default().chars().take(300).collect();
                findings.add(format!("{method} answered {status}: {text}"), input);
                None
            }
            Ok(r) => {
                let _ = r.bytes();
                Some(started.elapsed())
            }
        }
    }
}

pub fn main() -> Result<()> {
    let seed = std::env::var("GANTRY_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    println!("bench-fuzz: seed {seed} (GANTRY_FUZZ_SEED={seed} replays it)");
    let per_target = count(1_500, 40);
    let budget = if smoke() {
        Duration::from_secs(20)
    } else {
        Duration::from_secs(120)
    };
    let mqtt_port = gantry_tests::free_port();
    let dir = tempfile::tempdir()?;
    let config = ConfigBuilder::new("fuzz")
        .in_memory()
        .http_frontend("rest", &plugins::rest(), "/v1")
        .arm_frontend()
        .kanto_embedded(mqtt_port, "")
        .stall_backend("", None)
        .build();
    let g = Gantry::start_in(dir.path(), &config);
    let token = g.token("fuzzer", &["USER"]);
    let client = reqwest::blocking::Client::builder()
        .timeout(DEADLINE)
        .build()?;
    let t = Target {
        client: &client,
        g: &g,
        token: &token,
    };
    let mut rng = Rng::new(seed);
    let mut findings = Findings::default();
    let mut rows = Vec::new();
    let mut answered = 0usize;

    let rest_bodies: Vec<Vec<u8>> = [
        json!({"name": "fz", "image": "busybox:1.36", "command": ["sleep", "1"], "env": {"A": "b"}, "cpu": 0.5, "ram": "64Mi", "port": "80"}),
        json!({"name": "fz2", "image": "busybox:1.36", "gpu": 0, "arguments": ["x"], "ephemeralStorage": "1Gi"}),
    ]
    .iter()
    .map(|v| v.to_string().into_bytes())
    .collect();
    let arm_body = json!({"location": "westeurope", "tags": {"a": "b"}, "properties": {"osType": "Linux", "restartPolicy": "Always",
        "containers": [{"name": "web", "properties": {"image": "busybox:1.36", "command": ["sleep", "1"],
            "environmentVariables": [{"name": "A", "value": "b"}, {"name": "S", "secureValue": "c"}],
            "ports": [{"port": 80}], "resources": {"requests": {"cpu": 0.5, "memoryInGB": 0.5}}}}],
        "ipAddress": {"type": "Public", "ports": [{"port": 80, "protocol": "TCP"}], "dnsNameLabel": "fz"}}})
    .to_string()
    .into_bytes();
    let queries = ["rows=10&page=1", "status=running&rows=5", "page=2"];
    let arm_paths = [
        format!("{GROUPS}/grp?api-version=2023-05-01"),
        format!("{GROUPS}?api-version=2023-05-01"),
        format!("{GROUPS}/grp/containers/web/logs?api-version=2023-05-01&tail=10"),
        "/subscriptions/fuzz/providers/Microsoft.ContainerInstance/locations/westeurope/capabilities?api-version=2023-05-01".to_string(),
        "/subscriptions/fuzz/resourcegroups/rg?api-version=2021-04-01".to_string(),
    ];

    // The valid seed request of each HTTP frontend: the baselines.
    let baseline = |method: &str, path: &str, findings: &mut Findings| {
        let mut s = Samples::default();
        for _ in 0..count(200, 10) {
            if let Some(d) = t.send(method, path, None, findings) {
                s.push(d);
            }
        }
        s
    };
    let rest_base = baseline("GET", "/v1/containers?rows=10", &mut findings);
    let arm_base = baseline("GET", &arm_paths[1], &mut findings);

    let mut run = |case: &str,
                   base: &Samples,
                   findings: &mut Findings,
                   next: &mut dyn FnMut(&mut Rng) -> Input| {
        let started = Instant::now();
        let mut s = Samples::default();
        for _ in 0..per_target {
            if started.elapsed() > budget {
                break;
            }
            let (method, path, body) = next(&mut rng);
            if let Some(d) = t.send(&method, &path, body.as_deref(), findings) {
                s.push(d);
            }
        }
        answered += s.len();
        rows.push(Row::new(case, &s, base));
    };
    run(
        "REST create bodies",
        &rest_base,
        &mut findings,
        &mut |rng| {
            let seed = rng.pick(&rest_bodies).clone();
            (
                "POST".into(),
                "/v1/containers".into(),
                Some(mutate(rng, &seed)),
            )
        },
    );
    run("REST queries", &rest_base, &mut findings, &mut |rng| {
        let q = *rng.pick(&queries);
        let q = mutate_query(rng, q);
        ("GET".into(), format!("/v1/containers?{q}"), None)
    });
    run("ARM group bodies", &arm_base, &mut findings, &mut |rng| {
        let name = format!("g{}", rng.below(20));
        (
            "PUT".into(),
            format!("{GROUPS}/{name}?api-version=2023-05-01"),
            Some(mutate(rng, &arm_body)),
        )
    });
    run("ARM paths", &arm_base, &mut findings, &mut |rng| {
        let p = rng.pick(&arm_paths).clone();
        let method = rng
            .pick(&["GET", "PUT", "DELETE", "POST", "PATCH"])
            .to_string();
        let body = (method == "PUT").then(|| arm_body.clone());
        (method, mutate_path(rng, &p), body)
    });

    // Ditto envelopes over MQTT: published in batches, each followed by a
    // valid command that must be answered.
    let mqtt = TestClient::connect(mqtt_port, "fuzz-cloud", &["command//+/res/#"]);
    let envelope = |op: &str, feature: &str, value: serde_json::Value| {
        json!({"topic": format!("edge/device:edge:containers/things/live/messages/{op}"),
               "headers": {"response-required": true, "content-type": "application/json", "correlation-id": "fz"},
               "path": format!("/features/{feature}/inbox/messages/{op}"), "value": value})
        .to_string()
        .into_bytes()
    };
    let envelopes = [
        (
            "create",
            envelope(
                "create",
                "ContainerFactory",
                json!({"imageRef": "busybox:1.36", "start": true}),
            ),
        ),
        (
            "createWithConfig",
            envelope(
                "createWithConfig",
                "ContainerFactory",
                json!({"imageRef": "busybox:1.36", "name": "fz", "start": false,
                   "config": {"env": ["A=b"], "cmd": ["sleep", "1"], "restartPolicy": {"type": "no"}}}),
            ),
        ),
        ("stop", envelope("stop", "Container:abc", json!({}))),
        (
            "update",
            envelope(
                "update",
                "Container:abc",
                json!({"restartPolicy": {"type": "always"}}),
            ),
        ),
        (
            "install",
            envelope(
                "install",
                "SoftwareUpdatable",
                json!({"correlationId": "c", "softwareModules": []}),
            ),
        ),
    ];
    let probe = |n: usize| -> Option<Duration> {
        let req = format!("probe{n}");
        let started = Instant::now();
        mqtt.kanto_send(THING, (&req, "Container:nothing-here", "start"), json!({}));
        let prefix = format!("command//{THING}/res/{req}/");
        let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            mqtt.wait_for("a probe's answer", DEADLINE * 3, |t, _| {
                t.starts_with(&prefix)
            })
        }));
        answered.ok().map(|_| started.elapsed())
    };
    let mut kanto_base = Samples::default();
    for n in 0..count(50, 5) {
        match probe(n) {
            Some(d) => kanto_base.push(d),
            None => findings.add("a valid Kanto command went unanswered".into(), b""),
        }
    }
    let mut kanto = Samples::default();
    let started = Instant::now();
    let mut sent = 0;
    while sent < per_target && started.elapsed() < budget {
        for _ in 0..BATCH {
            let (op, seed) = rng.pick(&envelopes).clone();
            let payload = mutate(&mut rng, &seed);
            mqtt.publish_bytes_acked(&format!("command//{THING}/req/fz{sent}/{op}"), &payload);
            sent += 1;
        }
        match probe(sent) {
            Some(d) => kanto.push(d),
            None => findings.add(
                format!("Kanto stopped answering after {sent} mutated envelopes"),
                b"",
            ),
        }
    }
    rows.push(Row::new(
        "Ditto envelopes (batch + probe)",
        &kanto,
        &kanto_base,
    ));

    // The host after all of it.
    for path in ["/healthz", "/readyz"] {
        let r = client.get(g.url(path)).send()?;
        if !r.status().is_success() {
            findings.add(
                format!("{path} answered {}: {}", r.status(), r.text()?),
                b"",
            );
        }
    }
    let metrics = client.get(g.url("/metrics")).send()?.text()?;
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("gantry_plugin_failures_total"))
    {
        if ["rest", "arm", "kanto"]
            .iter()
            .any(|p| line.contains(&format!("plugin=\"{p}\"")))
            && !line.ends_with(" 0")
        {
            findings.add(format!("a frontend failed: {line}"), b"");
        }
    }
    report_with(
        "bench-fuzz",
        "the valid seed request of the same frontend",
        &rows,
        &[
            ("mutated HTTP requests answered".into(), answered as f64),
            ("mutated envelopes published".into(), sent as f64),
            ("findings".into(), findings.0.len() as f64),
        ],
    )?;
    if !findings.0.is_empty() {
        for f in &findings.0 {
            eprintln!("finding: {f}");
        }
        bail!("{} findings (seed {seed})", findings.0.len());
    }
    Ok(())
}
