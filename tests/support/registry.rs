//! A private image registry for a test: Debian's `docker-registry`
//! (distribution 2.8) on a loopback port, storage under the test's temp
//! directory, stopped by PID when dropped. Images get into it with
//! `docker push` from the harness's dockerd (which trusts registries on
//! 127.0.0.0/8 without TLS).

use crate::runtimes::runtimes;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running registry.
pub struct Registry {
    child: Child,
    /// Its `host:port`.
    pub address: String,
}

impl Registry {
    /// Start one with its storage under `dir`; returns once it answers.
    pub fn start(dir: &Path) -> Registry {
        let port = crate::free_port();
        let data = dir.join("registry");
        std::fs::create_dir_all(&data).expect("registry dir");
        let config = data.join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
                data.join("store").display()
            ),
        )
        .expect("registry config");
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry (Debian package `docker-registry`)");
        let r = Registry {
            child,
            address: format!("127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::blocking::get(format!("http://{}/v2/", r.address)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
        r
    }

    /// Tag the harness's `image` as `<registry>/<repository>` and push it; returns the reference.
    pub fn push(&self, image: &str, repository: &str) -> String {
        let target = format!("{}/{repository}", self.address);
        let docker = |args: &[&str]| {
            let out = Command::new("docker")
                .arg("-H")
                .arg(runtimes().docker_host())
                .args(args)
                .output()
                .expect("docker");
            assert!(
                out.status.success(),
                "docker {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        docker(&["tag", image, &target]);
        docker(&["push", &target]);
        docker(&["rmi", &target]);
        target
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
