//! gantry: a container orchestration host whose protocol frontends and
//! runtime backends are WebAssembly components.
//!
//! The host owns state and I/O ([`control`], [`store`], [`ingress`]); plugins
//! translate protocols and drive runtimes ([`runtime`], [`driver`]).
#![deny(missing_docs)]

pub mod auth;
#[allow(missing_docs)]
pub mod bindings;
pub mod config;
pub mod control;
pub mod devices;
pub mod driver;
pub mod frontend;
pub mod ingress;
pub mod metrics;
pub mod model;
pub mod mqtt;
pub mod runtime;
pub mod secrets;
pub mod server;
pub mod services;
pub mod store;
