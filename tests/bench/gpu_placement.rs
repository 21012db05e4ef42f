//! `bench gpu-placement`: the GPU scheduler's placement policies (binpack,
//! spread) against first-fit, measured in the same run on the same
//! operation sequence. Native: it calls `gantry_gpu_scheduler::placement`
//! directly, no runtime and no host.
//!
//! A host of 64 GPUs (boards of 8 of one model: h100, a100, a40, t4, twice
//! each) sees 1,000 operations from a fixed-seed xorshift64: creates (1 to 8
//! GPUs, mostly few, over any model, one or two models, sometimes a minimum
//! memory) and, once something exists, half deletes of a random workload,
//! held or still waiting (a caller giving up), so the demand hovers around
//! the host's capacity. A request that does not fit waits first come first served, as in
//! the plugin: a waiter blocks later requests competing for its models; the
//! queue is retried oldest first after every delete. One that can never fit
//! is refused. Figures: `place` latency, the largest single-model request
//! that still fits after every operation (fragmentation), and queueing.
//! Run by `cargo xtask bench`.

use anyhow::Result;
use gantry_gpu_scheduler::placement::{self, Gpu, Policy, Request};
use gantry_tests::bench::{Row, Samples, count, report_with};
use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

const GIB: u64 = 1 << 30;
/// Model codes and memory (GiB) of the simulated host's boards.
const MODELS: [(&str, u64); 4] = [("h100", 80), ("a100", 40), ("a40", 48), ("t4", 16)];
const GPUS: u32 = 64;
const BOARD: u32 = 8;
const SEED: u64 = 0x2545_f491_4f6c_dd1d;
const DELETE_PERCENT: u64 = 50;
/// How many GPUs a create asks for, and how often (out of 100).
const COUNTS: [(u32, u64); 8] = [
    (1, 35),
    (2, 25),
    (3, 8),
    (4, 15),
    (5, 4),
    (6, 3),
    (7, 2),
    (8, 8),
];
const MIN_MEMORY_GIB: [u64; 4] = [24, 40, 48, 64];

/// xorshift64: deterministic, so every policy sees the same operations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn inventory() -> Vec<Gpu> {
    (0..GPUS)
        .map(|index| {
            let (model, gib) = MODELS[(index / BOARD) as usize % MODELS.len()];
            Gpu {
                index,
                uuid: format!("GPU-{index}"),
                model: model.into(),
                memory_bytes: gib * GIB,
                healthy: true,
            }
        })
        .collect()
}

enum Op {
    Create(Request),
    /// Delete the workload at this position (modulo their number): holders
    /// by id, then waiters oldest first.
    Delete(u64),
}

fn request(rng: &mut Rng) -> Request {
    let mut roll = rng.below(100);
    let mut count = 1;
    for (c, weight) in COUNTS {
        if roll < weight {
            count = c;
            break;
        }
        roll -= weight;
    }
    let pick = |rng: &mut Rng| {
        MODELS[rng.below(MODELS.len() as u64) as usize]
            .0
            .to_string()
    };
    let models = match rng.below(3) {
        0 => Vec::new(),
        1 => vec![pick(rng)],
        _ => {
            let first = pick(rng);
            let mut second = pick(rng);
            while second == first {
                second = pick(rng);
            }
            vec![first, second]
        }
    };
    let min_memory_bytes = (rng.below(5) == 0)
        .then(|| MIN_MEMORY_GIB[rng.below(MIN_MEMORY_GIB.len() as u64) as usize] * GIB);
    Request {
        count,
        models,
        min_memory_bytes,
        device_ids: Vec::new(),
    }
}

fn operations(n: usize) -> Vec<Op> {
    let mut rng = Rng(SEED);
    let mut created = false;
    (0..n)
        .map(|_| {
            if created && rng.below(100) < DELETE_PERCENT {
                Op::Delete(rng.next())
            } else {
                created = true;
                Op::Create(request(&mut rng))
            }
        })
        .collect()
}

/// What one policy did with the operations.
#[derive(Default)]
struct Run {
    place: Samples,
    /// `largest_fit` after every operation.
    largest: Vec<u32>,
    /// GPUs held after every operation.
    busy: Vec<usize>,
    placed: usize,
    waited: usize,
    /// Operations spent queued, summed over every request that waited.
    queued_ops: usize,
    still_waiting: usize,
    refused: usize,
}

impl Run {
    fn largest_mean(&self) -> f64 {
        let sum: u64 = self.largest.iter().map(|&n| u64::from(n)).sum();
        sum as f64 / self.largest.len().max(1) as f64
    }

    fn busy_percent(&self) -> f64 {
        let sum: usize = self.busy.iter().sum();
        100.0 * sum as f64 / (self.busy.len().max(1) * GPUS as usize) as f64
    }

    fn largest_min(&self) -> u32 {
        self.largest.iter().copied().min().unwrap_or(0)
    }
}

/// The host's state under one policy.
struct Host<'a> {
    inv: &'a [Gpu],
    policy: Policy,
    busy: Vec<bool>,
    /// Holders by creation id: the GPUs they hold.
    held: BTreeMap<usize, Vec<u32>>,
    /// Waiters, oldest first: (id, request, operation it arrived at).
    queue: VecDeque<(usize, Request, usize)>,
    run: Run,
}

impl Host<'_> {
    fn free(&self) -> Vec<&Gpu> {
        self.inv
            .iter()
            .filter(|g| !self.busy[g.index as usize])
            .collect()
    }

    /// Place `r` for holder `id` if it fits now, timing the `place` call.
    fn try_place(&mut self, id: usize, r: &Request) -> bool {
        let free = self.free();
        let t = Instant::now();
        let chosen = std::hint::black_box(placement::place(r, &free, self.policy));
        let took = t.elapsed();
        let chosen: Option<Vec<u32>> = chosen.map(|c| c.iter().map(|g| g.index).collect());
        self.run.place.push(took);
        let Some(indexes) = chosen else {
            return false;
        };
        for &i in &indexes {
            self.busy[i as usize] = true;
        }
        self.held.insert(id, indexes);
        self.run.placed += 1;
        true
    }

    fn create(&mut self, id: usize, r: &Request, now: usize) {
        if placement::never_fits(r, self.inv).is_some() {
            self.run.refused += 1;
            return;
        }
        let behind = self
            .queue
            .iter()
            .any(|(_, w, _)| placement::competes(w, r, self.inv));
        if behind || !self.try_place(id, r) {
            self.queue.push_back((id, r.clone(), now));
            self.run.waited += 1;
        }
    }

    fn delete(&mut self, pick: u64, now: usize) {
        let all = self.held.len() + self.queue.len();
        if all == 0 {
            return;
        }
        let k = (pick % all as u64) as usize;
        if k >= self.held.len() {
            // A waiter given up: it leaves the queue, which may unblock others.
            if let Some((_, _, since)) = self.queue.remove(k - self.held.len()) {
                self.run.queued_ops += now - since;
            }
            self.drain(now);
            return;
        }
        let Some(id) = self.held.keys().nth(k).copied() else {
            return;
        };
        for i in self.held.remove(&id).unwrap_or_default() {
            self.busy[i as usize] = false;
        }
        self.drain(now);
    }

    /// Place waiters, oldest first; a waiter still queued blocks later
    /// competing ones.
    fn drain(&mut self, now: usize) {
        let mut i = 0;
        while i < self.queue.len() {
            let blocked = self
                .queue
                .iter()
                .take(i)
                .any(|(_, w, _)| placement::competes(w, &self.queue[i].1, self.inv));
            let (wid, r, since) = self.queue[i].clone();
            if !blocked && self.try_place(wid, &r) {
                self.run.queued_ops += now - since;
                self.queue.remove(i);
            } else {
                i += 1;
            }
        }
    }
}

fn simulate(policy: Policy, inv: &[Gpu], ops: &[Op]) -> Run {
    let mut host = Host {
        inv,
        policy,
        busy: vec![false; inv.len()],
        held: BTreeMap::new(),
        queue: VecDeque::new(),
        run: Run::default(),
    };
    for (now, op) in ops.iter().enumerate() {
        match op {
            Op::Create(r) => host.create(now, r, now),
            Op::Delete(pick) => host.delete(*pick, now),
        }
        let largest = placement::largest_fit(&host.free());
        host.run.largest.push(largest);
        let busy = host.busy.iter().filter(|b| **b).count();
        host.run.busy.push(busy);
    }
    let end = ops.len();
    host.run.queued_ops += host.queue.iter().map(|(_, _, s)| end - s).sum::<usize>();
    host.run.still_waiting = host.queue.len();
    host.run
}

fn us(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 { f64::NAN } else { a / b }
}

pub fn main() -> Result<()> {
    let inv = inventory();
    let ops = operations(count(1_000, 100));
    let creates = ops.iter().filter(|o| matches!(o, Op::Create(_))).count();
    let runs: Vec<(Policy, Run)> = [Policy::Binpack, Policy::Spread, Policy::FirstFit]
        .into_iter()
        .map(|p| (p, simulate(p, &inv, &ops)))
        .collect();
    let base = &runs[2].1;
    println!(
        "\ngpu_placement: {} GPUs ({}), {} operations ({creates} creates)",
        inv.len(),
        placement::inventory_summary(&inv),
        ops.len()
    );
    println!(
        "{:<10} {:>9} {:>9} {:>9} {:>8} {:>7} {:>7} {:>7} {:>10} {:>8} {:>6} {:>9}",
        "policy",
        "p50 us",
        "p99 us",
        "fit mean",
        "fit min",
        "busy %",
        "placed",
        "waited",
        "ops queued",
        "refused",
        "x fit",
        "x queued"
    );
    let mut figures = Vec::new();
    for (p, r) in &runs {
        let (p50, p99) = (us(r.place.quantile(0.5)), us(r.place.quantile(0.99)));
        let x_fit = ratio(r.largest_mean(), base.largest_mean());
        let x_queued = ratio(r.queued_ops as f64, base.queued_ops as f64);
        println!(
            "{:<10} {:>9.2} {:>9.2} {:>9.2} {:>8} {:>7.1} {:>7} {:>7} {:>10} {:>8} {:>6.2} {:>9.2}",
            p.name(),
            p50,
            p99,
            r.largest_mean(),
            r.largest_min(),
            r.busy_percent(),
            r.placed,
            r.waited,
            r.queued_ops,
            r.refused,
            x_fit,
            x_queued
        );
        let n = p.name();
        figures.extend([
            (format!("{n}: place p50 us"), p50),
            (format!("{n}: place p99 us"), p99),
            (format!("{n}: largest fit, mean"), r.largest_mean()),
            (format!("{n}: largest fit, min"), f64::from(r.largest_min())),
            (format!("{n}: GPUs busy, mean %"), r.busy_percent()),
            (format!("{n}: requests placed"), r.placed as f64),
            (format!("{n}: requests that waited"), r.waited as f64),
            (
                format!("{n}: operations queued, total"),
                r.queued_ops as f64,
            ),
            (
                format!("{n}: still waiting at the end"),
                r.still_waiting as f64,
            ),
            (format!("{n}: refused (never fit)"), r.refused as f64),
        ]);
        if *p != Policy::FirstFit {
            figures.push((format!("{n} / first-fit: largest fit, mean"), x_fit));
            figures.push((format!("{n} / first-fit: operations queued"), x_queued));
        }
    }
    println!("(x: against first-fit; fit: the largest single-model request that still fits)");
    let rows = [
        Row::new("binpack: place()", &runs[0].1.place, &base.place),
        Row::new("spread: place()", &runs[1].1.place, &base.place),
    ];
    report_with(
        "gpu_placement",
        "first-fit (the first free GPUs by index), same operations",
        &rows,
        &figures,
    )
}
