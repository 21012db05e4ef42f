//! `[devices]`: where the inventory comes from, GPUs declared by hand, CDI
//! spec directories and the health-check interval.

use serde::Deserialize;
use std::path::PathBuf;

/// `[devices]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicesConfig {
    /// `auto` (default): NVML when it loads and finds GPUs, otherwise the
    /// GPUs declared here; `config`: only the declared GPUs, even on a host
    /// with NVML (for tests that must not depend on the machine).
    #[serde(default)]
    pub source: SourceChoice,
    /// GPUs declared by hand (for hosts without NVML, and for tests).
    #[serde(default)]
    pub gpus: Vec<GpuConfig>,
    /// Directories of CDI spec files (`*.json`, `*.yaml`), read on every
    /// hand-out so a regenerated spec takes effect without a restart.
    #[serde(default = "default_cdi_dirs")]
    pub cdi_dirs: Vec<PathBuf>,
    /// How often GPU health is checked, in milliseconds.
    #[serde(default = "default_health_interval_ms")]
    pub health_interval_ms: u64,
}

impl Default for DevicesConfig {
    fn default() -> Self {
        Self {
            source: SourceChoice::default(),
            gpus: Vec::new(),
            cdi_dirs: default_cdi_dirs(),
            health_interval_ms: default_health_interval_ms(),
        }
    }
}

/// Where the inventory may come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SourceChoice {
    /// NVML when available, else config.
    #[default]
    Auto,
    /// Config only.
    Config,
}

/// One declared GPU.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuConfig {
    /// Index on the host.
    pub index: u32,
    /// Device UUID.
    pub uuid: String,
    /// Vendor, e.g. "nvidia".
    #[serde(default = "default_vendor")]
    pub vendor: String,
    /// Model code or name, e.g. "a100" or "Nvidia a100".
    pub model: String,
    /// Memory in MiB.
    #[serde(default)]
    pub memory_mib: u64,
    /// Its device node on the host (default `/dev/nvidia<index>`). When
    /// declared, the GPU is healthy while this path exists; tests declare
    /// harmless stand-in nodes here.
    #[serde(default)]
    pub device: Option<PathBuf>,
}

fn default_vendor() -> String {
    "nvidia".into()
}

fn default_cdi_dirs() -> Vec<PathBuf> {
    vec!["/etc/cdi".into(), "/var/run/cdi".into()]
}

fn default_health_interval_ms() -> u64 {
    10_000
}
