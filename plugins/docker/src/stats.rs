//! Resource usage from the engine's one-shot stats.

use crate::engine::{call, error};
use crate::mapping::labels;
use crate::members::{id, label, targets};
use bollard_stubs::models::ContainerStatsResponse;
use gantry_sdk::backend::exports::gantry::plugin::driver::InstanceRef;
use gantry_sdk::backend::gantry::plugin::types::{ContainerStats, Error};
use gantry_sdk::clock::now;
use gantry_sdk::wasip2::http::types::Method;

pub(crate) fn stats(r: &InstanceRef, container: Option<&str>) -> Result<ContainerStats, Error> {
    let t = targets(r, container)?;
    let c = t
        .first()
        .ok_or_else(|| Error::NotFound("no container".into()))?;
    let resp = call(
        Method::Get,
        &format!("/containers/{}/stats?stream=false", id(c)?),
        None,
    )?;
    if resp.status != 200 {
        return Err(error(&resp, "stats"));
    }
    let s: ContainerStatsResponse = resp.json()?;
    let cpu = s.cpu_stats.as_ref();
    let pre = s.precpu_stats.as_ref();
    let total = |c: Option<&bollard_stubs::models::ContainerCpuStats>| {
        c.and_then(|c| c.cpu_usage.as_ref())
            .and_then(|u| u.total_usage)
            .unwrap_or(0)
    };
    let system = |c: Option<&bollard_stubs::models::ContainerCpuStats>| {
        c.and_then(|c| c.system_cpu_usage).unwrap_or(0)
    };
    let cpu_delta = total(cpu).saturating_sub(total(pre)) as f64;
    let sys_delta = system(cpu).saturating_sub(system(pre)) as f64;
    let online = cpu
        .and_then(|c| c.online_cpus)
        .map(f64::from)
        .unwrap_or(1.0);
    let mem = s.memory_stats.as_ref();
    let usage = mem.and_then(|m| m.usage).unwrap_or(0);
    let cache = mem
        .and_then(|m| m.stats.as_ref())
        .and_then(|st| {
            st.get("inactive_file")
                .or_else(|| st.get("total_inactive_file"))
                .or_else(|| st.get("cache"))
                .copied()
        })
        .unwrap_or(0);
    let (mut read, mut write) = (0u64, 0u64);
    for e in s
        .blkio_stats
        .as_ref()
        .and_then(|b| b.io_service_bytes_recursive.as_ref())
        .into_iter()
        .flatten()
    {
        match e.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => read += e.value.unwrap_or(0),
            Some("write") => write += e.value.unwrap_or(0),
            _ => {}
        }
    }
    let (rx, tx) = s.networks.as_ref().map_or((0, 0), |n| {
        n.values().fold((0u64, 0u64), |(r, t), v| {
            (r + v.rx_bytes.unwrap_or(0), t + v.tx_bytes.unwrap_or(0))
        })
    });
    Ok(ContainerStats {
        container: label(c, labels::CONTAINER).unwrap_or("").to_string(),
        cpu_percent: if sys_delta > 0.0 {
            cpu_delta / sys_delta * online * 100.0
        } else {
            0.0
        },
        cpu_total_nanos: total(cpu),
        memory_used_bytes: usage.saturating_sub(cache),
        memory_limit_bytes: mem.and_then(|m| m.limit).unwrap_or(0),
        io_read_bytes: read,
        io_write_bytes: write,
        net_rx_bytes: rx,
        net_tx_bytes: tx,
        pids: s
            .pids_stats
            .as_ref()
            .and_then(|p| p.current)
            .and_then(|p| u32::try_from(p).ok())
            .unwrap_or(0),
        at: now(),
    })
}
