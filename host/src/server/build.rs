//! A host built from its config in named steps, each needing the ones
//! before: the plugins loaded, the domain opened, backends in stacking
//! order, the control plane, frontends, listeners and container URLs, and
//! the router in front of them.

use super::{Host, LoadedPlugins, load_plugins};
use crate::api::{self, Api};
use crate::auth::Verifier;
use crate::capability::Services;
use crate::config::{BackendConfig, Config};
use crate::control::gpus::GpuLedger;
use crate::control::{Admission, ControlPlane, EventBus, Placement, Records};
use crate::driver::Driver;
use crate::gpu::Inventory;
use crate::ingress::Ingress;
use crate::ingress::netns::Dialer;
use crate::ingress::published::PortsConfig;
use crate::metrics::Metrics;
use crate::mqtt::MqttFrontend;
use crate::reload::{Reloader, Swap};
use crate::runtime::busy::Responsive;
use crate::runtime::limits::LimitsOverride;
use crate::runtime::pool::{ExportLoader, InstancePool, PoolSpec};
use crate::store::StateStore;
use crate::tls::Tls;
use crate::worlds::backend::WasmDriver;
use crate::worlds::http_frontend::HttpFrontend;
use crate::worlds::{PluginSetup, PluginState, World};
use anyhow::Context;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Build a host from config. Plugins that are missing or do not fit are
/// reported and left out (the host is then not ready); `refuse_misfits`
/// turns a plugin that exists but does not fit its world into an error.
pub fn build(config: &Config, refuse_misfits: bool) -> anyhow::Result<Host> {
    let loaded = load_plugins(config)?;
    let mut wiring = Wiring {
        config,
        problems: loaded.problems(refuse_misfits)?,
        reloader: Arc::new(Reloader::new(loaded.engine.clone(), config.clone())),
        loaded: &loaded,
        metrics: Metrics::new(),
    };
    let domain = Domain::open(config)?;
    let drivers = wiring.backends(&domain)?;
    let control = control_plane(config, domain, drivers)?;
    let (frontends, long_lived) = wiring.frontends(&control);
    let tls = tls(config)?;
    let (ingress, ports) = container_urls(config, &control, &wiring.metrics)?;
    let verifier = Verifier::from_config(&config.auth)?;
    let router = api::router(Api {
        ingress,
        frontends,
        nodes: Some(crate::nodes::NodesApi {
            control: control.clone(),
            verifier: verifier.clone(),
        }),
        verifier,
        metrics: wiring.metrics.clone(),
        problems: wiring.problems,
        health: control.health().clone(),
        long_lived,
        reloader: wiring.reloader.clone(),
    });
    Ok(Host {
        control,
        router,
        listen: config.server.listen.clone(),
        resync: Duration::from_secs(config.server.resync_seconds.max(1)),
        gpu_health: Duration::from_millis(config.devices.health_interval_ms.max(100)),
        metrics: wiring.metrics,
        reloader: wiring.reloader,
        tls,
        ports,
    })
}

/// What the plugin steps share: the config, the plugins loaded, the
/// metrics and the reloader every pool is registered with, and the
/// problems that keep the host not ready.
struct Wiring<'a> {
    config: &'a Config,
    loaded: &'a LoadedPlugins,
    metrics: Metrics,
    reloader: Arc<Reloader>,
    problems: Vec<String>,
}

/// The domain the control plane and the plugins' services stand on.
struct Domain {
    inventory: Arc<Inventory>,
    records: Arc<Records>,
    ledger: Arc<GpuLedger>,
}

impl Domain {
    /// The GPU inventory (NVML or the config), the state store, the ledger.
    fn open(config: &Config) -> anyhow::Result<Domain> {
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
        Ok(Domain {
            inventory,
            records,
            ledger,
        })
    }
}

impl Wiring<'_> {
    /// The pool of plugin `name` (its world from its table), registered
    /// with the reloader.
    fn pool<I: Send + 'static>(
        &self,
        name: &str,
        world: World,
        setup: PluginSetup,
        limits: &LimitsOverride,
        load: ExportLoader<PluginState, I>,
    ) -> Option<Arc<InstancePool<PluginState, I>>>
    where
        InstancePool<PluginState, I>: Swap,
    {
        let pre = self.loaded.pres.get(name)?;
        let data = setup.clone();
        let pool = Arc::new(InstancePool::new(
            pre.clone(),
            PoolSpec {
                metrics: self.metrics.plugin(name),
                name: name.to_string(),
                limits: self.config.limits.with(limits),
                policy: world.policy(),
                data: Arc::new(move |guards| data.instance(guards)),
                load,
            },
        ));
        if let Some(digest) = self.loaded.digests.get(name) {
            self.reloader
                .track(name, world, digest.clone(), setup, pool.clone());
        }
        Some(pool)
    }

    /// Backends in stacking order: a scheduler is built once its
    /// downstream is (the config refused loops), and is left out, named
    /// among the problems, when its downstream is.
    fn backends(&mut self, domain: &Domain) -> anyhow::Result<BTreeMap<String, Arc<dyn Driver>>> {
        let mut drivers: BTreeMap<String, Arc<dyn Driver>> = BTreeMap::new();
        let mut pending: Vec<&BackendConfig> = self
            .config
            .backends
            .iter()
            .filter(|b| self.loaded.pres.contains_key(&b.name))
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
                b.grants
                    .prepare()
                    .map_err(|e| anyhow::anyhow!("backend `{}`: {e}", b.name))?;
                let setup = PluginSetup {
                    grants: Arc::new(b.grants.clone()),
                    services: Services {
                        devices: Some(domain.inventory.clone()),
                        ledger: downstream.is_some().then(|| domain.ledger.clone()),
                        downstream,
                        ..Services::of(&b.name)
                    },
                };
                if let Some(pool) =
                    self.pool(&b.name, b.world(), setup, &b.limits, WasmDriver::loader())
                {
                    drivers.insert(b.name.clone(), Arc::new(WasmDriver::new(pool)));
                }
            }
            if waiting.len() == before {
                for b in &waiting {
                    self.problems.push(format!(
                        "backend `{}`: its downstream `{}` is not loaded",
                        b.name,
                        b.downstream.as_deref().unwrap_or_default()
                    ));
                }
                break;
            }
            pending = waiting;
        }
        Ok(drivers)
    }

    /// Every frontend that loaded: HTTP ones mounted under their prefixes,
    /// MQTT ones served on their connections (and watched by `/readyz`).
    fn frontends(
        &mut self,
        control: &Arc<ControlPlane>,
    ) -> (Vec<HttpFrontend>, Vec<Arc<dyn Responsive>>) {
        let (mut http, mut long_lived) = (Vec::new(), Vec::<Arc<dyn Responsive>>::new());
        for f in &self.config.frontends {
            let mut setup = PluginSetup {
                grants: Arc::new(f.grants.clone()),
                services: Services {
                    control: Some(control.clone()),
                    ..Services::of(&f.name)
                },
            };
            match (&f.http, &f.mqtt) {
                (Some(binding), _) => {
                    let loader = HttpFrontend::loader();
                    if let Some(pool) = self.pool(&f.name, f.world(), setup, &f.limits, loader) {
                        for prefix in binding.prefixes() {
                            http.push(HttpFrontend::new(prefix.clone(), pool.clone()));
                        }
                    }
                }
                (None, Some(binding)) if self.loaded.pres.contains_key(&f.name) => {
                    match MqttFrontend::connect(&f.name, binding) {
                        Ok((link, connection)) => {
                            setup.services.mqtt = Some(link);
                            let loader = MqttFrontend::loader();
                            if let Some(pool) =
                                self.pool(&f.name, f.world(), setup, &f.limits, loader)
                            {
                                long_lived.push(pool.clone());
                                MqttFrontend::serve(connection, pool, control);
                            }
                        }
                        Err(e) => self.problems.push(format!("frontend `{}`: {e}", f.name)),
                    }
                }
                _ => {}
            }
        }
        (http, long_lived)
    }
}

/// The control plane over the domain, driving the backends.
fn control_plane(
    config: &Config,
    domain: Domain,
    drivers: BTreeMap<String, Arc<dyn Driver>>,
) -> anyhow::Result<Arc<ControlPlane>> {
    let placement = Placement {
        default: config.placement_for(false).map(str::to_string),
        gpu: config.placement_for(true).map(str::to_string),
        stacks: config
            .backends
            .iter()
            .filter_map(|b| Some((b.name.clone(), b.downstream.clone()?)))
            .collect(),
    };
    Ok(ControlPlane::new(
        domain.records,
        drivers,
        placement,
        domain.ledger,
        Admission {
            bounds: config.bounds.clone(),
            scopes: config.scopes.clone(),
        },
    )?)
}

/// The HTTPS listener, when one is configured: its address and certificate
/// (a dev certificate, made beside the state, covers container URLs too).
fn tls(config: &Config) -> anyhow::Result<Option<(String, Tls)>> {
    let Some(t) = &config.server.tls else {
        return Ok(None);
    };
    let beside_state = match config.server.state.as_str() {
        ":memory:" => config.base_dir.clone(),
        state => Path::new(state)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default(),
    };
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
    Ok(Some((t.listen.clone(), tls)))
}

/// Container URLs and published ports, when enabled: one thread makes the
/// sockets both use, inside workloads' network namespaces.
#[allow(clippy::type_complexity)]
fn container_urls(
    config: &Config,
    control: &Arc<ControlPlane>,
    metrics: &Metrics,
) -> anyhow::Result<(Option<Arc<Ingress>>, Option<(PortsConfig, Arc<Dialer>)>)> {
    if !config.ingress.enabled && !config.ports.enabled {
        return Ok((None, None));
    }
    let dialer = Arc::new(Dialer::spawn().context("starting the network-namespace thread")?);
    let ingress = config.ingress.enabled.then(|| {
        Arc::new(Ingress::new(
            &config.ingress,
            control.clone(),
            metrics.clone(),
            dialer.clone(),
        ))
    });
    let ports = config.ports.enabled.then(|| (config.ports.clone(), dialer));
    Ok((ingress, ports))
}
