//! What to do with a deployment's demand, given the inventory and the
//! ledger's claims: keep what it holds, place it, or queue it (first come,
//! first served). No calls to the host here.

use crate::placement::{self, Gpu, Policy, Request};
use crate::request::Demand;
use gantry_sdk::scheduler::gantry::plugin::allocations::Claim;
use gantry_sdk::scheduler::gantry::plugin::types::{
    ContainerState, ContainerStatus, GpuAssignment,
};

/// Where one revision of a workload stands against the host's GPUs.
pub struct Situation<'a> {
    /// The workload.
    pub workload_id: &'a str,
    /// Its revision being deployed.
    pub revision: u32,
    /// Every GPU the host knows of.
    pub inventory: &'a [Gpu],
    /// Every claim of the ledger, held or waiting.
    pub claims: &'a [Claim],
    /// How free GPUs are chosen.
    pub policy: Policy,
}

/// What to do.
#[derive(Debug, Clone)]
pub enum Decision {
    /// This revision already holds these GPUs (a retried deploy): keep them.
    Reuse(Vec<GpuAssignment>),
    /// Hold these GPUs, then create.
    Place(Vec<GpuAssignment>),
    /// It does not fit now, or others wait before it: one message per container.
    Wait(Vec<String>),
}

impl Situation<'_> {
    fn own(&self, c: &Claim) -> bool {
        c.workload_id == self.workload_id
    }

    /// The healthy GPUs no other workload holds (this workload's other
    /// revisions' GPUs are free for it: an update may take them over).
    pub fn free(&self) -> Vec<&Gpu> {
        let held = |g: &Gpu| {
            self.claims
                .iter()
                .filter(|c| !self.own(c))
                .any(|c| c.gpus.iter().any(|a| a.uuid.eq_ignore_ascii_case(&g.uuid)))
        };
        self.inventory
            .iter()
            .filter(|g| g.healthy && !held(g))
            .collect()
    }

    /// The healthy GPUs this workload's other revisions hold.
    fn inherited(&self) -> Vec<&Gpu> {
        self.inventory
            .iter()
            .filter(|g| {
                g.healthy
                    && self.claims.iter().any(|c| {
                        self.own(c)
                            && c.revision != self.revision
                            && c.gpus.iter().any(|a| a.uuid.eq_ignore_ascii_case(&g.uuid))
                    })
            })
            .collect()
    }

    /// The workload's ticket in the queue, if it has waited before.
    fn own_ticket(&self) -> Option<u64> {
        self.claims
            .iter()
            .filter(|c| self.own(c))
            .filter_map(|c| c.ticket)
            .min()
    }

    /// This revision's claim.
    fn mine(&self) -> Option<&Claim> {
        self.claims
            .iter()
            .find(|c| self.own(c) && c.revision == self.revision)
    }

    /// How many waiting claims of other workloads go before `demand`: those
    /// competing with it (accepting a model it accepts) with an earlier
    /// ticket, or any, while this workload has none. Claims this plugin
    /// cannot read compete with nothing.
    pub fn ahead(&self, demand: &Demand) -> usize {
        let own = self.own_ticket();
        let ours: Vec<&Request> = demand.gpu_containers().map(|(_, _, r)| r).collect();
        self.claims
            .iter()
            .filter(|c| !self.own(c) && c.gpus.is_empty())
            .filter(|c| c.ticket.is_some_and(|t| own.is_none_or(|o| t < o)))
            .filter_map(|c| Demand::parse(&c.request))
            .filter(|d| {
                d.gpu_containers().any(|(_, _, theirs)| {
                    ours.iter()
                        .any(|r| placement::competes(r, theirs, self.inventory))
                })
            })
            .count()
    }

    /// What to do with `demand`.
    pub fn decide(&self, demand: &Demand) -> Decision {
        if let Some(held) = self.mine().filter(|c| holds_all(c, demand)) {
            return Decision::Reuse(held.gpus.clone());
        }
        let gpu: Vec<(usize, &str, &Request)> = demand.gpu_containers().collect();
        let reqs: Vec<&Request> = gpu.iter().map(|(_, _, r)| *r).collect();
        let free = self.free();
        // A new revision that fits on what its predecessors hold takes them
        // over: it asks nothing of the queue.
        let takeover = placement::place_all(&reqs, &self.inherited(), self.policy);
        let chosen = match takeover {
            Some(c) => Some(c),
            None => {
                let ahead = self.ahead(demand);
                if ahead > 0 {
                    return Decision::Wait(self.messages(demand, &free, ahead));
                }
                placement::place_all(&reqs, &free, self.policy)
            }
        };
        match chosen {
            Some(chosen) => {
                let mut out = Vec::new();
                for ((_, name, _), mut gpus) in gpu.iter().zip(chosen) {
                    gpus.sort_by_key(|g| g.index);
                    out.extend(gpus.into_iter().map(|g| GpuAssignment {
                        container: name.to_string(),
                        index: g.index,
                        uuid: g.uuid.clone(),
                        model: g.model.clone(),
                        memory_bytes: g.memory_bytes,
                    }));
                }
                Decision::Place(out)
            }
            None => Decision::Wait(self.messages(demand, &free, 0)),
        }
    }

    /// Why each container of `demand` waits: `waiting for 2 × a100, 1 free`,
    /// then `, 3 requests ahead` when others go first. A container wanting no
    /// GPU carries the message of the first one short of GPUs.
    pub fn messages(&self, demand: &Demand, free: &[&Gpu], ahead: usize) -> Vec<String> {
        let queue = match ahead {
            0 => String::new(),
            1 => ", 1 request ahead".into(),
            n => format!(", {n} requests ahead"),
        };
        let of = |r: &Request| {
            let n = placement::free_for(r, free);
            (
                format!("waiting for {}, {n} free{queue}", r.describe()),
                n < r.wanted(),
            )
        };
        let per: Vec<Option<(String, bool)>> = demand
            .containers
            .iter()
            .map(|c| c.gpu.as_ref().map(of))
            .collect();
        let fallback = per
            .iter()
            .flatten()
            .find(|(_, short)| *short)
            .or_else(|| per.iter().flatten().next())
            .map_or_else(|| format!("waiting for GPUs{queue}"), |(m, _)| m.clone());
        per.into_iter()
            .map(|m| m.map_or_else(|| fallback.clone(), |(m, _)| m))
            .collect()
    }

    /// The container states of this revision while it waits for GPUs, when
    /// it does (its claim waits and its request is readable).
    pub fn waiting_states(&self) -> Option<Vec<ContainerState>> {
        let claim = self
            .mine()
            .filter(|c| c.gpus.is_empty() && c.ticket.is_some())?;
        let demand = Demand::parse(&claim.request)?;
        let messages = self.messages(&demand, &self.free(), self.ahead(&demand));
        Some(waiting_states(&demand, messages))
    }
}

/// Whether `claim` holds, for every container of `demand` wanting GPUs,
/// as many GPUs as it wants.
fn holds_all(claim: &Claim, demand: &Demand) -> bool {
    // Held for another request (a revision number used again after a
    // rolled-back update): not these GPUs.
    if claim.request != demand.to_json() {
        return false;
    }
    let mut total = 0usize;
    for (_, name, r) in demand.gpu_containers() {
        let n = claim.gpus.iter().filter(|a| a.container == name).count();
        if u64::try_from(n).ok() != Some(u64::from(r.wanted())) {
            return false;
        }
        total += n;
    }
    total > 0 && total == claim.gpus.len()
}

/// One `creating` state per container of `demand`, with its message.
pub fn waiting_states(demand: &Demand, messages: Vec<String>) -> Vec<ContainerState> {
    demand
        .containers
        .iter()
        .zip(messages)
        .map(|(c, m)| ContainerState::bare(&c.name, None, ContainerStatus::Creating, Some(m)))
        .collect()
}

#[cfg(test)]
mod tests;
