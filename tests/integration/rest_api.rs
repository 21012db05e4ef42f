//! The REST frontend (Container Service API) against a live gantry and the
//! harness's dockerd: seed 002's examples replayed, the RBAC matrix, updates
//! as revisions, SSE logs, validation. What dockerd holds is checked with bollard.

use gantry_tests::api::Api;
use gantry_tests::runtimes::runtimes;

use serde_json::{Value, json};
use std::io::BufRead;
use std::time::{Duration, Instant};

const USER: &str = "5cf37266-3473-4006-984f-9325122678b7";

fn engine_containers(id: &str) -> Vec<bollard::models::ContainerSummary> {
    runtimes().containers_of(id)
}

/// Seed 002's container object: every field, with its JSON type.
fn assert_container_shape(c: &Value) {
    let expect = [
        ("id", "string"),
        ("name", "string"),
        ("createdBy", "string"),
        ("image", "string"),
        ("cpu", "number"),
        ("ram", "string"),
        ("gpu", "number"),
        ("ephemeralStorage", "string"),
        ("command", "null|array"),
        ("arguments", "null|array"),
        ("env", "object"),
        ("port", "string"),
        ("dateCreated", "string"),
        ("dateUpdated", "string"),
        ("status", "string"),
        ("urls", "null|array"),
        ("desiredGPUs", "null|array"),
    ];
    let obj = c
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {c}"));
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        expect.iter().map(|(k, _)| *k).collect::<Vec<_>>(),
        "fields, in the seed's order"
    );
    for (k, t) in expect {
        let v = &obj[k];
        let kind = match v {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        assert!(
            t.split('|').any(|x| x == kind),
            "{k}: {kind} is not {t} in {c}"
        );
    }
    for k in ["dateCreated", "dateUpdated"] {
        let s = obj[k].as_str().unwrap_or_default();
        assert!(
            s.len() == 20 && s.ends_with('Z') && s.as_bytes()[10] == b'T',
            "{k} is RFC 3339 to the second: {s}"
        );
    }
}

/// The `data:` of an SSE stream's events, until one is `last` (included),
/// the stream ends, or 30 s pass.
fn sse_data_until(reader: &mut impl BufRead, last: &str) -> Vec<String> {
    let mut data = Vec::new();
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        line.clear();
        if reader.read_line(&mut line).expect("event") == 0 {
            break;
        }
        if let Some(d) = line.strip_prefix("data: ") {
            data.push(d.trim().to_string());
            if d.trim() == last {
                break;
            }
        }
    }
    data
}

fn wait_deployed(api: &Api, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (s, c) = api.send("GET", &format!("/v1/containers/{id}"), Some(token), None);
        assert_eq!(s, 200, "{c}");
        if c["status"] == "deployed" {
            return c;
        }
        assert!(Instant::now() < deadline, "never deployed: {c}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn seed_examples_replay_with_the_documented_statuses_and_shapes() {
    let api = Api::start(30);
    let t = api.token(USER, "USER");
    // Create Container, verbatim from the seed.
    let create = json!({"name": "hello-world", "image": "nginxdemos/hello:latest", "cpu": 1, "ram": "512Mi", "gpu": 0, "ephemeralStorage": "10Gi", "port": "80", "env": {"FOO": "bar"}});
    let (s, c) = api.send("POST", "/v1/containers", Some(&t), Some(create));
    assert_eq!(s, 201, "{c}");
    assert_container_shape(&c);
    assert_eq!(
        (
            c["name"].as_str(),
            c["createdBy"].as_str(),
            c["image"].as_str()
        ),
        (
            Some("hello-world"),
            Some(USER),
            Some("nginxdemos/hello:latest")
        )
    );
    assert_eq!(
        (
            c["cpu"].clone(),
            c["ram"].clone(),
            c["gpu"].clone(),
            c["ephemeralStorage"].clone()
        ),
        (json!(1), json!("512Mi"), json!(0), json!("10Gi"))
    );
    assert_eq!(
        (
            c["command"].clone(),
            c["arguments"].clone(),
            c["env"].clone(),
            c["port"].clone()
        ),
        (Value::Null, Value::Null, json!({"FOO": "bar"}), json!("80"))
    );
    assert_eq!(
        c["dateUpdated"], "0001-01-01T00:00:00Z",
        "never updated: Go's zero time"
    );
    assert_eq!(c["desiredGPUs"], Value::Null);
    let id = c["id"].as_str().expect("id").to_string();
    assert_eq!(id.len(), 36, "a UUID");
    let c = wait_deployed(&api, &t, &id);
    let urls = c["urls"].as_array().expect("urls once deployed");
    let label = urls[0]
        .as_str()
        .unwrap_or_default()
        .split('.')
        .next()
        .unwrap_or_default()
        .to_string();
    assert_eq!(label.len(), 26, "{urls:?}");

    // Get All Containers, Get Container.
    let (s, list) = api.send("GET", "/v1/containers", Some(&t), None);
    assert_eq!(s, 200, "{list}");
    assert_eq!(
        (
            list["total"].clone(),
            list["page"].clone(),
            list["rowsPerPage"].clone()
        ),
        (json!(1), json!(1), json!(10))
    );
    assert_container_shape(&list["items"][0]);
    let (s, got) = api.send("GET", &format!("/v1/containers/{id}"), Some(&t), None);
    assert_eq!(s, 200);
    assert_container_shape(&got);

    // Update Container, verbatim from the seed.
    let (s, up) = api.send(
        "PUT",
        &format!("/v1/containers/{id}"),
        Some(&t),
        Some(json!({"image": "nginxdemos/hello:updated", "env": {"FOO": "updated-bar"}})),
    );
    assert_eq!(s, 200, "{up}");
    assert_container_shape(&up);
    assert_eq!(
        (up["image"].as_str(), up["env"]["FOO"].as_str()),
        (Some("nginxdemos/hello:updated"), Some("updated-bar"))
    );
    assert_ne!(up["dateUpdated"], "0001-01-01T00:00:00Z");
    assert_eq!(up["ram"], "512Mi", "fields the update leaves out are kept");

    // Get Container Revisions.
    let (s, revs) = api.send(
        "GET",
        &format!("/v1/containers/{id}/revisions"),
        Some(&t),
        None,
    );
    assert_eq!(s, 200, "{revs}");
    assert_eq!(revs["total"], 2);
    let r0 = revs["items"][0].as_object().expect("revision");
    assert_eq!(
        r0.keys().collect::<Vec<_>>(),
        ["containerID", "revisionNumber", "image", "dateCreated"]
    );
    assert_eq!(
        (
            revs["items"][0]["revisionNumber"].clone(),
            revs["items"][1]["revisionNumber"].clone()
        ),
        (json!(2), json!(1))
    );
    assert_eq!(revs["items"][0]["image"], "nginxdemos/hello:updated");

    // Get GPU Models: the 25 of the seed, rowsPerPage 100.
    let (s, gpus) = api.send("GET", "/v1/gpu-models", Some(&t), None);
    assert_eq!(s, 200);
    assert_eq!(
        (gpus["total"].clone(), gpus["rowsPerPage"].clone()),
        (json!(25), json!(100))
    );
    assert_eq!(gpus["items"].as_array().map(Vec::len), Some(25));
    assert_eq!(
        gpus["items"][1],
        json!({"code": "a100", "name": "Nvidia a100"})
    );
    assert!(
        gpus["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|m| m == &json!({"code": "3060ti", "name": "Nvidia rtx-3060-ti"}))
    );

    // Delete Container.
    let r = api.raw("DELETE", &format!("/v1/containers/{id}"), Some(&t), None);
    assert_eq!(r.status().as_u16(), 204);
    assert!(r.text().unwrap_or_default().is_empty(), "204 has no body");
    assert!(engine_containers(&id).is_empty());
    let (s, e) = api.send("GET", &format!("/v1/containers/{id}"), Some(&t), None);
    assert_eq!(s, 404, "{e}");
    assert!(e["error"].is_string());
}

#[test]
fn rbac_matrix_owner_other_user_and_admin() {
    let api = Api::start(30);
    let owner = api.token("owner-7", "USER");
    let other = api.token("other-7", "USER");
    let admin = api.token("admin-7", "ADMIN");
    let new = |t: &str, name: &str| -> String {
        let (s, c) = api.send("POST", "/v1/containers", Some(t), Some(json!({"name": name, "image": "gantry-test/busybox:1.0", "command": ["sleep", "3600"]})));
        assert_eq!(s, 201, "{c}");
        c["id"].as_str().expect("id").to_string()
    };
    let id = new(&owner, "mine");
    let path = format!("/v1/containers/{id}");
    let upd = Some(json!({"env": {"K": "v"}}));
    // (who, method, path, body, expected status)
    let cases: Vec<(&str, &str, String, Option<Value>, u16)> = vec![
        ("nobody", "GET", "/v1/containers".into(), None, 401),
        ("nobody", "GET", path.clone(), None, 401),
        (
            "nobody",
            "POST",
            "/v1/containers".into(),
            Some(json!({"name": "x", "image": "a:b"})),
            401,
        ),
        ("nobody", "PUT", path.clone(), upd.clone(), 401),
        ("nobody", "DELETE", path.clone(), None, 401),
        ("nobody", "GET", format!("{path}/revisions"), None, 401),
        ("nobody", "GET", format!("{path}/logs"), None, 401),
        ("nobody", "GET", "/v1/gpu-models".into(), None, 401),
        ("other", "GET", path.clone(), None, 403),
        ("other", "PUT", path.clone(), upd.clone(), 403),
        ("other", "DELETE", path.clone(), None, 403),
        ("other", "GET", format!("{path}/revisions"), None, 403),
        ("other", "GET", format!("{path}/logs"), None, 403),
        ("owner", "GET", path.clone(), None, 200),
        ("owner", "GET", format!("{path}/revisions"), None, 200),
        ("owner", "PUT", path.clone(), upd.clone(), 200),
        ("admin", "GET", path.clone(), None, 200),
        ("admin", "GET", format!("{path}/revisions"), None, 200),
        (
            "admin",
            "PUT",
            path.clone(),
            Some(json!({"env": {"K": "admin"}})),
            200,
        ),
        (
            "other",
            "GET",
            "/v1/containers/00000000-0000-4000-8000-000000000000".into(),
            None,
            404,
        ),
        ("owner", "GET", "/v1/gpu-models".into(), None, 200),
    ];
    for (who, method, p, body, expected) in cases {
        let token = match who {
            "owner" => Some(owner.as_str()),
            "other" => Some(other.as_str()),
            "admin" => Some(admin.as_str()),
            _ => None,
        };
        let (s, b) = api.send(method, &p, token, body);
        assert_eq!(s, expected, "{who} {method} {p}: {b}");
        if s >= 400 {
            assert!(b["error"].is_string(), "{who} {method} {p}: error body {b}");
        }
    }
    // Bad tokens are 401 too.
    let (s, _) = api.send("GET", "/v1/containers", Some("not-a-jwt"), None);
    assert_eq!(s, 401);
    // Listing: each user their own; ADMIN everyone's.
    let theirs = new(&other, "theirs");
    let count = |t: &str| api.send("GET", "/v1/containers", Some(t), None).1["total"].as_u64();
    assert_eq!(
        (count(&owner), count(&other), count(&admin)),
        (Some(1), Some(1), Some(2))
    );
    assert_eq!(api.send("DELETE", &path, Some(&other), None).0, 403);
    assert_eq!(
        api.raw("DELETE", &path, Some(&owner), None)
            .status()
            .as_u16(),
        204
    );
    assert_eq!(
        api.raw(
            "DELETE",
            &format!("/v1/containers/{theirs}"),
            Some(&admin),
            None
        )
        .status()
        .as_u16(),
        204
    );
    assert!(engine_containers(&id).is_empty() && engine_containers(&theirs).is_empty());
}

#[test]
fn update_makes_revision_2_and_replaces_the_container() {
    let api = Api::start(30);
    let t = api.token("updater", "USER");
    let (s, c) = api.send(
        "POST",
        "/v1/containers",
        Some(&t),
        Some(json!({"name": "web", "image": "nginxdemos/hello:latest"})),
    );
    assert_eq!(s, 201, "{c}");
    let id = c["id"].as_str().expect("id").to_string();
    wait_deployed(&api, &t, &id);
    let before = engine_containers(&id);
    assert_eq!(before.len(), 1);
    let (s, up) = api.send(
        "PUT",
        &format!("/v1/containers/{id}"),
        Some(&t),
        Some(json!({"image": "nginxdemos/hello:updated"})),
    );
    assert_eq!(s, 200, "{up}");
    let after = engine_containers(&id);
    assert_eq!(after.len(), 1, "revision 1's container is gone");
    assert_ne!(after[0].id, before[0].id);
    assert_eq!(after[0].image.as_deref(), Some("nginxdemos/hello:updated"));
    assert_eq!(
        after[0].state.as_ref().map(|s| s.to_string()).as_deref(),
        Some("running")
    );
    assert_eq!(
        after[0]
            .labels
            .as_ref()
            .and_then(|l| l.get("io.gantry.revision"))
            .map(String::as_str),
        Some("2")
    );
    api.raw("DELETE", &format!("/v1/containers/{id}"), Some(&t), None);
}

#[test]
fn sse_logs_deliver_a_line_printed_after_the_client_connected() {
    let api = Api::start(30);
    let t = api.token("watcher", "USER");
    let (s, c) = api.send(
        "POST",
        "/v1/containers",
        Some(&t),
        Some(json!({"name": "talker", "image": "gantry-test/busybox:1.0", "command": ["sh", "-c"], "arguments": ["echo before; while [ ! -e /tmp/go ]; do sleep 0.2; done; echo after-connect; exec sleep 3600"]})),
    );
    assert_eq!(s, 201, "{c}");
    let id = c["id"].as_str().expect("id").to_string();
    let resp = api.raw("GET", &format!("/v1/containers/{id}/logs"), Some(&t), None);
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/event-stream")
    );
    let mut reader = std::io::BufReader::new(resp);
    let mut line = String::new();
    reader.read_line(&mut line).expect("first event");
    assert!(line.starts_with(": connected"), "{line}");
    // Only now, with the client connected, make the container print.
    let cid = engine_containers(&id)[0].id.clone().expect("container id");
    let st = std::process::Command::new("docker")
        .args([
            "-H",
            &runtimes().docker_host(),
            "exec",
            &cid,
            "sh",
            "-c",
            ": > /tmp/go",
        ])
        .status()
        .expect("docker exec");
    assert!(st.success());
    let data = sse_data_until(&mut reader, "after-connect");
    assert!(data.contains(&"before".to_string()), "{data:?}");
    assert!(
        data.contains(&"after-connect".to_string()),
        "the line printed after connecting arrived: {data:?}"
    );
    api.raw("DELETE", &format!("/v1/containers/{id}"), Some(&t), None);
}

#[test]
fn invalid_requests_get_400_with_fields_and_create_nothing() {
    let api = Api::start(30);
    let t = api.token("validator", "USER");
    let bad: Vec<(Value, &str)> = vec![
        (json!({"name": "a", "image": "nginxdemos/hello"}), "image"),
        (
            json!({"name": "a", "image": "gantry-test/busybox:1.0", "cpu": 0}),
            "cpu",
        ),
        (
            json!({"name": "a", "image": "gantry-test/busybox:1.0", "cpu": -1}),
            "cpu",
        ),
        (
            json!({"name": "a", "image": "gantry-test/busybox:1.0", "ram": "lots"}),
            "ram",
        ),
        (
            json!({"name": "a", "image": "gantry-test/busybox:1.0", "ram": "1Ki"}),
            "ram",
        ),
        (
            json!({"name": "a", "image": "gantry-test/busybox:1.0", "ephemeralStorage": "12Qi"}),
            "ephemeralStorage",
        ),
        (
            json!({"name": "a", "image": "gantry-test/busybox:1.0", "desiredGPUs": ["Nvidia z9000"]}),
            "desiredGPUs",
        ),
        (
            json!({"name": "a", "image": "gantry-test/busybox:1.0", "port": "http"}),
            "port",
        ),
        (
            json!({"name": "a", "image": "gantry-test/busybox:1.0", "colour": "blue"}),
            "colour",
        ),
        (json!({"image": "gantry-test/busybox:1.0"}), "name"),
        (
            json!({"name": "a", "image": "gantry-test/busybox:1.0", "cpu": "one"}),
            "body",
        ),
    ];
    for (body, field) in bad {
        let (s, e) = api.send("POST", "/v1/containers", Some(&t), Some(body.clone()));
        assert_eq!(s, 400, "{body} -> {e}");
        assert!(e["error"].is_string(), "{e}");
        assert!(
            e["fields"].get(field).is_some(),
            "{body}: expected a message for `{field}` in {e}"
        );
    }
    let (s, e) = api.send(
        "POST",
        "/v1/containers",
        Some(&t),
        Some(json!({"name": "a", "image": "gantry-test/not-here:1.0"})),
    );
    assert!(s == 400 || s == 404, "{e}");
    let (s, e) = api.send("GET", "/v1/containers?page=0", Some(&t), None);
    assert_eq!(s, 400, "{e}");
    let (s, list) = api.send("GET", "/v1/containers", Some(&t), None);
    assert_eq!(
        (s, list["total"].clone()),
        (200, json!(0)),
        "nothing was created: {list}"
    );
    let (s, _) = api.send("PATCH", "/v1/containers", Some(&t), None);
    assert_eq!(s, 405);
    let (s, doc) = api.send("GET", "/v1/openapi.json", None, None);
    assert_eq!(s, 200);
    assert_eq!(doc["openapi"], "3.1.0");
}

#[test]
fn the_main_flow_runs_on_containerd() {
    use gantry_tests::backends::Backend;
    let api = Api::start_on(Backend::Containerd, 30);
    let t = api.token(USER, "USER");
    let (s, c) = api.send(
        "POST",
        "/v1/containers",
        Some(&t),
        Some(json!({"name": "on-containerd", "image": "nginxdemos/hello:latest", "cpu": 0.5, "ram": "128Mi", "command": ["sh", "-c"], "arguments": ["echo hello-from-containerd; sleep 2; echo later-line; exec sleep 3600"]})),
    );
    assert_eq!(s, 201, "{c}");
    assert_container_shape(&c);
    let id = c["id"].as_str().expect("id").to_string();
    let c = wait_deployed(&api, &t, &id);
    assert_eq!(c["image"], "nginxdemos/hello:latest");
    let members = Backend::Containerd.members_of(&id);
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0].state, "running");
    let resp = api.raw("GET", &format!("/v1/containers/{id}/logs"), Some(&t), None);
    assert_eq!(resp.status().as_u16(), 200);
    let mut reader = std::io::BufReader::new(resp);
    let data = sse_data_until(&mut reader, "later-line");
    assert!(
        data.contains(&"hello-from-containerd".to_string())
            && data.contains(&"later-line".to_string()),
        "{data:?}"
    );
    let (s, _) = api.send("DELETE", &format!("/v1/containers/{id}"), Some(&t), None);
    assert!(s == 200 || s == 204, "delete answered {s}");
    assert!(Backend::Containerd.containers_of(&id).is_empty());
}
