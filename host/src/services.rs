//! Host capabilities shared by every plugin instance.

use crate::bindings::types::GpuDevice;
use crate::control::ControlPlane;
use crate::metrics::Metrics;
use std::sync::{Arc, OnceLock};

/// What host functions reach: the control plane, the device inventory, metrics.
pub struct HostServices {
    /// Metrics registry.
    pub metrics: Metrics,
    /// GPU inventory.
    pub devices: Vec<GpuDevice>,
    control: OnceLock<Arc<ControlPlane>>,
}

impl HostServices {
    /// Services without a control plane yet (it needs the backends, which need these).
    pub fn new(metrics: Metrics, devices: Vec<GpuDevice>) -> Self {
        Self {
            metrics,
            devices,
            control: OnceLock::new(),
        }
    }

    /// Attach the control plane once built.
    pub fn set_control(&self, control: Arc<ControlPlane>) {
        let _ = self.control.set(control);
    }

    /// The control plane, once attached.
    pub fn control(&self) -> Option<&Arc<ControlPlane>> {
        self.control.get()
    }
}
