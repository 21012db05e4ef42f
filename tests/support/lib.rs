//! Support for gantry's integration tests: real runtimes (dockerd,
//! containerd) started once per test run, mosquitto per test, built plugins, and a
//! gantry process driven over HTTP.
//!
//! Nothing here fakes a component: tests that need a runtime fail when it
//! cannot be started.

pub mod api;
pub mod backends;
pub mod bench;
pub mod builds;
pub mod cluster;
pub mod config;
pub mod curl;
pub mod file_server;
pub mod fuzz;
pub mod gantry;
pub mod kanto;
pub mod load;
pub mod mqtt;
pub mod plugins;
pub mod python;
pub mod registry;
pub mod rpc;
pub mod swap;
pub mod swarm;
pub mod wasm_plugins;

/// The runtimes of the run (dockerd, containerd, Podman): a crate of their
/// own, which the launcher `cargo xtask serve` uses links without the host.
pub use gantry_test_runtimes as runtimes;
/// The harness's Podman service.
pub use gantry_test_runtimes::podman;

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}
