//! The harness's rootful `podman system service` (Debian's `podman`), for
//! the Podman example backend: started beside dockerd and containerd by
//! [`crate::start`], its state under `DIR/podman` (vfs storage,
//! cgroupfs, file events and file locks, runc: nothing shared with another
//! Podman on the machine), the test image imported into it, and stopped by
//! PID with whatever conmon it left.

use crate::{TEST_IMAGE, alive, kill_pid, spawn_logged, wait_for, wait_gone, which};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// A rootful `podman system service` with all its state under `dir`: vfs
/// storage, cgroupfs, file events and file locks (so it shares nothing with
/// any other Podman on the machine), runc, and the libpod API on `sock`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PodmanService {
    /// Its directory (storage, run root, temp files, config, socket).
    pub dir: PathBuf,
    /// The API socket.
    pub sock: PathBuf,
    /// PID of `podman system service`.
    pub pid: u32,
}

impl PodmanService {
    /// The `podman` CLI on the same storage and config as the service:
    /// an independent view of what it holds.
    pub fn cli(&self) -> Command {
        podman_cli(&self.dir)
    }

    /// `unix://` URL of the service's socket.
    pub fn url(&self) -> String {
        format!("unix://{}", self.sock.display())
    }
}

fn podman_dir(dir: &Path) -> PathBuf {
    dir.join("podman")
}

/// The `podman` CLI on the harness's Podman state under `pdir`.
fn podman_cli(pdir: &Path) -> Command {
    let mut c = Command::new(which("podman").unwrap_or_else(|| PathBuf::from("podman")));
    c.env("CONTAINERS_CONF", pdir.join("containers.conf"))
        .env("CONTAINERS_REGISTRIES_CONF", pdir.join("registries.conf"))
        .arg("--root")
        .arg(pdir.join("root"))
        .arg("--runroot")
        .arg(pdir.join("run"))
        .arg("--tmpdir")
        .arg(pdir.join("tmp"))
        .args([
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
            // runc: crun refuses a cgroup v1 host whose unified hierarchy has controllers.
            "--runtime",
            "runc",
        ]);
    c
}

/// The hard limit of a resource of process `pid` ("self" or a number), as
/// `/proc/PID/limits` names it (e.g. "Max open files"), capped at Podman's
/// default of 1048576.
fn hard_limit(pid: &str, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/limits"))
        .ok()
        .and_then(|text| {
            let line = text.lines().find(|l| l.starts_with(name))?;
            line[name.len()..].split_whitespace().nth(1)?.parse().ok()
        })
        .map_or(1_048_576, |n: u64| n.min(1_048_576))
}

/// The `nofile` and `nproc` limits of `pid`, as containers get them.
fn container_limits(pid: &str) -> (u64, u64) {
    (
        hard_limit(pid, "Max open files"),
        hard_limit(pid, "Max processes"),
    )
}

/// Podman's config: runc, cgroupfs, file events and file locks (nothing
/// shared with another Podman on the machine), k8s-file logs, and container
/// ulimits the service can grant: Podman gives containers `nofile` and
/// `nproc` of 1048576 by default, above what a sandbox may let even root
/// raise to.
fn write_podman_conf(pdir: &Path, (nofile, nproc): (u64, u64)) -> Result<()> {
    std::fs::write(
        pdir.join("containers.conf"),
        format!(
            "[containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc={nproc}:{nproc}\"]\n\
             log_driver = \"k8s-file\"\n\n[engine]\nlock_type = \"file\"\n\
             events_logger = \"file\"\ncgroup_manager = \"cgroupfs\"\nruntime = \"runc\"\n",
        ),
    )?;
    Ok(())
}

fn install_podman() -> Result<()> {
    if which("podman").is_some() && which("catatonit").is_some() {
        return Ok(());
    }
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends"])
            .args(["podman", "catatonit"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|s| s.success())
    };
    if !install() {
        let _ = Command::new("apt-get")
            .args(["install", "-f", "-y", "-q"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status();
        if !install() {
            bail!("apt-get install podman catatonit failed");
        }
    }
    Ok(())
}

/// Whether libpod answers `_ping` on `sock`.
fn podman_answers(sock: &Path) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: podman\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.") && answer.contains(" 200 ")
}

pub(crate) fn spawn_podman(pdir: &Path) -> Result<u32> {
    let sock = pdir.join("podman.sock");
    let pid = spawn_logged(
        pdir,
        "podman",
        podman_cli(pdir)
            .args(["system", "service", "--time", "0"])
            .arg(format!("unix://{}", sock.display())),
    )?;
    wait_for("podman system service", Duration::from_secs(60), || {
        podman_answers(&sock)
    })
    .with_context(|| std::fs::read_to_string(pdir.join("podman.log")).unwrap_or_default())?;
    Ok(pid)
}

/// Start the Podman service under `dir/podman` and import the test image into it.
pub(crate) fn start_podman(dir: &Path) -> Result<PodmanService> {
    install_podman()?;
    let pdir = podman_dir(dir);
    for d in ["root", "run", "tmp"] {
        std::fs::create_dir_all(pdir.join(d))?;
    }
    let wanted = container_limits("self");
    write_podman_conf(&pdir, wanted)?;
    // No unqualified-search registries: a short name that is not here is
    // not found at once, never looked for on the network.
    std::fs::write(
        pdir.join("registries.conf"),
        "unqualified-search-registries = []\n",
    )?;
    let mut pid = spawn_podman(&pdir)?;
    // Podman lowers some of its own limits (nproc to 32768 as root): what
    // it cannot grant, runc cannot set. Start again with what it has.
    let granted = container_limits(&pid.to_string());
    if granted != wanted {
        kill_pid(pid, libc::SIGTERM);
        wait_gone(pid);
        write_podman_conf(&pdir, granted)?;
        pid = spawn_podman(&pdir)?;
    }
    let service = PodmanService {
        sock: pdir.join("podman.sock"),
        dir: pdir.clone(),
        pid,
    };
    let s = service
        .cli()
        .args([
            "import",
            "--quiet",
            "--change",
            "CMD [\"/bin/sh\"]",
            "--change",
            "ENV PATH=/bin",
        ])
        .arg(dir.join("rootfs.tar"))
        .arg(TEST_IMAGE)
        .stdout(Stdio::null())
        .status()?;
    if !s.success() {
        stop_podman(&service);
        bail!("podman import of {TEST_IMAGE} failed");
    }
    Ok(service)
}

/// Remove every container and pod of the service, then stop it by PID, and
/// any conmon left behind on its state.
pub(crate) fn stop_podman(p: &PodmanService) {
    for args in [["pod", "rm", "-a", "-f"], ["rm", "-a", "-f", "-v"]] {
        let _ = p
            .cli()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    kill_pid(p.pid, libc::SIGTERM);
    wait_gone(p.pid);
    if alive(p.pid) {
        kill_pid(p.pid, libc::SIGKILL);
        wait_gone(p.pid);
    }
    let marker = p.dir.display().to_string();
    for pid in processes_of("conmon", &marker) {
        kill_pid(pid, libc::SIGKILL);
    }
}

/// PIDs of processes named `comm` whose command line mentions `marker`.
fn processes_of(comm: &str, marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let name = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            name.trim() == comm && String::from_utf8_lossy(&cmdline).contains(marker)
        })
        .collect()
}
