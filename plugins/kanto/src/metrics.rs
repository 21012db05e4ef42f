//! The Metrics feature: a `request` sets a host timer whose id carries the
//! request, so the timer survives a replaced plugin instance; each tick
//! publishes one `data` message with the requested measurements.

use crate::envelope::Failure;
use gantry_sdk::mqtt_frontend::gantry::plugin::types::ContainerStats;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Prefix of the metrics timer's id.
pub const TIMER_PREFIX: &str = "metrics:";

/// Every measurement id Kanto reports.
pub const IDS: [&str; 9] = [
    "cpu.utilization",
    "memory.utilization",
    "memory.total",
    "memory.used",
    "io.readBytes",
    "io.writeBytes",
    "net.readBytes",
    "net.writeBytes",
    "pids",
];

/// One filter of a request: measurement ids (none = all) for an originator
/// (`Container:<id>`; none or empty = every container).
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
pub struct Filter {
    /// Measurement ids; none = all.
    #[serde(default)]
    pub id: Option<Vec<String>>,
    /// `Container:<id>`.
    #[serde(default)]
    pub originator: Option<String>,
}

/// `request`'s value.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// "2s", "500ms", "1m"; "0s" stops.
    pub frequency: String,
    /// Filters; none = everything.
    #[serde(default)]
    pub filter: Option<Vec<Filter>>,
}

/// Milliseconds of a Go-style duration ("2s", "1m30s", "500ms").
pub fn parse_duration(s: &str) -> Result<u64, Failure> {
    let bad = || {
        Failure::invalid(format!(
            "frequency `{s}` is not a duration such as 2s or 500ms"
        ))
    };
    let mut total = 0f64;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    if rest == "0" {
        return Ok(0);
    }
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (num, tail) = rest.split_at(split);
        let n: f64 = num.parse().map_err(|_| bad())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let factor = match unit {
            "ms" => 1.0,
            "s" => 1_000.0,
            "m" => 60_000.0,
            "h" => 3_600_000.0,
            _ => return Err(bad()),
        };
        total += n * factor;
        rest = tail;
    }
    Ok(total.round() as u64)
}

/// The timer id carrying `filters`.
pub fn timer_id(filters: &[Filter]) -> String {
    format!(
        "{TIMER_PREFIX}{}",
        serde_json::to_string(filters).unwrap_or_else(|_| "[]".into())
    )
}

/// The filters a timer id carries.
pub fn filters_of(timer: &str) -> Option<Vec<Filter>> {
    serde_json::from_str(timer.strip_prefix(TIMER_PREFIX)?).ok()
}

/// Which measurement ids `filters` want for `originator`; empty = none.
pub fn wanted(filters: &[Filter], originator: &str) -> Vec<&'static str> {
    if filters.is_empty() {
        return IDS.to_vec();
    }
    let mut out: Vec<&'static str> = Vec::new();
    for f in filters {
        let matches = f
            .originator
            .as_deref()
            .is_none_or(|o| o.is_empty() || o == originator);
        if !matches {
            continue;
        }
        for id in IDS {
            let asked =
                f.id.as_ref()
                    .is_none_or(|ids| ids.is_empty() || ids.iter().any(|i| i == id));
            if asked && !out.contains(&id) {
                out.push(id);
            }
        }
    }
    out
}

/// The measurements of one sample.
pub fn measurements(stats: &ContainerStats, ids: &[&str]) -> Vec<Value> {
    let utilization = if stats.memory_limit_bytes > 0 {
        stats.memory_used_bytes as f64 * 100.0 / stats.memory_limit_bytes as f64
    } else {
        0.0
    };
    ids.iter()
        .map(|id| {
            let value: Value = match *id {
                "cpu.utilization" => json!(stats.cpu_percent),
                "memory.utilization" => json!(utilization),
                "memory.total" => json!(stats.memory_limit_bytes),
                "memory.used" => json!(stats.memory_used_bytes),
                "io.readBytes" => json!(stats.io_read_bytes),
                "io.writeBytes" => json!(stats.io_write_bytes),
                "net.readBytes" => json!(stats.net_rx_bytes),
                "net.writeBytes" => json!(stats.net_tx_bytes),
                _ => json!(stats.pids),
            };
            json!({"id": id, "value": value})
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2s").ok(), Some(2000));
        assert_eq!(parse_duration("500ms").ok(), Some(500));
        assert_eq!(parse_duration("1m30s").ok(), Some(90_000));
        assert_eq!(parse_duration("0s").ok(), Some(0));
        assert!(parse_duration("fast").is_err());
    }

    #[test]
    fn filters_select_ids_per_originator() {
        let f = vec![Filter {
            id: Some(vec!["pids".into(), "cpu.utilization".into()]),
            originator: Some("Container:a".into()),
        }];
        assert_eq!(wanted(&f, "Container:a"), vec!["cpu.utilization", "pids"]);
        assert!(wanted(&f, "Container:b").is_empty());
        assert_eq!(wanted(&[], "Container:b").len(), 9);
        assert_eq!(filters_of(&timer_id(&f)), Some(f));
    }
}
