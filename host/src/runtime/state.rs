//! The data of one plugin instance's store.

use super::limits::{CallWatch, Guarded, MemoryCap};
use super::outgoing::EndpointRouter;
use crate::bindings::types::Caller;
use crate::services::HostServices;
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Static facts about a plugin, shared by all its instances.
pub struct PluginInfo {
    /// The plugin's configured name.
    pub name: String,
    /// Its `config` table, flattened.
    pub config: Vec<(String, String)>,
    /// Its MQTT connection and timers, for `mqtt-frontend` plugins once connected.
    pub mqtt: std::sync::OnceLock<crate::mqtt::MqttLink>,
}

/// Who the current call acts as.
#[derive(Debug, Clone)]
pub enum Identity {
    /// No call in progress, or a call not made on anyone's behalf.
    None,
    /// The request carried no credentials, or bad ones (the reason).
    Unauthenticated(String),
    /// A verified caller.
    Caller(Caller),
}

/// Store data of a plugin instance.
pub struct PluginState {
    /// The plugin this instance belongs to.
    pub info: Arc<PluginInfo>,
    /// Host capabilities (control plane, devices, MQTT).
    pub services: Arc<HostServices>,
    /// Identity bound to the call in progress; set by the host only.
    pub identity: Identity,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    router: EndpointRouter,
    memory: MemoryCap,
    watch: CallWatch,
}

impl PluginState {
    /// Fresh state: no preopens, no environment, no sockets; outgoing HTTP only to `router`'s grants.
    pub fn new(
        info: Arc<PluginInfo>,
        services: Arc<HostServices>,
        router: EndpointRouter,
        memory: MemoryCap,
        watch: CallWatch,
    ) -> Self {
        Self {
            info,
            services,
            identity: Identity::None,
            wasi: WasiCtx::builder().inherit_stdout().inherit_stderr().build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            router,
            memory,
            watch,
        }
    }

    /// The resource table.
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// Whether the last call hit the memory cap, and the cap.
    pub fn memory_exceeded(&self) -> Option<usize> {
        self.memory.exceeded.then(|| self.memory.limit())
    }

    /// Whether the last call ran out of time, and the budget.
    pub fn deadline_expired(&self) -> Option<u128> {
        self.watch.expired.then(|| self.watch.budget().as_millis())
    }

    /// Prepare for a new call made as `identity`.
    pub fn begin_call(&mut self, identity: Identity) {
        self.identity = identity;
        self.watch.begin();
        self.memory.exceeded = false;
    }
}

impl Guarded for PluginState {
    fn memory_cap(&mut self) -> &mut MemoryCap {
        &mut self.memory
    }
    fn call_watch(&mut self) -> &mut CallWatch {
        &mut self.watch
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for PluginState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.router,
        }
    }
}
