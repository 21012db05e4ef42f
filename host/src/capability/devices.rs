//! `devices`: the GPU inventory (declared in config), handed to schedulers,
//! and the catalogue of models callers may ask for when none is declared.

use crate::bindings::gantry::plugin::devices;
use crate::bindings::types::{GpuDevice, GpuModel};
use serde::Deserialize;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

/// `[devices]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DevicesConfig {
    /// GPUs declared by hand (for hosts without NVML, and for tests).
    #[serde(default)]
    pub gpus: Vec<GpuConfig>,
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
    /// Model code or name, e.g. "a100".
    pub model: String,
    /// Memory in MiB.
    #[serde(default)]
    pub memory_mib: u64,
}

fn default_vendor() -> String {
    "nvidia".into()
}

/// Per-instance state: the inventory, shared by every instance.
#[derive(Debug, Clone, Default)]
pub struct DevicesCtx {
    gpus: Arc<[GpuDevice]>,
}

impl DevicesCtx {
    /// Hand out `gpus`.
    pub fn new(gpus: Arc<[GpuDevice]>) -> Self {
        Self { gpus }
    }
}

impl devices::Host for DevicesCtx {
    async fn gpus(&mut self) -> wasmtime::Result<Vec<GpuDevice>> {
        Ok(self.gpus.to_vec())
    }
}

/// Link `devices`.
pub fn add_to_linker<T: Send + 'static>(
    l: &mut Linker<T>,
    get: fn(&mut T) -> &mut DevicesCtx,
) -> wasmtime::Result<()> {
    devices::add_to_linker::<T, HasSelf<DevicesCtx>>(l, get)
}

/// The 25 models of the Container Service API's catalogue: (code, name).
pub const CATALOGUE: [(&str, &str); 25] = [
    ("h100", "Nvidia h100"),
    ("a100", "Nvidia a100"),
    ("a40", "Nvidia a40"),
    ("a16", "Nvidia a16"),
    ("t4", "Nvidia t4"),
    ("v100", "Nvidia v100"),
    ("p4", "Nvidia tesla-p4"),
    ("p100", "Nvidia tesla-p100"),
    ("k80", "Nvidia tesla-k80"),
    ("3050", "Nvidia rtx-3050"),
    ("3060", "Nvidia rtx-3060"),
    ("3060ti", "Nvidia rtx-3060-ti"),
    ("3070", "Nvidia rtx-3070"),
    ("3070ti", "Nvidia rtx-3070-ti"),
    ("3080", "Nvidia rtx-3080"),
    ("3080ti", "Nvidia rtx-3080-ti"),
    ("3090", "Nvidia rtx-3090"),
    ("3090ti", "Nvidia rtx-3090-ti"),
    ("1050", "Nvidia gtx-1050"),
    ("1050ti", "Nvidia gtx-1050-ti"),
    ("1060", "Nvidia gtx-1060"),
    ("1070", "Nvidia gtx-1070"),
    ("1070ti", "Nvidia gtx-1070-ti"),
    ("1080", "Nvidia gtx-1080"),
    ("1080ti", "Nvidia gtx-1080-ti"),
];

/// The inventory declared in config.
pub fn inventory(c: &DevicesConfig) -> Vec<GpuDevice> {
    c.gpus
        .iter()
        .map(|g| GpuDevice {
            index: g.index,
            uuid: g.uuid.clone(),
            vendor: g.vendor.clone(),
            model: g.model.clone(),
            memory_bytes: g.memory_mib.saturating_mul(1 << 20),
            healthy: true,
        })
        .collect()
}

/// Models callers may request: those in the inventory, or the whole catalogue.
pub fn models(inventory: &[GpuDevice]) -> Vec<GpuModel> {
    if inventory.is_empty() {
        return CATALOGUE
            .iter()
            .map(|(code, name)| GpuModel {
                code: (*code).into(),
                name: (*name).into(),
            })
            .collect();
    }
    let mut out: Vec<GpuModel> = Vec::new();
    for d in inventory {
        let (code, name) = CATALOGUE
            .iter()
            .find(|(c, n)| d.model.eq_ignore_ascii_case(c) || d.model.eq_ignore_ascii_case(n))
            .map(|(c, n)| ((*c).to_string(), (*n).to_string()))
            .unwrap_or_else(|| {
                (
                    d.model.to_lowercase(),
                    format!("{} {}", capitalise(&d.vendor), d.model),
                )
            });
        if !out.iter().any(|m| m.code == code) {
            out.push(GpuModel { code, name });
        }
    }
    out
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_without_inventory() {
        let m = models(&[]);
        assert_eq!(m.len(), 25);
        assert_eq!(m[1].name, "Nvidia a100");
    }

    #[test]
    fn inventory_models_are_deduplicated() {
        let g = |i| GpuDevice {
            index: i,
            uuid: format!("GPU-{i}"),
            vendor: "nvidia".into(),
            model: "a100".into(),
            memory_bytes: 0,
            healthy: true,
        };
        let m = models(&[g(0), g(1)]);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0].code, "a100");
    }
}
