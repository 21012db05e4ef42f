//! The exact fallback of [`place_all`](super::place_all): when placing a
//! deployment's requests one after another fails, whether some assignment
//! still gives every request its GPUs. Each request is split into as many
//! slots as GPUs it wants, and slots are matched to GPUs with augmenting
//! paths (Kuhn's algorithm): at most a few dozen slots over 64 GPUs.

use super::{Gpu, Request, candidates};

/// GPUs for every request of `reqs` out of `free`, none shared, if any
/// assignment exists; each request's GPUs in index order.
pub fn exact<'a>(reqs: &[&Request], free: &[&'a Gpu]) -> Option<Vec<Vec<&'a Gpu>>> {
    // slot → (request, the indexes into `free` it may take)
    let mut slots: Vec<(usize, Vec<usize>)> = Vec::new();
    for (r, req) in reqs.iter().enumerate() {
        let ok: Vec<usize> = candidates(req, free)
            .into_iter()
            .filter_map(|(_, g)| free.iter().position(|f| std::ptr::eq(*f, g)))
            .collect();
        for _ in 0..req.wanted() {
            slots.push((r, ok.clone()));
        }
    }
    let mut owner: Vec<Option<usize>> = vec![None; free.len()];
    for s in 0..slots.len() {
        let mut seen = vec![false; free.len()];
        if !augment(s, &slots, &mut owner, &mut seen) {
            return None;
        }
    }
    let mut out: Vec<Vec<&'a Gpu>> = vec![Vec::new(); reqs.len()];
    for (g, slot) in owner.iter().enumerate() {
        if let Some(s) = slot {
            out[slots[*s].0].push(free[g]);
        }
    }
    for gpus in &mut out {
        gpus.sort_by_key(|g| g.index);
    }
    Some(out)
}

/// Find slot `s` a GPU, moving other slots along an augmenting path.
fn augment(
    s: usize,
    slots: &[(usize, Vec<usize>)],
    owner: &mut [Option<usize>],
    seen: &mut [bool],
) -> bool {
    for &g in &slots[s].1 {
        if seen[g] {
            continue;
        }
        seen[g] = true;
        let free_now = match owner[g] {
            None => true,
            Some(other) => augment(other, slots, owner, seen),
        };
        if free_now {
            owner[g] = Some(s);
            return true;
        }
    }
    false
}
