//! gantry: a container orchestration host whose protocol frontends and
//! runtime backends are WebAssembly components.
//!
//! The modules, from the bottom of the dependency graph up (a line uses only
//! the lines above it and its own; the `module_graph` tests fail on any
//! import loop):
//!
//! - [`bindings`], [`model`], [`metrics`]: the WIT vocabulary, helpers, counters;
//! - [`runtime`]: the generic Wasm runtime (engine, cache, checks, pools, guards);
//! - [`store`], [`secrets`], [`driver`], [`gpu`]: state, secret redaction, the
//!   backend contract, the GPU inventory;
//! - [`control`]: the control plane (records, lifecycle, reconciler, health);
//! - [`capability`]: one module per WIT import the host provides to plugins;
//! - [`worlds`]: worlds as lists of capabilities, the store data, the adapters
//!   calling a world's exports; [`mqtt`]: the MQTT runtime of MQTT frontends;
//! - [`auth`], [`config`], [`reload`], [`tls`], [`ingress`] (container URLs), [`api`],
//!   [`server`]: the wiring of a running host, swapping its plugins while it
//!   serves, its HTTPS listener, and container URLs.
#![deny(missing_docs)]

pub mod api;
pub mod auth;
#[allow(missing_docs)]
pub mod bindings;
pub mod capability;
pub mod config;
pub mod control;
pub mod driver;
pub mod gpu;
pub mod ingress;
pub mod metrics;
pub mod model;
#[cfg(test)]
mod module_graph;
pub mod mqtt;
pub mod nodes;
pub mod reload;
pub mod runtime;
pub mod secrets;
pub mod server;
pub mod store;
pub mod tls;
pub mod worlds;
