//! Host capabilities: one module per WIT import the host provides to
//! plugins, each a [`HostCapability`]: the interfaces it provides, the keys
//! of a plugin's table it reads (its grant, parsed once when the config is
//! read, and kept), the per-instance state it keeps, and its linker step.
//! The registry (`crate::worlds::registry`) lists them, one line each;
//! worlds list the capabilities they link; serving, reload, `gantry check`
//! and the authoring tool all read the registry.
//!
//! | module | provides | table keys | state |
//! |---|---|---|---|
//! | [`wasi`] | `wasi:cli`, `io`, `clocks`, `random`, `filesystem`, `sockets` | `read_dirs` | the WASI context, granted directories preopened read-only |
//! | [`outgoing_http`] | `wasi:http/outgoing-handler`, `wasi:http/types` | `endpoints` | the endpoints the table grants |
//! | [`logging`] | `logging` | | the plugin's name |
//! | [`settings`] | `config` | `config` | the plugin's settings |
//! | [`control`] | `control` | | the control plane and the caller bound to the call |
//! | [`mqtt_client`] | `mqtt-client` | | the frontend's broker connection and timers |
//! | [`progress`] | `progress` | | the plugin's name |
//! | [`devices`] | `devices` | | the GPU inventory |
//! | [`allocations`] | `allocations` | | the GPU ledger |
//! | [`downstream`] | `driver` (imported by schedulers) | | the downstream backend |
//! | [`artifacts`] | `artifacts` | `artifacts` | the URL prefixes and limits the table grants |
//!
//! Capabilities depend on the runtime and the domain, never on each other nor
//! on the wiring that composes them.

pub mod allocations;
pub mod artifacts;
pub mod control;
pub mod devices;
pub mod downstream;
pub mod logging;
pub mod mqtt_client;
pub mod outgoing_http;
pub mod progress;
mod services;
pub mod settings;
pub mod wasi;

pub use services::{MAX_PACKET, MqttLink, Services, TimerCommand, qos};

use crate::model::Identity;
use std::time::Instant;
use wasmtime::component::{Linker, ResourceTable};
use wasmtime_wasi::WasiView;
use wasmtime_wasi_http::WasiHttpView;

/// One host capability. Adding one is a module implementing this and a
/// line in the registry.
pub trait HostCapability: Sized + 'static {
    /// Its name in messages and in `gantry check`.
    const NAME: &'static str;
    /// The imports it provides, each `(interface, compatible version)`: an
    /// interface ending in `/` is a package prefix (`wasi:cli/`), and the
    /// version a prefix (`0.2.`).
    const PROVIDES: &'static [(&'static str, &'static str)];
    /// The keys of a plugin's table it reads.
    const KEYS: &'static [&'static str] = &[];
    /// Whether a reload applies a change of those keys to the running
    /// plugin (otherwise the change waits for a restart).
    const LIVE: bool = false;

    /// What a plugin's table grants it, read and checked once.
    type Grant: Clone + Default + Send + Sync + std::fmt::Debug + 'static;
    /// Read its keys of a plugin's table (absent: the default grant).
    fn grant(_table: &toml::Table) -> Result<Self::Grant, String> {
        Ok(Self::Grant::default())
    }
    /// Make what the grant needs before serving (directories, say).
    fn prepare(_grant: &Self::Grant) -> Result<(), String> {
        Ok(())
    }

    /// Its state in one instance.
    type State: Send + 'static;
    /// The state of a fresh instance.
    fn state(grant: &Self::Grant, services: &Services) -> Self::State;
    /// Bind the caller a call about to be made acts as (none: nobody's).
    fn bind(_state: &mut Self::State, _identity: &Identity) {}

    /// Link the interfaces it provides, for stores that hold its state.
    fn link<T: Store<Self>>(linker: &mut Linker<T>) -> wasmtime::Result<()>;
}

/// Store data that holds capability `C`'s state. WASI and `wasi:http` are
/// linked through their own view traits, which every store data offers.
pub trait Store<C: HostCapability>: WasiView + WasiHttpView + Send + 'static {
    /// `C`'s part of this instance.
    fn part(&mut self) -> Part<'_, C>;
}

/// A capability's part of an instance: its state, the instance's resource
/// table, and when the current call must have answered by.
pub struct Part<'a, C: HostCapability> {
    /// The capability's state.
    pub state: &'a mut C::State,
    /// The instance's resource table.
    pub table: &'a mut ResourceTable,
    /// When the current call must have answered by (see
    /// [`crate::runtime::limits::LimitsConfig::answer_timeout_ms`]).
    pub answer_by: Option<Instant>,
}

/// The table `key` holds in a plugin's table, read as `T` (absent: `T`'s
/// default); the error names the key.
pub fn read_key<T: serde::de::DeserializeOwned + Default>(
    table: &toml::Table,
    key: &str,
) -> Result<T, String> {
    match table.get(key) {
        None => Ok(T::default()),
        Some(v) => v.clone().try_into().map_err(|e| format!("`{key}`: {e}")),
    }
}
