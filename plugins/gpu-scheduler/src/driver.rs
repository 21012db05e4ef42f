//! The exported `driver`'s GPU-aware operations (capabilities, create,
//! inspect, remove), over the host's `devices` inventory and `allocations`
//! ledger. Instances are pooled: every fact is read from the host per call.

use crate::placement::{Gpu, Policy, inventory_summary};
use crate::request::Demand;
use crate::schedule::{Decision, Situation, waiting_states};
use gantry_sdk::relay::{convert, downstream_ref};
use gantry_sdk::scheduler::exports::gantry::plugin::driver as exported;
use gantry_sdk::scheduler::gantry::plugin::driver as downstream;
use gantry_sdk::scheduler::gantry::plugin::logging::{self, Level};
use gantry_sdk::scheduler::gantry::plugin::types::{ContainerState, Error};
use gantry_sdk::scheduler::gantry::plugin::{allocations, config, devices};

/// The config key naming the placement policy: `binpack` (default),
/// `spread` or `first-fit`.
pub const POLICY_KEY: &str = "policy";

/// How many times a lost race for GPUs (`hold` answering `conflict`) is retried.
const HOLD_RETRIES: u32 = 3;

fn policy() -> Result<Policy, String> {
    config::get(POLICY_KEY).map_or(Ok(Policy::default()), |v| v.parse())
}

fn inventory() -> Vec<Gpu> {
    devices::gpus()
        .into_iter()
        .map(|d| Gpu {
            index: d.index,
            uuid: d.uuid,
            model: d.model,
            memory_bytes: d.memory_bytes,
            healthy: d.healthy,
        })
        .collect()
}

/// The downstream's capabilities, its runtime named under this scheduler's.
pub(crate) fn capabilities() -> Result<exported::BackendCapabilities, Error> {
    let mut c: exported::BackendCapabilities = convert(downstream::capabilities()?)?;
    let policy = policy().map_or_else(
        |_| {
            format!(
                "invalid policy {:?}",
                config::get(POLICY_KEY).unwrap_or_default()
            )
        },
        |p| p.name().to_string(),
    );
    let gpus = inventory_summary(&inventory());
    c.runtime = format!("gpu-scheduler ({policy}; {gpus}) over {}", c.runtime);
    Ok(c)
}

/// Create `d`: containers that want no GPU go downstream as they are; GPUs
/// are held in the ledger and handed to the downstream as device ids, or
/// the deployment waits in the ledger's queue and is reported `creating`.
pub(crate) fn create(d: exported::Deployment, start: bool) -> Result<Vec<ContainerState>, Error> {
    // The host's config is wrong, not the caller's request.
    let policy = policy().map_err(|e| Error::Unavailable(format!("gpu-scheduler config: {e}")))?;
    let mut d = downstream::Deployment {
        workload_id: d.workload_id,
        revision: d.revision,
        name: d.name,
        spec: d.spec,
        labels: d.labels,
    };
    let demand = Demand::read(&d.spec)?;
    if !demand.wants_gpus() {
        return downstream::create(&d, start);
    }
    let caps = downstream::capabilities()?;
    if !caps.gpu {
        let msg = format!("backend {} cannot attach GPUs", caps.runtime);
        return Err(Error::Unsupported(msg));
    }
    let mut inventory = inventory();
    demand.check(&inventory)?;
    let request = demand.to_json();
    let (w, rev) = (d.workload_id.clone(), d.revision);
    let mut lost = 0;
    let assigned = loop {
        let claims = allocations::claims();
        let situation = Situation {
            workload_id: &w,
            revision: rev,
            inventory: &inventory,
            claims: &claims,
            policy,
        };
        match situation.decide(&demand) {
            Decision::Reuse(a) => break a,
            Decision::Place(a) => match allocations::hold(&w, rev, &a, &request) {
                Ok(()) => break a,
                Err(Error::Conflict(m) | Error::Unavailable(m)) => {
                    lost += 1;
                    if lost > HOLD_RETRIES {
                        // Still losing races: wait in the queue rather than fail.
                        let messages = situation.messages(&demand, &situation.free(), 0);
                        return queue(&d.name, &w, rev, &request, &demand, messages);
                    }
                    let msg = format!(
                        "{} r{rev}: lost GPUs to another ({m}), placing again",
                        d.name
                    );
                    logging::log(Level::Warn, &msg);
                    inventory = self::inventory();
                }
                Err(e) => return Err(e),
            },
            Decision::Wait(messages) => {
                return queue(&d.name, &w, rev, &request, &demand, messages);
            }
        }
    };
    for c in &mut d.spec.containers {
        let ids: Vec<String> = assigned
            .iter()
            .filter(|a| a.container == c.name)
            .map(|a| a.uuid.clone())
            .collect();
        if let Some(g) = c.gpu.as_mut().filter(|_| !ids.is_empty()) {
            logging::log(
                Level::Info,
                &format!(
                    "{} r{rev}: {} ← {} ({policy})",
                    d.name,
                    c.name,
                    ids.join(", ")
                ),
            );
            g.count = u32::try_from(ids.len()).unwrap_or(u32::MAX);
            g.device_ids = ids;
        }
    }
    downstream::create(&d, start).inspect_err(|_| {
        if let Err(e) = allocations::release(&w, rev) {
            let msg = format!(
                "{} r{rev}: releasing its GPUs after a failed create: {e:?}",
                d.name
            );
            logging::log(Level::Warn, &msg);
        }
    })
}

/// Put the revision in the ledger's queue; its states while it waits.
fn queue(
    name: &str,
    w: &str,
    rev: u32,
    request: &str,
    demand: &Demand,
    messages: Vec<String>,
) -> Result<Vec<ContainerState>, Error> {
    let ticket = allocations::wait(w, rev, request)?;
    let first = messages.first().cloned().unwrap_or_default();
    logging::log(
        Level::Info,
        &format!("{name} r{rev} queued (ticket {ticket}): {first}"),
    );
    Ok(waiting_states(demand, messages))
}

/// The downstream's state of `r`; while it waits for GPUs (nothing
/// downstream, a waiting claim), one `creating` state per container.
pub(crate) fn inspect(r: exported::InstanceRef) -> Result<Vec<ContainerState>, Error> {
    let found = match downstream::inspect(&downstream_ref(&r)) {
        Ok(s) if !s.is_empty() => return Ok(s),
        Ok(s) => Ok(s),
        Err(Error::NotFound(m)) => Err(Error::NotFound(m)),
        Err(e) => return Err(e),
    };
    let claims = allocations::claims();
    let mine = |c: &allocations::Claim| c.workload_id == r.workload_id && c.revision == r.revision;
    if !claims.iter().any(|c| mine(c) && c.ticket.is_some()) {
        return found;
    }
    let inventory = inventory();
    let situation = Situation {
        workload_id: &r.workload_id,
        revision: r.revision,
        inventory: &inventory,
        claims: &claims,
        policy: policy().unwrap_or_default(),
    };
    situation.waiting_states().map_or(found, Ok)
}

/// Remove `r` downstream, then forget what it holds or waits for (also when
/// the downstream has nothing: a waiting deployment never reached it).
pub(crate) fn remove(r: exported::InstanceRef, force: bool) -> Result<(), Error> {
    match downstream::remove(&downstream_ref(&r), force) {
        Ok(()) | Err(Error::NotFound(_)) => {
            match allocations::release(&r.workload_id, r.revision) {
                Ok(()) | Err(Error::NotFound(_)) => Ok(()),
                Err(e) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}
