//! Placement of GPU requests on an inventory: which GPUs a request accepts,
//! whether it can ever fit, and which free GPUs each policy picks. Pure
//! Rust, no bindings: the benchmark calls it natively.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

mod fit;
mod matching;
pub use fit::{FieldProblem, Shortfall, field, never_fits, never_fits_together};

/// One GPU of the inventory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gpu {
    /// Its index on the host.
    pub index: u32,
    /// Its UUID, e.g. `GPU-8f2c...`.
    pub uuid: String,
    /// Its model as the inventory names it (compared through [`model_code`]).
    pub model: String,
    /// Its memory in bytes.
    pub memory_bytes: u64,
    /// Whether its last health check passed.
    pub healthy: bool,
}

impl Gpu {
    /// Its model code ([`model_code`] of its model).
    pub fn code(&self) -> String {
        model_code(&self.model)
    }

    /// Whether `id`, a UUID or an index, names this GPU.
    pub fn named_by(&self, id: &str) -> bool {
        let id = id.trim();
        id.eq_ignore_ascii_case(&self.uuid) || id.parse::<u32>() == Ok(self.index)
    }
}

/// What one container asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", default)]
pub struct Request {
    /// How many GPUs (0 with device ids: one per id).
    pub count: u32,
    /// Accepted model codes ([`model_code`]); empty = any.
    pub models: Vec<String>,
    /// The least memory each GPU must have, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_memory_bytes: Option<u64>,
    /// UUIDs or indexes; when not empty, exactly these GPUs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_ids: Vec<String>,
}

impl Request {
    /// How many GPUs it needs: one per device id when it names some, else `count`.
    pub fn wanted(&self) -> u32 {
        if self.device_ids.is_empty() {
            self.count
        } else {
            u32::try_from(self.device_ids.len()).unwrap_or(u32::MAX)
        }
    }

    /// Whether a GPU of `model` (a name or a code) is acceptable.
    pub fn accepts_model(&self, model: &str) -> bool {
        self.models.is_empty() || {
            let code = model_code(model);
            self.models.iter().any(|m| model_code(m) == code)
        }
    }

    /// The accepted models in words: `a100 or t4`, or `any GPU`.
    pub fn models_text(&self) -> String {
        if self.models.is_empty() {
            "any GPU".into()
        } else {
            let codes: Vec<String> = self.models.iter().map(|m| model_code(m)).collect();
            codes.join(" or ")
        }
    }

    /// The request in words: `2 × a100 or t4`, then ` with at least 40 GiB`
    /// and ` (GPU-1, GPU-2)` when it says so.
    pub fn describe(&self) -> String {
        let mut s = format!("{} × {}", self.wanted(), self.models_text());
        if let Some(min) = self.min_memory_bytes {
            s.push_str(&format!(" with at least {}", bytes(min)));
        }
        if !self.device_ids.is_empty() {
            s.push_str(&format!(" ({})", self.device_ids.join(", ")));
        }
        s
    }
}

/// How free GPUs are chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Policy {
    /// Best fit: the model with the fewest free GPUs that can take the whole
    /// request, so large groups of one model stay free.
    #[default]
    Binpack,
    /// Worst fit: the model with the most free GPUs, to balance load.
    Spread,
    /// The first free GPUs by index, models mixed as they come (the baseline).
    FirstFit,
}

impl Policy {
    /// Every policy.
    pub const ALL: [Policy; 3] = [Policy::Binpack, Policy::Spread, Policy::FirstFit];

    /// Its name in config: `binpack`, `spread` or `first-fit`.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Binpack => "binpack",
            Policy::Spread => "spread",
            Policy::FirstFit => "first-fit",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        Policy::ALL
            .into_iter()
            .find(|p| t.eq_ignore_ascii_case(p.name()))
            .ok_or_else(|| {
                format!(
                    "unknown placement policy \"{s}\": valid ones are binpack, spread and first-fit"
                )
            })
    }
}

/// Normalise a model name or code to its code: lower case, without a
/// leading `nvidia `, then `tesla-`, `rtx-` or `gtx-`, and without `-` and
/// spaces (`Nvidia tesla-p4` → `p4`, `Nvidia rtx-3060-ti` → `3060ti`).
pub fn model_code(name: &str) -> String {
    let lower = name.trim().to_lowercase();
    let mut s = lower.as_str();
    for p in ["nvidia ", "nvidia-"] {
        if let Some(rest) = s.strip_prefix(p) {
            s = rest.trim_start();
            break;
        }
    }
    for p in ["tesla-", "rtx-", "gtx-", "tesla ", "rtx ", "gtx "] {
        if let Some(rest) = s.strip_prefix(p) {
            s = rest;
            break;
        }
    }
    s.chars().filter(|c| *c != '-' && *c != ' ').collect()
}

/// A size in words: `40 GiB`, `512 MiB` or `1000 bytes`.
pub fn bytes(n: u64) -> String {
    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;
    if n >= GIB && n.is_multiple_of(GIB) {
        format!("{} GiB", n / GIB)
    } else if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else {
        format!("{n} bytes")
    }
}

/// The inventory in words, per model code in index order: `2 × a100, 2 × t4`
/// (`no GPUs` when empty).
pub fn inventory_summary(all: &[Gpu]) -> String {
    let mut sorted: Vec<&Gpu> = all.iter().collect();
    sorted.sort_by_key(|g| g.index);
    let mut counts: Vec<(String, usize)> = Vec::new();
    for g in sorted {
        let code = g.code();
        match counts.iter_mut().find(|(c, _)| *c == code) {
            Some((_, n)) => *n += 1,
            None => counts.push((code, 1)),
        }
    }
    if counts.is_empty() {
        return "no GPUs".into();
    }
    let parts: Vec<String> = counts.iter().map(|(c, n)| format!("{n} × {c}")).collect();
    parts.join(", ")
}

/// Whether `gpu` is acceptable for `req` (health and freeness aside): an
/// accepted model, enough memory, and among the device ids when it names some.
pub fn eligible(req: &Request, gpu: &Gpu) -> bool {
    req.accepts_model(&gpu.model) && fits_besides_model(req, gpu)
}

/// Enough memory, and among the device ids when `req` names some.
fn fits_besides_model(req: &Request, gpu: &Gpu) -> bool {
    req.min_memory_bytes.is_none_or(|m| gpu.memory_bytes >= m)
        && (req.device_ids.is_empty() || req.device_ids.iter().any(|id| gpu.named_by(id)))
}

/// The healthy GPUs of `free` that `req` accepts, each once, with their
/// model code ([`eligible`], each code computed once).
fn candidates<'a>(req: &Request, free: &[&'a Gpu]) -> Vec<(String, &'a Gpu)> {
    let codes: Vec<String> = req.models.iter().map(|m| model_code(m)).collect();
    let mut seen = BTreeSet::new();
    free.iter()
        .filter_map(|&g| {
            if !g.healthy || !fits_besides_model(req, g) {
                return None;
            }
            let code = g.code();
            let ok = (codes.is_empty() || codes.contains(&code)) && seen.insert(g.index);
            ok.then_some((code, g))
        })
        .collect()
}

/// How many GPUs of `free` `req` could use now.
pub fn free_for(req: &Request, free: &[&Gpu]) -> u32 {
    u32::try_from(candidates(req, free).len()).unwrap_or(u32::MAX)
}

/// Choose `req.wanted()` distinct healthy GPUs of `free` that `req` accepts,
/// as `policy` says; `None` when there are not enough. One model when one can
/// take the whole request, models mixed (only accepted ones) otherwise.
pub fn place<'a>(req: &Request, free: &[&'a Gpu], policy: Policy) -> Option<Vec<&'a Gpu>> {
    let wanted = usize::try_from(req.wanted()).unwrap_or(usize::MAX);
    let mut cands = candidates(req, free);
    if cands.len() < wanted {
        return None;
    }
    if policy == Policy::FirstFit {
        cands.sort_by_key(|(_, g)| g.index);
        return Some(cands.into_iter().take(wanted).map(|(_, g)| g).collect());
    }
    let mut by_model: BTreeMap<String, Vec<&'a Gpu>> = BTreeMap::new();
    for (code, g) in cands {
        by_model.entry(code).or_default().push(g);
    }
    let mut groups: Vec<(String, Vec<&'a Gpu>)> = by_model.into_iter().collect();
    if policy == Policy::Binpack {
        for (_, g) in &mut groups {
            g.sort_by_key(|g| (g.memory_bytes, g.index));
        }
        let key = |g: &(String, Vec<&Gpu>)| {
            let least = g.1.first().map_or(0, |g| g.memory_bytes);
            (g.1.len(), least, g.0.clone())
        };
        groups.sort_by_cached_key(key);
    } else {
        for (_, g) in &mut groups {
            g.sort_by_key(|g| g.index);
        }
        let key = |g: &(String, Vec<&Gpu>)| {
            let most = g.1.iter().map(|g| g.memory_bytes).max().unwrap_or(0);
            (
                std::cmp::Reverse(g.1.len()),
                std::cmp::Reverse(most),
                g.0.clone(),
            )
        };
        groups.sort_by_cached_key(key);
    }
    if let Some((_, g)) = groups.iter().find(|(_, g)| g.len() >= wanted) {
        return Some(g[..wanted].to_vec());
    }
    Some(
        groups
            .into_iter()
            .flat_map(|(_, g)| g)
            .take(wanted)
            .collect(),
    )
}

/// Place every request of a deployment on `free`, a GPU given to one not free
/// for the others; the most constrained (fewest free GPUs it accepts) first,
/// falling back to an exact assignment when that order fails. The GPUs of
/// each, in the order of `reqs`; `None` only when no assignment exists.
pub fn place_all<'a>(
    reqs: &[&Request],
    free: &[&'a Gpu],
    policy: Policy,
) -> Option<Vec<Vec<&'a Gpu>>> {
    let mut order: Vec<usize> = (0..reqs.len()).collect();
    order.sort_by_cached_key(|&i| (free_for(reqs[i], free), i));
    let mut left: Vec<&'a Gpu> = free.to_vec();
    let mut out: Vec<Vec<&'a Gpu>> = vec![Vec::new(); reqs.len()];
    for i in order {
        // One after another, the policy's way; when that paints itself into
        // a corner (one request took GPUs only another could use), an exact
        // assignment, so a deployment that fits is never left waiting.
        let Some(chosen) = place(reqs[i], &left, policy) else {
            return matching::exact(reqs, free);
        };
        left.retain(|g| !chosen.iter().any(|c| c.index == g.index));
        out[i] = chosen;
    }
    Some(out)
}

/// The model codes of the inventory's GPUs that `req` accepts (health aside).
pub fn accepted_models(req: &Request, all: &[Gpu]) -> BTreeSet<String> {
    all.iter()
        .filter(|g| eligible(req, g))
        .map(Gpu::code)
        .collect()
}

/// Whether two requests compete: the models they accept, resolved against
/// the inventory, intersect.
pub fn competes(a: &Request, b: &Request, all: &[Gpu]) -> bool {
    !accepted_models(a, all).is_disjoint(&accepted_models(b, all))
}

/// The largest count of one model still free and healthy: the largest
/// single-model request that would fit now.
pub fn largest_fit(free: &[&Gpu]) -> u32 {
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for g in free.iter().filter(|g| g.healthy && seen.insert(g.index)) {
        *counts.entry(g.code()).or_default() += 1;
    }
    counts.into_values().max().unwrap_or(0)
}

#[cfg(test)]
mod tests;
