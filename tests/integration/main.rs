//! gantry's integration tests against real runtimes and real clients, in one
//! binary (linked once), a module per subject. The swarm tests
//! (`tests/swarm`) and the runtime restarts (`tests/restarts`) are binaries
//! of their own: the first bring up swarms of their own, the second restart
//! runtimes every other test shares.

#[path = "../conformance/mod.rs"]
mod conformance;

mod arm_api;
mod arm_cli;
mod backend_containerd;
mod backend_docker;
mod backend_podman;
mod cli;
mod container_urls;
mod gpu_scheduler;
mod harness;
mod hot_swap;
mod kanto_config;
mod kanto_mqtt;
mod kanto_twin;
mod persistence;
mod plugin_compat;
mod plugin_runtime;
mod rest_api;
mod rest_schemathesis;
mod robustness;
mod scheduler_stack;
mod templates;
mod tls;
