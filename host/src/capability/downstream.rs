//! `driver`, imported: a scheduler's downstream backend. Every call goes to
//! the backend the scheduler's config names as `downstream`, as the host's
//! own [`Driver`] calls do; its errors keep their kind (a downstream that ran
//! out of time is `unavailable`, one that trapped is `internal`).

use super::{HostCapability, Services, Store};
use crate::bindings::LogReader;
use crate::bindings::exports::gantry::plugin::driver as exported;
use crate::bindings::gantry::plugin::driver as imported;
use crate::bindings::types::{
    ContainerState, ContainerStats, Error, LogLine, LogOptions, Resources, RestartPolicy, Timestamp,
};
use crate::driver::{Driver, DriverResult};
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

/// Per-instance state: the downstream backend.
#[derive(Clone)]
pub struct DownstreamCtx {
    driver: Arc<dyn Driver>,
}

impl DownstreamCtx {
    /// Calls go to `driver`.
    pub fn new(driver: Arc<dyn Driver>) -> Self {
        Self { driver }
    }
}

/// What a store hands this capability: its state and the resource table.
pub struct DownstreamView<'a> {
    /// The capability's state; none for plugins without a downstream.
    pub ctx: Option<&'a mut DownstreamCtx>,
    /// The store's resource table (downstream log readers live there).
    pub table: &'a mut ResourceTable,
}

/// The [`HasData`] of this capability.
pub struct HasDownstream;

impl HasData for HasDownstream {
    type Data<'a> = DownstreamView<'a>;
}

/// The capability.
pub struct Downstream;

impl HostCapability for Downstream {
    const NAME: &'static str = "downstream";
    const PROVIDES: &'static [(&'static str, &'static str)] = &[("gantry:plugin/driver", "0.1.")];
    type Grant = ();
    /// None for plugins without a downstream.
    type State = Option<DownstreamCtx>;
    fn state(_: &(), services: &Services) -> Option<DownstreamCtx> {
        services.downstream.clone().map(DownstreamCtx::new)
    }
    fn link<T: Store<Self>>(l: &mut Linker<T>) -> wasmtime::Result<()> {
        imported::add_to_linker::<T, HasDownstream>(l, |t| {
            let part = t.part();
            DownstreamView {
                ctx: part.state.as_mut(),
                table: part.table,
            }
        })
    }
}

impl DownstreamView<'_> {
    fn driver(&self) -> Result<Arc<dyn Driver>, Error> {
        self.ctx
            .as_deref()
            .map(|c| c.driver.clone())
            .ok_or_else(|| Error::Unavailable("this plugin has no downstream backend".into()))
    }
}

/// The downstream's answer as the WIT result the scheduler receives.
fn answer<T, U: From<T>>(r: DriverResult<T>) -> wasmtime::Result<Result<U, Error>> {
    Ok(r.map(U::from).map_err(Error::from))
}

/// Call the downstream, or answer that there is none; a list of records is
/// moved across element by element.
macro_rules! downstream {
    ($self:ident, |$d:ident| $call:expr) => {{
        let $d = match $self.driver() {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        answer($call.await)
    }};
    ($self:ident, |$d:ident| $call:expr, each) => {
        downstream!($self, |$d| async {
            $call
                .await
                .map(|v| v.into_iter().map(Into::into).collect::<Vec<_>>())
        })
    };
}

impl imported::Host for DownstreamView<'_> {
    async fn capabilities(
        &mut self,
    ) -> wasmtime::Result<Result<imported::BackendCapabilities, Error>> {
        downstream!(self, |d| d.capabilities())
    }
    async fn create(
        &mut self,
        deployment: imported::Deployment,
        start: bool,
    ) -> wasmtime::Result<Result<Vec<ContainerState>, Error>> {
        downstream!(self, |d| d.create(deployment.into(), start))
    }
    async fn start(
        &mut self,
        r: imported::InstanceRef,
        container: Option<String>,
    ) -> wasmtime::Result<Result<(), Error>> {
        downstream!(self, |d| d.start(r.into(), container))
    }
    async fn stop(
        &mut self,
        r: imported::InstanceRef,
        container: Option<String>,
        signal: Option<String>,
        timeout: Option<u32>,
    ) -> wasmtime::Result<Result<(), Error>> {
        downstream!(self, |d| d.stop(r.into(), container, signal, timeout))
    }
    async fn kill(
        &mut self,
        r: imported::InstanceRef,
        container: Option<String>,
        signal: Option<String>,
    ) -> wasmtime::Result<Result<(), Error>> {
        downstream!(self, |d| d.kill(r.into(), container, signal))
    }
    async fn restart(
        &mut self,
        r: imported::InstanceRef,
        container: Option<String>,
        timeout: Option<u32>,
    ) -> wasmtime::Result<Result<(), Error>> {
        downstream!(self, |d| d.restart(r.into(), container, timeout))
    }
    async fn pause(
        &mut self,
        r: imported::InstanceRef,
        container: Option<String>,
    ) -> wasmtime::Result<Result<(), Error>> {
        downstream!(self, |d| d.pause(r.into(), container))
    }
    async fn resume(
        &mut self,
        r: imported::InstanceRef,
        container: Option<String>,
    ) -> wasmtime::Result<Result<(), Error>> {
        downstream!(self, |d| d.resume(r.into(), container))
    }
    async fn remove(
        &mut self,
        r: imported::InstanceRef,
        force: bool,
    ) -> wasmtime::Result<Result<(), Error>> {
        downstream!(self, |d| d.remove(r.into(), force))
    }
    async fn inspect(
        &mut self,
        r: imported::InstanceRef,
    ) -> wasmtime::Result<Result<Vec<ContainerState>, Error>> {
        downstream!(self, |d| d.inspect(r.into()))
    }
    async fn list(
        &mut self,
        selector: Vec<(String, String)>,
    ) -> wasmtime::Result<Result<Vec<imported::InstanceSummary>, Error>> {
        downstream!(self, |d| d.list(selector), each)
    }
    async fn stats(
        &mut self,
        r: imported::InstanceRef,
        container: Option<String>,
    ) -> wasmtime::Result<Result<ContainerStats, Error>> {
        downstream!(self, |d| d.stats(r.into(), container))
    }
    async fn update(
        &mut self,
        r: imported::InstanceRef,
        container: Option<String>,
        resources: Option<Resources>,
        restart: Option<RestartPolicy>,
    ) -> wasmtime::Result<Result<(), Error>> {
        downstream!(self, |d| d.update(r.into(), container, resources, restart))
    }
    async fn rename(
        &mut self,
        r: imported::InstanceRef,
        name: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        downstream!(self, |d| d.rename(r.into(), name))
    }
    async fn watch(
        &mut self,
        since: Option<Timestamp>,
        wait_ms: u32,
    ) -> wasmtime::Result<Result<Vec<imported::RuntimeEvent>, Error>> {
        downstream!(self, |d| d.watch(since, wait_ms), each)
    }
    async fn logs(
        &mut self,
        r: imported::InstanceRef,
        options: LogOptions,
    ) -> wasmtime::Result<Result<Resource<LogReader>, Error>> {
        let d = match self.driver() {
            Ok(d) => d,
            Err(e) => return Ok(Err(e)),
        };
        match d.logs(r.into(), options).await {
            Ok(source) => Ok(Ok(self.table.push(LogReader(source))?)),
            Err(e) => Ok(Err(e.into())),
        }
    }
}

impl imported::HostLogReader for DownstreamView<'_> {
    async fn next(
        &mut self,
        reader: Resource<LogReader>,
        wait_ms: u32,
    ) -> wasmtime::Result<Result<Option<Vec<LogLine>>, Error>> {
        Ok(self.table.get_mut(&reader)?.next(wait_ms).await)
    }
    async fn drop(&mut self, reader: Resource<LogReader>) -> wasmtime::Result<()> {
        self.table.delete(reader)?;
        Ok(())
    }
}

// The imported and the exported `driver` are the same WIT interface, but
// bindgen gives each side its own Rust records: these move a value across.

impl From<imported::InstanceRef> for exported::InstanceRef {
    fn from(r: imported::InstanceRef) -> Self {
        Self {
            workload_id: r.workload_id,
            revision: r.revision,
        }
    }
}

impl From<imported::Deployment> for exported::Deployment {
    fn from(d: imported::Deployment) -> Self {
        Self {
            workload_id: d.workload_id,
            revision: d.revision,
            name: d.name,
            spec: d.spec,
            labels: d.labels,
        }
    }
}

impl From<exported::BackendCapabilities> for imported::BackendCapabilities {
    fn from(c: exported::BackendCapabilities) -> Self {
        Self {
            runtime: c.runtime,
            multi_container: c.multi_container,
            pause: c.pause,
            gpu: c.gpu,
            ephemeral_storage_enforced: c.ephemeral_storage_enforced,
            logs_follow: c.logs_follow,
            stats: c.stats,
            events: c.events,
            update_in_place: c.update_in_place,
            rename: c.rename,
        }
    }
}

impl From<exported::InstanceSummary> for imported::InstanceSummary {
    fn from(s: exported::InstanceSummary) -> Self {
        Self {
            workload_id: s.workload_id,
            revision: s.revision,
            containers: s.containers,
        }
    }
}

impl From<exported::RuntimeAction> for imported::RuntimeAction {
    fn from(a: exported::RuntimeAction) -> Self {
        use exported::RuntimeAction as E;
        use imported::RuntimeAction as I;
        match a {
            E::Created => I::Created,
            E::Started => I::Started,
            E::Exited => I::Exited,
            E::OomKilled => I::OomKilled,
            E::Paused => I::Paused,
            E::Resumed => I::Resumed,
            E::Removed => I::Removed,
            E::Other => I::Other,
        }
    }
}

impl From<exported::RuntimeEvent> for imported::RuntimeEvent {
    fn from(e: exported::RuntimeEvent) -> Self {
        Self {
            workload_id: e.workload_id,
            revision: e.revision,
            container: e.container,
            action: e.action.into(),
            exit_code: e.exit_code,
            at: e.at,
        }
    }
}
