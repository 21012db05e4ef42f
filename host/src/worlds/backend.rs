//! A backend plugin as a [`Driver`]: each call runs on a pooled instance of
//! the plugin's exported `gantry:plugin/driver`; a failure of the plugin
//! itself keeps its kind ([`DriverError::Plugin`]).

use super::PluginState;
use crate::bindings::exports::gantry::plugin::cluster;
use crate::bindings::exports::gantry::plugin::driver as guest;
use crate::bindings::types::{
    ContainerState, ContainerStats, Error, LogLine, LogOptions, Resources, RestartPolicy, Timestamp,
};
use crate::driver::{
    BackendCapabilities, ClusterNode, ClusterTask, Deployment, Driver, DriverError, DriverResult,
    InstanceRef, InstanceSummary, LogSource, NodeAvailability, RuntimeEvent, not_a_cluster,
};
use crate::runtime::CallError;
use crate::runtime::pool::{ExportLoader, InstancePool, Pooled};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::ResourceAny;

/// What a backend plugin exports: `driver`, and `cluster` when it drives a
/// cluster engine (world `cluster-backend`, since 0.1.4).
pub struct BackendExports {
    driver: guest::Guest,
    cluster: Option<cluster::Guest>,
}

/// The pool of a backend plugin.
pub type BackendPool = InstancePool<PluginState, BackendExports>;

/// A backend plugin.
pub struct WasmDriver {
    pool: Arc<BackendPool>,
}

impl WasmDriver {
    /// Wrap a backend plugin's pool.
    pub fn new(pool: Arc<BackendPool>) -> Self {
        Self { pool }
    }

    /// Loads the driver exports from an instance. Exports are looked up
    /// semver-compatibly, so a plugin built against an older `0.1.x` loads.
    pub fn loader() -> ExportLoader<PluginState, BackendExports> {
        |store, instance| {
            let pre = instance.instance_pre(&*store);
            let driver = guest::GuestIndices::new(&pre)?.load(&mut *store, instance)?;
            let cluster = match cluster::GuestIndices::new(&pre) {
                Ok(indices) => Some(indices.load(&mut *store, instance)?),
                Err(_) => None,
            };
            Ok(BackendExports { driver, cluster })
        }
    }
}

/// Backends act on nobody's behalf.
fn unbound(_: &mut PluginState) {}

/// A call on the `driver` export named `$what`, within the plugin's answer
/// budget (plus `extra`, where the call itself waits: a stop's grace period).
macro_rules! driver_call {
    ($self:ident, $what:literal, |$store:ident, $g:ident| $body:expr) => {
        driver_call!($self, $what, Duration::ZERO, |$store, $g| $body)
    };
    ($self:ident, $what:literal, $extra:expr, |$store:ident, $g:ident| $body:expr) => {
        Ok($self
            .pool
            .call_within(
                $what,
                $self.pool.answer_within() + $extra,
                unbound,
                move |$store, $g| Box::pin(async move { $body.await }),
            )
            .await??)
    };
}

/// A grace period in seconds, as extra time for the call that waits it out.
fn grace(seconds: Option<u32>) -> Duration {
    Duration::from_secs(seconds.map_or(0, u64::from))
}

/// A call on the `cluster` export; `unsupported` for a plugin without one.
macro_rules! cluster_call {
    ($self:ident, $what:literal, $name:ident, |$store:ident, $c:ident| $body:expr) => {
        $self
            .pool
            .call($what, unbound, move |$store, g| {
                Box::pin(async move {
                    match &g.cluster {
                        Some($c) => Ok($body.await?.map_err(DriverError::Backend)),
                        None => Ok(Err(not_a_cluster(&$name))),
                    }
                })
            })
            .await?
    };
}

#[async_trait]
impl Driver for WasmDriver {
    fn name(&self) -> &str {
        self.pool.name()
    }
    async fn capabilities(&self) -> DriverResult<BackendCapabilities> {
        driver_call!(self, "capabilities", |s, g| g.driver.call_capabilities(s))
    }
    async fn create(&self, d: Deployment, start: bool) -> DriverResult<Vec<ContainerState>> {
        driver_call!(self, "create", |s, g| g.driver.call_create(s, &d, start))
    }
    async fn start(&self, r: InstanceRef, c: Option<String>) -> DriverResult<()> {
        driver_call!(self, "start", |s, g| g.driver.call_start(
            s,
            &r,
            c.as_deref()
        ))
    }
    async fn stop(
        &self,
        r: InstanceRef,
        c: Option<String>,
        sig: Option<String>,
        t: Option<u32>,
    ) -> DriverResult<()> {
        driver_call!(self, "stop", grace(t), |s, g| g.driver.call_stop(
            s,
            &r,
            c.as_deref(),
            sig.as_deref(),
            t
        ))
    }
    async fn kill(
        &self,
        r: InstanceRef,
        c: Option<String>,
        sig: Option<String>,
    ) -> DriverResult<()> {
        driver_call!(self, "kill", |s, g| g.driver.call_kill(
            s,
            &r,
            c.as_deref(),
            sig.as_deref()
        ))
    }
    async fn restart(&self, r: InstanceRef, c: Option<String>, t: Option<u32>) -> DriverResult<()> {
        driver_call!(self, "restart", grace(t), |s, g| g.driver.call_restart(
            s,
            &r,
            c.as_deref(),
            t
        ))
    }
    async fn pause(&self, r: InstanceRef, c: Option<String>) -> DriverResult<()> {
        driver_call!(self, "pause", |s, g| g.driver.call_pause(
            s,
            &r,
            c.as_deref()
        ))
    }
    async fn resume(&self, r: InstanceRef, c: Option<String>) -> DriverResult<()> {
        driver_call!(self, "resume", |s, g| g.driver.call_resume(
            s,
            &r,
            c.as_deref()
        ))
    }
    async fn remove(&self, r: InstanceRef, force: bool) -> DriverResult<()> {
        driver_call!(self, "remove", |s, g| g.driver.call_remove(s, &r, force))
    }
    async fn inspect(&self, r: InstanceRef) -> DriverResult<Vec<ContainerState>> {
        driver_call!(self, "inspect", |s, g| g.driver.call_inspect(s, &r))
    }
    async fn list(&self, selector: Vec<(String, String)>) -> DriverResult<Vec<InstanceSummary>> {
        driver_call!(self, "list", |s, g| g.driver.call_list(s, &selector))
    }
    async fn stats(&self, r: InstanceRef, c: Option<String>) -> DriverResult<ContainerStats> {
        driver_call!(self, "stats", |s, g| g.driver.call_stats(
            s,
            &r,
            c.as_deref()
        ))
    }
    async fn update(
        &self,
        r: InstanceRef,
        c: Option<String>,
        res: Option<Resources>,
        rp: Option<RestartPolicy>,
    ) -> DriverResult<()> {
        driver_call!(self, "update", |s, g| g.driver.call_update(
            s,
            &r,
            c.as_deref(),
            res,
            rp
        ))
    }
    async fn rename(&self, r: InstanceRef, name: String) -> DriverResult<()> {
        driver_call!(self, "rename", |s, g| g.driver.call_rename(s, &r, &name))
    }
    async fn watch(
        &self,
        since: Option<Timestamp>,
        wait_ms: u32,
    ) -> DriverResult<Vec<RuntimeEvent>> {
        let waits = Duration::from_millis(u64::from(wait_ms));
        driver_call!(self, "watch", waits, |s, g| g
            .driver
            .call_watch(s, since, wait_ms))
    }
    async fn is_cluster(&self) -> DriverResult<bool> {
        let cluster = self.pool.call("cluster", unbound, |_, g| {
            let exported = g.cluster.is_some();
            Box::pin(async move { Ok(exported) })
        });
        Ok(cluster.await?)
    }
    async fn nodes(&self) -> DriverResult<Vec<ClusterNode>> {
        let name = self.name().to_string();
        cluster_call!(self, "nodes", name, |s, c| c.call_nodes(s))
    }
    async fn set_availability(
        &self,
        node: String,
        availability: NodeAvailability,
    ) -> DriverResult<ClusterNode> {
        let name = self.name().to_string();
        cluster_call!(self, "set-availability", name, |s, c| c
            .call_set_availability(s, &node, availability))
    }
    async fn tasks(&self, r: InstanceRef) -> DriverResult<Vec<ClusterTask>> {
        let name = self.name().to_string();
        cluster_call!(self, "tasks", name, |s, c| c.call_tasks(
            s,
            &r.workload_id,
            r.revision
        ))
    }
    async fn logs(&self, r: InstanceRef, options: LogOptions) -> DriverResult<Box<dyn LogSource>> {
        // The reader lives in one instance, so that instance is held for the stream's life.
        let mut p = self.pool.checkout().await?;
        let started = Instant::now();
        self.pool.begin(&mut p, unbound);
        let within = self.pool.answer_within();
        let opened = tokio::time::timeout(
            within,
            p.exports.driver.call_logs(&mut p.store, &r, &options),
        )
        .await;
        let Ok(opened) = opened else {
            return Err(self.pool.cut(p, "logs", within).into());
        };
        match opened {
            Ok(Ok(resource)) => Ok(Box::new(WasmLogReader {
                pool: self.pool.clone(),
                instance: Some(p),
                resource,
            })),
            Ok(Err(e)) => {
                self.pool.finish(p, started, Ok(()))?;
                Err(DriverError::Backend(e))
            }
            Err(e) => Err(DriverError::Plugin(
                self.pool
                    .finish(p, started, Err(e))
                    .err()
                    .unwrap_or_else(|| CallError::Trap {
                        plugin: self.pool.name().to_string(),
                        message: "log reader failed".into(),
                    }),
            )),
        }
    }
}

struct WasmLogReader {
    pool: Arc<BackendPool>,
    instance: Option<Pooled<PluginState, BackendExports>>,
    resource: ResourceAny,
}

#[async_trait]
impl LogSource for WasmLogReader {
    async fn next(&mut self, wait_ms: u32) -> Result<Option<Vec<LogLine>>, Error> {
        let Some(p) = self.instance.as_mut() else {
            return Ok(None);
        };
        let started = Instant::now();
        self.pool.begin(p, unbound);
        let within = self.pool.answer_within() + Duration::from_millis(u64::from(wait_ms));
        let reader = p.exports.driver.log_reader();
        let call = reader.call_next(&mut p.store, self.resource, wait_ms);
        let Ok(result) = tokio::time::timeout(within, call).await else {
            let err = match self.instance.take() {
                Some(p) => self.pool.cut(p, "log-reader.next", within),
                None => return Ok(None),
            };
            return Err(DriverError::Plugin(err).into());
        };
        match result {
            Ok(r) => {
                self.pool.metrics().observe(started.elapsed());
                r
            }
            Err(e) => {
                // A failed instance is never reused: dropping it frees the reader too.
                // Its kind is kept: a reader that ran past its deadline is `unavailable`.
                if let Some(p) = self.instance.take() {
                    let err = self.pool.finish(p, started, Err(e)).err();
                    return Err(match err {
                        Some(call) => DriverError::Plugin(call).into(),
                        None => Error::Internal("log reader failed".into()),
                    });
                }
                Ok(None)
            }
        }
    }
}
