//! `bench NAME`: gantry's benchmarks, one binary (linked once). Each prints
//! its figures as ratios against a baseline measured in the same run and
//! writes them under `target/bench/`; `cargo xtask bench` runs them all, in
//! [`BENCHES`]' order. `GANTRY_BENCH_SMOKE=1` makes each a short pass.

mod containerd_create;
mod docker_create;
mod fuzz;
mod gpu_placement;
mod hot_swap;
mod ingress;
mod kanto;
mod list_scale;
mod rest_get;
mod serve_start;
mod swarm;

use anyhow::{Result, bail};

/// A benchmark's entry point.
type Bench = fn() -> Result<()>;

/// Every benchmark, by name, in the order `cargo xtask bench` runs them
/// (`list-scale` last: it leaves 10,000 containers).
const BENCHES: &[(&str, Bench)] = &[
    ("serve-start", serve_start::main),
    ("rest-get", rest_get::main),
    ("docker-create", docker_create::main),
    ("containerd-create", containerd_create::main),
    ("kanto", kanto::main),
    ("gpu-placement", gpu_placement::main),
    ("hot-swap", hot_swap::main),
    ("ingress", ingress::main),
    ("swarm", swarm::main),
    ("fuzz", fuzz::main),
    ("list-scale", list_scale::main),
];

fn main() -> Result<()> {
    let names: Vec<&str> = BENCHES.iter().map(|(n, _)| *n).collect();
    match std::env::args().nth(1).as_deref() {
        Some("list") => {
            println!("{}", names.join("\n"));
            Ok(())
        }
        Some(name) => match BENCHES.iter().find(|(n, _)| *n == name) {
            Some((_, run)) => run(),
            None => bail!("no benchmark `{name}`; there are: {}", names.join(", ")),
        },
        None => bail!("usage: bench NAME | bench list ({})", names.join(", ")),
    }
}
