//! Warm-instance pools: each plugin keeps up to `max_idle` instantiated
//! stores and reuses one for at most `max_reuse` calls. A call that fails in
//! the guest (trap, deadline, memory) discards its instance.

use super::CallError;
use super::limits::{self, CallWatch, MemoryCap};
use super::outgoing::EndpointRouter;
use super::state::{Identity, PluginInfo, PluginState};
use crate::config::LimitsConfig;
use crate::metrics::PluginMetrics;
use crate::services::HostServices;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre};

/// An instance with its store, checked out of a pool.
pub struct Pooled<I> {
    /// The store.
    pub store: Store<PluginState>,
    /// Typed exports of the instance.
    pub exports: I,
    uses: u32,
}

/// Loads typed exports from a fresh instance.
pub type ExportLoader<I> = fn(&mut Store<PluginState>, &Instance) -> wasmtime::Result<I>;

/// A boxed call on a checked-out instance.
pub type CallFuture<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

/// The instance pool of one plugin.
pub struct InstancePool<I> {
    info: Arc<PluginInfo>,
    services: Arc<HostServices>,
    pre: InstancePre<PluginState>,
    router: EndpointRouter,
    limits: LimitsConfig,
    load: ExportLoader<I>,
    idle: Mutex<Vec<Pooled<I>>>,
    metrics: PluginMetrics,
}

impl<I: Send + 'static> InstancePool<I> {
    /// A pool over a checked, pre-instantiated component.
    pub fn new(
        info: Arc<PluginInfo>,
        services: Arc<HostServices>,
        pre: InstancePre<PluginState>,
        router: EndpointRouter,
        limits: LimitsConfig,
        load: ExportLoader<I>,
    ) -> Self {
        let metrics = services.metrics.plugin(&info.name);
        Self {
            info,
            services,
            pre,
            router,
            limits,
            load,
            idle: Mutex::new(Vec::new()),
            metrics,
        }
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The plugin's metrics.
    pub fn metrics(&self) -> &PluginMetrics {
        &self.metrics
    }

    /// A warm instance, or a new one.
    pub async fn checkout(&self) -> Result<Pooled<I>, CallError> {
        if let Some(p) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(p);
        }
        let state = PluginState::new(
            self.info.clone(),
            self.services.clone(),
            self.router.clone(),
            MemoryCap::new(
                usize::try_from(self.limits.memory_mib.saturating_mul(1 << 20))
                    .unwrap_or(usize::MAX),
            ),
            CallWatch::new(Duration::from_millis(self.limits.call_timeout_ms)),
        );
        let mut store = Store::new(self.pre.engine(), state);
        limits::install(&mut store);
        store.data_mut().begin_call(Identity::None);
        let instantiate = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            (self.load)(&mut store, &instance)
        };
        match instantiate.await {
            Ok(exports) => Ok(Pooled {
                store,
                exports,
                uses: 0,
            }),
            Err(e) => {
                let err = classify(&self.info.name, &store, &e);
                self.metrics.failed(err.kind());
                Err(match err {
                    CallError::Trap { plugin, message } => {
                        CallError::Instantiate { plugin, message }
                    }
                    other => other,
                })
            }
        }
    }

    /// Return an instance after a successful call.
    pub fn checkin(&self, mut p: Pooled<I>) {
        p.uses += 1;
        p.store.data_mut().identity = Identity::None;
        if p.uses >= self.limits.max_reuse {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < self.limits.max_idle {
            idle.push(p);
        }
    }

    /// Run `f` on an instance as `identity`, with the plugin's guards and metrics.
    pub async fn call<R: Send>(
        &self,
        identity: Identity,
        f: impl for<'a> FnOnce(&'a mut Store<PluginState>, &'a I) -> CallFuture<'a, R> + Send,
    ) -> Result<R, CallError> {
        let mut p = self.checkout().await?;
        let started = Instant::now();
        p.store.data_mut().begin_call(identity);
        let result = f(&mut p.store, &p.exports).await;
        self.metrics.observe(started.elapsed());
        match result {
            Ok(r) => {
                self.checkin(p);
                Ok(r)
            }
            Err(e) => {
                let err = classify(&self.info.name, &p.store, &e);
                self.metrics.failed(err.kind());
                tracing::warn!(plugin = %self.info.name, error = %err, "plugin call failed; instance discarded");
                Err(err)
            }
        }
    }

    /// Record the outcome of a call made on a checked-out instance outside [`Self::call`].
    pub fn finish(
        &self,
        p: Pooled<I>,
        started: Instant,
        result: Result<(), wasmtime::Error>,
    ) -> Result<(), CallError> {
        self.metrics.observe(started.elapsed());
        match result {
            Ok(()) => {
                self.checkin(p);
                Ok(())
            }
            Err(e) => {
                let err = classify(&self.info.name, &p.store, &e);
                self.metrics.failed(err.kind());
                tracing::warn!(plugin = %self.info.name, error = %err, "plugin call failed; instance discarded");
                Err(err)
            }
        }
    }
}

/// Turn a wasmtime error into a typed call error, using what the guards saw.
pub fn classify(plugin: &str, store: &Store<PluginState>, e: &wasmtime::Error) -> CallError {
    let plugin = plugin.to_string();
    if let Some(limit) = store.data().memory_exceeded() {
        return CallError::Memory { plugin, limit };
    }
    if let Some(ms) = store.data().deadline_expired() {
        return CallError::Deadline { plugin, ms };
    }
    CallError::Trap {
        plugin,
        message: format!("{e:#}"),
    }
}
