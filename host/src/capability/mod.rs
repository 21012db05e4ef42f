//! Host capabilities: one module per WIT import the host provides to plugins.
//!
//! Each capability owns the part of a plugin's config it reads (the
//! connection an MQTT frontend is served on is the MQTT runtime's, in
//! [`crate::mqtt`]), its per-instance state (a `*Ctx` the store data holds) and its linker step
//! (`add_to_linker`, given a projection from the store data to that state).
//! A world is the list of capabilities it links (see [`crate::plugin`]).
//!
//! | module | WIT import | state |
//! |---|---|---|
//! | [`control`] | `control` | the control plane and the caller bound to the call |
//! | [`mqtt_client`] | `mqtt-client` | the frontend's broker connection and timers |
//! | [`outgoing_http`] | `wasi:http/outgoing-handler` | the endpoints the config grants |
//! | [`logging`] | `logging` | the plugin's name |
//! | [`config`] | `config` | the plugin's `config` table |
//! | [`progress`] | `progress` | the plugin's name |
//! | [`devices`] | `devices` | the GPU inventory |
//! | [`allocations`] | `allocations` | the GPU ledger |
//! | [`downstream`] | `driver` (imported by schedulers) | the downstream backend |
//! | [`filesystem`] | `wasi:filesystem` (read-only preopens) | the directories the config grants |
//! | [`artifacts`] | `artifacts` | the URL prefixes and limits the config grants |
//!
//! Capabilities depend on the runtime and the domain, never on each other nor
//! on the wiring that composes them.

pub mod allocations;
pub mod artifacts;
pub mod config;
pub mod control;
pub mod devices;
pub mod downstream;
pub mod filesystem;
pub mod logging;
pub mod mqtt_client;
pub mod outgoing_http;
pub mod progress;
