//! Handing GPUs to a container: the edits (device nodes, mounts,
//! environment) a CDI spec names for a GPU, or, where none does, derived
//! from the inventory.

use super::cdi;
use super::inventory::Inventory;
use crate::bindings::types::{ContainerEdits, Error, Mount};
use std::path::Path;

/// NVIDIA's control device nodes, handed with any of its GPUs when present.
const NVIDIA_CONTROL_NODES: [&str; 4] = [
    "/dev/nvidiactl",
    "/dev/nvidia-uvm",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-modeset",
];

/// Driver files a CUDA program needs, bound read-only when present (the
/// complete list is what `nvidia-ctk cdi generate` writes into a CDI spec).
const NVIDIA_DRIVER_FILES: [&str; 6] = [
    "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
    "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
    "/usr/lib/x86_64-linux-gnu/libnvidia-ptxjitcompiler.so.1",
    "/usr/lib64/libcuda.so.1",
    "/usr/lib64/libnvidia-ml.so.1",
    "/usr/bin/nvidia-smi",
];

impl Inventory {
    /// The container edits that hand `ids` (UUIDs or indexes) to a
    /// container: from a CDI spec naming the GPU when there is one,
    /// otherwise derived (its device node; for NVIDIA also the control
    /// nodes and driver files present, and `NVIDIA_VISIBLE_DEVICES`).
    /// Device nodes carry the numbers of the host's node, which must exist.
    /// Blocking: it reads the CDI directories and the nodes.
    pub fn edits(&self, ids: &[String]) -> Result<ContainerEdits, Error> {
        let mut out = ContainerEdits {
            env: Vec::new(),
            devices: Vec::new(),
            mounts: Vec::new(),
        };
        let (registry, problems) = cdi::Registry::load(self.cdi_dirs());
        for p in problems {
            tracing::warn!(problem = %p, "CDI spec skipped");
        }
        let mut derived_nvidia = Vec::new();
        for id in ids {
            let g = self
                .find(id)
                .ok_or_else(|| Error::NotFound(format!("GPU `{id}` is not in the inventory")))?;
            let kind = format!("{}.com/gpu", g.vendor);
            let index = g.index.to_string();
            if let Some((path, edits)) = registry.lookup(&kind, &[index.as_str(), &g.uuid]) {
                tracing::debug!(gpu = %g.uuid, spec = %path.display(), "container edits from CDI");
                for e in edits {
                    cdi::apply(&mut out, e);
                }
                continue;
            }
            if !out
                .devices
                .iter()
                .any(|d| d.path_in_container == g.container_node)
            {
                out.devices.push(cdi::node(
                    &g.device.display().to_string(),
                    &g.container_node,
                    "rwm",
                ));
            }
            if g.vendor == "nvidia" {
                derived_nvidia.push(g.uuid.clone());
            }
        }
        if !derived_nvidia.is_empty() {
            for node in NVIDIA_CONTROL_NODES {
                if Path::new(node).exists()
                    && !out.devices.iter().any(|d| d.path_in_container == node)
                {
                    out.devices.push(cdi::node(node, node, "rwm"));
                }
            }
            for file in NVIDIA_DRIVER_FILES {
                if Path::new(file).exists() && !out.mounts.iter().any(|m| m.destination == file) {
                    out.mounts.push(Mount {
                        source: file.into(),
                        destination: file.into(),
                        read_only: true,
                        propagation: None,
                    });
                }
            }
            cdi::set_env(
                &mut out,
                "NVIDIA_VISIBLE_DEVICES",
                &derived_nvidia.join(","),
            );
        }
        cdi::read_numbers(&mut out)
            .map_err(|e| Error::Unavailable(format!("handing GPUs {}: {e}", ids.join(", "))))?;
        Ok(out)
    }
}
