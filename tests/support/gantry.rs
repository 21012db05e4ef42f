//! A gantry process under test.

use crate::plugins::gantry_bin;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `gantry serve`. Killed when dropped.
pub struct Gantry {
    child: Option<Child>,
    /// Its listen port.
    pub port: u16,
    /// Its HTTPS port (`{tls_port}` in its config; free unless the config uses it).
    pub tls_port: u16,
    /// Its temp dir (config, state, cache, log).
    pub dir: PathBuf,
    config: PathBuf,
}

impl Gantry {
    /// Write `config` (with `{port}` and `{dir}` substituted) into `dir` and serve it.
    pub fn start_in(dir: &Path, config: &str) -> Gantry {
        let port = crate::free_port();
        let tls_port = crate::free_port();
        let text = config
            .replace("{port}", &port.to_string())
            .replace("{tls_port}", &tls_port.to_string())
            .replace("{dir}", &dir.display().to_string());
        let path = dir.join("gantry.toml");
        std::fs::write(&path, text).expect("writing gantry.toml");
        let mut g = Gantry {
            child: None,
            port,
            tls_port,
            dir: dir.to_path_buf(),
            config: path,
        };
        g.spawn();
        g
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("gantry.log"))
            .expect("log file");
        let child = Command::new(gantry_bin())
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("GANTRY_LOG", "info,gantry=debug")
            .env_remove("RUST_BACKTRACE")
            .stdout(Stdio::from(log.try_clone().expect("log clone")))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("spawning gantry");
        self.child = Some(child);
        self.wait_healthy();
    }

    fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!(
                    "gantry exited with {status} before becoming healthy:\n{}",
                    self.log()
                );
            }
            if reqwest::blocking::get(self.url("/healthz")).is_ok_and(|r| r.status().is_success()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "gantry did not answer /healthz within 120 s:\n{}",
            self.log()
        );
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// `https://127.0.0.1:<tls_port><path>`.
    pub fn https_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.tls_port)
    }

    /// The certificate authority of a self-signed HTTPS listener.
    pub fn authority(&self) -> PathBuf {
        self.dir.join("gantry-tls/ca.pem")
    }

    /// The process log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("gantry.log")).unwrap_or_default()
    }

    /// The gantry process's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL the process and wait for it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same config and state.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// The config file it serves.
    pub fn config_path(&self) -> &Path {
        &self.config
    }

    /// `gantry reload` against this process: whether it succeeded, and the
    /// host's report (JSON) or the command's error.
    pub fn reload(&self) -> (bool, serde_json::Value) {
        let out = Command::new(gantry_bin())
            .args(["reload", "--config"])
            .arg(&self.config)
            .env_remove("RUST_BACKTRACE")
            .output()
            .expect("gantry reload");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report = serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
            serde_json::Value::String(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
        });
        (out.status.success(), report)
    }

    /// Send the process SIGHUP (a reload whose report goes to its log).
    pub fn hangup(&self) {
        if let Some(pid) = self.pid() {
            crate::runtimes::kill_process(pid, libc::SIGHUP);
        }
    }

    /// Mint a token with the config's secret, through `gantry token`.
    pub fn token(&self, sub: &str, roles: &[&str]) -> String {
        self.token_in_tenant(sub, roles, None)
    }

    /// [`token`](Self::token), with `tenant` as its `tid` claim when given
    /// (what Azure clients read to learn the tenant they signed in to).
    pub fn token_in_tenant(&self, sub: &str, roles: &[&str], tenant: Option<&str>) -> String {
        let mut cmd = Command::new(gantry_bin());
        cmd.args(["token", "--config"])
            .arg(&self.config)
            .args(["--sub", sub]);
        for r in roles {
            cmd.args(["--role", r]);
        }
        if let Some(t) = tenant {
            cmd.args(["--tenant", t]);
        }
        let out = cmd.output().expect("gantry token");
        assert!(
            out.status.success(),
            "gantry token failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Gantry {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
