//! Plugins built against an older compatible WIT load on this host: the
//! `compat-0-1-0` fixture is an mqtt-frontend built against
//! `gantry:plugin@0.1.0`, run here on the host's embedded broker.

use gantry_tests::config::ConfigBuilder;
use gantry_tests::gantry::Gantry;
use gantry_tests::mqtt::TestClient;
use gantry_tests::plugins::{compat_0_1_0, gantry_bin};
use std::process::Command;
use std::time::Duration;

fn config(port: u16) -> String {
    ConfigBuilder::new("test-secret")
        .in_memory()
        // Pooled worlds would recycle an instance after every call; the MQTT
        // frontend's instance policy keeps its one instance regardless.
        .limit("max_reuse", 1)
        .mqtt_frontend(
            "old",
            &compat_0_1_0(),
            &format!(
                "broker = \"embedded\", listen = \"127.0.0.1:{port}\", subject = \"compat-user\""
            ),
            "",
        )
        .build()
}

#[test]
fn a_plugin_built_against_wit_0_1_0_is_checked_loaded_and_called() {
    let wasm = std::fs::read(compat_0_1_0()).expect("fixture built");
    let text = String::from_utf8_lossy(&wasm);
    assert!(
        text.contains("gantry:plugin/mqtt-handler@0.1.0")
            && !text.contains("gantry:plugin/mqtt-handler@0.1.1"),
        "the fixture must be built against 0.1.0"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let port = gantry_tests::free_port();
    let path = dir.path().join("check.toml");
    std::fs::write(
        &path,
        config(port)
            .replace("{dir}", &dir.path().display().to_string())
            .replace("{port}", &gantry_tests::free_port().to_string()),
    )
    .expect("write config");
    let out = Command::new(gantry_bin())
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("gantry check");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("ok      old (gantry:plugin/mqtt-frontend@0.1."),
        "{text}"
    );

    let g = Gantry::start_in(dir.path(), &config(port));
    let client = TestClient::connect(port, "compat-test", &["compat/res"]);
    client.publish_acked("compat/req", "hello");
    let (_, answer) = client.wait_for("an answer", Duration::from_secs(30), |t, _| {
        t == "compat/res"
    });
    assert_eq!(answer["wit"], "0.1.0", "{answer}");
    assert_eq!(answer["request"], "hello", "{answer}");
    assert_eq!(answer["subject"], "compat-user", "{answer}");
    assert_eq!(answer["total"], 0, "{answer}");
    assert!(
        answer["gpu-models"].as_u64().is_some_and(|n| n > 0),
        "{answer}"
    );
    // One long-lived instance handles every message (max_reuse = 1 is for pooled worlds).
    let first = answer["handled"].as_u64().expect("handled");
    for n in 1..=2 {
        client.publish_acked("compat/req", &format!("again {n}"));
        let (_, answer) = client.wait_for("another answer", Duration::from_secs(30), |t, v| {
            t == "compat/res" && v["request"] == format!("again {n}")
        });
        assert_eq!(answer["handled"], first + n, "{answer}");
    }
    assert!(!g.log().contains("plugin call failed"), "{}", g.log());
}
