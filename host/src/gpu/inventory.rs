//! The inventory: the host's GPUs, their health as last checked, and the
//! container edits that hand them to a container.

use super::catalogue::{self, code_of};
use super::config::{DevicesConfig, SourceChoice};
use super::device::GpuInfo;
use super::nvml::NvmlSource;
use crate::bindings::types::{GpuDevice, GpuModel};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

/// Where the inventory came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// NVML.
    Nvml,
    /// `[devices]` in the config.
    Config,
}

/// The inventory and what is needed to keep it current.
pub struct Inventory {
    source: Source,
    /// Why NVML was not used, when it was not.
    fallback_reason: Option<String>,
    nvml: Option<NvmlSource>,
    driver: Option<String>,
    cuda: Option<String>,
    cdi_dirs: Vec<PathBuf>,
    gpus: RwLock<Arc<[GpuInfo]>>,
}

impl Inventory {
    /// Read the GPUs: through NVML when `c` allows it and NVML finds any,
    /// otherwise those `c` declares.
    pub fn discover(c: &DevicesConfig) -> Self {
        let fallback_reason;
        if c.source == SourceChoice::Auto {
            match NvmlSource::open().and_then(|n| n.read().map(|r| (n, r))) {
                Ok((nvml, reading)) => {
                    return Self {
                        source: Source::Nvml,
                        fallback_reason: None,
                        nvml: Some(nvml),
                        driver: reading.driver,
                        cuda: reading.cuda,
                        cdi_dirs: c.cdi_dirs.clone(),
                        gpus: RwLock::new(reading.gpus.into()),
                    };
                }
                Err(why) => fallback_reason = Some(why),
            }
        } else {
            fallback_reason = Some("`devices.source` is \"config\"".into());
        }
        let gpus: Vec<GpuInfo> = c
            .gpus
            .iter()
            .map(|g| {
                let mut gpu = GpuInfo {
                    index: g.index,
                    uuid: g.uuid.clone(),
                    vendor: g.vendor.to_ascii_lowercase(),
                    model: code_of(&g.model),
                    name: g.model.clone(),
                    memory_bytes: g.memory_mib.saturating_mul(1 << 20),
                    pci_bus_id: None,
                    mig_enabled: None,
                    compute_capability: None,
                    device: g
                        .device
                        .clone()
                        .unwrap_or_else(|| format!("/dev/nvidia{}", g.index).into()),
                    container_node: format!("/dev/nvidia{}", g.index),
                    healthy: true,
                    problem: None,
                };
                if g.device.is_some() {
                    let health = node_health(&gpu.device);
                    set_health(&mut gpu, health);
                }
                gpu
            })
            .collect();
        Self {
            source: Source::Config,
            fallback_reason,
            nvml: None,
            driver: None,
            cuda: None,
            cdi_dirs: c.cdi_dirs.clone(),
            gpus: RwLock::new(gpus.into()),
        }
    }

    /// The directories CDI specs are read from.
    pub fn cdi_dirs(&self) -> &[PathBuf] {
        &self.cdi_dirs
    }

    /// Where the GPUs were read from.
    pub fn source(&self) -> Source {
        self.source
    }

    /// Why NVML was not used, when it was not.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// The GPUs as last checked.
    pub fn snapshot(&self) -> Arc<[GpuInfo]> {
        match self.gpus.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The GPUs as the `devices` interface hands them out.
    pub fn devices(&self) -> Vec<GpuDevice> {
        self.snapshot()
            .iter()
            .map(|g| GpuDevice {
                index: g.index,
                uuid: g.uuid.clone(),
                vendor: g.vendor.clone(),
                model: g.model.clone(),
                memory_bytes: g.memory_bytes,
                healthy: g.healthy,
            })
            .collect()
    }

    /// Models callers may ask for: the inventory's, or the whole catalogue.
    pub fn models(&self) -> Vec<GpuModel> {
        let gpus = self.snapshot();
        catalogue::models(gpus.iter().map(|g| (g.vendor.as_str(), g.model.as_str())))
    }

    /// The GPU with this UUID or index.
    pub fn find(&self, id: &str) -> Option<GpuInfo> {
        self.snapshot()
            .iter()
            .find(|g| g.uuid == id || g.index.to_string() == id)
            .cloned()
    }

    /// Check every GPU's health again (blocking: NVML calls, file checks).
    /// Returns the GPUs whose health changed.
    pub fn check_health(&self) -> Vec<GpuInfo> {
        let mut gpus: Vec<GpuInfo> = self.snapshot().to_vec();
        let mut changed = Vec::new();
        for g in &mut gpus {
            let now = match &self.nvml {
                Some(n) => n.health(g),
                None if declared_node(g) => node_health(&g.device),
                None => Ok(()),
            };
            let before = (g.healthy, g.problem.clone());
            set_health(g, now);
            if before != (g.healthy, g.problem.clone()) {
                changed.push(g.clone());
            }
        }
        if !changed.is_empty() {
            match self.gpus.write() {
                Ok(mut w) => *w = gpus.into(),
                Err(poisoned) => *poisoned.into_inner() = gpus.into(),
            }
        }
        changed
    }

    /// Everything known, for `gantry devices` and the start-up log.
    pub fn report(&self) -> serde_json::Value {
        serde_json::json!({
            "source": self.source,
            "fallbackReason": self.fallback_reason,
            "driverVersion": self.driver,
            "cudaVersion": self.cuda,
            "cdiDirs": self.cdi_dirs,
            "gpus": &*self.snapshot(),
        })
    }
}

/// Whether a config GPU's node was declared (a default `/dev/nvidiaN` on a
/// host without the driver is not checked: the GPU is as declared).
fn declared_node(g: &GpuInfo) -> bool {
    g.device.as_os_str() != format!("/dev/nvidia{}", g.index).as_str()
}

fn node_health(node: &Path) -> Result<(), String> {
    if node.exists() {
        Ok(())
    } else {
        Err(format!("its device node {} is gone", node.display()))
    }
}

fn set_health(g: &mut GpuInfo, h: Result<(), String>) {
    match h {
        Ok(()) => {
            g.healthy = true;
            g.problem = None;
        }
        Err(p) => {
            g.healthy = false;
            g.problem = Some(p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::types::Error;
    use crate::gpu::config::GpuConfig;

    fn config(dir: &Path) -> DevicesConfig {
        let gpu = |index: u32, model: &str, device: Option<PathBuf>| GpuConfig {
            index,
            uuid: format!("GPU-{index}"),
            vendor: "nvidia".into(),
            model: model.into(),
            memory_mib: 81920,
            device,
        };
        DevicesConfig {
            source: SourceChoice::Config,
            gpus: vec![
                gpu(0, "Nvidia a100", Some(dir.join("gpu0"))),
                gpu(1, "t4", None),
            ],
            cdi_dirs: vec![dir.join("cdi")],
            health_interval_ms: 1000,
        }
    }

    /// A harmless stand-in for a GPU's device node: a link to /dev/null.
    fn stand_in(path: &Path) {
        std::os::unix::fs::symlink("/dev/null", path).expect("stand-in");
    }

    #[test]
    fn declared_gpus_turn_unhealthy_when_their_node_goes() {
        let dir = tempfile::tempdir().expect("tempdir");
        stand_in(&dir.path().join("gpu0"));
        let inv = Inventory::discover(&config(dir.path()));
        assert_eq!(inv.source(), Source::Config);
        assert!(inv.snapshot().iter().all(|g| g.healthy));
        assert_eq!(inv.snapshot()[0].model, "a100");
        assert!(inv.check_health().is_empty());
        std::fs::remove_file(dir.path().join("gpu0")).expect("remove");
        let changed = inv.check_health();
        assert_eq!(changed.len(), 1);
        assert!(!inv.devices()[0].healthy);
        assert!(
            inv.devices()[1].healthy,
            "an undeclared node is not checked"
        );
        stand_in(&dir.path().join("gpu0"));
        assert_eq!(inv.check_health().len(), 1);
        assert!(inv.devices()[0].healthy);
    }

    #[test]
    fn edits_come_from_cdi_when_a_spec_names_the_gpu_and_are_derived_otherwise() {
        let dir = tempfile::tempdir().expect("tempdir");
        stand_in(&dir.path().join("gpu0"));
        std::fs::create_dir(dir.path().join("cdi")).expect("cdi dir");
        std::fs::write(
            dir.path().join("cdi/gpus.json"),
            r#"{"cdiVersion":"0.6.0","kind":"nvidia.com/gpu","devices":[{"name":"GPU-1",
            "containerEdits":{"deviceNodes":[{"path":"/dev/nvidia1","hostPath":"/dev/zero"}],
            "env":["FROM_CDI=1"]}}]}"#,
        )
        .expect("spec");
        let inv = Inventory::discover(&config(dir.path()));
        let e = inv.edits(&["0".into(), "GPU-1".into()]).expect("edits");
        let nodes: Vec<_> = e
            .devices
            .iter()
            .map(|d| (d.path_on_host.clone(), d.path_in_container.clone()))
            .collect();
        assert_eq!(
            nodes[0],
            (
                dir.path().join("gpu0").display().to_string(),
                "/dev/nvidia0".into()
            )
        );
        assert_eq!(nodes[1], ("/dev/zero".into(), "/dev/nvidia1".into()));
        let numbers: Vec<_> = e
            .devices
            .iter()
            .map(|d| (d.block, d.major, d.minor))
            .collect();
        assert_eq!(
            numbers,
            [(false, 1, 3), (false, 1, 5)],
            "/dev/null and /dev/zero"
        );
        let env: Vec<_> = e
            .env
            .iter()
            .map(|v| format!("{}={}", v.name, v.value))
            .collect();
        assert!(env.contains(&"FROM_CDI=1".to_string()), "{env:?}");
        assert!(
            env.contains(&"NVIDIA_VISIBLE_DEVICES=GPU-0".to_string()),
            "{env:?}"
        );
        assert!(matches!(inv.edits(&["9".into()]), Err(Error::NotFound(_))));
    }
}
