//! A device running the Kanto frontend, as the Kanto tests drive it: gantry
//! on a real broker (the embedded one or a mosquitto of its own), and an
//! independent MQTT client on the cloud's side of Hono's topics.

use crate::backends::Backend;
use crate::gantry::Gantry;
use crate::mqtt::{Mosquitto, TestClient, kanto_config_with};
use crate::runtimes::TEST_IMAGE;
use serde_json::{Value, json};
use std::time::Duration;

/// The containers thing of device `edge:device`.
pub const THING: &str = "edge:device:edge:containers";
/// Its Ditto namespace/name.
pub const DITTO: &str = "edge/device:edge:containers";
/// Where its twin changes are published.
pub const TWIN_TOPIC: &str = "e/t1/edge:device:edge:containers";
/// How long a test waits for a message.
pub const WAIT: Duration = Duration::from_secs(60);

/// A container that stops promptly on SIGTERM or SIGINT.
pub const SCRIPT: &str = "trap 'exit 0' TERM INT; echo up; while true; do sleep 1; done";

/// A gantry serving the Kanto frontend, and a cloud-side client.
pub struct Device {
    /// The gantry process.
    pub g: Gantry,
    _dir: tempfile::TempDir,
    /// The cloud-side MQTT client.
    pub client: TestClient,
    /// The mosquitto, when not on the embedded broker.
    pub mosquitto: Option<Mosquitto>,
}

impl Device {
    /// On the embedded broker, configured as device `edge:device` of tenant `t1`.
    pub fn embedded() -> Device {
        Device::embedded_with_settings("", "")
    }

    /// On the embedded broker, with `extra` lines in the Kanto table.
    pub fn embedded_with(extra: &str) -> Device {
        Device::embedded_with_settings("", extra)
    }

    /// On the embedded broker, with `settings` added to the plugin's
    /// `config` table (`key = "value", ...`) and `extra` lines in its table.
    pub fn embedded_with_settings(settings: &str, extra: &str) -> Device {
        let port = crate::free_port();
        let config = kanto_config_with("embedded", Some(port), &plugin_table(settings, extra));
        Device::with_config(port, &config)
    }

    /// On the embedded broker, on `backend`.
    pub fn embedded_on(backend: Backend) -> Device {
        let port = crate::free_port();
        let config =
            crate::mqtt::kanto_config_on(backend, "embedded", Some(port), &plugin_table("", ""));
        Device::with_config(port, &config)
    }

    /// A device on `config`, whose embedded broker listens on `port`.
    pub fn with_config(port: u16, config: &str) -> Device {
        let dir = tempfile::tempdir().expect("tempdir");
        let g = Gantry::start_in(dir.path(), config);
        let client = TestClient::connect(
            port,
            &format!("cloud-{port}"),
            &["command//+/res/#", "e/#", "unknown/#"],
        );
        Device {
            g,
            _dir: dir,
            client,
            mosquitto: None,
        }
    }

    /// On a mosquitto of its own.
    pub fn on_mosquitto() -> Device {
        Device::on_mosquitto_with("")
    }

    /// On a mosquitto of its own, with `extra` lines in the Kanto table.
    pub fn on_mosquitto_with(extra: &str) -> Device {
        Device::on_mosquitto_configured("", extra)
    }

    /// On a mosquitto of its own, with `settings` added to the plugin's
    /// `config` table and `extra` lines in its table. The cloud's client is
    /// subscribed before gantry starts: it sees the twin gantry publishes
    /// when it connects.
    pub fn on_mosquitto_configured(settings: &str, extra: &str) -> Device {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = Mosquitto::start(dir.path());
        let client = TestClient::connect(
            m.port,
            &format!("cloud-{}", m.port),
            &["command//+/res/#", "e/#"],
        );
        let g = Gantry::start_in(
            dir.path(),
            &kanto_config_with(
                &format!("tcp://127.0.0.1:{}", m.port),
                None,
                &plugin_table(settings, extra),
            ),
        );
        Device {
            g,
            _dir: dir,
            client,
            mosquitto: Some(m),
        }
    }

    /// Send a command the way Kanto's cloud side does and return the response envelope.
    pub fn command(&self, req_id: &str, feature: &str, op: &str, value: Value) -> Value {
        self.client
            .kanto_command(THING, (req_id, feature, op), value, WAIT)
    }

    /// Create a container running [`SCRIPT`] through `createWithConfig`; its id.
    pub fn create(&self, req_id: &str, name: &str, start: bool) -> String {
        let env = self.command(
            req_id,
            "ContainerFactory",
            "createWithConfig",
            json!({"imageRef": TEST_IMAGE, "name": name, "start": start, "config": {"cmd": ["sh", "-c", SCRIPT], "restartPolicy": {"type": "no"}}}),
        );
        assert_eq!(env["status"], 200, "{env}");
        env["value"]
            .as_str()
            .expect("the new container's id")
            .to_string()
    }

    /// The next twin update about `path` (suffix) of container `id`.
    pub fn twin(&self, id: &str, path_suffix: &str) -> Value {
        let path = format!("/features/Container:{id}{path_suffix}");
        let (_, env) = self
            .client
            .wait_for(&format!("a twin update of {path}"), WAIT, |t, v| {
                t == TWIN_TOPIC && v["path"] == path
            });
        env
    }

    /// Wait for a twin update saying container `id` is `status`.
    pub fn wait_state(&self, id: &str, status: &str) {
        let path = format!("/features/Container:{id}/properties/status/state");
        self.client
            .wait_for(&format!("{status} for {id}"), WAIT, |t, v| {
                t == TWIN_TOPIC && v["path"] == path && v["value"]["status"] == status
            });
    }
}

/// The Kanto table's own lines: the plugin's `config` (device `edge:device`
/// of tenant `t1`, then `settings`, `key = "value", ...`) and `extra` lines.
fn plugin_table(settings: &str, extra: &str) -> String {
    let more = if settings.is_empty() {
        String::new()
    } else {
        format!(", {settings}")
    };
    format!("config = {{ device-id = \"edge:device\", tenant-id = \"t1\"{more} }}\n{extra}")
}

/// A SoftwareUpdatable `install` value: one module of `artifacts`
/// (filename, url, sha256, md5).
pub fn install_value(
    correlation: &str,
    module: &str,
    artifacts: &[(&str, String, String, String)],
) -> Value {
    let artifacts: Vec<Value> = artifacts
        .iter()
        .map(|(file, url, sha256, md5)| {
            json!({"filename": file, "download": {"HTTP": {"url": url}},
                   "checksums": {"SHA256": sha256, "MD5": md5}, "size": 100})
        })
        .collect();
    json!({"correlationId": correlation, "forced": true, "softwareModules": [
        {"softwareModule": {"name": module, "version": "1.0.0"}, "artifacts": artifacts}]})
}

/// SHA-256 and MD5 of `body`, in hex.
pub fn digests(body: &[u8]) -> (String, String) {
    use md5::Digest;
    (
        hex::encode(sha2::Sha256::digest(body)),
        hex::encode(md5::Md5::digest(body)),
    )
}
