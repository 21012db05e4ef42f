//! An HTTP client bound to a gantry started on the harness's dockerd with
//! [`docker_config`](crate::rpc::docker_config): the way the frontend tests
//! talk to the REST and ARM APIs.

use crate::gantry::Gantry;
use reqwest::blocking::{Client, Response};
use serde_json::Value;
use std::time::Duration;

/// A live gantry and a client for it.
pub struct Api {
    /// The gantry process.
    pub g: Gantry,
    dir: tempfile::TempDir,
    /// The HTTP client.
    pub http: Client,
}

impl Api {
    /// Start gantry with `docker_config(resync_seconds)` in a fresh temp dir.
    pub fn start(resync_seconds: u64) -> Api {
        Self::start_with(&crate::rpc::docker_config(resync_seconds))
    }

    /// Start gantry serving the same frontends on another backend.
    pub fn start_on(backend: crate::backends::Backend, resync_seconds: u64) -> Api {
        Self::start_with(&backend.config(resync_seconds))
    }

    /// Start gantry on `config` (`{port}` and `{dir}` substituted) in a fresh temp dir.
    pub fn start_with(config: &str) -> Api {
        Self::start_in(tempfile::tempdir().expect("tempdir"), config)
    }

    /// Start gantry on `config` in `dir`, which the caller has prepared
    /// (and which lives as long as the returned [`Api`]).
    pub fn start_in(dir: tempfile::TempDir, config: &str) -> Api {
        let g = Gantry::start_in(dir.path(), config);
        Api {
            g,
            dir,
            http: Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("client"),
        }
    }

    /// The directory gantry runs in (`{dir}` in its config).
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// A token for `sub` with one role.
    pub fn token(&self, sub: &str, role: &str) -> String {
        self.g.token(sub, &[role])
    }

    /// Send a request to `target` (a path on this gantry, or an absolute URL).
    pub fn raw(
        &self,
        method: &str,
        target: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Response {
        let url = if target.starts_with("http") {
            target.to_string()
        } else {
            self.g.url(target)
        };
        let mut req = self.http.request(method.parse().expect("method"), url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        req.send().expect("request")
    }

    /// Send a request; status and JSON body (`Null` when empty).
    pub fn send(
        &self,
        method: &str,
        target: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let r = self.raw(method, target, token, body);
        let status = r.status().as_u16();
        let text = r.text().unwrap_or_default();
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{method} {target}: not JSON ({e}): {text}"))
        };
        (status, value)
    }
}
