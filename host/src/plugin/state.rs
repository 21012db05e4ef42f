//! The data of one plugin instance's store: the runtime's guards and the
//! state of every capability a world may link. Capabilities a world does not
//! link are never reached, because its linker does not offer them.

use crate::capability::allocations::AllocationsCtx;
use crate::capability::artifacts::{Artifacts, ArtifactsCtx, ArtifactsView};
use crate::capability::config::ConfigCtx;
use crate::capability::control::{ControlCtx, ControlView, Identity};
use crate::capability::devices::DevicesCtx;
use crate::capability::downstream::{DownstreamCtx, DownstreamView};
use crate::capability::filesystem::ReadDirs;
use crate::capability::logging::LoggingCtx;
use crate::capability::mqtt_client::{MqttClientCtx, MqttLink};
use crate::capability::outgoing_http::EndpointRouter;
use crate::capability::progress::ProgressCtx;
use crate::control::ControlPlane;
use crate::control::gpus::GpuLedger;
use crate::driver::Driver;
use crate::gpu::Inventory;
use crate::runtime::limits::{Guards, PluginData};
use std::sync::Arc;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// What every instance of one plugin is given, decided at start-up.
#[derive(Clone)]
pub struct PluginSetup {
    /// The plugin's configured name.
    pub name: Arc<str>,
    /// Its `config` table.
    pub config: ConfigCtx,
    /// Its endpoint grants.
    pub router: EndpointRouter,
    /// The control plane, for worlds that import `control`.
    pub control: Option<Arc<ControlPlane>>,
    /// Its MQTT connection, for MQTT frontends.
    pub mqtt: Option<MqttLink>,
    /// The GPU inventory, for worlds that import `devices`.
    pub devices: Option<Arc<Inventory>>,
    /// The GPU ledger, for schedulers.
    pub allocations: Option<Arc<GpuLedger>>,
    /// The backend a scheduler drives.
    pub downstream: Option<Arc<dyn Driver>>,
    /// Directories it may read.
    pub read_dirs: ReadDirs,
    /// What it may download, for frontends.
    pub artifacts: Artifacts,
}

impl PluginSetup {
    /// A setup with nothing granted but the plugin's name and config.
    pub fn new(name: &str, config: ConfigCtx) -> Self {
        Self {
            name: name.into(),
            config,
            router: EndpointRouter::default(),
            control: None,
            mqtt: None,
            devices: None,
            allocations: None,
            downstream: None,
            read_dirs: ReadDirs::default(),
            artifacts: Artifacts::default(),
        }
    }

    /// This setup with the settings and endpoint grants of a plugin table.
    pub fn with_grants(
        mut self,
        config: &crate::capability::config::PluginTable,
        endpoints: &crate::capability::outgoing_http::EndpointGrants,
    ) -> Result<Self, String> {
        self.config = ConfigCtx::from_table(config);
        self.router = EndpointRouter::from_grants(endpoints)
            .map_err(|e| format!("plugin `{}`: {e}", self.name))?;
        Ok(self)
    }

    /// The store data of a fresh instance.
    pub fn instance(&self, guards: Guards) -> PluginState {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stdout().inherit_stderr();
        self.read_dirs.preopen(&self.name, &mut wasi);
        PluginState {
            guards,
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            router: self.router.clone(),
            logging: LoggingCtx::new(self.name.clone()),
            config: self.config.clone(),
            progress: ProgressCtx::new(self.name.clone()),
            devices: DevicesCtx::new(self.devices.clone()),
            allocations: AllocationsCtx::new(self.allocations.clone(), self.name.clone()),
            mqtt: MqttClientCtx::new(self.name.clone(), self.mqtt.clone()),
            control: self.control.clone().map(ControlCtx::new),
            downstream: self.downstream.clone().map(DownstreamCtx::new),
            artifacts: ArtifactsCtx::new(self.name.clone(), self.artifacts.clone()),
        }
    }
}

/// Store data of a plugin instance.
pub struct PluginState {
    guards: Guards,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    router: EndpointRouter,
    pub(super) logging: LoggingCtx,
    pub(super) config: ConfigCtx,
    pub(super) progress: ProgressCtx,
    pub(super) devices: DevicesCtx,
    pub(super) allocations: AllocationsCtx,
    pub(super) mqtt: MqttClientCtx,
    control: Option<ControlCtx>,
    downstream: Option<DownstreamCtx>,
    artifacts: ArtifactsCtx,
}

impl PluginState {
    /// Act as `identity` in the call about to be made (the host's choice only).
    pub fn bind(&mut self, identity: Identity) {
        if let Some(c) = &mut self.control {
            c.bind(identity);
        }
    }

    /// The `control` capability's view of this store.
    pub fn control(&mut self) -> ControlView<'_> {
        ControlView {
            ctx: self.control.as_mut(),
            table: &mut self.table,
            answer_by: self.guards.answer_by(),
        }
    }

    /// The `artifacts` capability's view of this store.
    pub fn artifacts(&mut self) -> ArtifactsView<'_> {
        ArtifactsView {
            ctx: &mut self.artifacts,
            table: &mut self.table,
        }
    }
}

impl PluginState {
    /// The `downstream` capability's view of this store.
    pub fn downstream(&mut self) -> DownstreamView<'_> {
        DownstreamView {
            ctx: self.downstream.as_mut(),
            table: &mut self.table,
        }
    }
}

impl PluginData for PluginState {
    fn guards(&mut self) -> &mut Guards {
        &mut self.guards
    }

    fn end_call(&mut self) {
        self.bind(Identity::None);
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
