//! The Kanto frontend over real brokers (the embedded one and Debian's
//! mosquitto) with an independent MQTT client: seed 003's examples sent
//! verbatim, Kanto's own expectations, twin updates, malformed payloads,
//! and a broker restart that must lose no acknowledged command.

use gantry_tests::backends::Backend;
use gantry_tests::gantry::Gantry;
use gantry_tests::kanto::{DITTO, Device, SCRIPT, THING, TWIN_TOPIC, WAIT, digests, install_value};
use gantry_tests::mqtt::{TestClient, kanto_config_with};
use gantry_tests::runtimes::TEST_IMAGE;
use serde_json::{Value, json};
use std::time::Duration;

/// Seed 003's request examples, verbatim (with `<UUID>` to fill in).
const SEED_EXAMPLES: [(&str, &str); 6] = [
    (
        "update",
        r#"{"topic":"edge/device/things/live/messages/update","headers":{"response-required":true,"content-type":"application/json","correlation-id":"<UUID>"},"path":"/features/Container:<UUID>/inbox/messages/update","value":{"restartPolicy":{"type":"always"}}}"#,
    ),
    (
        "rename",
        r#"{"topic":"edge/device/things/live/messages/rename","headers":{"response-required":true,"content-type":"application/json","correlation-id":"<UUID>"},"path":"/features/Container:<UUID>/inbox/messages/rename","value":"new_container_name"}"#,
    ),
    (
        "stop",
        r#"{"topic":"edge/device/things/live/messages/stop","headers":{"response-required":true,"content-type":"application/json","correlation-id":"<UUID>"},"path":"/features/Container:<UUID>/inbox/messages/stop","value":{}}"#,
    ),
    (
        "start",
        r#"{"topic":"edge/device/things/live/messages/start","headers":{"response-required":true,"content-type":"application/json","correlation-id":"<UUID>"},"path":"/features/Container:<UUID>/inbox/messages/start","value":{}}"#,
    ),
    (
        "stopWithOptions",
        r#"{"topic":"edge/device/things/live/messages/stopWithOptions","headers":{"response-required":true,"content-type":"application/json","correlation-id":"<UUID>"},"path":"/features/Container:<UUID>/inbox/messages/stopWithOptions","value":{"signal":"SIGINT"}}"#,
    ),
    (
        "remove",
        r#"{"topic":"edge/device/things/live/messages/remove","headers":{"response-required":true,"content-type":"application/json","correlation-id":"<UUID>"},"path":"/features/Container:<UUID>/inbox/messages/remove","value":true}"#,
    ),
];

#[test]
fn seed_examples_get_their_documented_responses() {
    let d = Device::embedded();
    let id = d.create("seed-create", "seed-target", true);
    d.wait_state(&id, "RUNNING");
    for (op, example) in SEED_EXAMPLES {
        let payload = example.replace("<UUID>", &id);
        d.client
            .publish_acked(&format!("command//edge:device/req//{op}"), &payload);
        let (topic, env) = d
            .client
            .wait_for(&format!("the seed's {op} response"), WAIT, |t, _| {
                t.starts_with("command//edge:device/res/")
            });
        assert_eq!(topic, format!("command//edge:device/res//{op}"));
        assert_eq!(
            env,
            json!({
                "topic": format!("edge/device/things/live/messages/{op}"),
                "headers": {"correlation-id": id},
                "path": format!("/features/Container:{id}/outbox/messages/{op}"),
                "status": 204
            }),
            "{op}"
        );
        match op {
            "rename" => {
                let t = d.twin(&id, "/properties/status/name");
                assert_eq!(t["value"], "new_container_name");
            }
            "update" => {
                let t = d.twin(&id, "/properties/status/config");
                assert_eq!(t["value"]["restartPolicy"]["type"], "ALWAYS");
            }
            "stop" | "stopWithOptions" => d.wait_state(&id, "STOPPED"),
            "start" => d.wait_state(&id, "RUNNING"),
            _ => {
                let t = d.twin(&id, "");
                assert!(
                    t["topic"]
                        .as_str()
                        .is_some_and(|s| s.ends_with("/things/twin/commands/delete")),
                    "{t}"
                );
            }
        }
    }
    assert!(
        gantry_tests::runtimes::runtimes()
            .containers_of(&id)
            .is_empty(),
        "container left after remove"
    );
}

#[test]
fn kanto_semantics_twin_updates_and_errors() {
    let d = Device::embedded();
    let id = d.create("c1", "semantics", true);
    // Create with start: the feature, then CREATED, then RUNNING.
    let feature = d.twin(&id, "");
    assert_eq!(
        feature["topic"],
        format!("{DITTO}/things/twin/commands/modify")
    );
    assert_eq!(
        feature["value"]["definition"],
        json!(["com.bosch.iot.suite.edge.containers:Container:1.5.0"])
    );
    assert_eq!(
        feature["value"]["properties"]["status"]["imageRef"],
        TEST_IMAGE
    );
    assert_eq!(
        feature["value"]["properties"]["status"]["name"],
        "semantics"
    );
    d.wait_state(&id, "CREATED");
    d.wait_state(&id, "RUNNING");

    let c = format!("Container:{id}");
    let env = d.command("s1", &c, "start", json!({}));
    assert_eq!(
        (env["status"].clone(), env["value"]["error"].clone()),
        (json!(500), json!("messages:execution.failed")),
        "{env}"
    );
    let env = d.command("r1", &c, "remove", json!(false));
    assert_eq!(
        env["value"]["error"], "messages:execution.failed",
        "remove of a running container without force: {env}"
    );
    assert_eq!(d.command("p1", &c, "pause", json!({}))["status"], 204);
    d.wait_state(&id, "PAUSED");
    assert_eq!(d.command("p2", &c, "resume", json!({}))["status"], 204);
    d.wait_state(&id, "RUNNING");
    let env = d.command(
        "st1",
        &c,
        "stopWithOptions",
        json!({"signal": "SIGTERM", "timeout": 0}),
    );
    assert_eq!(env["status"], 204, "{env}");
    d.wait_state(&id, "STOPPED");
    let env = d.command("st2", &c, "stop", json!({}));
    assert_eq!(
        env["value"]["error"], "messages:execution.failed",
        "stop of a stopped container: {env}"
    );
    let env = d.command("u1", &c, "update", json!({"restartPolicy": {"type": "on-failure", "maxRetryCount": 2, "retryTimeout": 30}, "resources": {"memory": "64M"}}));
    assert_eq!(env["status"], 204, "{env}");
    let t = d.twin(&id, "/properties/status/config");
    assert_eq!(
        t["value"]["restartPolicy"],
        json!({"type": "ON_FAILURE", "maxRetryCount": 2, "retryTimeout": 30})
    );
    assert_eq!(t["value"]["resources"]["memory"], "64M");

    // Errors, in Kanto's codes.
    let env = d.command("x1", &c, "explode", json!({}));
    assert_eq!(
        (env["status"].clone(), env["value"]["error"].clone()),
        (json!(404), json!("messages:subject.notfound"))
    );
    let env = d.command("x2", "Container:no-such-container", "start", json!({}));
    assert_eq!(env["value"]["error"], "messages:parameter.invalid", "{env}");
    let env = d.command("x3", "ContainerFactory", "create", json!({"imageRef": 42}));
    assert_eq!(env["value"]["error"], "messages:parameter.invalid", "{env}");
    d.client.publish_acked(
        &format!("command//{THING}/req/bad-1/start"),
        "{this is not json",
    );
    let (topic, env) = d
        .client
        .wait_for("the malformed payload's answer", WAIT, |t, _| {
            t.starts_with(&format!("command//{THING}/res/bad-1/"))
        });
    assert_eq!(topic, format!("command//{THING}/res/bad-1/400"));
    assert_eq!(env["topic"], "unknown/unknown/things/twin/errors");
    assert_eq!(env["path"], "/");
    assert_eq!(env["value"]["error"], "messages:parameter.invalid");

    // No answer without a request id, or when none is required.
    let quiet = json!({"topic": format!("{DITTO}/things/live/messages/start"), "headers": {"correlation-id": "q"}, "path": format!("/features/{c}/inbox/messages/start")});
    d.client
        .publish_acked(&format!("command//{THING}/req//start"), &quiet.to_string());
    d.client.publish_acked(
        &format!("command//{THING}/req/q-2/start"),
        &quiet.to_string(),
    );
    d.wait_state(&id, "RUNNING");
    let extra = d.client.drain(Duration::from_secs(2));
    assert!(
        !extra
            .iter()
            .any(|(t, _)| t.starts_with(&format!("command//{THING}/res/"))),
        "unexpected responses: {extra:?}"
    );

    // A workload created through another frontend is a Container feature too.
    let token = d.g.token("rest-user", &["USER"]);
    let r = reqwest::blocking::Client::new()
        .post(d.g.url("/v1/containers"))
        .bearer_auth(&token)
        .json(&json!({"name": "from-rest", "image": TEST_IMAGE, "command": ["sh", "-c", SCRIPT]}))
        .send()
        .expect("REST create");
    assert_eq!(r.status().as_u16(), 201);
    let created: Value = r.json().expect("REST body");
    let rest_id = created["id"].as_str().expect("id");
    let f = d.twin(rest_id, "");
    assert_eq!(f["value"]["properties"]["status"]["name"], "from-rest");

    assert_eq!(d.command("rm", &c, "remove", json!(true))["status"], 204);
    d.twin(&id, "");
}

#[test]
fn metrics_requests_publish_data_for_each_container() {
    let d = Device::embedded();
    let id = d.create("m0", "measured", true);
    d.wait_state(&id, "RUNNING");
    let env = d.command(
        "m1",
        "Metrics",
        "request",
        json!({"frequency": "1s", "filter": [{"id": ["cpu.utilization", "memory.used", "pids"], "originator": format!("Container:{id}")}]}),
    );
    assert_eq!(env["status"], 204, "{env}");
    for _ in 0..2 {
        let (_, data) = d.client.wait_for("a metrics data message", WAIT, |t, v| {
            t == TWIN_TOPIC && v["path"] == "/features/Metrics/outbox/messages/data"
        });
        assert_eq!(data["topic"], format!("{DITTO}/things/live/messages/data"));
        let snapshot = &data["value"]["snapshot"][0];
        assert_eq!(snapshot["originator"], format!("Container:{id}"));
        let ids: Vec<&str> = snapshot["measurements"]
            .as_array()
            .expect("measurements")
            .iter()
            .filter_map(|m| m["id"].as_str())
            .collect();
        assert_eq!(ids, ["cpu.utilization", "memory.used", "pids"]);
        assert!(
            snapshot["measurements"][2]["value"]
                .as_u64()
                .is_some_and(|p| p >= 1),
            "{snapshot}"
        );
        assert!(
            data["value"]["timestamp"]
                .as_i64()
                .is_some_and(|t| t > 1_700_000_000)
        );
    }
    assert_eq!(
        d.command("m2", "Metrics", "request", json!({"frequency": "0s"}))["status"],
        204
    );
    assert_eq!(
        d.command("m3", "Metrics", "request", json!({"frequency": "often"}))["value"]["error"],
        "messages:parameter.invalid"
    );
}

#[test]
fn mosquitto_restart_loses_no_acknowledged_command() {
    let mut d = Device::on_mosquitto();
    let ids: Vec<String> = (0..3)
        .map(|i| d.create(&format!("mc{i}"), &format!("persist-{i}"), false))
        .collect();
    // Acknowledged by the broker, then the broker goes down at once: what it
    // acknowledged must still reach gantry and be executed.
    for (i, id) in ids.iter().enumerate() {
        let payload = json!({
            "topic": format!("{DITTO}/things/live/messages/start"),
            "headers": {"response-required": true, "content-type": "application/json", "correlation-id": format!("start-{i}")},
            "path": format!("/features/Container:{id}/inbox/messages/start"),
        });
        d.client.publish_acked(
            &format!("command//{THING}/req/start-{i}/start"),
            &payload.to_string(),
        );
    }
    d.mosquitto.as_mut().expect("mosquitto").restart();
    let token = d.g.token("observer", &["ADMIN"]);
    let http = reqwest::blocking::Client::new();
    for id in &ids {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let c: Value = http
                .get(d.g.url(&format!("/v1/containers/{id}")))
                .bearer_auth(&token)
                .send()
                .and_then(|r| r.json())
                .expect("REST get");
            if c["status"] == "deployed" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{id} never started after the broker restart: {c}\n{}",
                d.g.log()
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
    // And the connection is whole again: a new command is answered.
    let env = d.command(
        "after-restart",
        &format!("Container:{}", ids[0]),
        "pause",
        json!({}),
    );
    assert_eq!(env["status"], 204, "{env}");
}

#[test]
fn the_device_is_learnt_through_bootstrap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = gantry_tests::free_port();
    let g = Gantry::start_in(dir.path(), &kanto_config_with("embedded", Some(port), ""));
    // The cloud connector's side; gantry repeats its request until answered.
    let connector = TestClient::connect(port, "connector", &["edge/thing/request", "e/#"]);
    connector.wait_for("the bootstrap request", WAIT, |t, v| {
        t == "edge/thing/request" && v == &json!({})
    });
    connector.publish_acked(
        "edge/thing/response",
        r#"{"deviceId": "edge:boot", "tenantId": "t2", "policyId": "edge:policy"}"#,
    );
    let (_, env) = connector.wait_for("the twin of the learnt device", WAIT, |t, v| {
        t == "e/t2/edge:boot:edge:containers" && v["path"] == "/features/ContainerFactory"
    });
    assert_eq!(
        env["topic"],
        "edge/boot:edge:containers/things/twin/commands/modify"
    );
    assert_eq!(
        env["value"]["definition"],
        json!(["com.bosch.iot.suite.edge.containers:ContainerFactory:1.3.0"])
    );
    drop(g);
}

#[test]
fn the_main_flow_runs_on_containerd() {
    let d = Device::embedded_on(Backend::Containerd);
    let id = d.create("k1", "on-containerd", true);
    d.wait_state(&id, "RUNNING");
    let members = Backend::Containerd.members_of(&id);
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0].state, "running");
    // The container's output, read through the REST frontend of the same host.
    let token = d.g.token("kanto-device", &["ADMIN"]);
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let resp = http
        .get(d.g.url(&format!("/v1/containers/{id}/logs")))
        .bearer_auth(&token)
        .send()
        .expect("logs request");
    assert_eq!(resp.status().as_u16(), 200);
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(resp));
    assert!(
        lines.any(|l| l.is_ok_and(|l| l.trim() == "data: up")),
        "the container's `up` arrived through the logs"
    );
    let c = format!("Container:{id}");
    let env = d.command("k2", &c, "stop", json!({}));
    assert_eq!(env["status"], 204, "{env}");
    d.wait_state(&id, "STOPPED");
    assert_eq!(Backend::Containerd.members_of(&id)[0].state, "exited");
    let env = d.command("k3", &c, "remove", json!(true));
    assert_eq!(env["status"], 204, "{env}");
    let deadline = std::time::Instant::now() + WAIT;
    while !Backend::Containerd.containers_of(&id).is_empty() {
        assert!(std::time::Instant::now() < deadline, "still on containerd");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `examples/profiles/edge-dev.toml` as written, but for the ports, paths
/// and socket a test run needs: Kanto on the embedded broker drives the
/// harness's containerd.
#[test]
fn the_edge_dev_profile_runs_kanto_on_containerd() {
    let root = gantry_tests::workspace_root();
    let profile = std::fs::read_to_string(root.join("examples/profiles/edge-dev.toml"))
        .expect("edge-dev profile");
    let rt = gantry_tests::runtimes::runtimes();
    let port = gantry_tests::free_port();
    let logs = rt.containerd_logs().display().to_string();
    let config = profile
        .replace("127.0.0.1:8080", "127.0.0.1:{port}")
        .replace(
            "127.0.0.1:1883",
            &format!("127.0.0.1:{port_mqtt}", port_mqtt = port),
        )
        .replace("gantry-edge-dev.db", "{dir}/state.db")
        .replace("../../target", &root.join("target").display().to_string())
        .replace(
            "${CONTAINERD_ADDRESS:-unix:///run/containerd/containerd.sock}",
            &format!("unix://{}", rt.containerd_sock.display()),
        )
        .replace("/tmp/gantry-edge-dev/logs", &logs)
        .replace(
            "/usr/local/lib/gantry/gantry-containerd-logger",
            &gantry_tests::plugins::containerd_logger()
                .display()
                .to_string(),
        );
    // The profile names the release plugins `cargo xtask build` writes.
    let _ = (
        gantry_tests::plugins::kanto(),
        gantry_tests::plugins::containerd(),
    );
    let d = Device::with_config(port, &config);
    let id = d.create("e1", "edge-dev", true);
    d.wait_state(&id, "RUNNING");
    let members = Backend::Containerd.members_of(&id);
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0].state, "running");
    let env = d.command("e2", &format!("Container:{id}"), "remove", json!(true));
    assert_eq!(env["status"], 204, "{env}");
}

/// The SoftwareUpdatable statuses written for `correlation`, in order,
/// until one that ends the operation, and the last `installedDependencies`
/// written meanwhile (absent: none was).
fn operation_statuses(d: &Device, correlation: &str) -> (Vec<String>, Value, Option<Value>) {
    let last_operation = "/features/SoftwareUpdatable/properties/status/lastOperation";
    let dependencies = "/features/SoftwareUpdatable/properties/status/installedDependencies";
    let mut seen = Vec::new();
    let (mut last, mut deps) = (Value::Null, None);
    d.client
        .process(&format!("progress of {correlation}"), WAIT, |t, v| {
            if t != TWIN_TOPIC {
                return None;
            }
            if v["path"] == dependencies {
                deps = Some(v["value"].clone());
            }
            if v["path"] != last_operation || v["value"]["correlationId"] != correlation {
                return None;
            }
            let status = v["value"]["status"].as_str().unwrap_or("").to_string();
            seen.push(status.clone());
            last = v["value"].clone();
            status.starts_with("FINISHED_").then_some(Ok(()))
        });
    (seen, last, deps)
}

#[test]
fn software_updatable_installs_and_removes_on_the_embedded_broker() {
    software_updatable_flow(Device::embedded_with);
}

#[test]
fn software_updatable_installs_and_removes_on_mosquitto() {
    software_updatable_flow(Device::on_mosquitto_with);
}

fn software_updatable_flow(device: fn(&str) -> Device) {
    use gantry_tests::file_server::{FileServer, Served};
    let descriptor = |name: &str| {
        json!({"container_name": name, "image": {"name": TEST_IMAGE},
               "config": {"cmd": ["sh", "-c", SCRIPT]},
               "host_config": {"restart_policy": {"type": "no"}}})
        .to_string()
        .into_bytes()
    };
    let web = descriptor("su-web");
    let worker = descriptor("su-worker");
    let mut routes = std::collections::HashMap::new();
    routes.insert("/granted/web.json".to_string(), Served::File(web.clone()));
    routes.insert(
        "/granted/worker.json".to_string(),
        Served::File(worker.clone()),
    );
    routes.insert("/outside/web.json".to_string(), Served::File(web.clone()));
    let server = FileServer::start(routes);
    // Granted after the fact: the redirect needs the server's port.
    let mut redirect = std::collections::HashMap::new();
    redirect.insert(
        "/granted/moved.json".to_string(),
        Served::Redirect(server.url("/outside/web.json")),
    );
    let bouncer = FileServer::start(redirect);
    let d = device(&format!(
        "artifacts = {{ allow = [\"{}\", \"{}\"], max_bytes = 65536, timeout_ms = 10000 }}\n",
        server.url("/granted/"),
        bouncer.url("/granted/")
    ));
    // A module of two containers: answered at once, then the progress.
    let (web_sha, web_md5) = digests(&web);
    let (worker_sha, worker_md5) = digests(&worker);
    let env = d.command(
        "su1",
        "SoftwareUpdatable",
        "install",
        install_value(
            "c-ok",
            "shop",
            &[
                (
                    "web.json",
                    server.url("/granted/web.json"),
                    web_sha.clone(),
                    web_md5.clone(),
                ),
                (
                    "worker.json",
                    server.url("/granted/worker.json"),
                    worker_sha,
                    worker_md5,
                ),
            ],
        ),
    );
    assert_eq!(env["status"], 204, "{env}");
    let (statuses, last, deps) = operation_statuses(&d, "c-ok");
    assert_eq!(
        statuses,
        [
            "STARTED",
            "DOWNLOADING",
            "DOWNLOADED",
            "INSTALLING",
            "INSTALLED",
            "FINISHED_SUCCESS"
        ],
        "{last}"
    );
    assert_eq!(
        last["softwareModule"],
        json!({"name": "shop", "version": "1.0.0"})
    );
    // installedDependencies lists both, by container id, before the install ends.
    let deps = deps.expect("installedDependencies written during the install");
    let ids: Vec<String> = deps
        .as_object()
        .expect("map")
        .values()
        .map(|dep| dep["name"].as_str().expect("name").to_string())
        .collect();
    assert_eq!(ids.len(), 2, "{deps}");
    for id in &ids {
        let running = gantry_tests::runtimes::runtimes()
            .containers_of(id)
            .iter()
            .any(|c| c.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING));
        assert!(running, "container {id} runs in dockerd");
    }
    let (group, version) = TEST_IMAGE.rsplit_once(':').expect("a tag");
    let key = format!("{group}.{}:{version}", ids[0]).replace('/', "%2F");
    assert!(deps.get(&key).is_some(), "key {key} in {deps}");

    // Failures end in FINISHED_ERROR/REJECTED with a reason, in
    // lastFailedOperation too, and create nothing.
    let token = d.g.token("kanto-device", &["USER"]);
    let count = || {
        let v: Value = reqwest::blocking::Client::new()
            .get(d.g.url("/v1/containers"))
            .bearer_auth(&token)
            .send()
            .and_then(|r| r.json())
            .expect("REST list");
        v["total"].as_u64().expect("total")
    };
    let before = count();
    let cases = [
        (
            "c-sum",
            server.url("/granted/web.json"),
            "0".repeat(64),
            web_md5.clone(),
            "FINISHED_REJECTED",
            "sha256 checksum does not match",
        ),
        (
            "c-hex",
            server.url("/granted/web.json"),
            web_sha.clone(),
            "not-hex".to_string(),
            "FINISHED_REJECTED",
            "is not a md5 digest",
        ),
        (
            "c-denied",
            server.url("/outside/web.json"),
            web_sha.clone(),
            web_md5.clone(),
            "FINISHED_ERROR",
            "denied",
        ),
        (
            "c-redirect",
            bouncer.url("/granted/moved.json"),
            web_sha.clone(),
            web_md5.clone(),
            "FINISHED_ERROR",
            "redirected",
        ),
        (
            "c-404",
            server.url("/granted/missing.json"),
            web_sha.clone(),
            web_md5.clone(),
            "FINISHED_ERROR",
            "HTTP 404",
        ),
    ];
    for (i, (correlation, url, sha, md5, want, why)) in cases.into_iter().enumerate() {
        let env = d.command(
            &format!("bad{i}"),
            "SoftwareUpdatable",
            "install",
            install_value(correlation, "broken", &[("web.json", url, sha, md5)]),
        );
        assert_eq!(env["status"], 204, "{env}");
        let (statuses, last, _) = operation_statuses(&d, correlation);
        assert_eq!(
            statuses,
            ["STARTED", "DOWNLOADING", want],
            "{correlation}: {last}"
        );
        assert!(
            last["message"].as_str().unwrap_or("").contains(why),
            "{correlation}: {last}"
        );
    }
    assert!(
        !server
            .requested
            .lock()
            .expect("log")
            .iter()
            .any(|p| p == "/outside/web.json"),
        "a denied URL is never requested, not even through a redirect"
    );
    assert_eq!(count(), before, "failed installs leave no container behind");

    // Bad values are refused at once, as Kanto does.
    let env = d.command(
        "bad-v",
        "SoftwareUpdatable",
        "install",
        json!({"correlationId": "x", "softwareModules": []}),
    );
    assert_eq!(
        (env["status"].clone(), env["value"]["error"].clone()),
        (json!(400), json!("messages:parameter.invalid")),
        "{env}"
    );

    // Remove, by container id: REMOVING, REMOVED per item, then success.
    let software: Vec<Value> = ids.iter().map(|id| json!({"name": id})).collect();
    let env = d.command(
        "rm1",
        "SoftwareUpdatable",
        "remove",
        json!({"correlationId": "c-rm", "forced": true, "software": software}),
    );
    assert_eq!(env["status"], 204, "{env}");
    let (statuses, _, deps) = operation_statuses(&d, "c-rm");
    assert_eq!(
        statuses,
        [
            "REMOVING",
            "REMOVED",
            "REMOVING",
            "REMOVED",
            "FINISHED_SUCCESS"
        ]
    );
    assert_eq!(deps, Some(Value::Null), "installedDependencies emptied");
    for id in &ids {
        gantry_tests::runtimes::wait_for("the container to go", WAIT, || {
            gantry_tests::runtimes::runtimes()
                .containers_of(id)
                .is_empty()
        })
        .expect("removed from dockerd");
    }
    let env = d.command(
        "rm2",
        "SoftwareUpdatable",
        "remove",
        json!({"correlationId": "c-rm2", "software": [{"name": "NonExistingContainer"}]}),
    );
    assert_eq!(env["status"], 204, "{env}");
    let (statuses, last, _) = operation_statuses(&d, "c-rm2");
    assert_eq!(statuses, ["REMOVING", "FINISHED_ERROR"]);
    assert!(
        last["message"]
            .as_str()
            .unwrap_or("")
            .contains("container with ID = NonExistingContainer does not exist"),
        "{last}"
    );
}

/// A create carrying a megabyte of environment (16 variables of 64 KiB,
/// names included) is answered, and the process on the runtime holds all
/// of it; on Docker and on containerd.
#[test]
fn a_create_of_a_megabyte_is_answered_and_reaches_the_runtime() {
    use std::io::BufRead;
    for backend in [Backend::Docker, Backend::Containerd] {
        let d = Device::embedded_on(backend);
        let env: Vec<String> = (0..16)
            .map(|i| format!("BIG{i:02}={}", "v".repeat((64 << 10) - 16)))
            .collect();
        let created = d.command(
            "megabyte",
            "ContainerFactory",
            "createWithConfig",
            json!({"imageRef": TEST_IMAGE, "name": "megabyte", "start": true, "config": {
                "cmd": ["sh", "-c", "echo env=$(env | wc -c); exec sleep 3600"], "env": env,
                "restartPolicy": {"type": "no"}}}),
        );
        assert_eq!(created["status"], 200, "{backend:?}: {}", created["value"]);
        let id = created["value"].as_str().expect("id").to_string();
        d.wait_state(&id, "RUNNING");
        // What the process counted, read as an operator would (REST logs, ADMIN).
        let admin = d.g.token("operator", &["ADMIN"]);
        let resp = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client")
            .get(d.g.url(&format!("/v1/containers/{id}/logs")))
            .bearer_auth(admin)
            .send()
            .expect("logs");
        let counted = std::io::BufReader::new(resp)
            .lines()
            .map_while(Result::ok)
            .find_map(|l| {
                l.split("env=")
                    .nth(1)
                    .and_then(|n| n.trim().parse::<usize>().ok())
            })
            .expect("the container printed its environment's size");
        assert!(
            counted >= 16 * ((64 << 10) - 16),
            "{backend:?}: {counted} bytes of environment reached the process"
        );
        let removed = d.command(
            "megabyte-rm",
            &format!("Container:{id}"),
            "remove",
            json!(true),
        );
        assert_eq!(removed["status"], 204, "{removed}");
    }
}
