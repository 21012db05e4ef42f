//! `allocations`: the GPU ledger, for schedulers. Every call goes to the
//! control plane's [`GpuLedger`], which keeps allocations durable and
//! exclusive; the scheduler only decides which GPUs.

use super::{HostCapability, Services, Store};
use crate::bindings::gantry::plugin::allocations::{self, Claim};
use crate::bindings::types::{Error, GpuAssignment};
use crate::control::gpus::GpuLedger;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

/// Per-instance state: the ledger, when the host has one for this plugin,
/// and the backend name the plugin claims as (it may claim only for
/// workloads placed on it).
#[derive(Clone, Default)]
pub struct AllocationsCtx {
    ledger: Option<Arc<GpuLedger>>,
    backend: Arc<str>,
}

impl AllocationsCtx {
    /// Calls go to `ledger`, on behalf of backend `backend`.
    pub fn new(ledger: Option<Arc<GpuLedger>>, backend: Arc<str>) -> Self {
        Self { ledger, backend }
    }

    fn ledger(&self) -> Result<&Arc<GpuLedger>, Error> {
        self.ledger
            .as_ref()
            .ok_or_else(|| Error::Unavailable("this plugin is not given the GPU ledger".into()))
    }
}

impl allocations::Host for AllocationsCtx {
    async fn claims(&mut self) -> wasmtime::Result<Vec<Claim>> {
        let Ok(l) = self.ledger() else {
            return Ok(Vec::new());
        };
        // The WIT answer has no error: a store failure reads as "nothing
        // known", and the hold that follows fails with the store's error.
        Ok(l.claims().await.unwrap_or_else(|e| {
            tracing::error!(error = %e.describe(), "reading GPU claims");
            Vec::new()
        }))
    }

    async fn hold(
        &mut self,
        workload_id: String,
        revision: u32,
        gpus: Vec<GpuAssignment>,
        request: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        Ok(match self.ledger() {
            Ok(l) => {
                l.hold(&self.backend, &workload_id, revision, gpus, request)
                    .await
            }
            Err(e) => Err(e),
        })
    }

    async fn wait(
        &mut self,
        workload_id: String,
        revision: u32,
        request: String,
    ) -> wasmtime::Result<Result<u64, Error>> {
        Ok(match self.ledger() {
            Ok(l) => l.wait(&self.backend, &workload_id, revision, request).await,
            Err(e) => Err(e),
        })
    }

    async fn release(
        &mut self,
        workload_id: String,
        revision: u32,
    ) -> wasmtime::Result<Result<(), Error>> {
        Ok(match self.ledger() {
            Ok(l) => l.release(&self.backend, &workload_id, revision).await,
            Err(e) => Err(e),
        })
    }
}

/// The capability.
pub struct Allocations;

impl HostCapability for Allocations {
    const NAME: &'static str = "allocations";
    const PROVIDES: &'static [(&'static str, &'static str)] =
        &[("gantry:plugin/allocations", "0.1.")];
    type Grant = ();
    type State = AllocationsCtx;
    fn state(_: &(), services: &Services) -> AllocationsCtx {
        AllocationsCtx::new(services.ledger.clone(), services.plugin.clone())
    }
    fn link<T: Store<Self>>(l: &mut Linker<T>) -> wasmtime::Result<()> {
        allocations::add_to_linker::<T, HasSelf<AllocationsCtx>>(l, |t| t.part().state)
    }
}
