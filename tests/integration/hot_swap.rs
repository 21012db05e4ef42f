//! Hot swap: the REST frontend replaced in a running host (`gantry reload`,
//! then SIGHUP) while concurrent GETs and an SSE log stream run. Two real
//! builds of the plugin that differ visibly: the workspace's, serving
//! `info.x-gantry-build = "<version>"`, and one built with a build id.
//! And the Kanto frontend swapped for new settings on the same broker session.

use gantry_tests::builds;
use gantry_tests::gantry::Gantry;
use gantry_tests::plugins;
use gantry_tests::runtimes::wait_for;
use gantry_tests::swap::{Answer, BuildLoad};
use reqwest::blocking::Client;
use serde_json::{Value, json};
use std::io::BufRead;
use std::time::Duration;

const BUILD_ID: &str = "swap-b";

/// The answers that failed (status other than 200, or no answer).
fn failures(answers: &[Answer]) -> Vec<&Answer> {
    answers.iter().filter(|a| a.status != 200).collect()
}

/// Read `data:` lines of the SSE stream until one contains `want`.
fn read_until(reader: &mut impl BufRead, want: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .expect("the SSE stream stays open");
        assert!(n > 0, "the SSE stream ended; saw {seen:?}");
        if let Some(data) = line.trim_end().strip_prefix("data: ") {
            seen.push(data.to_string());
            if data.contains(want) {
                return seen;
            }
        }
    }
}

#[test]
fn the_rest_frontend_is_swapped_under_load_without_dropping_a_request() {
    let new_build = builds::rest_with_build_id(BUILD_ID);
    let old_build = plugins::rest();
    let version = env!("CARGO_PKG_VERSION");
    let new_id = format!("{version}+{BUILD_ID}");

    // The REST plugin is served from a file in the host's dir, which the
    // test replaces as an operator would.
    let dir = tempfile::tempdir().expect("tempdir");
    let served = dir.path().join("rest.wasm");
    builds::replace_file(&old_build, &served);
    let config = gantry_tests::rpc::docker_config(30)
        .replace(&old_build.display().to_string(), "{dir}/rest.wasm");
    let g = Gantry::start_in(dir.path(), &config);
    let token = g.token("swapper", &["USER"]);
    let http = Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let build_served = || {
        http.get(g.url("/v1/openapi.json"))
            .bearer_auth(&token)
            .send()
            .and_then(|r| r.json::<Value>())
            .ok()
            .and_then(|d| d["info"]["x-gantry-build"].as_str().map(str::to_string))
    };
    // Whatever build id the workspace's build was given.
    let old_id = build_served().expect("the workspace's build answers");
    assert_ne!(old_id, new_id);

    // A container printing a numbered line every 100 ms, and its log stream.
    let created: Value = http
        .post(g.url("/v1/containers"))
        .bearer_auth(&token)
        .json(&json!({
            "name": "ticker",
            "image": "gantry-test/busybox:1.0",
            "command": ["sh", "-c"],
            "arguments": ["i=0; while true; do i=$((i+1)); echo tick-$i; sleep 0.1; done"],
        }))
        .send()
        .expect("create")
        .json()
        .expect("JSON");
    let id = created["id"].as_str().expect("an id").to_string();
    let stream = http
        .get(g.url(&format!("/v1/containers/{id}/logs")))
        .bearer_auth(&token)
        .send()
        .expect("logs");
    assert_eq!(stream.status().as_u16(), 200);
    let mut stream = std::io::BufReader::new(stream);
    read_until(&mut stream, "tick-");

    let addr = format!("127.0.0.1:{}", g.port).parse().expect("address");
    // Stopped by the test; the budget only bounds a test that went wrong.
    let load = BuildLoad::start(addr, &token, 8, 50_000, Duration::from_secs(600));
    wait_for(
        "answers from the old build",
        Duration::from_secs(30),
        || load.now() > Duration::from_millis(1500),
    )
    .expect("waiting");

    // 1. A new build, dropped in and reloaded with `gantry reload`; the
    // config's restart-only change is named, not applied.
    builds::replace_file(&new_build, &served);
    let text = std::fs::read_to_string(g.config_path()).expect("config");
    std::fs::write(
        g.config_path(),
        text.replace("resync_seconds = 30", "resync_seconds = 31"),
    )
    .expect("config");
    let (ok, report) = g.reload();
    let swapped_at = load.now();
    assert!(ok, "the reload succeeds: {report}\n{}", g.log());
    assert_eq!(report["outcome"], "applied", "{report}");
    let swapped: Vec<&str> = report["swapped"]
        .as_array()
        .expect("swapped")
        .iter()
        .filter_map(|s| s["plugin"].as_str())
        .collect();
    assert_eq!(swapped, vec!["rest"], "only the changed plugin: {report}");
    assert_eq!(report["swapped"][0]["changed"], json!(["component"]));
    assert_eq!(
        report["restartRequired"],
        json!(["server.resync_seconds"]),
        "{report}"
    );

    // The stream opened before the swap goes on: lines printed after it arrive.
    let last_before: u64 = read_until(&mut stream, "tick-")
        .last()
        .and_then(|l| l.trim_start_matches("tick-").parse().ok())
        .expect("a numbered line");
    let after = format!("tick-{}", last_before + 15);
    read_until(&mut stream, &after);
    // Closing it ends the old build's last call: its instance must be
    // dropped, not put back where later requests would find it.
    drop(stream);

    // 2. A broken build is refused, and the new build keeps serving.
    std::fs::write(&served, b"\0asm not really a component").expect("write");
    let (ok, refused) = g.reload();
    assert!(!ok, "a broken plugin is refused: {refused}");
    assert_eq!(refused["outcome"], "refused", "{refused}");
    assert!(
        refused["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("rest") && p.contains("not a valid component")),
        "{refused}"
    );
    let wrong_world = plugins::wrong_world();
    builds::replace_file(&wrong_world, &served);
    let (ok, refused) = g.reload();
    assert!(!ok, "a component of another world is refused: {refused}");
    // All or nothing: a good REST build beside a broken ARM one swaps neither.
    builds::replace_file(&old_build, &served);
    let garbage = dir.path().join("arm.wasm");
    std::fs::write(&garbage, b"not a component").expect("write");
    let arm = plugins::arm().display().to_string();
    let text = std::fs::read_to_string(g.config_path()).expect("config");
    std::fs::write(
        g.config_path(),
        text.replace(&arm, &garbage.display().to_string()),
    )
    .expect("config");
    let (ok, refused) = g.reload();
    assert!(
        !ok,
        "the broken ARM build refuses the whole reload: {refused}"
    );
    assert!(
        refused["problems"][0]
            .as_str()
            .is_some_and(|p| p.contains("arm")),
        "{refused}"
    );
    std::fs::write(g.config_path(), text).expect("config");
    let refused_at = load.now();
    std::thread::sleep(Duration::from_millis(800));

    // 3. SIGHUP swaps back to the workspace's build.
    builds::replace_file(&old_build, &served);
    let hangup_sent = load.now();
    g.hangup();
    wait_for("SIGHUP to swap back", Duration::from_secs(60), || {
        build_served().as_deref() == Some(old_id.as_str())
    })
    .expect("waiting");
    let back_at = load.now();
    std::thread::sleep(Duration::from_millis(500));
    let answers = load.stop();
    eprintln!(
        "{} requests: {} before the reload returned, {} after it; SIGHUP swap back took {:?}",
        answers.len(),
        answers.iter().filter(|a| a.sent < swapped_at).count(),
        answers.iter().filter(|a| a.sent >= swapped_at).count(),
        back_at.saturating_sub(hangup_sent),
    );

    assert!(
        failures(&answers).is_empty(),
        "no request failed during the swaps: {:?}",
        failures(&answers).iter().take(5).collect::<Vec<_>>()
    );
    let served_by = |from: Duration, to: Duration| -> Vec<&str> {
        let mut b: Vec<&str> = answers
            .iter()
            .filter(|a| a.sent >= from && a.sent < to)
            .map(|a| a.build.as_str())
            .collect();
        b.sort();
        b.dedup();
        b
    };
    assert_eq!(
        served_by(Duration::ZERO, Duration::from_millis(1500)),
        [old_id.as_str()]
    );
    assert_eq!(
        served_by(swapped_at, hangup_sent),
        [new_id.as_str()],
        "every request sent after the reload returned, and across the refused ones, met the new build"
    );
    assert!(
        answers
            .iter()
            .any(|a| a.sent >= refused_at && a.sent < hangup_sent),
        "the load ran on after the refusals"
    );
    assert_eq!(served_by(back_at, Duration::MAX), [old_id.as_str()]);
    assert!(
        g.log().contains("SIGHUP: reloading"),
        "the swap back came from SIGHUP"
    );
    http.delete(g.url(&format!("/v1/containers/{id}")))
        .bearer_auth(&token)
        .send()
        .expect("delete");
}

#[test]
fn reload_needs_an_admin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = gantry_tests::config::ConfigBuilder::new("reload-auth")
        .http_frontend("rest", &plugins::rest(), "/v1")
        .build();
    let g = Gantry::start_in(dir.path(), &config);
    let http = Client::new();
    let post = |token: Option<String>| {
        let mut r = http.post(g.url("/-/reload"));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().expect("reload").status().as_u16()
    };
    assert_eq!(post(None), 401);
    assert_eq!(post(Some(g.token("user", &["USER"]))), 403);
    assert_eq!(post(Some(g.token("admin", &["ADMIN"]))), 200);
    let (ok, report) = g.reload();
    assert!(ok, "{report}");
    assert_eq!(report["outcome"], "unchanged", "nothing changed: {report}");
}

#[test]
fn an_mqtt_frontend_keeps_its_broker_session_across_a_swap() {
    use gantry_tests::mqtt::{TestClient, kanto_config};
    const THING: &str = "edge:device:edge:containers";
    let wait = Duration::from_secs(60);
    let port = gantry_tests::free_port();
    let dir = tempfile::tempdir().expect("tempdir");
    let g = Gantry::start_in(dir.path(), &kanto_config("embedded", Some(port)));
    let client = TestClient::connect(port, &format!("cloud-{port}"), &["command//+/res/#", "e/#"]);
    let ask = |req: &str| {
        client.kanto_command(
            THING,
            (req, "Container:absent", "stop"),
            json!({"signal": "SIGTERM"}),
            wait,
        )["status"]
            .clone()
    };
    let before = ask("before-swap");

    // The plugin's settings change (another tenant): a swap, not a restart.
    let text = std::fs::read_to_string(g.config_path()).expect("config");
    std::fs::write(
        g.config_path(),
        text.replace("tenant-id = \"t1\"", "tenant-id = \"t2\""),
    )
    .expect("config");
    // A command already on its way when the swap happens is answered (by
    // the old instance, or by the new one once it is greeted).
    let on_the_way = json!({
        "topic": "edge/device:edge:containers/things/live/messages/stop",
        "headers": {"response-required": true, "content-type": "application/json", "correlation-id": "corr-during"},
        "path": "/features/Container:absent/inbox/messages/stop",
        "value": {"signal": "SIGTERM"},
    });
    client.publish_acked(
        &format!("command//{THING}/req/during-swap/stop"),
        &on_the_way.to_string(),
    );
    let (ok, report) = g.reload();
    assert!(ok, "{report}\n{}", g.log());
    let (_, during) = client.wait_for(
        "the answer to the command sent across the swap",
        wait,
        |t, _| t.starts_with(&format!("command//{THING}/res/during-swap/")),
    );
    assert_eq!(during["status"], before, "{during}");
    assert_eq!(report["swapped"][0]["plugin"], "kanto", "{report}");
    assert_eq!(report["swapped"][0]["changed"], json!(["settings"]));
    assert_eq!(report["restartRequired"], json!([]), "{report}");

    // The new instance is greeted on the same connection and answers as the old did.
    client.wait_for("the twin of tenant t2", wait, |t, _| {
        t == format!("e/t2/{THING}")
    });
    assert_eq!(ask("after-swap"), before);
    let log = g.log();
    assert_eq!(
        log.matches("MQTT connected").count(),
        1,
        "one broker session throughout:\n{log}"
    );
    assert!(
        log.contains("plugin swapped; greeting its new instance"),
        "{log}"
    );
}
