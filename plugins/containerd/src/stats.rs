//! Resource usage from the task's cgroup metrics (`Tasks.Metrics`), which
//! containerd reports as cgroup v1 or v2 messages depending on the host.

use crate::api::containerd::services::tasks::v1::{MetricsRequest, MetricsResponse};
use crate::api::io::containerd::cgroups::{v1, v2};
use crate::grpc::unary;
use gantry_sdk::backend::gantry::plugin::types::{ContainerStats, Error};
use gantry_sdk::wasip2::clocks::monotonic_clock;
use prost::Message;

/// Time between the two samples CPU percent is computed from.
const SAMPLE_NS: u64 = 100_000_000;

/// One sample of the figures gantry reports.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Sample {
    /// CPU time, ns.
    pub cpu_nanos: u64,
    /// Memory in use without the reclaimable page cache.
    pub memory_used: u64,
    /// The memory limit (the cgroup's; a huge value when unlimited).
    pub memory_limit: u64,
    /// Bytes read from block devices.
    pub io_read: u64,
    /// Bytes written to block devices.
    pub io_write: u64,
    /// Processes in the cgroup.
    pub pids: u64,
}

/// Decode a metrics `Any` by its type URL.
pub fn decode(type_url: &str, value: &[u8]) -> Result<Sample, Error> {
    let bad = |e: prost::DecodeError| Error::Backend(format!("undecodable metrics: {e}"));
    if type_url.ends_with("cgroups.v1.Metrics") {
        let m = v1::Metrics::decode(value).map_err(bad)?;
        let mem = m.memory.unwrap_or_default();
        let usage = mem.usage.unwrap_or_default();
        let (mut read, mut write) = (0, 0);
        for e in m.blkio.unwrap_or_default().io_service_bytes_recursive {
            match e.op.to_ascii_lowercase().as_str() {
                "read" => read += e.value,
                "write" => write += e.value,
                _ => {}
            }
        }
        Ok(Sample {
            cpu_nanos: m.cpu.and_then(|c| c.usage).map_or(0, |u| u.total),
            memory_used: usage.usage.saturating_sub(mem.total_inactive_file),
            memory_limit: usage.limit,
            io_read: read,
            io_write: write,
            pids: m.pids.map_or(0, |p| p.current),
        })
    } else if type_url.ends_with("cgroups.v2.Metrics") {
        let m = v2::Metrics::decode(value).map_err(bad)?;
        let mem = m.memory.unwrap_or_default();
        let (mut read, mut write) = (0, 0);
        for e in m.io.unwrap_or_default().usage {
            read += e.rbytes;
            write += e.wbytes;
        }
        Ok(Sample {
            cpu_nanos: m.cpu.map_or(0, |c| c.usage_usec.saturating_mul(1000)),
            memory_used: mem.usage.saturating_sub(mem.inactive_file),
            memory_limit: mem.usage_limit,
            io_read: read,
            io_write: write,
            pids: m.pids.map_or(0, |p| p.current),
        })
    } else {
        Err(Error::Backend(format!("unknown metrics type {type_url}")))
    }
}

fn one(id: &str) -> Result<Sample, Error> {
    let r: MetricsResponse = unary(
        "/containerd.services.tasks.v1.Tasks/Metrics",
        &MetricsRequest {
            filters: vec![format!("id=={id}")],
        },
    )?;
    let data = r
        .metrics
        .into_iter()
        .find(|m| m.id == id)
        .and_then(|m| m.data)
        .ok_or_else(|| Error::Conflict(format!("container {id} has no running task")))?;
    decode(&data.type_url, &data.value)
}

/// Usage of container `id` (named `name`), CPU percent over a short interval.
pub fn sample(id: &str, name: &str) -> Result<ContainerStats, Error> {
    let t0 = monotonic_clock::now();
    let a = one(id)?;
    monotonic_clock::subscribe_duration(SAMPLE_NS).block();
    let b = one(id)?;
    let elapsed = monotonic_clock::now().saturating_sub(t0).max(1);
    let cpu = b.cpu_nanos.saturating_sub(a.cpu_nanos) as f64;
    Ok(ContainerStats {
        container: name.to_string(),
        cpu_percent: cpu / elapsed as f64 * 100.0,
        cpu_total_nanos: b.cpu_nanos,
        memory_used_bytes: b.memory_used,
        memory_limit_bytes: b.memory_limit,
        io_read_bytes: b.io_read,
        io_write_bytes: b.io_write,
        // containerd 1.6's cgroup metrics have no network counters.
        net_rx_bytes: 0,
        net_tx_bytes: 0,
        pids: u32::try_from(b.pids).unwrap_or(u32::MAX),
        at: gantry_sdk::clock::now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_and_v2_metrics_decode_to_the_same_figures() {
        let m1 = v1::Metrics {
            cpu: Some(v1::CpuStat {
                usage: Some(v1::CpuUsage {
                    total: 5_000,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            memory: Some(v1::MemoryStat {
                total_inactive_file: 100,
                usage: Some(v1::MemoryEntry {
                    usage: 1100,
                    limit: 4096,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            pids: Some(v1::PidsStat {
                current: 3,
                limit: 0,
            }),
            ..Default::default()
        };
        let s1 = decode("io.containerd.cgroups.v1.Metrics", &m1.encode_to_vec()).expect("v1");
        let m2 = v2::Metrics {
            cpu: Some(v2::CpuStat {
                usage_usec: 5,
                ..Default::default()
            }),
            memory: Some(v2::MemoryStat {
                usage: 1100,
                inactive_file: 100,
                usage_limit: 4096,
                ..Default::default()
            }),
            pids: Some(v2::PidsStat {
                current: 3,
                limit: 0,
            }),
            ..Default::default()
        };
        let s2 = decode("io.containerd.cgroups.v2.Metrics", &m2.encode_to_vec()).expect("v2");
        assert_eq!(s1, s2);
        assert_eq!((s1.memory_used, s1.cpu_nanos, s1.pids), (1000, 5000, 3));
    }
}
