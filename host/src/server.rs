//! Wiring a configuration into a running host: every plugin loaded, its
//! world read from the component and checked against the table it is listed
//! in, then backends, the control plane, frontends and the ingress built in
//! that order (each needs the one before).

use crate::auth::Verifier;
use crate::capability::artifacts::Artifacts;
use crate::capability::config::{ConfigCtx, PluginTable};
use crate::capability::outgoing_http::EndpointGrants;
use crate::config::Config;
use crate::control::gpus::GpuLedger;
use crate::control::{ControlPlane, EventBus, Placement, Records};
use crate::driver::Driver;
use crate::gateway::Gateway;
use crate::gateway::netns::Dialer;
use crate::gateway::published::{PortsConfig, Publisher};
use crate::gpu::Inventory;
use crate::ingress::{self, Ingress};
use crate::metrics::Metrics;
use crate::mqtt::MqttFrontend;
use crate::plugin::backend::WasmDriver;
use crate::plugin::http_frontend::HttpFrontend;
use crate::plugin::{PluginSetup, PluginState, World};
use crate::reload::{self, Reloader, Swap};
use crate::runtime::RuntimeError;
use crate::runtime::engine::PluginEngine;
use crate::runtime::limits::LimitsOverride;
use crate::runtime::pool::{ExportLoader, InstancePool, PoolSpec};
use crate::store::StateStore;
use crate::tls::Tls;
use anyhow::Context;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
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
    pres: HashMap<String, InstancePre<PluginState>>,
    digests: HashMap<String, String>,
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

/// A host ready to serve.
pub struct Host {
    /// The control plane.
    pub control: Arc<ControlPlane>,
    router: axum::Router,
    listen: String,
    resync: Duration,
    gpu_health: Duration,
    metrics: Metrics,
    reloader: Arc<Reloader>,
    tls: Option<(String, Tls)>,
    /// Published ports' config and the namespace thread they dial through.
    ports: Option<(PortsConfig, Arc<Dialer>)>,
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
            tracing::warn!(plugin = %r.name, error = %e, "plugin not loaded");
            problems.push(e.to_string());
        }
    }
    let metrics = Metrics::new();
    let inventory = Arc::new(Inventory::discover(&config.devices));
    match inventory.fallback_reason() {
        None => tracing::info!(
            gpus = inventory.snapshot().len(),
            "GPU inventory read through NVML"
        ),
        Some(why) => tracing::info!(
            gpus = inventory.snapshot().len(),
            nvml = why,
            "GPU inventory declared in config"
        ),
    }
    let store = StateStore::open(&config.server.state)
        .with_context(|| format!("opening state {}", config.server.state))?;
    let records = Arc::new(Records::new(store, Arc::new(EventBus::new())));
    let ledger = Arc::new(GpuLedger::new(records.clone(), inventory.clone()));
    let setup = |name: &str,
                 table: &PluginTable,
                 endpoints: &EndpointGrants|
     -> anyhow::Result<PluginSetup> {
        PluginSetup::new(name, ConfigCtx::default())
            .with_grants(table, endpoints)
            .map_err(anyhow::Error::msg)
    };
    let reloader = Arc::new(Reloader::new(loaded.engine.clone(), config.clone()));
    let track = |name: &str, world: World, setup: &PluginSetup, pool: Arc<dyn Swap>| {
        if let Some(digest) = loaded.digests.get(name) {
            reloader.track(name, world, digest.clone(), setup.clone(), pool);
        }
    };
    // Backends in stacking order: a scheduler is built once its downstream is
    // (config has refused loops), and is left out when its downstream is.
    let mut drivers: BTreeMap<String, Arc<dyn Driver>> = BTreeMap::new();
    let mut pending: Vec<_> = config
        .backends
        .iter()
        .filter(|b| loaded.pres.contains_key(&b.name))
        .collect();
    while !pending.is_empty() {
        let before = pending.len();
        let mut waiting = Vec::new();
        for b in pending {
            let downstream = match &b.downstream {
                None => None,
                Some(d) => match drivers.get(d) {
                    Some(driver) => Some(driver.clone()),
                    None => {
                        waiting.push(b);
                        continue;
                    }
                },
            };
            let world = if downstream.is_some() {
                World::Scheduler
            } else {
                World::Backend
            };
            let mut s = setup(&b.name, &b.config, &b.endpoints)?;
            s.devices = Some(inventory.clone());
            if downstream.is_some() {
                s.allocations = Some(ledger.clone());
            }
            s.downstream = downstream;
            b.read_dirs.prepare().map_err(|e| {
                anyhow::anyhow!("backend `{}`: cannot create its read_dirs: {e}", b.name)
            })?;
            s.read_dirs = b.read_dirs.clone();
            let pre = &loaded.pres[&b.name];
            let backend_pool = Arc::new(pool(
                config,
                &metrics,
                world,
                s.clone(),
                &b.limits,
                pre,
                WasmDriver::loader(),
            ));
            track(&b.name, world, &s, backend_pool.clone());
            drivers.insert(b.name.clone(), Arc::new(WasmDriver::new(backend_pool)));
        }
        if waiting.len() == before {
            for b in &waiting {
                problems.push(format!(
                    "backend `{}`: its downstream `{}` is not loaded",
                    b.name,
                    b.downstream.as_deref().unwrap_or_default()
                ));
            }
            break;
        }
        pending = waiting;
    }

    let placement = Placement {
        default: config.placement_for(false).map(str::to_string),
        gpu: config.placement_for(true).map(str::to_string),
        stacks: config
            .backends
            .iter()
            .filter_map(|b| Some((b.name.clone(), b.downstream.clone()?)))
            .collect(),
    };
    let control = ControlPlane::new(
        records,
        drivers,
        placement,
        ledger,
        crate::control::Admission {
            bounds: config.bounds.clone(),
            scopes: config.scopes.clone(),
        },
    )?;

    let mut frontends = Vec::new();
    let mut long_lived: Vec<Arc<dyn crate::runtime::busy::Responsive>> = Vec::new();
    for f in &config.frontends {
        let Some(pre) = loaded.pres.get(&f.name) else {
            continue;
        };
        let mut s = setup(&f.name, &f.config, &f.endpoints)?;
        s.control = Some(control.clone());
        s.artifacts = Artifacts::from_grants(&f.artifacts)
            .map_err(|e| anyhow::anyhow!("frontend `{}`: {e}", f.name))?;
        match (&f.http, &f.mqtt) {
            (Some(http), _) => {
                let p = Arc::new(pool(
                    config,
                    &metrics,
                    World::HttpFrontend,
                    s.clone(),
                    &f.limits,
                    pre,
                    HttpFrontend::loader(),
                ));
                track(&f.name, World::HttpFrontend, &s, p.clone());
                for prefix in http.prefixes() {
                    frontends.push(HttpFrontend::new(prefix.clone(), p.clone()));
                }
            }
            (None, Some(binding)) => match MqttFrontend::connect(&f.name, binding) {
                Ok((link, connection)) => {
                    s.mqtt = Some(link);
                    let p = Arc::new(pool(
                        config,
                        &metrics,
                        World::MqttFrontend,
                        s.clone(),
                        &f.limits,
                        pre,
                        MqttFrontend::loader(),
                    ));
                    track(&f.name, World::MqttFrontend, &s, p.clone());
                    long_lived.push(p.clone());
                    MqttFrontend::serve(connection, p, &control);
                }
                Err(e) => problems.push(format!("frontend `{}`: {e}", f.name)),
            },
            (None, None) => {}
        }
    }
    let verifier = Verifier::from_config(&config.auth)?;
    let tls = match &config.server.tls {
        None => None,
        Some(t) => {
            let beside_state = match config.server.state.as_str() {
                ":memory:" => config.base_dir.clone(),
                state => Path::new(state)
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
            };
            // A dev certificate covers container URLs too.
            let domain = config
                .ingress
                .enabled
                .then_some(config.ingress.domain.as_str());
            let tls = Tls::from_config(
                t,
                &config.base_dir,
                &beside_state.join("gantry-tls"),
                domain,
            )?;
            Some((t.listen.clone(), tls))
        }
    };
    // One thread makes the sockets both container URLs and published ports use.
    let dialer = if config.ingress.enabled || config.ports.enabled {
        Some(Arc::new(
            Dialer::spawn().context("starting the network-namespace thread")?,
        ))
    } else {
        None
    };
    let gateway = match &dialer {
        Some(d) if config.ingress.enabled => Some(Arc::new(Gateway::new(
            &config.ingress,
            control.clone(),
            metrics.clone(),
            d.clone(),
        ))),
        _ => None,
    };
    let ports = dialer
        .filter(|_| config.ports.enabled)
        .map(|d| (config.ports.clone(), d));
    let gpu_metrics = metrics.clone();
    let router = ingress::router(Ingress {
        gateway,
        frontends,
        nodes: Some(crate::nodes::NodesApi {
            control: control.clone(),
            verifier: verifier.clone(),
        }),
        verifier,
        metrics,
        problems,
        health: control.health().clone(),
        long_lived,
        reloader: reloader.clone(),
    });
    Ok(Host {
        control,
        router,
        listen: config.server.listen.clone(),
        resync: Duration::from_secs(config.server.resync_seconds.max(1)),
        gpu_health: Duration::from_millis(config.devices.health_interval_ms.max(100)),
        metrics: gpu_metrics,
        reloader,
        tls,
        ports,
    })
}

/// The instances of one plugin, as its world's policy and its limits say.
fn pool<I: Send + 'static>(
    config: &Config,
    metrics: &Metrics,
    world: World,
    setup: PluginSetup,
    limits: &LimitsOverride,
    pre: &InstancePre<PluginState>,
    load: ExportLoader<PluginState, I>,
) -> InstancePool<PluginState, I> {
    let name = setup.name.to_string();
    InstancePool::new(
        pre.clone(),
        PoolSpec {
            metrics: metrics.plugin(&name),
            name,
            limits: config.limits.with(limits),
            policy: world.policy(),
            data: Arc::new(move |guards| setup.instance(guards)),
            load,
        },
    )
}

impl Host {
    /// The host's HTTP routes, to serve inside another server (the
    /// benchmarks put native baselines beside them).
    pub fn router(&self) -> axum::Router {
        self.router.clone()
    }

    /// Swaps this host's plugins (`gantry reload`, SIGHUP).
    pub fn reloader(&self) -> &Arc<Reloader> {
        &self.reloader
    }

    /// Serve until the process is stopped; SIGHUP reloads.
    pub async fn serve(self) -> anyhow::Result<()> {
        let listener = tokio::net::TcpListener::bind(&self.listen)
            .await
            .with_context(|| format!("binding {}", self.listen))?;
        tracing::info!(listen = %listener.local_addr()?, "gantry serving");
        // A frontend streams its body in chunks: without TCP_NODELAY the
        // second chunk waits for the client's delayed ACK (40 ms) whenever
        // a response spans more than one write.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        self.control.reconciler().spawn(self.resync);
        if let Some((config, dialer)) = &self.ports {
            Publisher::spawn(config, self.control.clone(), dialer.clone());
        }
        tokio::spawn(
            self.control
                .ledger()
                .clone()
                .watch_health(self.gpu_health, self.metrics.clone()),
        );
        tokio::spawn(reload_on_hangup(self.reloader.clone()));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut https = None;
        if let Some((listen, tls)) = self.tls {
            let secure = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("binding {listen} (HTTPS)"))?;
            tracing::info!(
                listen = %secure.local_addr()?,
                authority = ?tls.authority,
                "gantry serving HTTPS (HTTP/2 and HTTP/1.1)"
            );
            let router = self.router.clone();
            https = Some(tokio::spawn(crate::tls::serve(
                secure, tls, router, stopped,
            )));
        }
        // The peer's address, for the X-Forwarded-For of container URLs.
        let service = self
            .router
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        axum::serve(listener, service)
            .with_graceful_shutdown(async move {
                shutdown().await;
                let _ = stop.send(true);
            })
            .await?;
        // HTTPS requests in flight finish too.
        if let Some(https) = https {
            let _ = https.await;
        }
        Ok(())
    }
}

/// SIGHUP reloads, as daemons do; the report goes to the log.
async fn reload_on_hangup(reloader: Arc<Reloader>) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        tracing::warn!("cannot listen for SIGHUP; reload with `gantry reload`");
        return;
    };
    while hangups.recv().await.is_some() {
        tracing::info!("SIGHUP: reloading");
        reloader.reload().await;
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
