//! The `Driver` trait the control plane calls, and its implementation over a
//! backend plugin's exported `gantry:plugin/driver` interface.

use crate::bindings::exports::gantry::plugin::driver as guest;
use crate::bindings::types::{
    ContainerState, ContainerStats, Error, LogLine, LogOptions, Resources, RestartPolicy, Timestamp,
};
use crate::runtime::CallError;
use crate::runtime::pool::{InstancePool, Pooled};
use crate::runtime::state::Identity;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::ResourceAny;

pub use guest::{
    BackendCapabilities, Deployment, InstanceRef, InstanceSummary, RuntimeAction, RuntimeEvent,
};

/// A stream of container output.
#[async_trait]
pub trait LogSource: Send {
    /// The next lines, waiting at most `wait_ms`; `Ok(None)` when the stream ended.
    async fn next(&mut self, wait_ms: u32) -> Result<Option<Vec<LogLine>>, Error>;
}

/// A runtime backend, as the control plane drives it.
#[async_trait]
pub trait Driver: Send + Sync {
    /// The backend's configured name.
    fn name(&self) -> &str;
    /// What the backend supports.
    async fn capabilities(&self) -> Result<BackendCapabilities, Error>;
    /// Create (and optionally start) every container of a revision.
    async fn create(
        &self,
        deployment: Deployment,
        start: bool,
    ) -> Result<Vec<ContainerState>, Error>;
    /// Start containers.
    async fn start(&self, r: InstanceRef, container: Option<String>) -> Result<(), Error>;
    /// Stop containers gracefully.
    async fn stop(
        &self,
        r: InstanceRef,
        container: Option<String>,
        signal: Option<String>,
        timeout: Option<u32>,
    ) -> Result<(), Error>;
    /// Send a signal (default SIGKILL).
    async fn kill(
        &self,
        r: InstanceRef,
        container: Option<String>,
        signal: Option<String>,
    ) -> Result<(), Error>;
    /// Restart containers.
    async fn restart(
        &self,
        r: InstanceRef,
        container: Option<String>,
        timeout: Option<u32>,
    ) -> Result<(), Error>;
    /// Pause containers.
    async fn pause(&self, r: InstanceRef, container: Option<String>) -> Result<(), Error>;
    /// Resume paused containers.
    async fn resume(&self, r: InstanceRef, container: Option<String>) -> Result<(), Error>;
    /// Remove every container of a revision.
    async fn remove(&self, r: InstanceRef, force: bool) -> Result<(), Error>;
    /// Observed state of a revision's containers.
    async fn inspect(&self, r: InstanceRef) -> Result<Vec<ContainerState>, Error>;
    /// Every revision the runtime holds with gantry's labels and all of `selector`'s.
    async fn list(&self, selector: Vec<(String, String)>) -> Result<Vec<InstanceSummary>, Error>;
    /// Resource usage of a container.
    async fn stats(
        &self,
        r: InstanceRef,
        container: Option<String>,
    ) -> Result<ContainerStats, Error>;
    /// Change resources or restart policy in place.
    async fn update(
        &self,
        r: InstanceRef,
        container: Option<String>,
        resources: Option<Resources>,
        restart: Option<RestartPolicy>,
    ) -> Result<(), Error>;
    /// Rename a revision's containers.
    async fn rename(&self, r: InstanceRef, name: String) -> Result<(), Error>;
    /// Runtime events after `since`, waiting at most `wait_ms`.
    async fn watch(
        &self,
        since: Option<Timestamp>,
        wait_ms: u32,
    ) -> Result<Vec<RuntimeEvent>, Error>;
    /// Open a container's log.
    async fn logs(&self, r: InstanceRef, options: LogOptions) -> Result<Box<dyn LogSource>, Error>;
}

/// A backend plugin.
pub struct WasmDriver {
    pool: Arc<InstancePool<guest::Guest>>,
}

impl WasmDriver {
    /// Wrap a backend plugin's pool.
    pub fn new(pool: Arc<InstancePool<guest::Guest>>) -> Self {
        Self { pool }
    }

    /// Loads the driver exports from an instance.
    pub fn loader() -> crate::runtime::pool::ExportLoader<guest::Guest> {
        |store, instance| {
            let pre = instance.instance_pre(&*store);
            guest::GuestIndices::new(&pre)?.load(store, instance)
        }
    }
}

fn internal(e: CallError) -> Error {
    Error::Internal(e.to_string())
}

macro_rules! driver_call {
    ($self:ident, |$store:ident, $g:ident| $body:expr) => {
        $self
            .pool
            .call(Identity::None, move |$store, $g| {
                Box::pin(async move { $body.await })
            })
            .await
            .map_err(internal)?
    };
}

#[async_trait]
impl Driver for WasmDriver {
    fn name(&self) -> &str {
        self.pool.name()
    }
    async fn capabilities(&self) -> Result<BackendCapabilities, Error> {
        driver_call!(self, |s, g| g.call_capabilities(s))
    }
    async fn create(&self, d: Deployment, start: bool) -> Result<Vec<ContainerState>, Error> {
        driver_call!(self, |s, g| g.call_create(s, &d, start))
    }
    async fn start(&self, r: InstanceRef, c: Option<String>) -> Result<(), Error> {
        driver_call!(self, |s, g| g.call_start(s, &r, c.as_deref()))
    }
    async fn stop(
        &self,
        r: InstanceRef,
        c: Option<String>,
        sig: Option<String>,
        t: Option<u32>,
    ) -> Result<(), Error> {
        driver_call!(self, |s, g| g.call_stop(
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
    ) -> Result<(), Error> {
        driver_call!(self, |s, g| g.call_kill(
            s,
            &r,
            c.as_deref(),
            sig.as_deref()
        ))
    }
    async fn restart(
        &self,
        r: InstanceRef,
        c: Option<String>,
        t: Option<u32>,
    ) -> Result<(), Error> {
        driver_call!(self, |s, g| g.call_restart(s, &r, c.as_deref(), t))
    }
    async fn pause(&self, r: InstanceRef, c: Option<String>) -> Result<(), Error> {
        driver_call!(self, |s, g| g.call_pause(s, &r, c.as_deref()))
    }
    async fn resume(&self, r: InstanceRef, c: Option<String>) -> Result<(), Error> {
        driver_call!(self, |s, g| g.call_resume(s, &r, c.as_deref()))
    }
    async fn remove(&self, r: InstanceRef, force: bool) -> Result<(), Error> {
        driver_call!(self, |s, g| g.call_remove(s, &r, force))
    }
    async fn inspect(&self, r: InstanceRef) -> Result<Vec<ContainerState>, Error> {
        driver_call!(self, |s, g| g.call_inspect(s, &r))
    }
    async fn list(&self, selector: Vec<(String, String)>) -> Result<Vec<InstanceSummary>, Error> {
        driver_call!(self, |s, g| g.call_list(s, &selector))
    }
    async fn stats(&self, r: InstanceRef, c: Option<String>) -> Result<ContainerStats, Error> {
        driver_call!(self, |s, g| g.call_stats(s, &r, c.as_deref()))
    }
    async fn update(
        &self,
        r: InstanceRef,
        c: Option<String>,
        res: Option<Resources>,
        rp: Option<RestartPolicy>,
    ) -> Result<(), Error> {
        driver_call!(self, |s, g| g.call_update(s, &r, c.as_deref(), res, rp))
    }
    async fn rename(&self, r: InstanceRef, name: String) -> Result<(), Error> {
        driver_call!(self, |s, g| g.call_rename(s, &r, &name))
    }
    async fn watch(
        &self,
        since: Option<Timestamp>,
        wait_ms: u32,
    ) -> Result<Vec<RuntimeEvent>, Error> {
        driver_call!(self, |s, g| g.call_watch(s, since, wait_ms))
    }
    async fn logs(&self, r: InstanceRef, options: LogOptions) -> Result<Box<dyn LogSource>, Error> {
        // The reader lives in one instance, so that instance is held for the stream's life.
        let mut p = self.pool.checkout().await.map_err(internal)?;
        let started = Instant::now();
        p.store.data_mut().begin_call(Identity::None);
        let opened = p.exports.call_logs(&mut p.store, &r, &options).await;
        match opened {
            Ok(Ok(resource)) => Ok(Box::new(WasmLogReader {
                pool: self.pool.clone(),
                instance: Some(p),
                resource,
            })),
            Ok(Err(e)) => {
                self.pool.finish(p, started, Ok(())).map_err(internal)?;
                Err(e)
            }
            Err(e) => Err(internal(
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
    pool: Arc<InstancePool<guest::Guest>>,
    instance: Option<Pooled<guest::Guest>>,
    resource: ResourceAny,
}

#[async_trait]
impl LogSource for WasmLogReader {
    async fn next(&mut self, wait_ms: u32) -> Result<Option<Vec<LogLine>>, Error> {
        let Some(p) = self.instance.as_mut() else {
            return Ok(None);
        };
        let started = Instant::now();
        p.store.data_mut().begin_call(Identity::None);
        let result = p
            .exports
            .log_reader()
            .call_next(&mut p.store, self.resource, wait_ms)
            .await;
        match result {
            Ok(r) => {
                self.pool.metrics().observe(started.elapsed());
                r
            }
            Err(e) => {
                // A failed instance is never reused: dropping it frees the reader too.
                if let Some(p) = self.instance.take() {
                    let err = self.pool.finish(p, started, Err(e)).err();
                    return Err(Error::Internal(err.map_or_else(
                        || "log reader failed".to_string(),
                        |e| e.to_string(),
                    )));
                }
                Ok(None)
            }
        }
    }
}
