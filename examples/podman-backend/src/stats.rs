//! Resource usage from libpod's one-shot stats, which (unlike Docker's)
//! come already summed up: CPU percent, memory less cache, block and network I/O.

use crate::client::{call, error};
use crate::members::targets;
use gantry_sdk::backend::exports::gantry::plugin::driver::InstanceRef;
use gantry_sdk::backend::gantry::plugin::types::{ContainerStats, Error};
use gantry_sdk::clock::now;
use gantry_sdk::wasip2::http::types::Method;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Report {
    #[serde(rename = "Error", default)]
    error: Option<serde_json::Value>,
    #[serde(rename = "Stats", default)]
    stats: Vec<Sample>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Sample {
    #[serde(rename = "CPU")]
    cpu: f64,
    #[serde(rename = "CPUNano")]
    cpu_nano: u64,
    #[serde(rename = "MemUsage")]
    mem_usage: u64,
    #[serde(rename = "MemLimit")]
    mem_limit: u64,
    #[serde(rename = "BlockInput")]
    block_input: u64,
    #[serde(rename = "BlockOutput")]
    block_output: u64,
    #[serde(rename = "NetInput")]
    net_input: u64,
    #[serde(rename = "NetOutput")]
    net_output: u64,
    #[serde(rename = "PIDs")]
    pids: u64,
}

/// `driver.stats` of one container (the first, when none is named).
pub fn stats(r: &InstanceRef, container: Option<&str>) -> Result<ContainerStats, Error> {
    let t = targets(r, container)?;
    let c = t
        .first()
        .ok_or_else(|| Error::NotFound("no container".into()))?;
    let resp = call(
        Method::Get,
        &format!("/containers/stats?containers={}&stream=false", c.id),
        None,
    )?;
    if resp.status != 200 {
        return Err(error(&resp, "stats"));
    }
    let report: Report = resp.json()?;
    if let Some(e) = report.error.filter(|e| !e.is_null()) {
        return Err(Error::Backend(format!("stats of {}: {e}", c.member())));
    }
    let s = report.stats.into_iter().next().unwrap_or_default();
    Ok(ContainerStats {
        container: c.member().to_string(),
        cpu_percent: s.cpu,
        cpu_total_nanos: s.cpu_nano,
        memory_used_bytes: s.mem_usage,
        memory_limit_bytes: s.mem_limit,
        io_read_bytes: s.block_input,
        io_write_bytes: s.block_output,
        net_rx_bytes: s.net_input,
        net_tx_bytes: s.net_output,
        pids: u32::try_from(s.pids).unwrap_or(u32::MAX),
        at: now(),
    })
}
