//! Whether a request can ever be satisfied on an inventory, whatever is
//! free: alone ([`never_fits`]) and with the other requests of its
//! deployment ([`never_fits_together`]).

use super::{Gpu, Request, bytes, eligible, inventory_summary};
use std::collections::BTreeSet;

/// The field names of a [`FieldProblem`].
pub mod field {
    /// The number of GPUs.
    pub const COUNT: &str = "count";
    /// The accepted models.
    pub const MODELS: &str = "models";
    /// The minimum memory per GPU.
    pub const MEMORY: &str = "memory";
    /// The explicit device ids.
    pub const DEVICE_IDS: &str = "device-ids";
}

/// Why a request can never be satisfied on an inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    /// Which part of the request: one of [`field`].
    pub field: &'static str,
    /// Why, in words.
    pub message: String,
}

fn problem(field: &'static str, message: String) -> Option<FieldProblem> {
    Some(FieldProblem { field, message })
}

/// Why `req` can never be satisfied on the inventory `all`, whatever is free
/// and healthy; `None` when it could be (or asks for nothing).
pub fn never_fits(req: &Request, all: &[Gpu]) -> Option<FieldProblem> {
    let wanted = req.wanted();
    if wanted == 0 {
        return None;
    }
    let mut named: Vec<&Gpu> = Vec::new();
    if req.device_ids.is_empty() {
        named.extend(all);
    } else {
        for id in &req.device_ids {
            match all.iter().find(|g| g.named_by(id)) {
                None => {
                    let msg = format!("no GPU {id} on this host ({})", inventory_summary(all));
                    return problem(field::DEVICE_IDS, msg);
                }
                Some(g) if named.iter().any(|n| n.index == g.index) => {
                    return problem(field::DEVICE_IDS, format!("names GPU {} twice", g.uuid));
                }
                Some(g) => named.push(g),
            }
        }
        if req.count != 0 && req.count != wanted {
            let msg = format!("asks for {} GPUs but names {wanted} device ids", req.count);
            return problem(field::COUNT, msg);
        }
    }
    let of_model: Vec<&Gpu> = named
        .iter()
        .copied()
        .filter(|g| req.accepts_model(&g.model))
        .collect();
    if let Some(g) = named.iter().find(|g| !req.accepts_model(&g.model))
        && !req.device_ids.is_empty()
    {
        let msg = format!(
            "GPU {} is a {}, not {}",
            g.uuid,
            g.code(),
            req.models_text()
        );
        return problem(field::MODELS, msg);
    }
    if of_model.is_empty() {
        let msg = format!(
            "no {} on this host (it has {})",
            req.models_text(),
            inventory_summary(all)
        );
        return problem(field::MODELS, msg);
    }
    if let Some(min) = req.min_memory_bytes {
        let small = of_model.iter().find(|g| g.memory_bytes < min);
        let largest = of_model.iter().map(|g| g.memory_bytes).max().unwrap_or(0);
        match small {
            Some(g) if !req.device_ids.is_empty() => {
                let msg = format!(
                    "GPU {} has {}, less than the {} asked for",
                    g.uuid,
                    bytes(g.memory_bytes),
                    bytes(min)
                );
                return problem(field::MEMORY, msg);
            }
            _ if largest < min => {
                let msg = format!(
                    "asks for at least {} per GPU but the largest {} here has {}",
                    bytes(min),
                    req.models_text(),
                    bytes(largest)
                );
                return problem(field::MEMORY, msg);
            }
            _ => {}
        }
    }
    let have = of_model.iter().filter(|g| eligible(req, g)).count();
    if (have as u64) < u64::from(wanted) {
        let msg = format!("asks for {} but this host has {have}", req.describe());
        return problem(field::COUNT, msg);
    }
    None
}

/// Several requests that cannot be satisfied together on an inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// Positions, in the requests given, of the ones that compete.
    pub members: Vec<usize>,
    /// How many GPUs they want together.
    pub wanted: u32,
    /// How many distinct GPUs of the inventory any of them accepts.
    pub have: u32,
}

/// Whether `reqs` can never be satisfied together on `all` (each one on its
/// own can): the smallest group of them wanting more GPUs than they accept
/// between them (Hall's condition; every group is tried up to 12 requests,
/// beyond that only all of them).
pub fn never_fits_together(reqs: &[&Request], all: &[Gpu]) -> Option<Shortfall> {
    let sets: Vec<(usize, u32, BTreeSet<u32>)> = reqs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.wanted() > 0)
        .map(|(i, r)| {
            let s = all.iter().filter(|g| eligible(r, g)).map(|g| g.index);
            (i, r.wanted(), s.collect())
        })
        .collect();
    let n = sets.len();
    if n < 2 {
        return None;
    }
    let full = (1u32 << n.min(12)) - 1;
    let mut masks: Vec<u32> = if n <= 12 {
        (1..=full).filter(|m| m.count_ones() >= 2).collect()
    } else {
        Vec::new()
    };
    masks.sort_by_key(|m| m.count_ones());
    let check = |members: Vec<usize>| {
        let mut union = BTreeSet::new();
        let mut wanted = 0u32;
        for &k in &members {
            wanted = wanted.saturating_add(sets[k].1);
            union.extend(sets[k].2.iter().copied());
        }
        let have = u32::try_from(union.len()).unwrap_or(u32::MAX);
        (wanted > have).then(|| Shortfall {
            members: members.iter().map(|&k| sets[k].0).collect(),
            wanted,
            have,
        })
    };
    if n > 12 {
        return check((0..n).collect());
    }
    masks
        .into_iter()
        .find_map(|m| check((0..n).filter(|k| m & (1 << k) != 0).collect()))
}
