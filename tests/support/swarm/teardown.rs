//! Tearing a swarm down by PID: dockerd first (it stops its containers and
//! unmounts most of what it mounted), then what a killed dockerd left
//! running in the nodes' cgroups, containerd's shims, containerd, leftover
//! mounts, the namespaces, cgroups and directory.

use super::{Swarm, quiet};
use crate::runtimes::{alive, kill_pid, wait_for, wait_gone};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

impl Swarm {
    /// Stop everything of this swarm (idempotent: what is gone is skipped).
    pub(super) fn stop(&self) {
        // dockerd first: it stops its containers and unmounts most of what
        // it mounted. (One killed by `kill_dockerd` is no longer listed.)
        let dockerds: Vec<u32> = self.nodes.iter().filter_map(|n| n.dockerd).collect();
        stop_all(&dockerds, Duration::from_secs(20));
        // Containers left running (a dockerd killed): their cgroups are ours.
        let mut left = Vec::new();
        for n in &self.nodes {
            left.extend(cgroup_pids(&format!("{}-n{}", self.prefix, n.index)));
        }
        stop_all(&left, Duration::from_secs(1));
        let mut shims = Vec::new();
        for n in &self.nodes {
            shims.extend(shim_pids(&n.dir.join("containerd.sock")));
        }
        stop_all(&shims, Duration::from_secs(5));
        let containerds: Vec<u32> = self.nodes.iter().map(|n| n.containerd).collect();
        stop_all(&containerds, Duration::from_secs(10));
        unmount_under(&self.dir);
        for n in 1..=3 {
            let _ =
                quiet(Command::new("ip").args(["netns", "del", &format!("{}-n{n}", self.prefix)]));
            remove_cgroups(&format!("{}-n{n}", self.prefix));
        }
        let _ = quiet(Command::new("ip").args(["netns", "del", &self.bridge_ns()]));
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        self.stop();
    }
}

/// TERM, a grace period, then KILL.
fn stop_all(pids: &[u32], grace: Duration) {
    for &p in pids {
        kill_pid(p, libc::SIGTERM);
    }
    let _ = wait_for("processes to stop", grace, || {
        pids.iter().all(|&p| !alive(p))
    });
    for &p in pids.iter().filter(|&&p| alive(p)) {
        kill_pid(p, libc::SIGKILL);
        wait_gone(p);
    }
}

/// Processes in the cgroups dockerd made under `parent`.
fn cgroup_pids(parent: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") else {
        return pids;
    };
    for c in controllers.flatten() {
        let root = c.path().join(parent);
        for dir in subdirs(&root) {
            if let Ok(s) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                pids.extend(s.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
            }
        }
    }
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// `dir` and every directory under it, deepest first.
fn subdirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                out.extend(subdirs(&e.path()));
            }
        }
    }
    if dir.is_dir() {
        out.push(dir.to_path_buf());
    }
    out
}

fn remove_cgroups(parent: &str) {
    let Ok(controllers) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for c in controllers.flatten() {
        for dir in subdirs(&c.path().join(parent)) {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// containerd shims started for the containerd at `sock` (their command
/// line names its address).
fn shim_pids(sock: &Path) -> Vec<u32> {
    let want = sock.display().to_string();
    let mut pids = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(p.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let is_shim = args.first().is_some_and(|a| a.contains("containerd-shim"));
        if is_shim && args.windows(2).any(|w| w[0] == "-address" && w[1] == want) {
            pids.push(pid);
        }
    }
    pids
}

/// Unmount everything mounted under `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let prefix = format!("{}/", dir.display());
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<&str> = info
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    points.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in points {
        let _ = quiet(Command::new("umount").args(["-l", m]));
    }
}
