//! `bench swarm`: on a three-node swarm (the harness's), the time from a
//! create sent to gantry until every replica runs, for 1, 3 and 9 replicas,
//! and the time until a workload runs its three replicas again after a
//! node's dockerd is killed; against the same operations done with the
//! docker CLI on the manager in the same run. Run by `cargo xtask bench`.
//!
//! - create: gantry's sample runs from sending the create (control-rpc
//!   frontend; the swarm plugin answers once the replicas run) until a `GET`
//!   says deployed; the CLI's, from `docker service create --detach` until
//!   `docker service ls` says `N/N`. Both poll at 200 ms: the swarm
//!   backend's own pace. Removal is not timed.
//! - recovery: a gantry workload and a CLI service, three replicas each,
//!   spread over the nodes; node 3's dockerd killed (SIGKILL); each side
//!   timed until three tasks run again, none on node 3 (gantry: the nodes
//!   view's tasks and the workload deployed; CLI: `docker service ps`),
//!   watched side by side. A fresh swarm per round.
//!
//! Any failure ends the bench: a report means 0 errors.

use anyhow::{Context, Result, bail};
use gantry::bindings::types::RestartKind;
use gantry_tests::bench::{Row, Samples, count, report};
use gantry_tests::cluster::{Cluster, SLEEPER, replicated};
use gantry_tests::rpc::{Rpc, running, workload};
use gantry_tests::runtimes::TEST_IMAGE;
use std::time::{Duration, Instant};

const ROUNDS: usize = 5;
const RECOVERY_ROUNDS: usize = 3;
const LIMIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(200);

fn cli_service(c: &Cluster, name: &str, replicas: u32) -> Result<()> {
    let n = replicas.to_string();
    c.swarm
        .manager()
        .cli(&[
            "service",
            "create",
            "--detach",
            "--name",
            name,
            "--replicas",
            &n,
            "--endpoint-mode",
            "dnsrr",
            "--no-resolve-image",
            "--restart-delay",
            "0s",
            "--stop-grace-period",
            "2s",
            TEST_IMAGE,
            "sh",
            "-c",
            SLEEPER,
        ])
        .map(drop)
        .with_context(|| format!("docker service create {name}"))
}

/// CLI: create `name` with `replicas`, then poll until all run.
fn cli_create(c: &Cluster, name: &str, replicas: u32) -> Result<Duration> {
    let t = Instant::now();
    cli_service(c, name, replicas)?;
    let want = format!("{replicas}/{replicas}");
    loop {
        let r = c
            .swarm
            .manager()
            .cli(&[
                "service",
                "ls",
                "--filter",
                &format!("name={name}"),
                "--format",
                "{{.Replicas}}",
            ])
            .unwrap_or_default();
        if r.trim() == want {
            return Ok(t.elapsed());
        }
        if t.elapsed() > LIMIT {
            bail!("{name}: {r}");
        }
        std::thread::sleep(POLL);
    }
}

/// gantry: create a workload of `replicas`, then poll until deployed.
fn gantry_create(rpc: &Rpc, name: &str, replicas: u32) -> Result<(String, Duration)> {
    let t = Instant::now();
    let w = rpc
        .create(
            name,
            workload(
                vec![replicated("main", SLEEPER, replicas)],
                RestartKind::Always,
            ),
        )
        .map_err(|e| anyhow::anyhow!("create {name}: {e:?}"))?;
    let mut now = w;
    while !running(&now) {
        if t.elapsed() > LIMIT {
            bail!("{name} not running: {now:?}");
        }
        std::thread::sleep(POLL);
        now = rpc.get(&now.id).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    }
    Ok((now.id, t.elapsed()))
}

fn creates(rows: &mut Vec<Row>) -> Result<()> {
    let c = Cluster::start(&[Some(0)], false)?;
    let rpc = Rpc::new(&c.api.g, "bench", &["USER"]);
    // Warm both paths (component instances, the image on every node).
    let (id, _) = gantry_create(&rpc, "warm", 3)?;
    rpc.delete(&id).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    cli_create(&c, "warm-cli", 3)?;
    c.swarm.manager().cli(&["service", "rm", "warm-cli"]);
    for replicas in [1u32, 3, 9] {
        let (mut g, mut raw) = (Samples::default(), Samples::default());
        for i in 0..count(ROUNDS, 1) {
            let (id, d) = gantry_create(&rpc, &format!("b{replicas}-{i}"), replicas)?;
            g.push(d);
            rpc.delete(&id).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let name = format!("cli{replicas}-{i}");
            raw.push(cli_create(&c, &name, replicas)?);
            c.swarm.manager().cli(&["service", "rm", &name]);
        }
        rows.push(Row::new(&format!("create→{replicas} running"), &g, &raw));
    }
    Ok(())
}

/// Whether three tasks run as desired, none on `dead`.
fn recovered(tasks: &[String], dead: &str) -> bool {
    tasks.len() == 3 && tasks.iter().all(|n| n != dead)
}

fn recovery_round(g: &mut Samples, raw: &mut Samples) -> Result<()> {
    let mut c = Cluster::start(&[Some(0)], false)?;
    let rpc = Rpc::new(&c.api.g, "bench", &["USER"]);
    let (id, _) = gantry_create(&rpc, "survivor", 3)?;
    cli_create(&c, "survivor-cli", 3)?;
    let dead = c.swarm.nodes[2].hostname().to_string();
    let t = Instant::now();
    c.swarm.kill_dockerd(3);
    let (mut gantry_done, mut cli_done) = (None, None);
    while gantry_done.is_none() || cli_done.is_none() {
        if gantry_done.is_none() {
            let on: Vec<String> = c.running_tasks(&id).into_iter().map(|(_, n)| n).collect();
            let w = rpc.get(&id).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            if recovered(&on, &dead) && running(&w) {
                gantry_done = Some(t.elapsed());
            }
        }
        if cli_done.is_none() {
            let ps = c
                .swarm
                .manager()
                .cli(&[
                    "service",
                    "ps",
                    "survivor-cli",
                    "--filter",
                    "desired-state=running",
                    "--format",
                    "{{.Node}} {{.CurrentState}}",
                ])
                .unwrap_or_default();
            let on: Vec<String> = ps
                .lines()
                .filter(|l| l.split_whitespace().nth(1) == Some("Running"))
                .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                .collect();
            if recovered(&on, &dead) {
                cli_done = Some(t.elapsed());
            }
        }
        if t.elapsed() > LIMIT {
            bail!("no recovery within {LIMIT:?}: gantry {gantry_done:?}, CLI {cli_done:?}");
        }
        std::thread::sleep(POLL);
    }
    g.push(gantry_done.unwrap_or_default());
    raw.push(cli_done.unwrap_or_default());
    let _ = rpc.delete(&id);
    Ok(())
}

pub fn main() -> Result<()> {
    let mut rows = Vec::new();
    creates(&mut rows)?;
    let (mut g, mut raw) = (Samples::default(), Samples::default());
    for _ in 0..count(RECOVERY_ROUNDS, 1) {
        recovery_round(&mut g, &mut raw)?;
    }
    rows.push(Row::new("node killed→3 running again", &g, &raw));
    report(
        "swarm",
        "the docker CLI on the manager (service create --detach / ls / ps, polled at 200 ms)",
        &rows,
    )
}
