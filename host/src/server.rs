//! Wiring a configuration into a running host: plugins loaded and checked,
//! control plane, reconciler and ingress.

use crate::auth::Verifier;
use crate::config::{Config, flatten_plugin_config};
use crate::control::{ControlPlane, Placement};
use crate::driver::{Driver, WasmDriver};
use crate::frontend::HttpFrontend;
use crate::ingress::{self, Ingress};
use crate::metrics::Metrics;
use crate::mqtt::MqttFrontend;
use crate::runtime::check::{check, linker};
use crate::runtime::engine::PluginEngine;
use crate::runtime::outgoing::{Endpoint, EndpointRouter};
use crate::runtime::pool::InstancePool;
use crate::runtime::state::PluginInfo;
use crate::runtime::{PluginKind, RuntimeError};
use crate::services::HostServices;
use crate::store::StateStore;
use anyhow::Context;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::InstancePre;

/// The outcome of checking one plugin.
#[derive(Debug)]
pub struct PluginReport {
    /// Plugin name.
    pub name: String,
    /// Its world.
    pub kind: PluginKind,
    /// `Ok` or what is wrong.
    pub result: Result<(), RuntimeError>,
}

/// Plugins of a config, loaded and checked.
pub struct LoadedPlugins {
    pres: HashMap<String, InstancePre<crate::runtime::state::PluginState>>,
    /// One report per configured plugin.
    pub reports: Vec<PluginReport>,
}

/// Load and check every plugin the config names.
pub fn load_plugins(config: &Config) -> anyhow::Result<LoadedPlugins> {
    let max_mib = config
        .frontends
        .iter()
        .map(|f| config.limits.with(&f.limits).memory_mib)
        .chain(
            config
                .backends
                .iter()
                .map(|b| config.limits.with(&b.limits).memory_mib),
        )
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
    let mut linkers = HashMap::new();
    let mut pres = HashMap::new();
    let mut reports = Vec::new();
    let plugins = config
        .frontends
        .iter()
        .map(|f| {
            (
                &f.name,
                &f.plugin,
                if f.http.is_some() {
                    PluginKind::HttpFrontend
                } else {
                    PluginKind::MqttFrontend
                },
            )
        })
        .chain(config.backends.iter().map(|b| {
            (
                &b.name,
                &b.plugin,
                if b.downstream.is_some() {
                    PluginKind::Scheduler
                } else {
                    PluginKind::Backend
                },
            )
        }));
    for (name, path, kind) in plugins {
        let linker = match linkers.entry(kind) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(linker(engine.engine(), kind)?)
            }
        };
        let result = engine
            .load(name, &config.plugin_path(path))
            .and_then(|component| check(engine.engine(), linker, kind, name, &component))
            .map(|pre| {
                pres.insert(name.clone(), pre);
            });
        reports.push(PluginReport {
            name: name.clone(),
            kind,
            result,
        });
    }
    Ok(LoadedPlugins { pres, reports })
}

/// A host ready to serve.
pub struct Host {
    /// The control plane.
    pub control: Arc<ControlPlane>,
    router: axum::Router,
    listen: String,
    resync: Duration,
}

/// Build a host from config. Plugins that are missing or do not fit are
/// reported and left out (the host is then not ready); `refuse_misfits`
/// turns a plugin that exists but does not fit its world into an error.
pub fn build(config: &Config, refuse_misfits: bool) -> anyhow::Result<Host> {
    let loaded = load_plugins(config)?;
    let mut problems = Vec::new();
    for r in &loaded.reports {
        if let Err(e) = &r.result {
            if refuse_misfits && !matches!(e, RuntimeError::Missing { .. }) {
                anyhow::bail!("{e}");
            }
            tracing::error!(plugin = %r.name, error = %e, "plugin not loaded");
            problems.push(e.to_string());
        }
    }
    let metrics = Metrics::new();
    let inventory = crate::devices::inventory(&config.devices);
    let gpu_models = crate::devices::models(&inventory);
    let services = Arc::new(HostServices::new(metrics.clone(), inventory));
    let info = |name: &str, table| {
        Arc::new(PluginInfo {
            name: name.to_string(),
            config: flatten_plugin_config(table),
            mqtt: Default::default(),
        })
    };

    let mut drivers: HashMap<String, Arc<dyn Driver>> = HashMap::new();
    for b in &config.backends {
        let Some(pre) = loaded.pres.get(&b.name) else {
            continue;
        };
        if b.downstream.is_some() {
            problems.push(format!(
                "backend `{}`: scheduler plugins are not supported by this host version",
                b.name
            ));
            continue;
        }
        let pool = InstancePool::new(
            info(&b.name, &b.config),
            services.clone(),
            pre.clone(),
            router(&b.endpoints)?,
            config.limits.with(&b.limits),
            WasmDriver::loader(),
        );
        drivers.insert(b.name.clone(), Arc::new(WasmDriver::new(Arc::new(pool))));
    }

    let store = StateStore::open(&config.server.state)
        .with_context(|| format!("opening state {}", config.server.state))?;
    let placement = Placement {
        default: config.placement_for(false).map(str::to_string),
        gpu: config.placement_for(true).map(str::to_string),
    };
    let control = ControlPlane::new(store, drivers, placement, gpu_models)?;
    services.set_control(control.clone());

    let mut frontends = Vec::new();
    for f in &config.frontends {
        let Some(pre) = loaded.pres.get(&f.name) else {
            continue;
        };
        match &f.http {
            Some(http) => {
                let pool = InstancePool::new(
                    info(&f.name, &f.config),
                    services.clone(),
                    pre.clone(),
                    router(&f.endpoints)?,
                    config.limits.with(&f.limits),
                    HttpFrontend::loader(),
                );
                let pool = Arc::new(pool);
                for prefix in http.prefixes() {
                    frontends.push(HttpFrontend::new(prefix.clone(), pool.clone()));
                }
            }
            None => {
                let Some(binding) = &f.mqtt else { continue };
                let plugin_info = info(&f.name, &f.config);
                // One long-lived instance: the plugin keeps its session state
                // (bootstrap answers) between messages; a failure replaces it.
                let mut limits = config.limits.with(&f.limits);
                limits.max_reuse = u32::MAX;
                limits.max_idle = 1;
                let pool = Arc::new(InstancePool::new(
                    plugin_info.clone(),
                    services.clone(),
                    pre.clone(),
                    router(&f.endpoints)?,
                    limits,
                    MqttFrontend::loader(),
                ));
                if let Err(e) = MqttFrontend::spawn(&plugin_info, pool, binding, control.clone()) {
                    problems.push(format!("frontend `{}`: {e}", f.name));
                }
            }
        }
    }
    let verifier = Verifier::from_config(&config.auth)?;
    let router = ingress::router(Ingress {
        frontends,
        verifier,
        metrics,
        problems,
    });
    Ok(Host {
        control,
        router,
        listen: config.server.listen.clone(),
        resync: Duration::from_secs(config.server.resync_seconds.max(1)),
    })
}

fn router(
    endpoints: &std::collections::BTreeMap<String, crate::config::EndpointSpec>,
) -> anyhow::Result<EndpointRouter> {
    let mut grants = HashMap::new();
    for (name, spec) in endpoints {
        grants.insert(
            name.clone(),
            Endpoint::parse(spec).map_err(anyhow::Error::msg)?,
        );
    }
    Ok(EndpointRouter::new(grants))
}

impl Host {
    /// Serve until the process is stopped.
    pub async fn serve(self) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind(&self.listen)
            .await
            .with_context(|| format!("binding {}", self.listen))?;
        tracing::info!(listen = %listener.local_addr()?, "gantry serving");
        self.control.spawn_reconciler(self.resync);
        axum::serve(listener, self.router)
            .with_graceful_shutdown(shutdown())
            .await?;
        Ok(())
    }
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// Whether `p` looks like one of our build outputs (for `check`'s hint).
pub fn build_hint(p: &Path) -> Option<String> {
    let s = p.to_string_lossy();
    s.contains("wasm32-wasip2")
        .then(|| "build the plugins with `cargo xtask build`".to_string())
}
