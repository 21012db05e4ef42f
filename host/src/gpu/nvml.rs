//! Reading GPUs through NVML (`libnvidia-ml.so.1`, loaded at run time).

use super::catalogue::code_of;
use super::device::GpuInfo;
use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;

/// An initialised NVML.
pub struct NvmlSource {
    nvml: Nvml,
}

/// What NVML says of the machine.
pub struct NvmlReading {
    /// Its GPUs.
    pub gpus: Vec<GpuInfo>,
    /// The driver's version.
    pub driver: Option<String>,
    /// The CUDA version the driver supports, e.g. "12.4".
    pub cuda: Option<String>,
}

impl NvmlSource {
    /// Load and initialise NVML; why not, when it cannot.
    pub fn open() -> Result<Self, String> {
        Nvml::init().map(|nvml| Self { nvml }).map_err(|e| match e {
            NvmlError::LibloadingError(_) => "libnvidia-ml.so.1 is not installed".to_string(),
            e => format!("NVML did not initialise: {e}"),
        })
    }

    /// Every GPU NVML sees; an error when it sees none.
    pub fn read(&self) -> Result<NvmlReading, String> {
        let count = self
            .nvml
            .device_count()
            .map_err(|e| format!("NVML device count: {e}"))?;
        if count == 0 {
            return Err("NVML sees no GPU".into());
        }
        let mut gpus = Vec::new();
        for index in 0..count {
            let d = self
                .nvml
                .device_by_index(index)
                .map_err(|e| format!("NVML GPU {index}: {e}"))?;
            let name = d.name().unwrap_or_else(|_| "unknown".into());
            let minor = d.minor_number().unwrap_or(index);
            let mut gpu = GpuInfo {
                index,
                uuid: d
                    .uuid()
                    .map_err(|e| format!("NVML GPU {index} UUID: {e}"))?,
                vendor: "nvidia".into(),
                model: code_of(&name),
                name,
                memory_bytes: d.memory_info().map(|m| m.total).unwrap_or(0),
                pci_bus_id: d.pci_info().ok().map(|p| p.bus_id),
                mig_enabled: d.mig_mode().ok().map(|m| m.current == 1),
                compute_capability: d
                    .cuda_compute_capability()
                    .ok()
                    .map(|c| format!("{}.{}", c.major, c.minor)),
                device: format!("/dev/nvidia{minor}").into(),
                container_node: format!("/dev/nvidia{minor}"),
                healthy: true,
                problem: None,
            };
            if let Err(p) = self.health(&gpu) {
                gpu.healthy = false;
                gpu.problem = Some(p);
            }
            gpus.push(gpu);
        }
        Ok(NvmlReading {
            gpus,
            driver: self.nvml.sys_driver_version().ok(),
            cuda: self
                .nvml
                .sys_cuda_driver_version()
                .ok()
                .map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10)),
        })
    }

    /// Whether `gpu` can take new work: it still answers as itself and has
    /// no memory pages waiting to be retired (which needs a GPU reset).
    pub fn health(&self, gpu: &GpuInfo) -> Result<(), String> {
        let d = self
            .nvml
            .device_by_index(gpu.index)
            .map_err(|e| format!("NVML: {e}"))?;
        match d.uuid() {
            Ok(u) if u == gpu.uuid => {}
            Ok(u) => return Err(format!("index {} is now {u}", gpu.index)),
            Err(e) => return Err(format!("NVML: {e}")),
        }
        match d.are_pages_pending_retired() {
            Ok(true) => Err("memory pages are pending retirement; reset the GPU".into()),
            Ok(false) | Err(NvmlError::NotSupported) => Ok(()),
            Err(e) => Err(format!("NVML: {e}")),
        }
    }
}
