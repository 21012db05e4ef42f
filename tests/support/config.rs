//! The one way tests write a gantry config: a builder over the TOML, with
//! `{port}` and `{dir}` left for [`Gantry`](crate::gantry::Gantry) to fill in.

use std::fmt::Write;
use std::path::Path;

/// A gantry config under construction.
#[derive(Debug, Clone)]
pub struct ConfigBuilder {
    state: String,
    resync_seconds: Option<u64>,
    tls: bool,
    secret: String,
    limits: Vec<(String, String)>,
    tables: String,
}

impl ConfigBuilder {
    /// Listening on `127.0.0.1:{port}`, state in `{dir}/state.db`, component
    /// cache in `{dir}/cache`, tokens signed with `secret`.
    pub fn new(secret: &str) -> Self {
        Self {
            state: "{dir}/state.db".into(),
            resync_seconds: None,
            tls: false,
            secret: secret.into(),
            limits: Vec::new(),
            tables: String::new(),
        }
    }

    /// Keep the state in memory.
    pub fn in_memory(mut self) -> Self {
        self.state = ":memory:".into();
        self
    }

    /// Seconds between full reconciliations.
    pub fn resync_seconds(mut self, s: u64) -> Self {
        self.resync_seconds = Some(s);
        self
    }

    /// An HTTPS listener on `127.0.0.1:{tls_port}` with a self-signed
    /// certificate gantry makes in `{dir}/gantry-tls` (beside the state).
    pub fn tls_self_signed(mut self) -> Self {
        self.tls = true;
        self
    }

    /// A `[limits]` entry, e.g. `("call_timeout_ms", "1000")`.
    pub fn limit(mut self, key: &str, value: impl ToString) -> Self {
        self.limits.push((key.into(), value.to_string()));
        self
    }

    /// An HTTP frontend mounted under `prefix`.
    pub fn http_frontend(self, name: &str, plugin: &Path, prefix: &str) -> Self {
        self.http_frontend_with(name, plugin, &format!("prefix = \"{prefix}\""), "")
    }

    /// An HTTP frontend with the inside of its `http = { ... }` table and
    /// extra lines (`config = ...`, `endpoints = ...`) given.
    pub fn http_frontend_with(
        mut self,
        name: &str,
        plugin: &Path,
        http: &str,
        extra: &str,
    ) -> Self {
        let _ = write!(
            self.tables,
            "[[frontend]]\nname = \"{name}\"\nplugin = \"{}\"\nhttp = {{ {http} }}\n{extra}\n",
            plugin.display()
        );
        self
    }

    /// The ARM frontend, at `/subscriptions` and `/providers` as Azure's
    /// resource manager serves it.
    pub fn arm_frontend(self) -> Self {
        self.http_frontend_with(
            "arm",
            &crate::plugins::arm(),
            "prefix = \"/subscriptions\", extra_prefixes = [\"/providers\"]",
            "",
        )
    }

    /// The Kanto frontend on an embedded broker at `127.0.0.1:{port}`, as
    /// device `edge:device` of tenant `t1` acting as `kanto-device` (ADMIN),
    /// with `extra` lines in its table.
    pub fn kanto_embedded(self, port: u16, extra: &str) -> Self {
        self.mqtt_frontend(
            "kanto",
            &crate::plugins::kanto(),
            &format!(
                "broker = \"embedded\", listen = \"127.0.0.1:{port}\", subject = \"kanto-device\", roles = [\"ADMIN\"]"
            ),
            &format!("settings = {{ device-id = \"edge:device\", tenant-id = \"t1\" }}\n{extra}"),
        )
    }

    /// An MQTT frontend with the inside of its `mqtt = { ... }` table and
    /// extra lines given.
    pub fn mqtt_frontend(mut self, name: &str, plugin: &Path, mqtt: &str, extra: &str) -> Self {
        let _ = write!(
            self.tables,
            "[[frontend]]\nname = \"{name}\"\nplugin = \"{}\"\nmqtt = {{ {mqtt} }}\n{extra}\n",
            plugin.display()
        );
        self
    }

    /// The Docker backend on the test run's dockerd.
    pub fn docker_backend(mut self) -> Self {
        let _ = write!(
            self.tables,
            "[[backend]]\nname = \"docker\"\nplugin = \"{}\"\nendpoints = {{ engine = \"{}\" }}\n\n",
            crate::plugins::docker().display(),
            crate::runtimes::runtimes().docker_host()
        );
        self
    }

    /// The Podman example backend (`examples/podman-backend`) on the test
    /// run's Podman service, granted its libpod socket as `podman`.
    pub fn podman_backend(mut self) -> Self {
        let _ = write!(
            self.tables,
            "[[backend]]\nname = \"podman\"\nplugin = \"{}\"\nendpoints = {{ podman = \"{}\" }}\n\n",
            crate::plugins::podman_backend().display(),
            crate::runtimes::runtimes().podman().url()
        );
        self
    }

    /// The containerd backend on the test run's containerd, in the namespace
    /// the test image is loaded into, logging through gantry's logger into a
    /// directory granted read-only.
    pub fn containerd_backend(self) -> Self {
        self.containerd_backend_pulling_from(None)
    }

    /// [`Self::containerd_backend`], granted the registry at `registry`
    /// (`host:port`) to pull images it does not have.
    pub fn containerd_backend_pulling_from(mut self, registry: Option<&str>) -> Self {
        let rt = crate::runtimes::runtimes();
        let logs = rt.containerd_logs();
        let (grant, registries) = match registry {
            Some(r) => (
                format!(", registry = \"http://{r}\""),
                format!(", registries = \"{r}=registry\""),
            ),
            None => (String::new(), String::new()),
        };
        let _ = write!(
            self.tables,
            "[[backend]]\nname = \"containerd\"\nplugin = \"{}\"\n\
             endpoints = {{ containerd = {{ url = \"unix://{}\", http2 = true }}{grant} }}\n\
             read_dirs = [\"{}\"]\n\
             config = {{ namespace = \"{}\", logger = \"{}\", log_dir = \"{}\"{registries} }}\n\n",
            crate::plugins::containerd().display(),
            rt.containerd_sock.display(),
            logs.display(),
            crate::runtimes::CONTAINERD_NAMESPACE,
            crate::plugins::containerd_logger().display(),
            logs.display(),
        );
        self
    }

    /// The swarm backend on `managers` (manager sockets, tried in order),
    /// granted as `m1`, `m2`...; timings short for tests (2 s stop grace,
    /// no restart delay, 3 s update monitor), 120 s per call.
    pub fn swarm_backend(mut self, managers: &[&Path]) -> Self {
        let grants: Vec<String> = managers
            .iter()
            .enumerate()
            .map(|(i, p)| format!("m{} = \"unix://{}\"", i + 1, p.display()))
            .collect();
        let names: Vec<String> = (1..=managers.len()).map(|i| format!("m{i}")).collect();
        let _ = write!(
            self.tables,
            "[[backend]]\nname = \"swarm\"\nplugin = \"{}\"\nendpoints = {{ {} }}\n\
             limits = {{ call_timeout_ms = 120000 }}\n\
             config = {{ managers = \"{}\", stop-grace-ms = \"2000\", restart-delay-ms = \"0\", \
             update-monitor-ms = \"3000\", converge-timeout-ms = \"90000\" }}\n\n",
            crate::plugins::swarm().display(),
            grants.join(", "),
            names.join(","),
        );
        self
    }

    /// The stall fixture as a backend ([`stall_backend`]).
    pub fn stall_backend(self, stall: &str, answer_timeout_ms: Option<u64>) -> Self {
        self.raw(&stall_backend(stall, answer_timeout_ms))
    }

    /// Raw TOML appended as it is.
    pub fn raw(mut self, text: &str) -> Self {
        self.tables.push_str(text);
        self
    }

    /// The config text.
    pub fn build(&self) -> String {
        let mut out = format!(
            "[server]\nlisten = \"127.0.0.1:{{port}}\"\nstate = \"{}\"\ncache_dir = \"{{dir}}/cache\"\n",
            self.state
        );
        if let Some(s) = self.resync_seconds {
            let _ = writeln!(out, "resync_seconds = {s}");
        }
        if self.tls {
            out.push_str("\n[server.tls]\nlisten = \"127.0.0.1:{tls_port}\"\nself_signed = true\n");
        }
        let _ = write!(out, "\n[auth]\ndev_secret = \"{}\"\n\n", self.secret);
        if !self.limits.is_empty() {
            out.push_str("[limits]\n");
            for (k, v) in &self.limits {
                let _ = writeln!(out, "{k} = {v}");
            }
            out.push('\n');
        }
        out.push_str(&self.tables);
        out
    }
}

/// The table of the stall fixture as backend `stall`: it never answers the
/// calls `stall` names (`create,remove`, `*`; none when empty) and answers
/// the others at once, within `answer_timeout_ms` when given.
pub fn stall_backend(stall: &str, answer_timeout_ms: Option<u64>) -> String {
    let limits = answer_timeout_ms
        .map(|ms| format!("limits = {{ answer_timeout_ms = {ms} }}\n"))
        .unwrap_or_default();
    format!(
        "[[backend]]\nname = \"stall\"\nplugin = \"{}\"\n{limits}settings = {{ stall = \"{stall}\" }}\n\n",
        crate::plugins::stall_backend().display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_config_gantry_parses() {
        let text = ConfigBuilder::new("s")
            .in_memory()
            .resync_seconds(2)
            .limit("call_timeout_ms", 1000)
            .http_frontend("fx", Path::new("/x/fx.wasm"), "/fx")
            .mqtt_frontend("m", Path::new("/x/m.wasm"), "broker = \"embedded\"", "")
            .build()
            .replace("{port}", "1")
            .replace("{dir}", "/tmp");
        let c = gantry::config::Config::parse(&text, "test", "/".into()).expect("parses");
        assert_eq!(c.frontends.len(), 2);
        assert_eq!(c.limits.call_timeout_ms, 1000);
        assert_eq!(c.server.resync_seconds, 2);
        assert_eq!(c.server.state, ":memory:");
    }
}
