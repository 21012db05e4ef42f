//! `control`: the control plane as frontends see it. Every call runs as the
//! caller the host bound to the instance for the request (or message) being
//! handled; a plugin cannot choose who it acts as. Secret values are blanked
//! in everything handed back.

use super::{HostCapability, Services, Store};
use crate::bindings::LogReader;
use crate::bindings::gantry::plugin::control;
use crate::bindings::types::{
    Caller, ContainerStats, Error, GpuAssignment, GpuModel, LogLine, LogOptions, Timestamp,
    Workload, WorkloadSpec,
};
use crate::control::ControlPlane;
use crate::model::Identity;
use crate::secrets::Redact;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

/// Per-instance state: the control plane, and the identity bound to the call.
#[derive(Clone)]
pub struct ControlCtx {
    plane: Arc<ControlPlane>,
    identity: Identity,
}

impl ControlCtx {
    /// Calls on `plane`, as nobody until [`Self::bind`].
    pub fn new(plane: Arc<ControlPlane>) -> Self {
        Self {
            plane,
            identity: Identity::None,
        }
    }

    /// Act as `identity` for the call about to be made; set by the host only.
    pub fn bind(&mut self, identity: Identity) {
        self.identity = identity;
    }

    /// The caller bound to this call, or why there is none.
    fn caller(&self) -> Result<Caller, Error> {
        match &self.identity {
            Identity::Caller(c) => Ok(c.clone()),
            Identity::Unauthenticated(reason) => Err(Error::Unauthenticated(reason.clone())),
            Identity::None => Err(Error::Unauthenticated(
                "this call is not made on behalf of a caller".into(),
            )),
        }
    }
}

/// What a store hands this capability: its state and the resource table.
pub struct ControlView<'a> {
    /// The capability's state; none for plugins that were not given `control`.
    pub ctx: Option<&'a mut ControlCtx>,
    /// The store's resource table (log readers live there).
    pub table: &'a mut ResourceTable,
    /// When the plugin's current call must have answered by: operations
    /// that have not ended well before are answered `unavailable`.
    pub answer_by: Option<Instant>,
}

impl ControlView<'_> {
    fn acting(&self) -> Result<(Arc<ControlPlane>, Caller), Error> {
        let ctx = self
            .ctx
            .as_deref()
            .ok_or_else(|| Error::Unavailable("this plugin was not given `control`".into()))?;
        Ok((ctx.plane.clone(), ctx.caller()?))
    }
}

/// The [`HasData`] of this capability.
pub struct HasControl;

impl HasData for HasControl {
    type Data<'a> = ControlView<'a>;
}

/// The capability.
pub struct Control;

impl HostCapability for Control {
    const NAME: &'static str = "control";
    const PROVIDES: &'static [(&'static str, &'static str)] = &[("gantry:plugin/control", "0.1.")];
    type Grant = ();
    /// None for plugins that were not given the control plane.
    type State = Option<ControlCtx>;
    fn state(_: &(), services: &Services) -> Option<ControlCtx> {
        services.control.clone().map(ControlCtx::new)
    }
    fn bind(state: &mut Option<ControlCtx>, identity: &Identity) {
        if let Some(c) = state {
            c.bind(identity.clone());
        }
    }
    fn link<T: Store<Self>>(l: &mut Linker<T>) -> wasmtime::Result<()> {
        control::add_to_linker::<T, HasControl>(l, |t| {
            let part = t.part();
            ControlView {
                ctx: part.state.as_mut(),
                table: part.table,
                answer_by: part.answer_by,
            }
        })
    }
}

/// Run an operation as the bound caller, on a task of its own: it runs to
/// its end (a failed create cleaned up, a lock released) even when the
/// plugin's call is cut meanwhile. The plugin waits for it within its own
/// answer budget (see [`ControlView::answer_by`]).
macro_rules! as_caller {
    ($self:ident, |$cp:ident, $c:ident| $body:expr) => {{
        let ($cp, $c) = match $self.acting() {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        let operation = tokio::spawn(async move { $body.await });
        Ok(within($self.answer_by, operation).await.map(Redact::redact))
    }};
}

/// The outcome of a spawned operation, or `unavailable` when it has not
/// ended by nine tenths of the time left until `answer_by` (the rest leaves
/// the plugin time to answer in its own protocol). The operation goes on.
async fn within<T>(
    answer_by: Option<Instant>,
    operation: tokio::task::JoinHandle<Result<T, Error>>,
) -> Result<T, Error> {
    let outcome = match answer_by {
        None => operation.await,
        Some(by) => {
            let left = by.saturating_duration_since(Instant::now());
            let wait = left - left / 10;
            match tokio::time::timeout(wait, operation).await {
                Ok(outcome) => outcome,
                Err(_) => {
                    return Err(Error::Unavailable(format!(
                        "the operation did not finish within {} ms; it goes on, and the workload's state will show its outcome",
                        wait.as_millis()
                    )));
                }
            }
        }
    };
    outcome.unwrap_or_else(|e| Err(Error::Internal(format!("the operation failed: {e}"))))
}

impl control::Host for ControlView<'_> {
    async fn whoami(&mut self) -> wasmtime::Result<Result<Caller, Error>> {
        Ok(self.acting().map(|(_, c)| c))
    }
    async fn create(
        &mut self,
        request: control::CreateRequest,
    ) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.create(&c, request))
    }
    async fn get(&mut self, id: String) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.get(&c, &id))
    }
    async fn list(
        &mut self,
        filter: control::WorkloadFilter,
        page: control::PageRequest,
    ) -> wasmtime::Result<Result<control::WorkloadPage, Error>> {
        as_caller!(self, |cp, c| cp.list(&c, filter, page))
    }
    async fn update(
        &mut self,
        id: String,
        spec: WorkloadSpec,
    ) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.update(&c, &id, spec, None))
    }
    async fn revise(
        &mut self,
        id: String,
        request: control::UpdateRequest,
    ) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.update(
            &c,
            &id,
            request.spec,
            request.annotations
        ))
    }
    async fn reconfigure(
        &mut self,
        id: String,
        request: control::ReconfigureRequest,
    ) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.reconfigure(&c, &id, request))
    }
    async fn set_annotations(
        &mut self,
        id: String,
        annotations: Vec<(String, String)>,
    ) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.set_annotations(&c, &id, annotations))
    }
    async fn delete(&mut self, id: String, force: bool) -> wasmtime::Result<Result<(), Error>> {
        as_caller!(self, |cp, c| cp.delete(&c, &id, force))
    }
    async fn start(&mut self, id: String) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.start(&c, &id))
    }
    async fn stop(
        &mut self,
        id: String,
        options: control::StopOptions,
    ) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.stop(&c, &id, options))
    }
    async fn restart(&mut self, id: String) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.restart(&c, &id))
    }
    async fn pause(&mut self, id: String) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.pause(&c, &id))
    }
    async fn resume(&mut self, id: String) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.resume(&c, &id))
    }
    async fn rename(
        &mut self,
        id: String,
        name: String,
    ) -> wasmtime::Result<Result<Workload, Error>> {
        as_caller!(self, |cp, c| cp.rename(&c, &id, name))
    }
    async fn revisions(
        &mut self,
        id: String,
        page: control::PageRequest,
    ) -> wasmtime::Result<Result<control::RevisionPage, Error>> {
        as_caller!(self, |cp, c| cp.revisions(&c, &id, page))
    }
    async fn stats(
        &mut self,
        id: String,
        container: Option<String>,
    ) -> wasmtime::Result<Result<ContainerStats, Error>> {
        as_caller!(self, |cp, c| cp.stats(&c, &id, container))
    }
    async fn gpu_models(&mut self) -> wasmtime::Result<Vec<GpuModel>> {
        Ok(self
            .ctx
            .as_deref()
            .map(|c| c.plane.gpu_models())
            .unwrap_or_default())
    }
    async fn gpus(&mut self, id: String) -> wasmtime::Result<Result<Vec<GpuAssignment>, Error>> {
        as_caller!(self, |cp, c| cp.gpus(&c, &id))
    }
    async fn now(&mut self) -> wasmtime::Result<Timestamp> {
        Ok(crate::model::now())
    }
    async fn scope_access(
        &mut self,
        scope: String,
        claim: bool,
    ) -> wasmtime::Result<Result<(), Error>> {
        as_caller!(self, |cp, c| cp.scope_access(&c, &scope, claim))
    }
    async fn logs(
        &mut self,
        id: String,
        options: LogOptions,
    ) -> wasmtime::Result<Result<Resource<LogReader>, Error>> {
        let (cp, c) = match self.acting() {
            Ok(v) => v,
            Err(e) => return Ok(Err(e)),
        };
        match cp.logs(&c, &id, options).await {
            Ok(source) => Ok(Ok(self.table.push(LogReader(source))?)),
            Err(e) => Ok(Err(e)),
        }
    }
}

impl control::HostLogReader for ControlView<'_> {
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
