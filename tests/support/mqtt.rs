//! MQTT for the Kanto tests: a real mosquitto (Debian's) started per test,
//! with persistence so a restart keeps queued messages, and an independent
//! test client that records everything published to it.

use rumqttc::{Client, Connection, Event, MqttOptions, Packet, Publish, QoS};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// A mosquitto on 127.0.0.1, killed when dropped.
pub struct Mosquitto {
    child: Option<Child>,
    /// Its port.
    pub port: u16,
    dir: PathBuf,
}

impl Mosquitto {
    /// Start mosquitto with its config and persistence under `dir`. It keeps
    /// running as the test's user (`user root`): dropping to `mosquitto`
    /// would leave it unable to write its persistence into the temp dir.
    pub fn start(dir: &Path) -> Mosquitto {
        let port = crate::free_port();
        let data = dir.join("mosquitto");
        std::fs::create_dir_all(&data).expect("mosquitto dir");
        std::fs::write(
            data.join("mosquitto.conf"),
            format!(
                "user root\nlistener {port} 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\npersistence true\npersistence_location {}/\nautosave_interval 1\nlog_dest file {}/mosquitto.log\n",
                data.display(),
                data.display()
            ),
        )
        .expect("mosquitto.conf");
        let mut m = Mosquitto {
            child: None,
            port,
            dir: data,
        };
        m.spawn();
        m
    }

    fn spawn(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(self.dir.join("mosquitto.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting mosquitto (Debian package `mosquitto`)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stop gracefully (SIGTERM: mosquitto saves its persistence) and start again.
    pub fn restart(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SIGTERM, not Child::kill's SIGKILL: mosquitto saves its state on TERM.
            crate::runtimes::kill_pid(c.id(), libc::SIGTERM);
            let _ = c.wait();
        }
        self.spawn();
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// An MQTT client of the test, with every message it receives queued.
pub struct TestClient {
    /// The client.
    pub client: Client,
    received: Receiver<Publish>,
    acked: Receiver<u16>,
}

impl TestClient {
    /// Connect to 127.0.0.1:`port` as `id` with a persistent session and
    /// subscribe to `filters` at QoS 1.
    pub fn connect(port: u16, id: &str, filters: &[&str]) -> TestClient {
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options
            .set_keep_alive(Duration::from_secs(5))
            .set_clean_session(false)
            .set_max_packet_size(4 << 20, 4 << 20);
        let (client, mut connection) = Client::new(options, 64);
        connection.eventloop.network_options.set_tcp_nodelay(true);
        let (tx, received) = channel();
        let (ack_tx, acked) = channel();
        std::thread::spawn(move || pump(connection, tx, ack_tx));
        for f in filters {
            client.subscribe(*f, QoS::AtLeastOnce).expect("subscribe");
        }
        // Give the broker the subscriptions before anything is published.
        std::thread::sleep(Duration::from_millis(300));
        TestClient {
            client,
            received,
            acked,
        }
    }

    /// Publish at QoS 1 and wait for the broker's acknowledgement.
    pub fn publish_acked(&self, topic: &str, payload: &str) {
        self.publish_bytes_acked(topic, payload.as_bytes());
    }

    /// [`Self::publish_acked`] for a payload of any bytes.
    pub fn publish_bytes_acked(&self, topic: &str, payload: &[u8]) {
        while self.acked.try_recv().is_ok() {}
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload.to_vec())
            .expect("publish");
        self.acked
            .recv_timeout(Duration::from_secs(10))
            .expect("PUBACK from the broker");
    }

    /// The next message matching `pred` within `timeout`, skipping others.
    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&str, &Value) -> bool,
    ) -> (String, Value) {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.received.recv_timeout(left) {
                Ok(p) => {
                    let v: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
                    if pred(&p.topic, &v) {
                        return (p.topic, v);
                    }
                    seen.push(format!("{} {}", p.topic, v));
                }
                Err(RecvTimeoutError::Timeout) | Err(RecvTimeoutError::Disconnected) => {
                    panic!("no {what} within {timeout:?}; saw:\n{}", seen.join("\n"))
                }
            }
        }
    }

    /// Send a command to Kanto thing `thing` (`namespace:name`) the way
    /// Kanto's cloud side does, and return the response envelope (the
    /// client must be subscribed to `command//+/res/#`).
    pub fn kanto_command(
        &self,
        thing: &str,
        (req_id, feature, op): (&str, &str, &str),
        value: Value,
        timeout: Duration,
    ) -> Value {
        self.kanto_send(thing, (req_id, feature, op), value);
        let prefix = format!("command//{thing}/res/{req_id}/");
        let (topic, env) = self.wait_for(&format!("a response to {req_id}"), timeout, |t, _| {
            t.starts_with(&prefix)
        });
        let status = topic.rsplit('/').next().unwrap_or("").to_string();
        assert_eq!(
            status,
            env["status"].to_string(),
            "status in topic and envelope: {topic} {env}"
        );
        assert_eq!(env["headers"]["correlation-id"], format!("corr-{req_id}"));
        env
    }

    /// Send a command as [`TestClient::kanto_command`] does, without
    /// waiting for its response.
    pub fn kanto_send(&self, thing: &str, (req_id, feature, op): (&str, &str, &str), value: Value) {
        let ditto = thing.replacen(':', "/", 1);
        let payload = serde_json::json!({
            "topic": format!("{ditto}/things/live/messages/{op}"),
            "headers": {"response-required": true, "content-type": "application/json", "correlation-id": format!("corr-{req_id}")},
            "path": format!("/features/{feature}/inbox/messages/{op}"),
            "value": value,
        });
        self.publish_acked(
            &format!("command//{thing}/req/{req_id}/{op}"),
            &payload.to_string(),
        );
    }

    /// Hand every message, in order, to `step` until it decides: `Ok` ends,
    /// `Err` fails the test with its reason (and what came before), as
    /// Kanto's integration tests process Ditto's events.
    pub fn process(
        &self,
        what: &str,
        timeout: Duration,
        mut step: impl FnMut(&str, &Value) -> Option<Result<(), String>>,
    ) {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let p = match self.received.recv_timeout(left) {
                Ok(p) => p,
                Err(_) => panic!(
                    "{what}: no decision within {timeout:?}; saw:\n{}",
                    seen.join("\n")
                ),
            };
            let v: Value = serde_json::from_slice(&p.payload).unwrap_or(Value::Null);
            seen.push(format!("{} {v}", p.topic));
            match step(&p.topic, &v) {
                None => {}
                Some(Ok(())) => return,
                Some(Err(why)) => panic!("{what}: {why}; saw:\n{}", seen.join("\n")),
            }
        }
    }

    /// Everything received within `quiet`, until nothing more comes.
    pub fn drain(&self, quiet: Duration) -> Vec<(String, Value)> {
        let mut out = Vec::new();
        while let Ok(p) = self.received.recv_timeout(quiet) {
            out.push((
                p.topic.clone(),
                serde_json::from_slice(&p.payload).unwrap_or(Value::Null),
            ));
        }
        out
    }
}

fn pump(
    mut connection: Connection,
    tx: std::sync::mpsc::Sender<Publish>,
    acked: std::sync::mpsc::Sender<u16>,
) {
    for event in connection.iter() {
        match event {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if tx.send(p).is_err() {
                    return;
                }
            }
            Ok(Event::Incoming(Packet::PubAck(a))) => {
                let _ = acked.send(a.pkid);
            }
            Ok(_) => {}
            // The broker restarting: the iterator reconnects on the next call.
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// A config serving the Kanto plugin on `broker` (with `listen` for an
/// embedded one) as device `edge:device` of tenant `t1`, REST at `/v1`, and
/// the Docker plugin on the harness's dockerd.
pub fn kanto_config(broker: &str, listen: Option<u16>) -> String {
    kanto_config_with(
        broker,
        listen,
        "config = { device-id = \"edge:device\", tenant-id = \"t1\" }\n",
    )
}

/// [`kanto_config`] with the plugin's `config` line given (empty: the
/// device is learnt through Kanto's bootstrap).
pub fn kanto_config_with(broker: &str, listen: Option<u16>, plugin_config: &str) -> String {
    kanto_config_on(
        crate::backends::Backend::Docker,
        broker,
        listen,
        plugin_config,
    )
}

/// [`kanto_config_with`] on the given backend.
pub fn kanto_config_on(
    backend: crate::backends::Backend,
    broker: &str,
    listen: Option<u16>,
    plugin_config: &str,
) -> String {
    use crate::plugins;
    let listen = listen
        .map(|p| format!(", listen = \"127.0.0.1:{p}\""))
        .unwrap_or_default();
    let b = crate::config::ConfigBuilder::new("kanto-tests")
        .resync_seconds(2)
        .limit("call_timeout_ms", 10_000)
        .http_frontend("rest", &plugins::rest(), "/v1")
        .mqtt_frontend(
            "kanto",
            &plugins::kanto(),
            &format!(
                "broker = \"{broker}\"{listen}, client_id = \"gantry-kanto-{{port}}\", subject = \"kanto-device\", roles = [\"ADMIN\"]"
            ),
            plugin_config,
        );
    backend.configure(b).build()
}
