//! `progress`: progress of long backend operations (image pulls), logged by
//! the host with the plugin's and the workload's names.

use crate::bindings::gantry::plugin::progress;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

/// Per-instance state: whose progress this is.
#[derive(Debug, Clone)]
pub struct ProgressCtx {
    plugin: Arc<str>,
}

impl ProgressCtx {
    /// Progress of `plugin`.
    pub fn new(plugin: Arc<str>) -> Self {
        Self { plugin }
    }
}

impl progress::Host for ProgressCtx {
    async fn report(
        &mut self,
        workload_id: String,
        detail: String,
        percent: Option<u8>,
    ) -> wasmtime::Result<()> {
        tracing::info!(plugin = %self.plugin, workload = %workload_id, percent, "{detail}");
        Ok(())
    }
}

/// Link `progress`.
pub fn add_to_linker<T: Send + 'static>(
    l: &mut Linker<T>,
    get: fn(&mut T) -> &mut ProgressCtx,
) -> wasmtime::Result<()> {
    progress::add_to_linker::<T, HasSelf<ProgressCtx>>(l, get)
}
