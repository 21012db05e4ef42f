//! Hot swap: read the config again, compile and check every plugin whose
//! component or settings changed, and only when all of them pass, hand each
//! pool its new component. New calls reach the new build; calls already
//! running, and the responses still streaming from them, finish on the old
//! instance. MQTT frontends keep their broker connection (it belongs to the
//! host); their worker greets the new instance as after a reconnection.
//!
//! What a swap cannot apply (a new listener, a plugin added, a frontend
//! mounted elsewhere) is named in the report and left as it runs until a
//! restart. A reload that fails any check (compiling, linking against its
//! world, one trial instantiation with its limits) changes nothing. Plugins
//! are swapped one after the other, backends first, so a request may meet a
//! new backend behind an old frontend for an instant, never the reverse.

pub mod client;
pub mod diff;

use crate::config::Config;
use crate::runtime::engine::PluginEngine;
use crate::runtime::pool::{Generation, InstancePool};
use crate::worlds::{PluginSetup, PluginState, World};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use wasmtime::component::InstancePre;

/// A plugin's pool, as the reloader sees it: something whose component can
/// be replaced (whatever the world's exports are).
pub trait Swap: Send + Sync {
    /// Serve later calls from `next`; returns the pool's new generation.
    fn swap(&self, next: Generation<PluginState>) -> u64;
}

impl<I: Send + 'static> Swap for InstancePool<PluginState, I> {
    fn swap(&self, next: Generation<PluginState>) -> u64 {
        self.replace(next)
    }
}

/// The hex SHA-256 of a component's bytes: a swap happens when it changes.
pub fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Outcome {
    /// At least one plugin was swapped.
    Applied,
    /// Nothing a swap applies had changed.
    Unchanged,
    /// A check failed; nothing was swapped.
    Refused,
}

/// One plugin swapped.
#[derive(Debug, Clone, Serialize)]
pub struct Swapped {
    /// Plugin name.
    pub plugin: String,
    /// The pool's generation now serving.
    pub generation: u64,
    /// What changed: `component`, `settings` (its config, endpoints or limits).
    pub changed: Vec<&'static str>,
}

/// What a reload found and did.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReloadReport {
    /// The outcome.
    pub outcome: Outcome,
    /// Plugins now serving a new component or new settings.
    pub swapped: Vec<Swapped>,
    /// Why the reload was refused (empty unless refused).
    pub problems: Vec<String>,
    /// Changes a swap cannot apply, by key: in effect only after a restart.
    pub restart_required: Vec<String>,
}

impl ReloadReport {
    fn refused(problems: Vec<String>, restart_required: Vec<String>) -> Self {
        Self {
            outcome: Outcome::Refused,
            swapped: Vec::new(),
            problems,
            restart_required,
        }
    }
}

/// A plugin the host serves, as a reload needs it.
struct Live {
    world: World,
    digest: String,
    settings: toml::Value,
    setup: PluginSetup,
    pool: Arc<dyn Swap>,
}

/// One plugin checked and ready to swap.
struct Prepared {
    name: String,
    digest: String,
    settings: toml::Value,
    setup: PluginSetup,
    generation: Generation<PluginState>,
    changed: Vec<&'static str>,
}

/// Swaps plugins of a running host.
pub struct Reloader {
    engine: PluginEngine,
    running: Config,
    plugins: Mutex<BTreeMap<String, Live>>,
    /// One reload at a time.
    serial: tokio::sync::Mutex<()>,
}

impl Reloader {
    /// A reloader for a host built from `running` on `engine`.
    pub fn new(engine: PluginEngine, running: Config) -> Self {
        Self {
            engine,
            running,
            plugins: Mutex::new(BTreeMap::new()),
            serial: tokio::sync::Mutex::new(()),
        }
    }

    /// Let reloads swap plugin `name`, serving `world` from a component with
    /// `digest`, its instances given `setup`.
    pub fn track(
        &self,
        name: &str,
        world: World,
        digest: String,
        setup: PluginSetup,
        pool: Arc<dyn Swap>,
    ) {
        let live = Live {
            world,
            digest,
            settings: diff::live_part(&self.running.raw, name),
            setup,
            pool,
        };
        self.lock().insert(name.to_string(), live);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Live>> {
        self.plugins.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Read the config again and swap what changed, or refuse and change nothing.
    pub async fn reload(self: &Arc<Self>) -> ReloadReport {
        let _one_at_a_time = self.serial.lock().await;
        let this = self.clone();
        // Compiling is CPU-bound: off the runtime's worker threads.
        let prepared = tokio::task::spawn_blocking(move || this.prepare()).await;
        let report = match prepared {
            Err(e) => ReloadReport::refused(vec![format!("reload task failed: {e}")], vec![]),
            Ok(Err(report)) => report,
            Ok(Ok((plan, restart_required))) => {
                let mut problems = Vec::new();
                for p in &plan {
                    if let Err(e) = p.generation.try_instantiate().await {
                        problems.push(format!(
                            "plugin `{}`: cannot be instantiated with its limits: {e}",
                            p.name
                        ));
                    }
                }
                if problems.is_empty() {
                    self.apply(plan, restart_required)
                } else {
                    ReloadReport::refused(problems, restart_required)
                }
            }
        };
        match report.outcome {
            Outcome::Refused => {
                tracing::warn!(problems = ?report.problems, "reload refused; nothing swapped")
            }
            outcome => tracing::info!(
                ?outcome,
                swapped = ?report.swapped.iter().map(|s| &s.plugin).collect::<Vec<_>>(),
                restart_required = ?report.restart_required,
                "reloaded"
            ),
        }
        report
    }

    /// Everything a swap needs, checked; or the report refusing it.
    fn prepare(&self) -> Result<(Vec<Prepared>, Vec<String>), ReloadReport> {
        let next = self
            .running
            .reread()
            .map_err(|e| ReloadReport::refused(vec![e.to_string()], vec![]))?;
        let mut restart_required = diff::restart_only(&self.running.raw, &next.raw);
        let plugins = self.lock();
        let mut plan = Vec::new();
        let mut problems = Vec::new();
        for table in next.plugin_tables() {
            // Added, or moved to another world: named by the diff already.
            let Some(live) = plugins.get(table.name).filter(|l| l.world == table.world) else {
                let listed_before = self.running.plugin_tables().any(|t| t.name == table.name);
                if listed_before && !plugins.contains_key(table.name) {
                    restart_required.push(format!(
                        "plugin `{}` was not loaded when the host started: restart to load it",
                        table.name
                    ));
                }
                continue;
            };
            match self.prepare_one(&next, &table, live) {
                Ok(Some(p)) => plan.push(p),
                Ok(None) => {}
                Err(e) => problems.push(e),
            }
        }
        if problems.is_empty() {
            Ok((plan, restart_required))
        } else {
            Err(ReloadReport::refused(problems, restart_required))
        }
    }

    fn prepare_one(
        &self,
        next: &Config,
        table: &crate::config::PluginTableRef<'_>,
        live: &Live,
    ) -> Result<Option<Prepared>, String> {
        let name = table.name;
        let path = next.plugin_path(table.plugin);
        let bytes = std::fs::read(&path)
            .map_err(|e| format!("plugin `{name}`: cannot read {}: {e}", path.display()))?;
        let digest = digest(&bytes);
        let settings = diff::live_part(&next.raw, name);
        let mut changed = Vec::new();
        if digest != live.digest {
            changed.push("component");
        }
        if settings != live.settings {
            changed.push("settings");
        }
        if changed.is_empty() {
            return Ok(None);
        }
        let limits = next.limits.with(table.limits);
        let max = self.engine.max_memory_bytes();
        if limits.memory_mib.saturating_mul(1 << 20) > max {
            return Err(format!(
                "plugin `{name}`: limits.memory_mib = {} is more than the {} MiB the running engine was sized for; restart to apply",
                limits.memory_mib,
                max >> 20
            ));
        }
        let component = self
            .engine
            .load_bytes(name, &path, &bytes)
            .map_err(|e| e.to_string())?;
        let pre: InstancePre<PluginState> = table
            .world
            .prepare(self.engine.engine(), name, table.listed_as(), &component)
            .map_err(|e| e.to_string())?;
        // What a swap cannot apply (a non-live grant) stays as it runs, and
        // is named in the report's `restartRequired`.
        let setup = PluginSetup {
            grants: Arc::new(live.setup.grants.with_live(table.grants)),
            services: live.setup.services.clone(),
        };
        let data_setup = setup.clone();
        Ok(Some(Prepared {
            name: name.to_string(),
            digest,
            settings,
            setup,
            generation: Generation {
                pre,
                data: Arc::new(move |guards| data_setup.instance(guards)),
                limits,
            },
            changed,
        }))
    }

    /// Swap every prepared plugin; nothing here can fail.
    fn apply(&self, mut plan: Vec<Prepared>, restart_required: Vec<String>) -> ReloadReport {
        let mut plugins = self.lock();
        // Backends before the frontends that reach them.
        plan.sort_by_key(|p| {
            plugins
                .get(&p.name)
                .is_some_and(|l| matches!(l.world, World::HttpFrontend | World::MqttFrontend))
        });
        let mut swapped = Vec::new();
        for p in plan {
            let Some(live) = plugins.get_mut(&p.name) else {
                continue;
            };
            let generation = live.pool.swap(p.generation);
            live.digest = p.digest;
            live.settings = p.settings;
            live.setup = p.setup;
            swapped.push(Swapped {
                plugin: p.name,
                generation,
                changed: p.changed,
            });
        }
        ReloadReport {
            outcome: if swapped.is_empty() {
                Outcome::Unchanged
            } else {
                Outcome::Applied
            },
            swapped,
            problems: Vec::new(),
            restart_required,
        }
    }
}
