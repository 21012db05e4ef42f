//! Loading every plugin a config names: its file read and compiled (or
//! taken from the component cache), its world read from its exports and
//! checked against the table it is listed in.

use crate::config::Config;
use crate::reload;
use crate::runtime::RuntimeError;
use crate::runtime::engine::PluginEngine;
use crate::worlds::{PluginState, World};
use std::collections::HashMap;
use wasmtime::component::InstancePre;

/// The outcome of checking one plugin.
#[derive(Debug)]
pub struct PluginReport {
    /// Plugin name.
    pub name: String,
    /// The world its config table calls for.
    pub world: World,
    /// `Ok` or what is wrong.
    pub result: Result<(), RuntimeError>,
}

/// Plugins of a config, loaded and checked.
pub struct LoadedPlugins {
    /// The engine they were compiled for (a reload compiles on it too).
    pub engine: PluginEngine,
    pub(super) pres: HashMap<String, InstancePre<PluginState>>,
    pub(super) digests: HashMap<String, String>,
    /// One report per configured plugin.
    pub reports: Vec<PluginReport>,
}

/// Load and check every plugin the config names.
pub fn load_plugins(config: &Config) -> anyhow::Result<LoadedPlugins> {
    let max_mib = config
        .plugin_tables()
        .map(|t| config.limits.with(t.limits).memory_mib)
        .max()
        .unwrap_or(config.limits.memory_mib);
    let cache = config.server.cache_dir.as_ref().map(|d| {
        if d.is_absolute() {
            d.clone()
        } else {
            config.base_dir.join(d)
        }
    });
    let engine = PluginEngine::new(max_mib.saturating_mul(1 << 20), cache)?;
    let mut pres = HashMap::new();
    let mut digests = HashMap::new();
    let mut reports = Vec::new();
    for table in config.plugin_tables() {
        let path = config.plugin_path(table.plugin);
        let result = std::fs::read(&path)
            .map_err(|source| RuntimeError::Missing {
                plugin: table.name.to_string(),
                path: path.clone(),
                source,
            })
            .and_then(|bytes| {
                let component = engine.load_bytes(table.name, &path, &bytes)?;
                let pre = table.world.prepare(
                    engine.engine(),
                    table.name,
                    table.listed_as(),
                    &component,
                )?;
                digests.insert(table.name.to_string(), reload::digest(&bytes));
                pres.insert(table.name.to_string(), pre);
                Ok(())
            });
        reports.push(PluginReport {
            name: table.name.to_string(),
            world: table.world,
            result,
        });
    }
    Ok(LoadedPlugins {
        engine,
        pres,
        digests,
        reports,
    })
}

impl LoadedPlugins {
    /// What the host is not ready for: the plugins that did not load. With
    /// `refuse_misfits`, a plugin that exists but does not fit its world is
    /// an error instead.
    pub(super) fn problems(&self, refuse_misfits: bool) -> anyhow::Result<Vec<String>> {
        let mut problems = Vec::new();
        for r in &self.reports {
            if let Err(e) = &r.result {
                if refuse_misfits && !matches!(e, RuntimeError::Missing { .. }) {
                    anyhow::bail!("{e}");
                }
                tracing::warn!(plugin = %r.name, error = %e, "plugin not loaded");
                problems.push(e.to_string());
            }
        }
        Ok(problems)
    }
}
