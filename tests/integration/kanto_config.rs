//! Kanto's container config, the rest of it (`createWithConfig`'s
//! `config`): what is honoured is checked in dockerd through bollard and by
//! using it (a bind-mounted host directory, a published port reached with
//! an HTTP client); what the device does not grant or gantry cannot honour
//! is answered `messages:parameter.invalid` and creates nothing.

use gantry_tests::kanto::{Device, TWIN_TOPIC, WAIT};
use gantry_tests::runtimes::{TEST_IMAGE, runtimes};
use serde_json::{Value, json};
use std::time::Duration;

/// The runtime's view of a workload's container.
fn inspect(workload_id: &str) -> bollard::models::ContainerInspectResponse {
    let member = runtimes()
        .containers_of(workload_id)
        .into_iter()
        .find(|c| {
            c.labels
                .as_ref()
                .is_some_and(|l| l.contains_key("io.gantry.container"))
        })
        .expect("the workload's container in dockerd");
    runtimes().inspect_docker(&member.id.expect("an id"))
}

fn create(d: &Device, req: &str, name: &str, config: Value) -> Value {
    d.command(
        req,
        "ContainerFactory",
        "createWithConfig",
        json!({"imageRef": TEST_IMAGE, "name": name, "start": true, "config": config}),
    )
}

fn created(env: &Value) -> String {
    assert_eq!(env["status"], 200, "{env}");
    env["value"]
        .as_str()
        .expect("the container's id")
        .to_string()
}

/// The twin's `status/config` of container `id`, as its feature was created.
fn twin_config(d: &Device, id: &str) -> Value {
    let path = format!("/features/Container:{id}");
    let (_, env) = d.client.wait_for("the container's feature", WAIT, |t, v| {
        t == TWIN_TOPIC && v["path"] == path
    });
    env["value"]["properties"]["status"]["config"].clone()
}

#[test]
fn honoured_fields_reach_the_runtime() {
    let shared = tempfile::tempdir().expect("a host directory");
    let host_dir = shared.path().display().to_string();
    let d = Device::embedded_with_settings(
        &format!(
            "allowed-host-paths = \"{host_dir}\", allowed-devices = \"/dev/zero\", allowed-capabilities = \"NET_ADMIN\", allow-host-network = \"true\", allow-privileged = \"true\""
        ),
        "",
    );
    let port = gantry_tests::free_port();
    let serve = "echo from-container > /data/written; mkdir -p /www; echo published > /www/index.html; exec httpd -f -p 8080 -h /www";
    let id = created(&create(
        &d,
        "c1",
        "kanto-config",
        json!({
            "cmd": ["sh", "-c", serve],
            "hostName": "kanto-host",
            "domainName": "example.test",
            "extraHosts": ["ctrhost:10.1.2.3"],
            "networkMode": "BRIDGE",
            "mountPoints": [{"source": host_dir, "destination": "/data", "propagationMode": "RPRIVATE"}],
            "devices": [{"pathOnHost": "/dev/zero", "pathInContainer": "/dev/kzero", "cgroupPermissions": "rw"}],
            "portMappings": [{"proto": "tcp", "containerPort": 8080, "hostPort": port, "hostIP": "127.0.0.1"}],
            "log": {"type": "JSON_FILE", "maxFiles": 3, "maxSize": "1M", "mode": "BLOCKING"},
            "extraCapabilities": ["CAP_NET_ADMIN"],
        }),
    ));
    let twin = twin_config(&d, &id);
    d.wait_state(&id, "RUNNING");

    let info = inspect(&id);
    let config = info.config.expect("config");
    let host = info.host_config.expect("host config");
    assert_eq!(config.hostname.as_deref(), Some("kanto-host"));
    assert_eq!(config.domainname.as_deref(), Some("example.test"));
    assert_eq!(host.extra_hosts, Some(vec!["ctrhost:10.1.2.3".to_string()]));
    // BRIDGE is the workload's own loopback-only namespace.
    assert_eq!(host.network_mode.as_deref(), Some("none"));
    assert_eq!(host.binds, Some(vec![format!("{host_dir}:/data:rprivate")]));
    let device = &host.devices.expect("devices")[0];
    assert_eq!(
        (
            device.path_on_host.as_deref(),
            device.path_in_container.as_deref(),
            device.cgroup_permissions.as_deref()
        ),
        (Some("/dev/zero"), Some("/dev/kzero"), Some("rw"))
    );
    let log = host.log_config.expect("log config");
    assert_eq!(log.typ.as_deref(), Some("json-file"));
    let options = log.config.unwrap_or_default();
    assert_eq!(options.get("max-file").map(String::as_str), Some("3"));
    assert_eq!(options.get("max-size").map(String::as_str), Some("1048576"));
    assert_eq!(host.privileged, Some(false));
    assert_eq!(host.cap_add, Some(vec!["CAP_NET_ADMIN".to_string()]));

    // The mount is the host's directory; the port is published on the host.
    gantry_tests::runtimes::wait_for("the container's file on the host", WAIT, || {
        std::fs::read_to_string(shared.path().join("written"))
            .is_ok_and(|s| s == "from-container\n")
    })
    .expect("written through the bind mount");
    let url = format!("http://127.0.0.1:{port}/");
    let mut body = String::new();
    gantry_tests::runtimes::wait_for("the published port", WAIT, || {
        body = reqwest::blocking::get(&url)
            .and_then(|r| r.text())
            .unwrap_or_default();
        body == "published\n"
    })
    .unwrap_or_else(|e| panic!("{e}: {body:?}"));

    assert_eq!(twin["networkMode"], "BRIDGE");
    assert_eq!(twin["hostName"], "kanto-host");
    assert_eq!(
        twin["portMappings"],
        json!([{"proto": "tcp", "hostPort": port, "containerPort": 8080, "hostIP": "127.0.0.1"}])
    );
    assert_eq!(twin["mountPoints"][0]["propagationMode"], "RPRIVATE");
    assert_eq!(twin["log"]["maxFiles"], 3);

    // Privileged, granted, and HOST networking, where Kanto's `host_ip` is
    // the host. Created, not started: this machine's own container lets no
    // process have every capability, so runc cannot start a privileged one.
    let privileged = d.command(
        "c2",
        "ContainerFactory",
        "createWithConfig",
        json!({"imageRef": TEST_IMAGE, "name": "kanto-privileged", "start": false,
               "config": {"cmd": ["sleep", "600"], "privileged": true, "networkMode": "HOST",
                          "extraHosts": ["ctrhost:host_ip"]}}),
    );
    let privileged = created(&privileged);
    d.wait_state(&privileged, "CREATED");
    let host = inspect(&privileged).host_config.expect("host config");
    assert_eq!(host.privileged, Some(true));
    assert_eq!(host.network_mode.as_deref(), Some("host"));
    assert_eq!(
        host.extra_hosts,
        Some(vec!["ctrhost:127.0.0.1".to_string()])
    );

    // Removed, the port is the host's again.
    for (req, id) in [("r1", &id), ("r2", &privileged)] {
        let env = d.command(req, &format!("Container:{id}"), "remove", json!(true));
        assert_eq!(env["status"], 204, "{env}");
    }
    gantry_tests::runtimes::wait_for(
        "the published port to close",
        Duration::from_secs(30),
        || std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
    )
    .expect("the host gives the port back");
}

#[test]
fn what_is_not_granted_or_honoured_is_parameter_invalid() {
    let granted = tempfile::tempdir().expect("a host directory");
    let d = Device::embedded_with_settings(
        &format!("allowed-host-paths = \"{}\"", granted.path().display()),
        "",
    );
    let inside = granted.path().display().to_string();
    let cases = [
        (
            "a bind mount outside the grant",
            json!({"mountPoints": [{"source": "/etc", "destination": "/host-etc"}]}),
        ),
        (
            "a path escaping the grant",
            json!({"mountPoints": [{"source": format!("{inside}/../../etc"), "destination": "/x"}]}),
        ),
        (
            "a device not granted",
            json!({"devices": [{"pathOnHost": "/dev/zero", "pathInContainer": "/dev/zero"}]}),
        ),
        ("privileged, not granted", json!({"privileged": true})),
        (
            "a capability not granted",
            json!({"extraCapabilities": ["SYS_ADMIN"]}),
        ),
        (
            "the host's network, not granted",
            json!({"networkMode": "HOST"}),
        ),
        (
            "mount options smuggled in a destination",
            json!({"mountPoints": [{"source": &inside, "destination": "/x:ro,rshared"}]}),
        ),
        (
            "encrypted images",
            json!({"decryption": {"keys": ["private.pem"]}}),
        ),
        (
            "a log directory",
            json!({"log": {"type": "JSON_FILE", "rootDir": "/var/log/kanto"}}),
        ),
        (
            "a udp host port",
            json!({"portMappings": [{"proto": "udp", "containerPort": 53, "hostPort": 5353}]}),
        ),
        (
            "a host port range",
            json!({"portMappings": [{"containerPort": 80, "hostPort": 8000, "hostPortEnd": 8009}]}),
        ),
        (
            "host_ip without HOST networking",
            json!({"extraHosts": ["ctrhost:host_ip"]}),
        ),
        (
            "an extra host without an address",
            json!({"extraHosts": ["ctrhost"]}),
        ),
        ("an unknown network mode", json!({"networkMode": "OVERLAY"})),
        (
            "an unknown propagation mode",
            json!({"mountPoints": [{"source": &inside, "destination": "/x", "propagationMode": "SIDEWAYS"}]}),
        ),
    ];
    for (i, (what, config)) in cases.iter().enumerate() {
        let name = format!("refused-{i}");
        let env = create(&d, &format!("x{i}"), &name, config.clone());
        assert_eq!(
            (env["status"].clone(), env["value"]["error"].clone()),
            (json!(400), json!("messages:parameter.invalid")),
            "{what}: {env}"
        );
        assert!(
            env["value"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: a reason: {env}"
        );
        assert!(
            runtimes().containers_where("name", &name).is_empty(),
            "{what}: nothing created in dockerd"
        );
    }
    // Nothing in gantry either, and no feature was announced.
    let token = d.g.token("kanto-device", &["USER"]);
    let listed: Value = reqwest::blocking::Client::new()
        .get(d.g.url("/v1/containers"))
        .bearer_auth(&token)
        .send()
        .and_then(|r| r.json())
        .expect("REST list");
    assert_eq!(listed["total"], 0, "{listed}");
    let extra = d.client.drain(Duration::from_secs(1));
    assert!(
        !extra.iter().any(|(t, v)| t == TWIN_TOPIC
            && v["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/features/Container:"))),
        "no container feature: {extra:?}"
    );
}
