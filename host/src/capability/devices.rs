//! `devices`: the GPU inventory and the container edits that hand a GPU to
//! a container, for schedulers and backends.

use super::{HostCapability, Services, Store};
use crate::bindings::gantry::plugin::devices;
use crate::bindings::types::{ContainerEdits, Error, GpuDevice};
use crate::gpu::Inventory;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

/// Per-instance state: the inventory, shared by every instance.
#[derive(Clone, Default)]
pub struct DevicesCtx {
    inventory: Option<Arc<Inventory>>,
}

impl DevicesCtx {
    /// Hand out `inventory`.
    pub fn new(inventory: Option<Arc<Inventory>>) -> Self {
        Self { inventory }
    }
}

impl devices::Host for DevicesCtx {
    async fn gpus(&mut self) -> wasmtime::Result<Vec<GpuDevice>> {
        Ok(self
            .inventory
            .as_ref()
            .map(|i| i.devices())
            .unwrap_or_default())
    }

    async fn edits(
        &mut self,
        gpus: Vec<String>,
    ) -> wasmtime::Result<Result<ContainerEdits, Error>> {
        let Some(inventory) = self.inventory.clone() else {
            return Ok(Err(Error::Unavailable(
                "this host has no GPU inventory".into(),
            )));
        };
        // CDI specs are read from disk on every hand-out.
        Ok(tokio::task::spawn_blocking(move || inventory.edits(&gpus))
            .await
            .unwrap_or_else(|e| Err(Error::Internal(format!("reading CDI specs: {e}")))))
    }
}

/// The capability.
pub struct Devices;

impl HostCapability for Devices {
    const NAME: &'static str = "devices";
    const PROVIDES: &'static [(&'static str, &'static str)] = &[("gantry:plugin/devices", "0.1.")];
    type Grant = ();
    type State = DevicesCtx;
    fn state(_: &(), services: &Services) -> DevicesCtx {
        DevicesCtx::new(services.devices.clone())
    }
    fn link<T: Store<Self>>(l: &mut Linker<T>) -> wasmtime::Result<()> {
        devices::add_to_linker::<T, HasSelf<DevicesCtx>>(l, |t| t.part().state)
    }
}
