//! Real dockerd and containerd for the tests, from Debian's `docker.io`,
//! `containerd` and `runc`: data and sockets under one directory, loopback
//! only (`--bridge=none --iptables=false`), and a test image built from
//! Debian's `busybox-static` loaded into both engines (no registry is reachable).
//! A rootful `podman system service` (Debian's `podman`) runs beside them for
//! the Podman example backend, its state under the same directory; it is
//! started best-effort, so a host without Podman still runs the other tests.
//!
//! `cargo xtask test` starts them once for the whole run (`gantry-test-runtimes
//! start DIR`, then `GANTRY_TEST_RUNTIMES=DIR` for every test binary) and stops
//! them by PID afterwards. A test binary run on its own starts a private set
//! and stops it when the process exits. `cargo xtask serve` starts them for
//! a machine without a Docker engine: this crate does not link the host, so
//! that costs no second build of it. With the `engine` feature, the tests'
//! independent view of dockerd (bollard) comes too.

pub mod podman;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub use crate::podman::PodmanService;
use crate::podman::{spawn_podman, start_podman, stop_podman};

/// The test image, in both engines.
pub const TEST_IMAGE: &str = "gantry-test/busybox:1.0";
/// Stand-ins for the images the Container Service API's seed examples name.
pub const SEED_IMAGES: [&str; 2] = ["nginxdemos/hello:latest", "nginxdemos/hello:updated"];
/// The containerd namespace the image is loaded into.
pub const CONTAINERD_NAMESPACE: &str = "gantry";

/// Where the runtimes of this test run live.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Runtimes {
    /// Their common directory.
    pub dir: PathBuf,
    /// dockerd's API socket.
    pub docker_sock: PathBuf,
    /// containerd's gRPC socket.
    pub containerd_sock: PathBuf,
    /// PID of dockerd.
    pub dockerd_pid: u32,
    /// PID of containerd.
    pub containerd_pid: u32,
    /// The Podman service, when it started.
    #[serde(default)]
    pub podman: Option<PodmanService>,
    /// Why the Podman service did not start, when it did not.
    #[serde(default)]
    pub podman_error: Option<String>,
}

static SHARED: OnceLock<Runtimes> = OnceLock::new();

/// The runtimes of this test run: those named by `GANTRY_TEST_RUNTIMES`, or a
/// private set started now. Panics (failing the test) when they cannot start.
pub fn runtimes() -> &'static Runtimes {
    SHARED.get_or_init(|| {
        if let Some(dir) = std::env::var_os("GANTRY_TEST_RUNTIMES") {
            return Runtimes::load(Path::new(&dir))
                .expect("reading the runtimes named by GANTRY_TEST_RUNTIMES");
        }
        let dir = std::env::temp_dir().join(format!("gantry-rt-{}", std::process::id()));
        let rt = start(&dir)
            .unwrap_or_else(|e| panic!("cannot start dockerd/containerd for the tests: {e:#}"));
        extern "C" fn stop_private() {
            if let Some(rt) = SHARED.get() {
                let _ = stop(&rt.dir);
            }
        }
        // SAFETY: registering a plain extern "C" fn with no captured state.
        #[allow(unsafe_code)]
        unsafe {
            libc::atexit(stop_private);
        }
        rt
    })
}

impl Runtimes {
    fn state_file(dir: &Path) -> PathBuf {
        dir.join("runtimes.json")
    }

    /// Read the state written by [`start`].
    pub fn load(dir: &Path) -> Result<Runtimes> {
        let text = std::fs::read_to_string(Self::state_file(dir))
            .with_context(|| format!("{}", dir.display()))?;
        Ok(serde_json::from_str(&text)?)
    }

    fn save(&self) -> Result<()> {
        std::fs::write(
            Self::state_file(&self.dir),
            serde_json::to_string_pretty(self)?,
        )?;
        Ok(())
    }

    /// Where the containerd backend's logger writes (granted read-only to the plugin).
    pub fn containerd_logs(&self) -> PathBuf {
        self.dir.join("containerd-logs")
    }

    /// Kill containerd (SIGKILL) and start it again on the same data; its
    /// shims, and so its containers, keep running. Returns when it answers.
    pub fn restart_containerd(&self) -> Result<Runtimes> {
        let current = Runtimes::load(&self.dir)?;
        kill_pid(current.containerd_pid, libc::SIGKILL);
        wait_gone(current.containerd_pid);
        let _ = std::fs::remove_file(&self.containerd_sock);
        let pid = spawn_containerd(&self.dir)?;
        let mut next = current;
        next.containerd_pid = pid;
        next.save()?;
        Ok(next)
    }

    /// The Podman service; panics (failing the test) with the reason it did not start.
    pub fn podman(&self) -> &PodmanService {
        self.podman.as_ref().unwrap_or_else(|| {
            panic!(
                "the harness's Podman service is not running: {}",
                self.podman_error.as_deref().unwrap_or("not started")
            )
        })
    }

    /// Kill the Podman service (SIGKILL) and start it again on the same
    /// state; conmon keeps the containers running. Returns when it answers.
    pub fn restart_podman(&self) -> Result<Runtimes> {
        let current = Runtimes::load(&self.dir)?;
        let podman = current.podman().clone();
        kill_pid(podman.pid, libc::SIGKILL);
        wait_gone(podman.pid);
        let _ = std::fs::remove_file(&podman.sock);
        let pid = spawn_podman(&podman.dir)?;
        let mut next = current;
        next.podman = Some(PodmanService { pid, ..podman });
        next.save()?;
        Ok(next)
    }

    /// `unix://` URL of dockerd.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.docker_sock.display())
    }

    /// A bollard client for dockerd, version-negotiated (Debian's dockerd speaks 1.41).
    #[cfg(feature = "engine")]
    pub async fn docker(&self) -> bollard::Docker {
        let d = bollard::Docker::connect_with_unix(
            &self.docker_sock.display().to_string(),
            60,
            bollard::API_DEFAULT_VERSION,
        )
        .expect("bollard connects");
        d.negotiate_version()
            .await
            .expect("docker API version negotiation")
    }

    /// The containers dockerd holds for a workload (any revision, stopped ones
    /// included), read with bollard: an independent view of the engine.
    #[cfg(feature = "engine")]
    pub fn containers_of(&self, workload_id: &str) -> Vec<bollard::models::ContainerSummary> {
        self.containers_where("label", &format!("io.gantry.workload={workload_id}"))
    }

    /// dockerd's inspection of one container, read with bollard.
    #[cfg(feature = "engine")]
    pub fn inspect_docker(&self, id: &str) -> bollard::models::ContainerInspectResponse {
        block(async {
            self.docker()
                .await
                .inspect_container(
                    id,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
                .expect("inspect")
        })
    }

    /// The containers dockerd holds that match one list filter (`name`
    /// matches a part of the name), stopped ones included.
    #[cfg(feature = "engine")]
    pub fn containers_where(
        &self,
        filter: &str,
        value: &str,
    ) -> Vec<bollard::models::ContainerSummary> {
        let filters =
            std::collections::HashMap::from([(filter.to_string(), vec![value.to_string()])]);
        let options = bollard::query_parameters::ListContainersOptions {
            all: true,
            filters: Some(filters),
            ..Default::default()
        };
        block(async {
            self.docker()
                .await
                .list_containers(Some(options))
                .await
                .expect("list containers")
        })
    }

    /// Kill dockerd (SIGKILL) and start it again on the same data; returns when it answers.
    pub fn restart_dockerd(&self) -> Result<Runtimes> {
        kill_pid(self.dockerd_pid, libc::SIGKILL);
        wait_gone(self.dockerd_pid);
        // SIGKILL leaves the pid file behind, and dockerd refuses to start over one.
        let _ = std::fs::remove_file(self.dir.join("docker.pid"));
        let _ = std::fs::remove_file(&self.docker_sock);
        let pid = spawn_dockerd(&self.dir)?;
        wait_for_docker(&self.dir)?;
        let mut next = self.clone();
        next.dockerd_pid = pid;
        next.save()?;
        Ok(next)
    }
}

fn ensure_installed() -> Result<()> {
    let need = [
        ("dockerd", "docker.io"),
        ("containerd", "containerd"),
        ("runc", "runc"),
        ("busybox", "busybox-static"),
        ("ctr", "containerd"),
        ("docker-registry", "docker-registry"),
    ];
    let missing: Vec<&str> = need
        .iter()
        .filter(|(b, _)| which(b).is_none())
        .map(|(_, p)| *p)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let ok = Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    if !ok.is_ok_and(|s| s.success()) {
        let _ = Command::new("apt-get").args(["update", "-q"]).status();
        let s = Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(&missing)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()?;
        if !s.success() {
            bail!("apt-get install {missing:?} failed");
        }
    }
    Ok(())
}

/// Where `bin` is installed (the `PATH`, and the sbin directories a
/// non-login shell leaves out).
pub fn which(bin: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.extend(["/usr/sbin", "/sbin", "/usr/bin", "/usr/local/bin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(bin)).find(|p| p.is_file())
}

/// Spawn `cmd` as `name`, its output appended to `DIR/<name>.log`; its PID.
pub fn spawn_logged(dir: &Path, name: &str, cmd: &mut Command) -> Result<u32> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log))
        .spawn()
        .with_context(|| format!("spawning {name}"))?;
    Ok(child.id())
}

fn spawn_dockerd(dir: &Path) -> Result<u32> {
    let bin = which("dockerd").context("dockerd not installed")?;
    spawn_logged(
        dir,
        "dockerd",
        Command::new(bin)
            .arg("--data-root")
            .arg(dir.join("docker"))
            .arg("--exec-root")
            .arg(dir.join("docker-exec"))
            .arg("--pidfile")
            .arg(dir.join("docker.pid"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .arg("--containerd")
            .arg(dir.join("containerd.sock"))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip6tables=false",
                "--ip-masq=false",
            ]),
    )
}

fn spawn_containerd(dir: &Path) -> Result<u32> {
    let pid = spawn_logged(
        dir,
        "containerd",
        Command::new(which("containerd").context("containerd not installed")?)
            .arg("--config")
            .arg(dir.join("containerd.toml")),
    )?;
    let sock = dir.join("containerd.sock");
    wait_for("containerd", Duration::from_secs(30), || {
        std::os::unix::net::UnixStream::connect(&sock).is_ok()
    })?;
    Ok(pid)
}

/// Run `f` to completion on a runtime of its own: the blocking tests'
/// way to make an async client call (bollard).
#[cfg(feature = "engine")]
pub fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Poll `ready` until it holds; an error naming `what` after `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("{what} did not become ready within {timeout:?}")
}

fn docker_cli(dir: &Path) -> Command {
    let mut c = Command::new("docker");
    c.arg("-H")
        .arg(format!("unix://{}", dir.join("docker.sock").display()));
    c
}

fn wait_for_docker(dir: &Path) -> Result<()> {
    wait_for("dockerd", Duration::from_secs(60), || {
        docker_cli(dir)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
    .with_context(|| std::fs::read_to_string(dir.join("dockerd.log")).unwrap_or_default())
}

/// Start containerd and dockerd under `dir` and load the test image into both.
pub fn start(dir: &Path) -> Result<Runtimes> {
    ensure_installed()?;
    std::fs::create_dir_all(dir)?;
    let containerd_sock = dir.join("containerd.sock");
    let config = format!(
        "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\ndisabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]\n  address = \"{sock}\"\n",
        root = dir.join("containerd/root").display(),
        state = dir.join("containerd/state").display(),
        sock = containerd_sock.display()
    );
    std::fs::write(dir.join("containerd.toml"), config)?;
    let containerd_pid = spawn_containerd(dir)?;
    let dockerd_pid = spawn_dockerd(dir)?;
    wait_for_docker(dir)?;
    let rt = Runtimes {
        dir: dir.to_path_buf(),
        docker_sock: dir.join("docker.sock"),
        containerd_sock,
        dockerd_pid,
        containerd_pid,
        podman: None,
        podman_error: None,
    };
    rt.save()?;
    build_test_image(&rt)?;
    let mut rt = rt;
    match start_podman(dir) {
        Ok(p) => rt.podman = Some(p),
        Err(e) => {
            eprintln!("gantry-test-runtimes: Podman not started (its tests will fail): {e:#}");
            rt.podman_error = Some(format!("{e:#}"));
        }
    }
    rt.save()?;
    Ok(rt)
}

/// A root filesystem of busybox-static and its applets, imported into dockerd
/// and, through `docker save`, into containerd's `gantry` namespace.
fn build_test_image(rt: &Runtimes) -> Result<()> {
    let rootfs = rt.dir.join("rootfs");
    for d in ["bin", "tmp", "etc", "proc", "sys", "dev"] {
        std::fs::create_dir_all(rootfs.join(d))?;
    }
    std::fs::copy(
        which("busybox").context("busybox not installed")?,
        rootfs.join("bin/busybox"),
    )?;
    for applet in [
        "sh", "echo", "sleep", "cat", "ls", "nc", "wget", "env", "true", "false", "kill", "ps",
        "id", "hostname", "printf", "date", "seq", "yes", "head", "tail", "grep", "httpd", "dd",
        "mkdir", "rm", "trap", "wc",
    ] {
        let link = rootfs.join("bin").join(applet);
        if !link.exists() {
            std::os::unix::fs::symlink("busybox", link)?;
        }
    }
    std::fs::write(rootfs.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n")?;
    let tar = rt.dir.join("rootfs.tar");
    let s = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()?;
    if !s.success() {
        bail!("tar of the test rootfs failed");
    }
    let s = docker_cli(&rt.dir)
        .args([
            "import",
            "--change",
            "CMD [\"/bin/sh\"]",
            "--change",
            "ENV PATH=/bin",
        ])
        .arg(&tar)
        .arg(TEST_IMAGE)
        .stdout(Stdio::null())
        .status()?;
    if !s.success() {
        bail!("docker import of {TEST_IMAGE} failed");
    }
    // The seed's examples name nginxdemos/hello; no registry is reachable, so the same
    // busybox root filesystem stands in, serving a page on port 80 as that image does.
    std::fs::create_dir_all(rootfs.join("www"))?;
    std::fs::write(
        rootfs.join("www/index.html"),
        "hello from gantry's test image\n",
    )?;
    let web_tar = rt.dir.join("rootfs-www.tar");
    let s = Command::new("tar")
        .arg("-C")
        .arg(&rootfs)
        .arg("-cf")
        .arg(&web_tar)
        .arg(".")
        .status()?;
    if !s.success() {
        bail!("tar of the web rootfs failed");
    }
    for tag in SEED_IMAGES {
        let s = docker_cli(&rt.dir)
            .args([
                "import",
                "--change",
                r#"CMD ["/bin/httpd", "-f", "-p", "80", "-h", "/www"]"#,
                "--change",
                "ENV PATH=/bin",
            ])
            .arg(&web_tar)
            .arg(tag)
            .stdout(Stdio::null())
            .status()?;
        if !s.success() {
            bail!("docker import of {tag} failed");
        }
    }
    let save = docker_cli(&rt.dir)
        .args(["save", TEST_IMAGE])
        .args(SEED_IMAGES)
        .stdout(Stdio::piped())
        .spawn()?;
    let s = Command::new(which("ctr").context("ctr not installed")?)
        .arg("-a")
        .arg(&rt.containerd_sock)
        .args(["-n", CONTAINERD_NAMESPACE, "images", "import", "-"])
        .stdin(save.stdout.context("docker save output")?)
        .stdout(Stdio::null())
        .status()?;
    if !s.success() {
        bail!("ctr images import of the test images failed");
    }
    Ok(())
}

/// Send `sig` to a process of a container, from outside the runtime.
pub fn kill_process(pid: u32, sig: i32) {
    kill_pid(pid, sig);
}

/// Send `sig` to `pid` (a process the harness spawned).
pub fn kill_pid(pid: u32, sig: i32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) on a PID we spawned; no memory is involved.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Whether process `pid` still runs.
pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|s| s.split_whitespace().nth(2).is_none_or(|st| st != "Z"))
}

/// Wait (a while) for process `pid` to be gone.
pub fn wait_gone(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while alive(pid) && Instant::now() < deadline {
        // Reap it if it is our child.
        #[allow(unsafe_code)]
        // SAFETY: waitpid with WNOHANG on a PID; no memory is involved.
        unsafe {
            libc::waitpid(
                i32::try_from(pid).unwrap_or(0),
                std::ptr::null_mut(),
                libc::WNOHANG,
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Stop the runtimes recorded under `dir` by PID: Podman (its containers, then
/// its service), then dockerd's containers, dockerd and containerd.
pub fn stop(dir: &Path) -> Result<()> {
    let rt = Runtimes::load(dir)?;
    if let Some(p) = &rt.podman {
        stop_podman(p);
    }
    let _ = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "docker -H unix://{} ps -aq | xargs -r docker -H unix://{} rm -f",
            rt.docker_sock.display(),
            rt.docker_sock.display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    for pid in [rt.dockerd_pid, rt.containerd_pid] {
        kill_pid(pid, libc::SIGTERM);
        wait_gone(pid);
        if alive(pid) {
            kill_pid(pid, libc::SIGKILL);
            wait_gone(pid);
        }
    }
    // Leftover shims of containers that outlived dockerd.
    let _ = Command::new("pkill")
        .arg("-f")
        .arg(format!("containerd-shim.*{}", dir.display()))
        .status();
    Ok(())
}
