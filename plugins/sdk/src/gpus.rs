//! Handing GPUs to a container, for backends: a scheduler names the GPUs it
//! placed a container on (`gpu.device-ids`); the host's `devices.edits`
//! says what the container needs to use them (device nodes, mounts,
//! environment, from CDI specs or derived), and [`hand_over`] writes that
//! into the container's spec, which every backend already knows how to apply.

use crate::backend::gantry::plugin::devices;
use crate::backend::gantry::plugin::types::{
    ContainerEdits, ContainerSpec, ContainerState, ContainerStatus, DeviceMapping, Error,
    WorkloadSpec,
};

/// What a container's GPU request asks of a backend.
#[derive(Debug, PartialEq, Eq)]
pub enum GpuNeed {
    /// No GPU.
    None,
    /// These GPUs, chosen by a scheduler (UUIDs or indexes).
    Devices(Vec<String>),
    /// Any `count` GPUs: only a runtime that picks GPUs itself can do that.
    Count(u32),
}

/// What `c` asks for.
pub fn need(c: &ContainerSpec) -> GpuNeed {
    match &c.gpu {
        Some(g) if !g.device_ids.is_empty() => GpuNeed::Devices(g.device_ids.clone()),
        Some(g) if g.count > 0 => GpuNeed::Count(g.count),
        _ => GpuNeed::None,
    }
}

/// The container edits of the GPUs `c`'s request names, if it names any
/// (for a backend that builds the OCI spec itself and needs device numbers).
pub fn edits(c: &ContainerSpec) -> Result<Option<ContainerEdits>, Error> {
    match need(c) {
        GpuNeed::Devices(ids) => devices::edits(&ids).map(Some),
        _ => Ok(None),
    }
}

/// Give `c` the GPUs its request names: their container edits are added to
/// its devices, mounts and environment (an edit's variable replaces the
/// spec's), and the request is cleared. Unchanged when it names none.
pub fn hand_over(c: &mut ContainerSpec) -> Result<(), Error> {
    if let Some(e) = edits(c)? {
        apply(c, e);
        c.gpu = None;
    }
    Ok(())
}

/// Add `e` to `c`: device nodes as device mappings (the runtime reads their
/// numbers itself), mounts, and environment.
pub fn apply(c: &mut ContainerSpec, e: ContainerEdits) {
    for v in e.env {
        c.env.retain(|x| x.name != v.name);
        c.env.push(v);
    }
    for d in e.devices {
        if !c
            .devices
            .iter()
            .any(|x| x.path_in_container == d.path_in_container)
        {
            c.devices.push(DeviceMapping {
                path_on_host: d.path_on_host,
                path_in_container: d.path_in_container,
                cgroup_permissions: d.cgroup_permissions,
            });
        }
    }
    for m in e.mounts {
        if !c.mounts.iter().any(|x| x.destination == m.destination) {
            c.mounts.push(m);
        }
    }
}

/// Why `spec` cannot run on a runtime that does not pick GPUs itself: a
/// container asking for GPUs by count, not naming them (no scheduler placed it).
pub fn unplaced(spec: &WorkloadSpec) -> Option<String> {
    spec.containers.iter().find_map(|c| match need(c) {
        GpuNeed::Count(n) => Some(format!(
            "container `{}` asks for {n} GPU(s) by count, which this runtime cannot pick: \
             place GPU workloads through a GPU scheduler, which names the devices",
            c.name
        )),
        _ => None,
    })
}

/// The states a backend answers for a deployment it cannot run, having
/// created nothing: every container dead, never started, with `why`. The
/// host reports the workload failed with that message.
pub fn not_run(spec: &WorkloadSpec, why: &str) -> Vec<ContainerState> {
    spec.containers
        .iter()
        .map(|c| ContainerState::bare(&c.name, None, ContainerStatus::Dead, Some(why.to_string())))
        .collect()
}
