//! Instance pools. A plugin's instances live by its world's
//! [`InstancePolicy`]: pooled (up to `max_idle` warm stores, each reused for
//! at most `max_reuse` calls) or one long-lived instance. A call that fails in
//! the guest (trap, deadline, memory) discards its instance either way.
//!
//! The pool is generic over the store's data: what a plugin can import is the
//! business of whoever builds that data, not of the runtime.
//!
//! A pool can be handed a new component while it serves ([`InstancePool::replace`]):
//! calls that start afterwards get instances of the new one, calls already
//! running (and response bodies still streaming from them) finish on the
//! instance they hold, which is then dropped instead of going back to the pool.

use super::CallError;
use super::busy::{BusySlot, Responsive};
use super::limits::{self, InstancePolicy, LimitsConfig, PluginData};
use crate::metrics::PluginMetrics;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use wasmtime::Store;
use wasmtime::component::{Instance, InstancePre};

/// An instance with its store, checked out of a pool.
pub struct Pooled<D: 'static, I> {
    /// The store.
    pub store: Store<D>,
    /// Typed exports of the instance.
    pub exports: I,
    uses: u32,
    generation: u64,
}

/// Loads typed exports from a fresh instance.
pub type ExportLoader<D, I> = fn(&mut Store<D>, &Instance) -> wasmtime::Result<I>;

/// Builds the data of a fresh instance's store around its guards.
pub type DataFactory<D> = Arc<dyn Fn(limits::Guards) -> D + Send + Sync>;

/// A boxed call on a checked-out instance.
pub type CallFuture<'a, R> = Pin<Box<dyn Future<Output = wasmtime::Result<R>> + Send + 'a>>;

/// What a pool instantiates: one component with the data and limits of its
/// instances. Replaced as a whole when the plugin is swapped.
pub struct Generation<D: 'static> {
    /// The checked, pre-instantiated component.
    pub pre: InstancePre<D>,
    /// Store data of a fresh instance.
    pub data: DataFactory<D>,
    /// Its limits, overrides applied.
    pub limits: LimitsConfig,
}

impl<D: PluginData> Generation<D> {
    /// Instantiate it once, as a call would, and drop the instance: what a
    /// type check cannot tell (initial memory above the cap, a start that
    /// traps) shows here, before anything is swapped.
    pub async fn try_instantiate(&self) -> Result<(), String> {
        let mut store = Store::new(self.pre.engine(), (self.data)(self.limits.guards()));
        limits::install(&mut store);
        store.data_mut().guards().begin_call();
        self.pre
            .instantiate_async(&mut store)
            .await
            .map(drop)
            .map_err(|e| format!("{e:#}"))
    }
}

/// The instances of one plugin.
pub struct InstancePool<D: 'static, I> {
    name: String,
    current: RwLock<Arc<Generation<D>>>,
    /// Counts swaps; an instance remembers the one it was made in.
    generation: AtomicU64,
    /// Tells long-lived callers of each swap.
    swaps: tokio::sync::watch::Sender<u64>,
    policy: InstancePolicy,
    load: ExportLoader<D, I>,
    idle: Mutex<Vec<Pooled<D, I>>>,
    /// Held across each call of a long-lived plugin, so its one instance is
    /// never doubled by calls at the same time.
    serial: tokio::sync::Mutex<()>,
    /// The call a long-lived plugin is in, for [`Self::unresponsive`].
    busy: BusySlot,
    /// Why the last instance could not be made, until one is.
    broken: Mutex<Option<String>>,
    metrics: PluginMetrics,
}

/// What a pool is built from, besides the component.
pub struct PoolSpec<D: 'static, I> {
    /// The plugin's configured name.
    pub name: String,
    /// Its limits, overrides applied.
    pub limits: LimitsConfig,
    /// Its world's instance policy.
    pub policy: InstancePolicy,
    /// Store data of a fresh instance.
    pub data: DataFactory<D>,
    /// Typed exports of a fresh instance.
    pub load: ExportLoader<D, I>,
    /// Where calls are counted.
    pub metrics: PluginMetrics,
}

impl<D: PluginData, I: Send + 'static> InstancePool<D, I> {
    /// A pool over a checked, pre-instantiated component.
    pub fn new(pre: InstancePre<D>, spec: PoolSpec<D, I>) -> Self {
        Self {
            name: spec.name,
            current: RwLock::new(Arc::new(Generation {
                pre,
                data: spec.data,
                limits: spec.limits,
            })),
            generation: AtomicU64::new(0),
            swaps: tokio::sync::watch::Sender::new(0),
            policy: spec.policy,
            load: spec.load,
            idle: Mutex::new(Vec::new()),
            serial: tokio::sync::Mutex::new(()),
            busy: BusySlot::default(),
            broken: Mutex::new(None),
            metrics: spec.metrics,
        }
    }

    /// The plugin's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The plugin's metrics.
    pub fn metrics(&self) -> &PluginMetrics {
        &self.metrics
    }

    /// How many times the plugin has been swapped; changes when
    /// [`Self::replace`] does, so a long-lived caller can tell that its next
    /// call reaches a fresh instance of another component.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// How long a call may take to answer (the current component's limits).
    pub fn answer_within(&self) -> Duration {
        self.current().0.limits.answer_within()
    }

    /// Why a long-lived plugin is not answering, if it is not: its one
    /// instance has been in a call for longer than half its budget (30 s at
    /// most), or no instance of it could be made. Pooled plugins serve calls
    /// side by side and are never reported.
    pub fn unresponsive(&self) -> Option<String> {
        if self.policy != InstancePolicy::LongLived {
            return None;
        }
        if let Some(why) = self
            .broken
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Some(why);
        }
        self.busy.overdue(&self.name)
    }

    /// What new instances are made from.
    fn current(&self) -> (Arc<Generation<D>>, u64) {
        let current = self.current.read().unwrap_or_else(|e| e.into_inner());
        (current.clone(), self.generation())
    }

    /// Serve later calls from `next`. Warm instances of the previous
    /// component are dropped now; those checked out finish their call (or
    /// their streaming response) and are dropped when they come back.
    pub fn replace(&self, next: Generation<D>) -> u64 {
        let number = {
            let mut current = self.current.write().unwrap_or_else(|e| e.into_inner());
            *current = Arc::new(next);
            // Bumped under the lock, so a reader never pairs the new
            // component with the old number.
            self.generation.fetch_add(1, Ordering::AcqRel) + 1
        };
        // Dropped once the lock is released: freeing stores takes a while.
        let stale = std::mem::take(&mut *self.idle.lock().unwrap_or_else(|e| e.into_inner()));
        drop(stale);
        self.swaps.send_replace(number);
        number
    }

    /// Changes with every [`Self::replace`]: a long-lived caller (an MQTT
    /// frontend's worker) greets the new component's instance without
    /// waiting for its next message.
    pub fn swaps(&self) -> tokio::sync::watch::Receiver<u64> {
        self.swaps.subscribe()
    }

    /// A warm instance, or a new one.
    pub async fn checkout(&self) -> Result<Pooled<D, I>, CallError> {
        if let Some(p) = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop() {
            return Ok(p);
        }
        let (current, generation) = self.current();
        self.metrics.instantiated();
        let mut store = Store::new(
            current.pre.engine(),
            (current.data)(current.limits.guards()),
        );
        limits::install(&mut store);
        store.data_mut().guards().begin_call();
        let instantiate = async {
            let instance = current.pre.instantiate_async(&mut store).await?;
            (self.load)(&mut store, &instance)
        };
        let made = match instantiate.await {
            Ok(exports) => Ok(Pooled {
                store,
                exports,
                uses: 0,
                generation,
            }),
            Err(e) => {
                let err = classify(&self.name, &mut store, &e);
                self.metrics.failed(err.kind());
                Err(match err {
                    CallError::Trap { plugin, message } => {
                        CallError::Instantiate { plugin, message }
                    }
                    other => other,
                })
            }
        };
        *self.broken.lock().unwrap_or_else(|e| e.into_inner()) =
            made.as_ref().err().map(ToString::to_string);
        made
    }

    /// Return an instance after a successful call.
    pub fn checkin(&self, mut p: Pooled<D, I>) {
        p.uses += 1;
        p.store.data_mut().end_call();
        let (current, generation) = self.current();
        let limits = &current.limits;
        let (max_reuse, max_idle) = match self.policy {
            InstancePolicy::Pooled => (limits.max_reuse, limits.max_idle),
            InstancePolicy::LongLived => (u32::MAX, 1),
        };
        if p.uses >= max_reuse || p.generation != generation {
            return;
        }
        if self.policy == InstancePolicy::Pooled
            && p.store.data_mut().guards().memory.grown() > limits.retain_bytes()
        {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        // Checked again under the idle lock, which `replace` takes after
        // bumping the number: an instance of the old component never lands
        // in the idle list after it was cleared.
        if idle.len() < max_idle && p.generation == self.generation() {
            idle.push(p);
        }
    }

    /// Run `f` (the export `what`) on an instance, after `bind` prepared its
    /// data for this call (the caller it acts as, for instance), with the
    /// plugin's guards and metrics; cut when it has not answered within the
    /// plugin's `answer_timeout_ms`.
    pub async fn call<R: Send>(
        &self,
        what: &'static str,
        bind: impl FnOnce(&mut D) + Send,
        f: impl for<'a> FnOnce(&'a mut Store<D>, &'a I) -> CallFuture<'a, R> + Send,
    ) -> Result<R, CallError> {
        self.call_within(what, self.answer_within(), bind, f).await
    }

    /// [`Self::call`] with a budget of its own (a stop that may wait out
    /// the grace period it was given, say).
    pub async fn call_within<R: Send>(
        &self,
        what: &'static str,
        within: Duration,
        bind: impl FnOnce(&mut D) + Send,
        f: impl for<'a> FnOnce(&'a mut Store<D>, &'a I) -> CallFuture<'a, R> + Send,
    ) -> Result<R, CallError> {
        let _one_at_a_time = match self.policy {
            InstancePolicy::LongLived => Some(self.serial.lock().await),
            InstancePolicy::Pooled => None,
        };
        let _busy =
            (self.policy == InstancePolicy::LongLived).then(|| self.busy.enter(what, within));
        let mut p = self.checkout().await?;
        let started = Instant::now();
        self.begin(&mut p, bind);
        let by = started + within;
        p.store.data_mut().guards().answer_until(by);
        let result = tokio::time::timeout_at(by.into(), f(&mut p.store, &p.exports)).await;
        self.metrics.observe(started.elapsed());
        match result {
            Ok(Ok(r)) => {
                self.checkin(p);
                Ok(r)
            }
            Ok(Err(e)) => Err(self.discard(p, &e)),
            Err(_) => Err(self.cut(p, what, within)),
        }
    }

    /// Prepare a checked-out instance for a call made outside [`Self::call`].
    pub fn begin(&self, p: &mut Pooled<D, I>, bind: impl FnOnce(&mut D)) {
        let data = p.store.data_mut();
        data.guards().begin_call();
        bind(data);
    }

    /// Record the outcome of a call made on a checked-out instance outside [`Self::call`].
    pub fn finish(
        &self,
        p: Pooled<D, I>,
        started: Instant,
        result: Result<(), wasmtime::Error>,
    ) -> Result<(), CallError> {
        self.metrics.observe(started.elapsed());
        match result {
            Ok(()) => {
                self.checkin(p);
                Ok(())
            }
            Err(e) => Err(self.discard(p, &e)),
        }
    }

    /// Drop the instance of a call that did not answer in time (its store
    /// is mid-call and cannot be reused) and count it.
    pub fn cut(&self, p: Pooled<D, I>, what: &'static str, within: Duration) -> CallError {
        drop(p);
        let err = CallError::Unanswered {
            plugin: self.name.clone(),
            call: what,
            ms: within.as_millis(),
        };
        self.failed(&err);
        tracing::warn!(plugin = %self.name, error = %err, "plugin call cut; instance dropped");
        err
    }

    /// Count a call that failed its instance.
    fn failed(&self, err: &CallError) {
        self.metrics.failed(err.kind());
        if self.policy == InstancePolicy::LongLived {
            self.metrics.replaced(err.kind());
        }
    }

    /// Classify a failed call, count it, and drop its instance.
    fn discard(&self, mut p: Pooled<D, I>, e: &wasmtime::Error) -> CallError {
        let err = classify(&self.name, &mut p.store, e);
        self.failed(&err);
        tracing::warn!(plugin = %self.name, error = %err, "plugin call failed; instance discarded");
        err
    }
}

impl<D: PluginData, I: Send + 'static> Responsive for InstancePool<D, I> {
    fn unresponsive(&self) -> Option<String> {
        InstancePool::unresponsive(self)
    }
}

/// Turn a wasmtime error into a typed call error, using what the guards saw.
pub fn classify<D: PluginData>(
    plugin: &str,
    store: &mut Store<D>,
    e: &wasmtime::Error,
) -> CallError {
    let plugin = plugin.to_string();
    let guards = store.data_mut().guards();
    if let Some(limit) = guards.memory_exceeded() {
        return CallError::Memory { plugin, limit };
    }
    if let Some(ms) = guards.deadline_expired() {
        return CallError::Deadline { plugin, ms };
    }
    CallError::Trap {
        plugin,
        message: format!("{e:#}"),
    }
}
