//! The backend conformance suite against the swarm plugin, on one
//! three-node swarm the whole binary shares (`gantry_tests::swarm::shared`,
//! stopped by PID when the process exits). What the plugin declares absent
//! (pause, stats, rename, one network namespace per workload) is checked
//! to be refused or done the cluster's way; the swarm's own behaviour
//! (spread, drain, a dead node, failover, rolling updates) is in
//! `backend_swarm.rs` and `swarm_workloads.rs`.

crate::conformance_suite!(
    gantry_tests::backends::Backend::Swarm,
    guard = gantry_tests::cluster::shared_turn()
);
