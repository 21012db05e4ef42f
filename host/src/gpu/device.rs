//! One GPU as the host knows it, whatever it was read from (NVML or the
//! config): what the inventory holds and NVML's reading fills in.

use serde::Serialize;
use std::path::PathBuf;

/// One GPU, with everything the host knows of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GpuInfo {
    /// Index on the host.
    pub index: u32,
    /// Device UUID.
    pub uuid: String,
    /// Vendor, e.g. "nvidia".
    pub vendor: String,
    /// Model code, e.g. "a100".
    pub model: String,
    /// The name NVML or the config gave.
    pub name: String,
    /// Memory in bytes.
    pub memory_bytes: u64,
    /// PCI bus id (NVML only).
    pub pci_bus_id: Option<String>,
    /// Whether MIG mode is on (NVML only; none where unsupported).
    pub mig_enabled: Option<bool>,
    /// CUDA compute capability, e.g. "8.0" (NVML only).
    pub compute_capability: Option<String>,
    /// Its device node on the host.
    pub device: PathBuf,
    /// Where that node goes in a container.
    pub container_node: String,
    /// Whether it takes new placements.
    pub healthy: bool,
    /// Why not, when it does not.
    pub problem: Option<String>,
}
