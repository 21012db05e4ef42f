//! The twin as Kanto's own integration tests read it
//! (eclipse-kanto/container-management `integration/ctr_factory_test.go`,
//! `ctr_instance_test.go`, `ctr_software_updatable_test.go`): gantry sends
//! the events Ditto emits (`twin-messages = "events"`) on
//! `e/<tenant>/<thingId>`, and each step below processes them in order
//! with the rules those tests apply (`createOperation`,
//! `processStateChange`, `processNameChange`, `processUpdate`,
//! `processRemove`, `installContainer`, `removeContainer`), on real
//! brokers with an independent MQTT client.

use gantry_tests::file_server::{FileServer, Served};
use gantry_tests::kanto::{DITTO, Device, SCRIPT, THING, TWIN_TOPIC, WAIT, digests, install_value};
use gantry_tests::runtimes::TEST_IMAGE;
use serde_json::{Value, json};
use std::collections::HashMap;

const SU_DEPENDENCIES: &str = "/features/SoftwareUpdatable/properties/status/installedDependencies";
const SU_LAST: &str = "/features/SoftwareUpdatable/properties/status/lastOperation";
const SU_FAILED: &str = "/features/SoftwareUpdatable/properties/status/lastFailedOperation";

fn status_path(feature: &str, property: &str) -> String {
    format!("/features/{feature}/properties/status/{property}")
}

/// A twin event: its action (`created`...), path and value, or `None` for
/// anything else the client receives (responses).
fn twin_event<'a>(topic: &str, env: &'a Value) -> Option<(&'a str, &'a str, &'a Value)> {
    if topic != TWIN_TOPIC {
        return None;
    }
    let action = env["topic"]
        .as_str()?
        .strip_prefix(&format!("{DITTO}/things/twin/events/"))?;
    assert!(
        env["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
        "an event carries its time: {env}"
    );
    Some((action, env["path"].as_str().unwrap_or(""), &env["value"]))
}

/// Whether `env` answers request `req` with a success status.
fn answered(topic: &str, req: &str) -> Option<Result<(), String>> {
    let prefix = format!("command//{THING}/res/{req}/");
    let status = topic.strip_prefix(&prefix)?;
    (!status.starts_with('2')).then(|| Err(format!("{req} answered {status}")))
}

fn events_device(extra: &str) -> Device {
    Device::embedded_with_settings("twin-messages = \"events\"", extra)
}

/// `createOperation`: under `Container:*`, the feature is created with
/// Container:1.5.0, then its state is CREATED, then RUNNING when started,
/// and nothing else. The new container's id.
fn create_operation(d: &Device, req: &str, name: &str, start: bool) -> String {
    d.client.kanto_send(
        THING,
        (req, "ContainerFactory", "createWithConfig"),
        json!({"imageRef": TEST_IMAGE, "name": name, "start": start,
               "config": {"cmd": ["sh", "-c", SCRIPT]}}),
    );
    let mut id: Option<String> = None;
    let mut feature: Option<String> = None;
    let mut created = false;
    let mut done = false;
    let prefix = format!("command//{THING}/res/{req}/");
    d.client
        .process(&format!("creating {name}"), WAIT, |topic, env| {
            if topic.starts_with(&prefix) {
                if !topic.ends_with("/200") {
                    return Some(Err(format!("create answered {topic}")));
                }
                id = env["value"].as_str().map(str::to_string);
                return done.then_some(Ok(()));
            }
            let (action, path, value) = twin_event(topic, env)?;
            if !path.starts_with("/features/Container:") {
                return None;
            }
            match action {
                "created" => {
                    feature = path.strip_prefix("/features/").map(str::to_string);
                    if value["definition"]
                        != json!(["com.bosch.iot.suite.edge.containers:Container:1.5.0"])
                    {
                        return Some(Err(format!("definition {}", value["definition"])));
                    }
                    None
                }
                "modified" => {
                    let Some(f) = &feature else {
                        return Some(Err("the feature was not created first".into()));
                    };
                    if path != status_path(f, "state") {
                        return Some(Err(format!("received event is not expected: {path}")));
                    }
                    match value["status"].as_str() {
                        Some("CREATED") if start => {
                            created = true;
                            None
                        }
                        Some("CREATED") => {
                            done = true;
                            id.is_some().then_some(Ok(()))
                        }
                        Some("RUNNING") if start && created => {
                            done = true;
                            id.is_some().then_some(Ok(()))
                        }
                        other => Some(Err(format!("unexpected container status {other:?}"))),
                    }
                }
                other => Some(Err(format!("unknown message: {other} {path}"))),
            }
        });
    let id = id.expect("the new container's id");
    assert_eq!(
        feature,
        Some(format!("Container:{id}")),
        "the feature is the container's"
    );
    id
}

/// `executeWithExpectedSuccess` then the first `modified` event: it must be
/// `property` of `feature`, accepted by `check`. Any other twin event fails,
/// but for one: a state still saying `settled`, the status the container was
/// in before, is a late report of it (its pid or times filled in), which
/// Kanto sends too, not a new event.
fn operation_then(
    d: &Device,
    req: &str,
    (feature, settled): (&str, &str),
    (op, value): (&str, Value),
    property: &str,
    check: impl Fn(&Value) -> Result<(), String>,
) {
    d.client.kanto_send(THING, (req, feature, op), value);
    let want = status_path(feature, property);
    let state = status_path(feature, "state");
    d.client
        .process(&format!("{op} on {feature}"), WAIT, |topic, env| {
            if let Some(failed) = answered(topic, req) {
                return Some(failed);
            }
            let (action, path, value) = twin_event(topic, env)?;
            if action != "modified" {
                return Some(Err(format!("unknown message: {action} {path}")));
            }
            if path == state && value["status"] == settled {
                return None;
            }
            if path != want {
                return Some(Err(format!("received event is not expected: {path}")));
            }
            Some(check(value))
        });
}

fn status_is(expected: &'static str) -> impl Fn(&Value) -> Result<(), String> {
    move |v| {
        (v["status"] == expected)
            .then_some(())
            .ok_or_else(|| format!("expected container status {expected}, got {v}"))
    }
}

/// `processRemove`, and more: before the feature's `deleted` event come its
/// last state (DEAD) and `installedDependencies` without it; nothing else.
fn remove_operation(d: &Device, req: &str, id: &str) {
    let feature = format!("Container:{id}");
    d.client
        .kanto_send(THING, (req, &feature, "remove"), json!(true));
    let (mut dead, mut dependencies) = (false, false);
    d.client.process(&format!("removing {id}"), WAIT, |topic, env| {
        if let Some(failed) = answered(topic, req) {
            return Some(failed);
        }
        let (action, path, value) = twin_event(topic, env)?;
        match action {
            "deleted" if path == format!("/features/{feature}") => Some(
                (dead && dependencies)
                    .then_some(())
                    .ok_or_else(|| format!("deleted before DEAD ({dead}) and installedDependencies ({dependencies})")),
            ),
            "modified" if path == status_path(&feature, "state") => {
                dead |= value["status"] == "DEAD";
                None
            }
            "modified" if path == SU_DEPENDENCIES => {
                let listed = value.as_object().is_some_and(|m| m.values().any(|d| d["name"] == id));
                dependencies = !listed;
                None
            }
            other => Some(Err(format!("unknown message: {other} {path}"))),
        }
    });
}

#[test]
fn the_twin_reads_as_kantos_integration_tests_expect() {
    // On mosquitto, whose client listens before gantry connects.
    let d = Device::on_mosquitto_configured("twin-messages = \"events\"", "");
    // SetupCtrManagementSuite: the features are created with Kanto's definitions.
    let mut definitions = HashMap::new();
    d.client
        .process("the twin at connection", WAIT, |topic, env| {
            let (action, path, value) = twin_event(topic, env)?;
            if action != "created" {
                return Some(Err(format!("{action} {path} before any change")));
            }
            definitions.insert(path.to_string(), value["definition"].clone());
            (definitions.len() == 3).then_some(Ok(()))
        });
    assert_eq!(
        definitions["/features/ContainerFactory"],
        json!(["com.bosch.iot.suite.edge.containers:ContainerFactory:1.3.0"])
    );
    assert_eq!(
        definitions["/features/SoftwareUpdatable"],
        json!(["org.eclipse.hawkbit.swupdatable:SoftwareUpdatable:2.0.0"])
    );
    assert_eq!(
        definitions["/features/Metrics"],
        json!(["com.bosch.iot.suite.edge.metric:Metrics:1.0.0"])
    );

    // ctrInstanceSuite, on one started and one created container.
    let id = create_operation(&d, "c1", "kanto-twin", true);
    let c = format!("Container:{id}");
    operation_then(
        &d,
        "p1",
        (&c, "RUNNING"),
        ("pause", json!({})),
        "state",
        status_is("PAUSED"),
    );
    operation_then(
        &d,
        "p2",
        (&c, "PAUSED"),
        ("resume", json!({})),
        "state",
        status_is("RUNNING"),
    );
    operation_then(
        &d,
        "s1",
        (&c, "RUNNING"),
        ("stopWithOptions", json!({"signal": "SIGINT"})),
        "state",
        status_is("STOPPED"),
    );
    operation_then(
        &d,
        "s2",
        (&c, "STOPPED"),
        ("start", json!({})),
        "state",
        status_is("RUNNING"),
    );
    operation_then(
        &d,
        "s3",
        (&c, "RUNNING"),
        ("stop", json!({})),
        "state",
        status_is("STOPPED"),
    );
    operation_then(
        &d,
        "n1",
        (&c, "STOPPED"),
        ("rename", json!("new_ctr_name")),
        "name",
        |v| {
            (v == "new_ctr_name")
                .then_some(())
                .ok_or_else(|| format!("name {v}"))
        },
    );
    operation_then(
        &d,
        "u1",
        (&c, "STOPPED"),
        ("update", json!({"restartPolicy": {"type": "ALWAYS"}})),
        "config",
        // reflect.DeepEqual: exactly the policy given, Kanto's empty fields left out.
        |v| {
            (v["restartPolicy"] == json!({"type": "ALWAYS"}))
                .then_some(())
                .ok_or_else(|| format!("config {v}"))
        },
    );
    remove_operation(&d, "r1", &id);

    let idle = create_operation(&d, "c2", "kanto-twin-idle", false);
    operation_then(
        &d,
        "s4",
        (&format!("Container:{idle}"), "CREATED"),
        ("start", json!({})),
        "state",
        status_is("RUNNING"),
    );
    remove_operation(&d, "r2", &idle);
    // Nothing of either is left in the runtime.
    for id in [&id, &idle] {
        assert!(
            gantry_tests::runtimes::runtimes()
                .containers_of(id)
                .is_empty()
        );
    }
}

#[test]
fn software_updatable_progress_reads_as_kantos_integration_tests_expect() {
    let descriptor = json!({"container_name": "su-twin", "image": {"name": TEST_IMAGE},
                            "config": {"cmd": ["sh", "-c", SCRIPT]}})
    .to_string()
    .into_bytes();
    let (sha, md5) = digests(&descriptor);
    let server = FileServer::start(HashMap::from([(
        "/granted/valid.json".to_string(),
        Served::File(descriptor),
    )]));
    let d = events_device(&format!(
        "artifacts = {{ allow = [\"{}\"], max_bytes = 65536, timeout_ms = 10000 }}\n",
        server.url("/granted/")
    ));
    let su = |topic: &str, env: &Value| -> Option<(String, String, Value)> {
        let (action, path, value) = twin_event(topic, env)?;
        path.starts_with("/features/SoftwareUpdatable")
            .then(|| (action.to_string(), path.to_string(), value.clone()))
    };

    // installContainer: only `modified` events; lastOperation in order;
    // installedDependencies names the container.
    d.client.kanto_send(
        THING,
        ("i1", "SoftwareUpdatable", "install"),
        install_value(
            "corr-install",
            "su-twin",
            &[("valid.json", server.url("/granted/valid.json"), sha, md5)],
        ),
    );
    let (mut started, mut downloaded, mut installed) = (false, false, false);
    let mut id = None;
    d.client.process("installing", WAIT, |topic, env| {
        if let Some(failed) = answered(topic, "i1") {
            return Some(failed);
        }
        let (action, path, value) = su(topic, env)?;
        if action != "modified" {
            return Some(Err(format!("unknown message: {action} {path}")));
        }
        if path == SU_DEPENDENCIES {
            id = value
                .as_object()
                .and_then(|m| m.values().next())
                .and_then(|dep| dep["name"].as_str())
                .map(str::to_string);
            return None;
        }
        if path != SU_LAST {
            return Some(Err(format!(
                "received event is not expected: {path} {value}"
            )));
        }
        match value["status"].as_str().unwrap_or("") {
            "STARTED" => started = true,
            "DOWNLOADING" if started => {}
            "DOWNLOADED" if started => downloaded = true,
            "INSTALLING" if started && downloaded => {}
            "INSTALLED" if started && downloaded => installed = true,
            "FINISHED_SUCCESS" if started && downloaded && installed => return Some(Ok(())),
            other => return Some(Err(format!("unexpected status {other}: {value}"))),
        }
        None
    });
    let id = id.expect("installedDependencies named the container");

    // removeContainer: REMOVING, installedDependencies, REMOVED, FINISHED_SUCCESS.
    d.client.kanto_send(
        THING,
        ("rm1", "SoftwareUpdatable", "remove"),
        json!({"correlationId": "corr-remove", "forced": true, "software": [{"name": id}]}),
    );
    let mut seen = Vec::new();
    d.client.process("removing", WAIT, |topic, env| {
        if let Some(failed) = answered(topic, "rm1") {
            return Some(failed);
        }
        let (action, path, value) = su(topic, env)?;
        if action != "modified" {
            return Some(Err(format!("unknown message: {action} {path}")));
        }
        match path.as_str() {
            SU_LAST => seen.push(value["status"].as_str().unwrap_or("").to_string()),
            SU_DEPENDENCIES => seen.push("installedDependencies".into()),
            SU_FAILED => return Some(Err(format!("failed: {value}"))),
            other => return Some(Err(format!("received event is not expected: {other}"))),
        }
        (seen.last().map(String::as_str) == Some("FINISHED_SUCCESS")).then_some(Ok(()))
    });
    assert_eq!(
        seen,
        [
            "REMOVING",
            "installedDependencies",
            "REMOVED",
            "FINISHED_SUCCESS"
        ]
    );

    // TestSoftwareRemoveNonExistingContainer: the reason names the container.
    d.client.kanto_send(
        THING,
        ("rm2", "SoftwareUpdatable", "remove"),
        json!({"correlationId": "corr-none", "forced": true, "software": [{"name": "NonExistingContainer"}]}),
    );
    d.client
        .process("removing what is not there", WAIT, |topic, env| {
            let (_, path, value) = su(topic, env)?;
            (path == SU_FAILED).then(|| {
                let message = value["message"].as_str().unwrap_or("");
                message
                    .contains("container with ID = NonExistingContainer does not exist")
                    .then_some(())
                    .ok_or_else(|| format!("message {message}"))
            })
        });
}
