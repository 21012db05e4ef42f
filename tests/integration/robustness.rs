//! Robust under bad input and at tenant edges: a backend that never answers
//! fails the call that waits on it and leaves nothing half-made; a delete
//! answers whatever state its workload is in; a long-lived frontend that
//! stops answering is cut, replaced and named by `/readyz`; every protocol
//! refuses what passes the bounds, in its own error shape; tenants learn
//! nothing of each other. Real gantry processes, the real REST, ARM and
//! Kanto plugins, and the stall fixture standing for a hung runtime.

use gantry_tests::api::Api;
use gantry_tests::config::ConfigBuilder;
use gantry_tests::kanto::{Device, THING, WAIT};
use gantry_tests::plugins;
use gantry_tests::runtimes::TEST_IMAGE;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// The stall fixture as the one backend, never answering the calls in
/// `stall`, with `answer_ms` to answer.
fn stall_backend(stall: &str, answer_ms: u64) -> String {
    gantry_tests::config::stall_backend(stall, Some(answer_ms))
}

/// REST at `/v1` on the stall fixture.
fn rest_on_stall(stall: &str, answer_ms: u64) -> Api {
    Api::start_with(
        &ConfigBuilder::new("robust")
            .in_memory()
            .http_frontend("rest", &plugins::rest(), "/v1")
            .raw(&stall_backend(stall, answer_ms))
            .build(),
    )
}

fn create_body(name: &str) -> Value {
    json!({"name": name, "image": TEST_IMAGE, "command": ["sleep", "3600"]})
}

/// The metrics text.
fn metrics(api: &Api) -> String {
    api.raw("GET", "/metrics", None, None)
        .text()
        .unwrap_or_default()
}

#[test]
fn a_create_on_a_backend_that_never_answers_fails_and_leaves_nothing() {
    let api = rest_on_stall("create", 2_000);
    let t = api.token("ann", "USER");
    let started = Instant::now();
    let (s, body) = api.send(
        "POST",
        "/v1/containers",
        Some(&t),
        Some(create_body("hung")),
    );
    assert_eq!(s, 503, "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("stall") && error.contains("did not answer `create`"),
        "the error says what did not answer: {body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "answered once the backend's deadline passed, not never"
    );
    let (s, list) = api.send("GET", "/v1/containers", Some(&t), None);
    assert_eq!(s, 200, "{list}");
    assert_eq!(list["items"], json!([]), "no half-created workload: {list}");
    assert!(
        metrics(&api)
            .contains("gantry_plugin_failures_total{plugin=\"stall\",kind=\"unanswered\"}"),
        "the cut call is counted"
    );
}

#[test]
fn a_delete_answers_whatever_state_its_workload_is_in() {
    // Deploying: the delete abandons the create, which stops waiting.
    let api = rest_on_stall("create", 600_000);
    let t = api.token("bea", "USER");
    std::thread::scope(|s| {
        let creating = s.spawn(|| {
            api.send(
                "POST",
                "/v1/containers",
                Some(&t),
                Some(create_body("slow")),
            )
        });
        let id = loop {
            let (_, list) = api.send("GET", "/v1/containers", Some(&t), None);
            if let Some(id) = list["items"][0]["id"].as_str() {
                break id.to_string();
            }
            assert!(!creating.is_finished(), "the create ended first");
            std::thread::sleep(Duration::from_millis(100));
        };
        let (s, body) = api.send("DELETE", &format!("/v1/containers/{id}"), Some(&t), None);
        assert!(s == 200 || s == 204, "{s}: {body}");
        let (s, body) = creating.join().expect("create thread");
        assert_eq!(s, 409, "the create says it was deleted: {body}");
        let (s, _) = api.send("GET", &format!("/v1/containers/{id}"), Some(&t), None);
        assert_eq!(s, 404);
    });

    // Deployed, on a runtime that no longer answers its removal: the
    // delete answers within the backend's deadline, saying so.
    let api = rest_on_stall("remove", 2_000);
    let t = api.token("bea", "USER");
    let (s, c) = api.send(
        "POST",
        "/v1/containers",
        Some(&t),
        Some(create_body("stuck")),
    );
    assert_eq!(s, 201, "{c}");
    let id = c["id"].as_str().expect("id");
    let (s, body) = api.send(
        "DELETE",
        &format!("/v1/containers/{id}?force=true"),
        Some(&t),
        None,
    );
    assert_eq!(s, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("did not answer `remove`")),
        "{body}"
    );
}

#[test]
fn an_http_frontend_that_sets_no_response_in_time_is_cut() {
    let api = Api::start_with(
        &ConfigBuilder::new("robust")
            .in_memory()
            .limit("answer_timeout_ms", 1_000)
            .http_frontend("slow", &plugins::misbehave(), "/slow")
            .build(),
    );
    let (s, body) = api.send("GET", "/slow/sleep-in-host?ms=30000", None, None);
    assert_eq!(s, 504, "{body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("did not answer `handle` within 1000 ms")),
        "{body}"
    );
    let (s, body) = api.send("GET", "/slow/ok", None, None);
    assert_eq!((s, &body["ok"]), (200, &json!(true)), "{body}");
}

/// Kanto on the embedded broker (answering within `answer_ms`), REST, and
/// `backend`'s table.
fn kanto_device(answer_ms: u64, backend: &str, kanto_extra: &str) -> Device {
    let port = gantry_tests::free_port();
    let config = ConfigBuilder::new("robust")
        .in_memory()
        .http_frontend("rest", &plugins::rest(), "/v1")
        .kanto_embedded(
            port,
            &format!("limits = {{ answer_timeout_ms = {answer_ms} }}\n{kanto_extra}"),
        )
        .raw(backend)
        .build();
    Device::with_config(port, &config)
}

fn readyz(d: &Device) -> (u16, Value) {
    let r = reqwest::blocking::get(d.g.url("/readyz")).expect("readyz");
    (r.status().as_u16(), r.json().unwrap_or(Value::Null))
}

/// A command about a container that is not there is answered (Kanto's
/// 400 for an unknown feature): the frontend answers.
fn answers(d: &Device, req: &str) {
    let env = d.command(req, "Container:no-such-container", "start", json!({}));
    assert_eq!(env["status"], 400, "{env}");
    assert!(
        env["value"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unknown feature")),
        "{env}"
    );
}

#[test]
fn kanto_answers_a_create_its_backend_never_finishes_and_goes_on_answering() {
    let d = kanto_device(10_000, &stall_backend("create", 600_000), "");
    let started = Instant::now();
    let env = d.command(
        "hung-create",
        "ContainerFactory",
        "create",
        json!({"imageRef": TEST_IMAGE, "start": true}),
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "answered within the frontend's own deadline"
    );
    assert_eq!(env["status"], 500, "{env}");
    assert!(
        env["value"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("did not finish")),
        "{env}"
    );
    answers(&d, "after-hung-create");
    let (s, body) = readyz(&d);
    assert_eq!(s, 200, "nothing is stuck once it answered: {body}");
}

#[test]
fn a_kanto_call_that_never_answers_is_cut_the_instance_replaced_and_readyz_names_it() {
    // An artifact server that takes the connection and never answers: the
    // download waits in a host call, past Kanto's 4 s answer deadline.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://127.0.0.1:{}/hang/app.json",
        silent.local_addr().expect("address").port()
    );
    let d = kanto_device(
        4_000,
        &format!(
            "[[backend]]\nname = \"docker\"\nplugin = \"{}\"\nendpoints = {{ engine = \"{}\" }}\n\n",
            plugins::docker().display(),
            gantry_tests::runtimes::runtimes().docker_host()
        ),
        &format!(
            "artifacts = {{ allow = [\"http://127.0.0.1:{}/hang/\"], max_bytes = 65536, timeout_ms = 600000 }}\n",
            silent.local_addr().expect("address").port()
        ),
    );
    let (s, body) = readyz(&d);
    assert_eq!(s, 200, "{body}");
    let value = gantry_tests::kanto::install_value(
        "c-hang",
        "hung",
        &[("app.json", url, "0".repeat(64), "0".repeat(32))],
    );
    let env = d.command("install-hang", "SoftwareUpdatable", "install", value);
    assert_eq!(env["status"], 204, "the install is answered at once: {env}");
    // While the download hangs, readiness names the frontend.
    let deadline = Instant::now() + WAIT;
    let named = loop {
        let (s, body) = readyz(&d);
        if s == 503 {
            break body;
        }
        assert!(Instant::now() < deadline, "/readyz never named kanto");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        named["problems"]
            .to_string()
            .contains("plugin `kanto` has not answered `on-timer`"),
        "{named}"
    );
    // Cut at the deadline, replaced, counted; the broker session kept.
    let deadline = Instant::now() + WAIT;
    while !metrics_of(&d)
        .contains("gantry_plugin_replacements_total{plugin=\"kanto\",kind=\"unanswered\"} 1")
    {
        assert!(
            Instant::now() < deadline,
            "no replacement counted: {}",
            metrics_of(&d)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    answers(&d, "after-cut");
    let id = d.create("after-cut-create", "after-cut", true);
    d.wait_state(&id, "RUNNING");
    let (s, body) = readyz(&d);
    assert_eq!(s, 200, "ready again: {body}");
    drop(silent);
}

fn metrics_of(d: &Device) -> String {
    reqwest::blocking::get(d.g.url("/metrics"))
        .and_then(|r| r.text())
        .unwrap_or_default()
}

#[test]
fn a_kanto_create_with_a_5_kb_value_is_answered_and_kanto_goes_on() {
    let d = Device::embedded();
    let env = d.command(
        "big-value",
        "ContainerFactory",
        "createWithConfig",
        json!({"imageRef": TEST_IMAGE, "name": "big-value", "start": true,
               "config": {"cmd": ["sh", "-c", "exec sleep 3600"], "env": [format!("BIG={}", "x".repeat(5_000))]}}),
    );
    assert_eq!(env["status"], 200, "{env}");
    let id = env["value"].as_str().expect("id").to_string();
    d.wait_state(&id, "RUNNING");
    answers(&d, "after-big-value");
    // A key given twice is refused, as REST and ARM refuse it.
    d.client.publish_acked(
        &format!("command//{THING}/req/dup/create"),
        &format!(
            r#"{{"topic":"edge/device:edge:containers/things/live/messages/create","headers":{{"response-required":true,"correlation-id":"corr-dup"}},"path":"/features/ContainerFactory/inbox/messages/create","value":{{"imageRef":"{TEST_IMAGE}","imageRef":"gantry-test/other:1","start":true}}}}"#
        ),
    );
    let (topic, env) = d
        .client
        .wait_for("the refusal of a duplicate key", WAIT, |t, _| {
            t.starts_with(&format!("command//{THING}/res/dup/"))
        });
    assert!(topic.ends_with("/400"), "{topic} {env}");
    assert_eq!(env["headers"]["correlation-id"], "corr-dup", "{env}");
    assert!(
        env["value"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("duplicate key `value.imageRef`")),
        "{env}"
    );
}

#[test]
fn every_protocol_refuses_what_passes_the_bounds_and_creates_nothing() {
    let api = Api::start(30);
    let t = api.token("bounded", "USER");
    // REST: a 5,000-byte value is fine (it hung before); the rest is refused by field.
    let mut ok = create_body("five-k");
    ok["env"] = json!({"BIG": "x".repeat(5_000)});
    let (s, c) = api.send("POST", "/v1/containers", Some(&t), Some(ok));
    assert_eq!(s, 201, "{c}");
    api.raw(
        "DELETE",
        &format!(
            "/v1/containers/{}?force=true",
            c["id"].as_str().expect("id")
        ),
        Some(&t),
        None,
    );
    let refused = [
        (json!({"name": "evil\u{202E}txt"}), "name"),
        (
            json!({"image": format!("r/{}", "a".repeat(10_000))}),
            "image",
        ),
        (json!({"command": vec!["x"; 100_000]}), "command"),
        (
            json!({"env": (0..2_000).map(|i| (format!("V{i}"), json!("x"))).collect::<serde_json::Map<_, _>>()}),
            "env",
        ),
    ];
    for (change, field) in refused {
        let mut body = create_body("bounded");
        for (k, v) in change.as_object().expect("object") {
            body[k] = v.clone();
        }
        let (s, e) = api.send("POST", "/v1/containers", Some(&t), Some(body));
        assert_eq!(s, 400, "{field}: {e}");
        assert!(
            e["fields"]
                .as_object()
                .is_some_and(|f| f.keys().any(|k| k.contains(field))),
            "{field} is named: {e}"
        );
    }
    let dup = api
        .http
        .post(api.g.url("/v1/containers"))
        .bearer_auth(&t)
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"name": "dup", "image": "{TEST_IMAGE}", "image": "x:1"}}"#
        ))
        .send()
        .expect("POST");
    assert_eq!(dup.status().as_u16(), 400);

    // ARM: ACI's 60 containers a group.
    let containers: Vec<Value> = (0..1_000)
        .map(|i| {
            json!({"name": format!("c{i}"), "properties": {"image": TEST_IMAGE,
            "resources": {"requests": {"cpu": 0.1, "memoryInGB": 0.1}}}})
        })
        .collect();
    let (s, e) = api.send(
        "PUT",
        "/subscriptions/bounds-sub/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups/huge?api-version=2023-05-01",
        Some(&t),
        Some(json!({"location": "westeurope", "properties": {"osType": "Linux", "containers": containers}})),
    );
    assert_eq!(s, 400, "{e}");
    assert_eq!(e["error"]["code"], "InvalidRequestContent", "{e}");
    assert!(e.to_string().contains("at most 60"), "{e}");
    // Containers are named after their workload: none of the group's exists
    // (other tests of this binary run beside this one, so nothing else is counted).
    assert_eq!(
        gantry_tests::runtimes::runtimes()
            .containers_where("name", "huge-")
            .len(),
        0,
        "nothing of the group was created in the engine"
    );
}

#[test]
fn a_subscription_is_its_holders_and_others_get_arms_403_naming_nothing() {
    let api = Api::start(30);
    let (alice, bob) = (api.token("alice", "USER"), api.token("bob", "USER"));
    let admin = api.token("root", "ADMIN");
    let base =
        "/subscriptions/S1/resourceGroups/rg/providers/Microsoft.ContainerInstance/containerGroups";
    let group = json!({"location": "westeurope", "properties": {"osType": "Linux",
        "containers": [{"name": "web", "properties": {"image": TEST_IMAGE,
            "command": ["sleep", "3600"],
            "resources": {"requests": {"cpu": 0.1, "memoryInGB": 0.1}}}}]}});
    let v = "?api-version=2023-05-01";
    let (s, e) = api.send(
        "PUT",
        &format!("{base}/secret-name{v}"),
        Some(&alice),
        Some(group.clone()),
    );
    assert!(s == 200 || s == 201, "{e}");
    for (method, path, body) in [
        ("PUT", format!("{base}/secret-name{v}"), Some(group.clone())),
        ("PUT", format!("{base}/another{v}"), Some(group.clone())),
        ("GET", format!("{base}/secret-name{v}"), None),
        ("GET", format!("{base}{v}"), None),
        (
            "GET",
            format!("/subscriptions/S1/providers/Microsoft.ContainerInstance/containerGroups{v}"),
            None,
        ),
        ("DELETE", format!("{base}/secret-name{v}"), None),
        ("POST", format!("{base}/secret-name/restart{v}"), None),
    ] {
        let (s, e) = api.send(method, &path, Some(&bob), body);
        assert_eq!(s, 403, "{method} {path}: {e}");
        assert_eq!(e["error"]["code"], "AuthorizationFailed", "{e}");
        let message = e["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains("The client 'bob'"), "{e}");
        assert!(!message.contains("alice"), "names nobody else: {e}");
        if !path.contains("secret-name") {
            assert!(!message.contains("secret-name"), "reveals no name: {e}");
        }
    }
    // Bob's own subscription is his; alice's group is untouched; ADMIN sees it.
    let (s, e) = api.send(
        "PUT",
        &format!("{}/mine{v}", base.replace("S1", "S2")),
        Some(&bob),
        Some(group.clone()),
    );
    assert!(s == 200 || s == 201, "{e}");
    let (s, e) = api.send("GET", &format!("{base}/secret-name{v}"), Some(&alice), None);
    assert_eq!(s, 200, "{e}");
    let (s, e) = api.send("GET", &format!("{base}/secret-name{v}"), Some(&admin), None);
    assert_eq!(s, 200, "{e}");
    for (t, g) in [(&alice, base.to_string()), (&bob, base.replace("S1", "S2"))] {
        let name = if t == &alice { "secret-name" } else { "mine" };
        api.raw("DELETE", &format!("{g}/{name}{v}"), Some(t), None);
    }
}

#[test]
fn a_token_issued_a_day_ahead_is_refused() {
    let api = Api::start(30);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims =
        json!({"sub": "future", "roles": ["USER"], "iat": now + 86_400, "exp": now + 2 * 86_400});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"docker-tests"),
    )
    .expect("token");
    let (s, e) = api.send("GET", "/v1/containers", Some(&token), None);
    assert_eq!(s, 401, "{e}");
    assert!(e.to_string().contains("issued in the future"), "{e}");
}
