//! The plugin runtime through a live gantry: misbehaving plugins fail their
//! own calls while a healthy one keeps serving; endpoint grants; deadlines
//! that exclude host time; bounded instance reuse; the component cache; auth.

use gantry_tests::config::ConfigBuilder;
use gantry_tests::gantry::Gantry;
use gantry_tests::plugins::misbehave;
use std::io::{Read, Write};
use std::time::Duration;

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

fn fixture_config(extra: &str) -> String {
    let wasm = misbehave();
    let mut cfg = ConfigBuilder::new("test-secret")
        .in_memory()
        .limit("call_timeout_ms", 1000)
        .limit("memory_mib", 32);
    for name in ["healthy", "trapper", "looper", "grower"] {
        cfg = cfg.http_frontend(name, &wasm, &format!("/{name}"));
    }
    cfg.raw(extra).build()
}

fn get(url: &str) -> (u16, serde_json::Value) {
    let r = client().get(url).send().expect("request");
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(serde_json::Value::Null))
}

#[test]
fn misbehaving_plugins_fail_their_own_calls_while_healthy_calls_succeed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = Gantry::start_in(dir.path(), &fixture_config(""));
    let healthy_url = g.url("/healthy/ok");
    let bad: Vec<(String, &str)> = vec![
        (g.url("/trapper/trap"), "trapped"),
        (g.url("/looper/loop"), "deadline"),
        (g.url("/grower/grow"), "memory limit"),
    ];
    std::thread::scope(|s| {
        let healthy: Vec<_> = (0..4)
            .map(|_| {
                let url = healthy_url.clone();
                s.spawn(move || (0..15).map(|_| get(&url)).collect::<Vec<_>>())
            })
            .collect();
        let failing: Vec<_> = bad
            .iter()
            .map(|(url, expect)| {
                let url = url.clone();
                let expect = *expect;
                s.spawn(move || (0..3).map(|_| (get(&url), expect)).collect::<Vec<_>>())
            })
            .collect();
        for h in healthy {
            for (status, body) in h.join().expect("healthy thread") {
                assert_eq!(status, 200, "healthy call failed: {body}");
                assert_eq!(body["ok"], true);
            }
        }
        for f in failing {
            for ((status, body), expect) in f.join().expect("failing thread") {
                assert!(
                    status == 500 || status == 503,
                    "expected a failure, got {status}: {body}"
                );
                let msg = body["error"].as_str().unwrap_or_default();
                assert!(
                    msg.contains(expect),
                    "error `{msg}` should mention `{expect}`"
                );
            }
        }
    });
    // The host still serves, and the failures are counted per plugin and kind.
    assert_eq!(get(&g.url("/healthy/ok")).0, 200);
    let metrics = client()
        .get(g.url("/metrics"))
        .send()
        .expect("metrics")
        .text()
        .expect("text");
    for (plugin, kind) in [
        ("trapper", "trap"),
        ("looper", "deadline"),
        ("grower", "memory"),
    ] {
        let line = format!("gantry_plugin_failures_total{{plugin=\"{plugin}\",kind=\"{kind}\"}} 3");
        assert!(metrics.contains(&line), "missing `{line}` in\n{metrics}");
    }
    assert!(
        metrics.contains("gantry_plugin_calls_total{plugin=\"healthy\"}"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("gantry_plugin_failures_total{plugin=\"healthy\""),
        "{metrics}"
    );
}

#[test]
fn time_blocked_in_the_host_does_not_count_against_the_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = Gantry::start_in(dir.path(), &fixture_config(""));
    let (status, body) = get(&g.url("/healthy/sleep-in-host?ms=1500"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["slept"], true);
}

/// A one-shot HTTP/1.1 server answering `204` to every request.
fn serve_204(
    listener: impl FnOnce() -> Box<dyn FnMut() -> Option<Box<dyn ReadWrite>> + Send> + Send + 'static,
) {
    std::thread::spawn(move || {
        let mut accept = listener();
        while let Some(mut conn) = accept() {
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n");
        }
    });
}

trait ReadWrite: Read + Write + Send {}
impl<T: Read + Write + Send> ReadWrite for T {}

#[test]
fn outgoing_requests_reach_granted_endpoints_only() {
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let tcp_port = tcp.local_addr().expect("addr").port();
    serve_204(move || {
        Box::new(move || {
            tcp.accept()
                .ok()
                .map(|(s, _)| Box::new(s) as Box<dyn ReadWrite>)
        })
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("granted.sock");
    let unix = std::os::unix::net::UnixListener::bind(&sock).expect("bind unix");
    serve_204(move || {
        Box::new(move || {
            unix.accept()
                .ok()
                .map(|(s, _)| Box::new(s) as Box<dyn ReadWrite>)
        })
    });
    let extra = format!(
        "[[frontend]]\nname = \"caller\"\nplugin = \"{}\"\nhttp = {{ prefix = \"/caller\" }}\nendpoints = {{ viatcp = \"tcp://127.0.0.1:{tcp_port}\", viaunix = \"unix://{}\" }}\n",
        misbehave().display(),
        sock.display()
    );
    let g = Gantry::start_in(dir.path(), &fixture_config(&extra));
    let (status, body) = get(&g.url("/caller/fetch?endpoint=viatcp"));
    assert_eq!(
        (status, body["status"].as_u64()),
        (200, Some(204)),
        "{body}"
    );
    let (status, body) = get(&g.url("/caller/fetch?endpoint=viaunix"));
    assert_eq!(
        (status, body["status"].as_u64()),
        (200, Some(204)),
        "{body}"
    );
    // Not granted: refused with wasi:http's denied error, before any connection.
    for name in ["elsewhere", &format!("127.0.0.1:{tcp_port}"), "localhost"] {
        let (status, body) = get(&g.url(&format!("/caller/fetch?endpoint={name}")));
        assert_eq!(status, 502, "{body}");
        assert_eq!(
            body["error"], "ErrorCode::HttpRequestDenied",
            "endpoint {name}: {body}"
        );
    }
    // A plugin without grants is denied even the names another plugin holds.
    let (status, body) = get(&g.url("/healthy/fetch?endpoint=viatcp"));
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("ErrorCode::HttpRequestDenied")),
        "{body}"
    );
}

/// An HTTP/2-only (prior knowledge, as gRPC speaks it) server answering 204
/// to requests that arrived over HTTP/2; HTTP/1.1 clients cannot talk to it.
fn serve_h2c() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        |req: hyper::Request<hyper::body::Incoming>| async move {
                            let status = if req.version() == hyper::Version::HTTP_2 {
                                204
                            } else {
                                505
                            };
                            let resp = hyper::Response::builder()
                                .status(status)
                                .body(http_body_util::Empty::<bytes::Bytes>::new())
                                .expect("response");
                            Ok::<_, std::convert::Infallible>(resp)
                        },
                    );
                    let _ = hyper::server::conn::http2::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                });
            }
        });
    });
    port
}

#[test]
fn granted_endpoints_can_speak_http2_with_prior_knowledge() {
    let port = serve_h2c();
    let extra = format!(
        "[[frontend]]\nname = \"grpc-caller\"\nplugin = \"{}\"\nhttp = {{ prefix = \"/grpc-caller\" }}\nendpoints = {{ h2 = {{ url = \"tcp://127.0.0.1:{port}\", http2 = true }}, h1 = \"tcp://127.0.0.1:{port}\" }}\n",
        misbehave().display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let g = Gantry::start_in(dir.path(), &fixture_config(&extra));
    let (status, body) = get(&g.url("/grpc-caller/fetch?endpoint=h2"));
    assert_eq!(
        (status, body["status"].as_u64()),
        (200, Some(204)),
        "the request went out as HTTP/2: {body}"
    );
    // The same server granted as plain HTTP/1.1 cannot be spoken to: the grant decides the protocol.
    let (status, body) = get(&g.url("/grpc-caller/fetch?endpoint=h1"));
    assert_ne!(body["status"].as_u64(), Some(204), "{status} {body}");
}

#[test]
fn warm_instances_are_reused_a_bounded_number_of_times() {
    let extra = format!(
        "[[frontend]]\nname = \"counted\"\nplugin = \"{}\"\nhttp = {{ prefix = \"/counted\" }}\nlimits = {{ max_reuse = 3, max_idle = 1 }}\n",
        misbehave().display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let g = Gantry::start_in(dir.path(), &fixture_config(&extra));
    let served: Vec<u64> = (0..7)
        .map(|_| {
            get(&g.url("/counted/count")).1["served"]
                .as_u64()
                .expect("count")
        })
        .collect();
    assert_eq!(
        served,
        vec![1, 2, 3, 1, 2, 3, 1],
        "an instance serves max_reuse calls, then a fresh one takes over"
    );
}

#[test]
fn an_instance_whose_memory_grew_past_the_retain_limit_is_not_kept_warm() {
    let extra = format!(
        "[[frontend]]\nname = \"counted\"\nplugin = \"{}\"\nhttp = {{ prefix = \"/counted\" }}\nlimits = {{ max_idle = 1, retain_memory_mib = 4 }}\n",
        misbehave().display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let g = Gantry::start_in(dir.path(), &fixture_config(&extra));
    let served = |op: &str| {
        get(&g.url(&format!("/counted/{op}"))).1["served"]
            .as_u64()
            .expect("count")
    };
    assert_eq!(served("count"), 1);
    assert_eq!(served("hold?mib=1"), 2, "a small instance stays warm");
    assert_eq!(served("count"), 3);
    assert_eq!(served("hold?mib=8"), 4, "the call itself is served");
    assert_eq!(
        served("count"),
        1,
        "an instance that grew past 4 MiB is dropped after its call"
    );
    assert_eq!(served("count"), 2);
}

#[test]
fn compiled_components_are_cached_by_hash_and_reused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut g = Gantry::start_in(dir.path(), &fixture_config(""));
    let entries = || -> Vec<String> {
        std::fs::read_dir(dir.path().join("cache"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let first = entries();
    assert_eq!(
        first.len(),
        1,
        "one component (loaded four times) gives one cache entry: {first:?}"
    );
    assert!(
        first[0].ends_with(".cwasm") && first[0].len() > 64,
        "{first:?}"
    );
    let modified = std::fs::metadata(dir.path().join("cache").join(&first[0]))
        .and_then(|m| m.modified())
        .expect("mtime");
    g.restart();
    assert_eq!(entries(), first);
    let again = std::fs::metadata(dir.path().join("cache").join(&first[0]))
        .and_then(|m| m.modified())
        .expect("mtime");
    assert_eq!(modified, again, "the entry is read, not rewritten");
    assert_eq!(get(&g.url("/healthy/ok")).0, 200);
}

#[test]
fn the_caller_is_the_one_the_host_verified() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = Gantry::start_in(dir.path(), &fixture_config(""));
    let c = client();
    let r = c.get(g.url("/healthy/whoami")).send().expect("req");
    assert_eq!(r.status().as_u16(), 401);
    let r = c
        .get(g.url("/healthy/whoami"))
        .bearer_auth("not.a.jwt")
        .send()
        .expect("req");
    assert_eq!(r.status().as_u16(), 401);
    let token = g.token("alice", &["ADMIN"]);
    let body: serde_json::Value = c
        .get(g.url("/healthy/whoami"))
        .bearer_auth(&token)
        .send()
        .expect("req")
        .json()
        .expect("json");
    assert_eq!(body["subject"], "alice");
    assert_eq!(body["roles"], serde_json::json!(["ADMIN"]));
    let other = tempfile::tempdir().expect("tempdir");
    let foreign = Gantry::start_in(
        other.path(),
        &fixture_config("").replace("test-secret", "another-secret"),
    )
    .token("mallory", &["ADMIN"]);
    let r = c
        .get(g.url("/healthy/whoami"))
        .bearer_auth(&foreign)
        .send()
        .expect("req");
    assert_eq!(
        r.status().as_u16(),
        401,
        "a token signed with another secret is refused"
    );
}

#[test]
fn the_host_names_the_caller_in_a_header_no_client_can_forge() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = Gantry::start_in(dir.path(), &fixture_config(""));
    let c = client();
    let forged = r#"{"subject":"mallory","roles":["ADMIN"]}"#;
    let seen = |token: Option<&str>| -> Vec<serde_json::Value> {
        let mut r = c
            .get(g.url("/healthy/caller-header"))
            .header("gantry-caller", forged);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        let body: serde_json::Value = r.send().expect("req").json().expect("json");
        body["headers"]
            .as_array()
            .expect("headers")
            .iter()
            .map(|h| serde_json::from_str(h.as_str().expect("text")).expect("json header"))
            .collect()
    };
    let anonymous = seen(None);
    assert_eq!(anonymous.len(), 1, "{anonymous:?}");
    assert!(anonymous[0]["unauthenticated"].is_string(), "{anonymous:?}");
    assert!(anonymous[0].get("subject").is_none(), "{anonymous:?}");
    let token = g.token("alice", &["USER"]);
    let alice = seen(Some(&token));
    assert_eq!(
        alice,
        vec![serde_json::json!({"subject": "alice", "roles": ["USER"]})]
    );
}

#[test]
fn readyz_names_a_backend_it_cannot_reach_and_a_clean_start_logs_no_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-engine.sock");
    let broker = gantry_tests::free_port();
    let config = ConfigBuilder::new("test-secret")
        .in_memory()
        .http_frontend("healthy", &misbehave(), "/healthy")
        .mqtt_frontend(
            "mqtt",
            &gantry_tests::plugins::compat_0_1_0(),
            &format!("broker = \"embedded\", listen = \"127.0.0.1:{broker}\""),
            "",
        )
        .raw(&format!(
            "[[backend]]\nname = \"docker\"\nplugin = \"{}\"\nendpoints = {{ engine = \"unix://{}\" }}\n",
            gantry_tests::plugins::docker().display(),
            missing.display()
        ))
        .build();
    let g = Gantry::start_in(dir.path(), &config);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let body = loop {
        let (status, body) = get(&g.url("/readyz"));
        assert_eq!(status, 503, "{body}");
        let named = body["problems"].as_array().is_some_and(|p| {
            p.iter().any(|p| {
                p.as_str()
                    .is_some_and(|p| p.contains("backend `docker` is unreachable"))
            })
        });
        if named {
            break body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "readyz never named the backend: {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(body["status"], "not ready", "{body}");
    // Serving goes on: frontends answer while the backend is away.
    assert_eq!(get(&g.url("/healthy/ok")).0, 200);
    let log = g.log();
    assert!(log.contains("backend unreachable"), "{log}");
    assert!(
        !log.contains("ERROR"),
        "a start with an unreachable backend logs no ERROR:\n{log}"
    );
}

#[test]
fn health_readiness_and_metrics_are_served() {
    let dir = tempfile::tempdir().expect("tempdir");
    let g = Gantry::start_in(dir.path(), &fixture_config(""));
    assert_eq!(get(&g.url("/healthz")).0, 200);
    assert_eq!(
        get(&g.url("/readyz")),
        (200, serde_json::json!({"status": "ready"}))
    );
    let (status, body) = get(&g.url("/nowhere"));
    assert_eq!(status, 404, "{body}");
}
