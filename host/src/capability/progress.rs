//! `progress`: progress of long backend operations (image pulls), logged by
//! the host with the plugin's and the workload's names.

use super::{HostCapability, Services, Store};
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

/// The capability.
pub struct Progress;

impl HostCapability for Progress {
    const NAME: &'static str = "progress";
    const PROVIDES: &'static [(&'static str, &'static str)] = &[("gantry:plugin/progress", "0.1.")];
    type Grant = ();
    type State = ProgressCtx;
    fn state(_: &(), services: &Services) -> ProgressCtx {
        ProgressCtx::new(services.plugin.clone())
    }
    fn link<T: Store<Self>>(l: &mut Linker<T>) -> wasmtime::Result<()> {
        progress::add_to_linker::<T, HasSelf<ProgressCtx>>(l, |t| t.part().state)
    }
}
