//! The swarm backend on real three-node swarms, in one binary: the
//! conformance suite on one swarm the binary shares (its tests side by
//! side), and the tests that bring up a swarm of their own, one at a time
//! and never beside the shared one's ([`gantry_tests::cluster::turn`]).

#[path = "../conformance/mod.rs"]
mod conformance;

mod backend_swarm;
mod swarm_conformance;
mod swarm_nodes;
mod swarm_workloads;
