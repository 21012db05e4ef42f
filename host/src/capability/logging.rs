//! `logging`: plugin log lines through the host's tracing pipeline, tagged
//! with the plugin's name.

use super::{HostCapability, Services, Store};
use crate::bindings::gantry::plugin::logging;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

/// Per-instance state: whose lines these are.
#[derive(Debug, Clone)]
pub struct LoggingCtx {
    plugin: Arc<str>,
}

impl LoggingCtx {
    /// Lines of `plugin`.
    pub fn new(plugin: Arc<str>) -> Self {
        Self { plugin }
    }
}

impl logging::Host for LoggingCtx {
    async fn log(&mut self, level: logging::Level, message: String) -> wasmtime::Result<()> {
        let plugin = &*self.plugin;
        match level {
            logging::Level::Trace => tracing::trace!(plugin, "{message}"),
            logging::Level::Debug => tracing::debug!(plugin, "{message}"),
            logging::Level::Info => tracing::info!(plugin, "{message}"),
            logging::Level::Warn => tracing::warn!(plugin, "{message}"),
            logging::Level::Error => tracing::error!(plugin, "{message}"),
        }
        Ok(())
    }
}

/// The capability.
pub struct Logging;

impl HostCapability for Logging {
    const NAME: &'static str = "logging";
    const PROVIDES: &'static [(&'static str, &'static str)] = &[("gantry:plugin/logging", "0.1.")];
    type Grant = ();
    type State = LoggingCtx;
    fn state(_: &(), services: &Services) -> LoggingCtx {
        LoggingCtx::new(services.plugin.clone())
    }
    fn link<T: Store<Self>>(l: &mut Linker<T>) -> wasmtime::Result<()> {
        logging::add_to_linker::<T, HasSelf<LoggingCtx>>(l, |t| t.part().state)
    }
}
