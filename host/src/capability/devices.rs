//! `devices`: the GPU inventory and the container edits that hand a GPU to
//! a container, for schedulers and backends.

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

/// Link `devices`.
pub fn add_to_linker<T: Send + 'static>(
    l: &mut Linker<T>,
    get: fn(&mut T) -> &mut DevicesCtx,
) -> wasmtime::Result<()> {
    devices::add_to_linker::<T, HasSelf<DevicesCtx>>(l, get)
}
