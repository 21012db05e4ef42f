//! Checking a component against the world of its plugin kind, and building
//! the linker each kind gets (deny-all: a world's imports and nothing more).

use super::state::PluginState;
use super::{PluginKind, RuntimeError};
use crate::bindings::gantry::plugin as wit;
use wasmtime::Engine;
use wasmtime::component::{Component, HasSelf, InstancePre, Linker};

/// The export a kind must provide: (interface without version, major.minor prefix).
fn required_export(kind: PluginKind) -> (&'static str, &'static str) {
    match kind {
        PluginKind::HttpFrontend => ("wasi:http/incoming-handler", "0.2."),
        PluginKind::MqttFrontend => ("gantry:plugin/mqtt-handler", "0.1."),
        PluginKind::Backend | PluginKind::Scheduler => ("gantry:plugin/driver", "0.1."),
    }
}

/// The linker for plugins of `kind`.
pub fn linker(engine: &Engine, kind: PluginKind) -> Result<Linker<PluginState>, RuntimeError> {
    let build = || -> wasmtime::Result<Linker<PluginState>> {
        let mut l = Linker::new(engine);
        // Rust's std imports much of wasi:cli and wasi:filesystem even when unused; the
        // context grants no preopens, no environment and no sockets.
        wasmtime_wasi::p2::add_to_linker_async(&mut l)?;
        wit::logging::add_to_linker::<_, HasSelf<_>>(&mut l, |s| s)?;
        wit::config::add_to_linker::<_, HasSelf<_>>(&mut l, |s| s)?;
        match kind {
            PluginKind::HttpFrontend => {
                wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut l)?;
                wit::control::add_to_linker::<_, HasSelf<_>>(&mut l, |s| s)?;
            }
            PluginKind::MqttFrontend => {
                wit::control::add_to_linker::<_, HasSelf<_>>(&mut l, |s| s)?;
                wit::mqtt_client::add_to_linker::<_, HasSelf<_>>(&mut l, |s| s)?;
            }
            PluginKind::Backend => {
                wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut l)?;
                wit::progress::add_to_linker::<_, HasSelf<_>>(&mut l, |s| s)?;
            }
            PluginKind::Scheduler => {
                wit::devices::add_to_linker::<_, HasSelf<_>>(&mut l, |s| s)?;
            }
        }
        Ok(l)
    };
    build().map_err(|e| RuntimeError::Engine(format!("cannot build the {kind:?} linker: {e:#}")))
}

/// Check `component` against `kind`'s world and pre-instantiate it.
pub fn check(
    engine: &Engine,
    linker: &Linker<PluginState>,
    kind: PluginKind,
    plugin: &str,
    component: &Component,
) -> Result<InstancePre<PluginState>, RuntimeError> {
    let invalid = |message: String| RuntimeError::Invalid {
        plugin: plugin.to_string(),
        message,
    };
    let (iface, version) = required_export(kind);
    let exports: Vec<String> = component
        .component_type()
        .exports(engine)
        .map(|(n, _)| n.to_string())
        .collect();
    let found = exports.iter().find(|n| n.split('@').next() == Some(iface));
    match found {
        None => {
            return Err(invalid(format!(
                "does not fit world {}: missing export `{iface}@{version}x` (it exports: {})",
                kind.world(),
                if exports.is_empty() {
                    "nothing".to_string()
                } else {
                    exports.join(", ")
                }
            )));
        }
        Some(name)
            if !name
                .split('@')
                .nth(1)
                .is_some_and(|v| v.starts_with(version)) =>
        {
            return Err(invalid(format!(
                "does not fit world {}: exports `{name}`, but this host speaks `{iface}@{version}x`",
                kind.world()
            )));
        }
        Some(_) => {}
    }
    linker.instantiate_pre(component).map_err(|e| {
        invalid(format!(
            "does not fit world {}: {e:#} (imports outside the world are not provided)",
            kind.world()
        ))
    })
}
