//! A container's limits as the kernel applies them, read from its cgroup
//! (v1 or v2) through `/proc`: the same for every runtime on this machine.

use super::Limits;
use std::path::PathBuf;

fn read_number(path: PathBuf) -> Option<i64> {
    let text = std::fs::read_to_string(path).ok()?;
    let t = text.split_whitespace().next()?;
    if t == "max" || t == "-1" {
        return None;
    }
    t.parse().ok()
}

/// Limits from the container's cgroup, as the kernel applies them (v1 or v2).
pub(super) fn cgroup_limits(pid: u32) -> Limits {
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let path_of = |controller: &str| -> Option<PathBuf> {
        cgroups.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
            let hit = if controller.is_empty() {
                ctrls.is_empty()
            } else {
                ctrls.split(',').any(|c| c == controller)
            };
            hit.then(|| PathBuf::from(format!("/sys/fs/cgroup/{controller}{path}")))
        })
    };
    if let Some(unified) = path_of("").filter(|p| p.join("cpu.max").exists()) {
        let cpu = std::fs::read_to_string(unified.join("cpu.max")).unwrap_or_default();
        let mut f = cpu.split_whitespace();
        let quota: Option<i64> = f.next().and_then(|q| q.parse().ok());
        let period: Option<i64> = f.next().and_then(|p| p.parse().ok());
        return Limits {
            nano_cpus: quota.zip(period).map(|(q, p)| q * 1_000_000_000 / p),
            memory: read_number(unified.join("memory.max")),
            pids: read_number(unified.join("pids.max")),
        };
    }
    let quota = path_of("cpu").and_then(|p| read_number(p.join("cpu.cfs_quota_us")));
    let period = path_of("cpu").and_then(|p| read_number(p.join("cpu.cfs_period_us")));
    Limits {
        nano_cpus: quota.zip(period).map(|(q, p)| q * 1_000_000_000 / p),
        memory: path_of("memory")
            .and_then(|p| read_number(p.join("memory.limit_in_bytes")))
            .filter(|m| *m < i64::MAX / 2),
        pids: path_of("pids").and_then(|p| read_number(p.join("pids.max"))),
    }
}
