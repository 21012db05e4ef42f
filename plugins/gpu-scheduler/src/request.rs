//! A deployment's GPU requests: read from its containers, checked against
//! the inventory, and recorded in the host's ledger in this plugin's words.

use crate::placement::{self, Gpu, Request};
use gantry_sdk::scheduler::gantry::plugin::types::{
    ContainerSpec, Error, FieldError, InvalidInput, WorkloadSpec,
};
use serde::{Deserialize, Serialize};

/// The container label asking for a minimum memory per GPU, in decimal bytes.
pub use gantry_sdk::labels::GPU_MIN_MEMORY as MIN_MEMORY_LABEL;

/// What one container of a deployment asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerDemand {
    /// The container's name.
    pub name: String,
    /// Its GPU request; `None` when it wants no GPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<Request>,
}

/// What a deployment asks for, every container in spec order. Its JSON is
/// the `request` of the deployment's claim in the host's ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Demand {
    /// Every container of the spec, in order.
    pub containers: Vec<ContainerDemand>,
}

/// An `invalid` error on `fields`.
pub fn invalid(message: String, fields: Vec<FieldError>) -> Error {
    Error::Invalid(InvalidInput { message, fields })
}

fn min_memory(i: usize, c: &ContainerSpec) -> Result<Option<u64>, FieldError> {
    let Some((_, v)) = c.labels.iter().find(|(k, _)| k == MIN_MEMORY_LABEL) else {
        return Ok(None);
    };
    let bad = |why: &str| FieldError {
        field: format!("containers[{i}].gpu.memory"),
        message: format!("label {MIN_MEMORY_LABEL} = \"{v}\": {why}"),
    };
    let t = v.trim();
    match t.parse::<u64>() {
        Ok(0) => Err(bad("must be more than 0 bytes")),
        Ok(n) => Ok(Some(n)),
        Err(_) if t.starts_with('-') && t[1..].chars().all(|c| c.is_ascii_digit()) => {
            Err(bad("must be more than 0 bytes"))
        }
        Err(_) => Err(bad("not a decimal number of bytes")),
    }
}

impl Demand {
    /// Read what `spec`'s containers ask for: a container wants GPUs when its
    /// `gpu` has a count or device ids; its minimum memory per GPU comes from
    /// its [`MIN_MEMORY_LABEL`] label. `invalid` when that label is not a
    /// positive number of bytes.
    pub fn read(spec: &WorkloadSpec) -> Result<Demand, Error> {
        let mut containers = Vec::new();
        let mut fields = Vec::new();
        for (i, c) in spec.containers.iter().enumerate() {
            let gpu = match &c.gpu {
                Some(g) if g.asks() => {
                    let min_memory_bytes = min_memory(i, c).unwrap_or_else(|e| {
                        fields.push(e);
                        None
                    });
                    Some(Request {
                        count: g.count,
                        models: g.models.iter().map(|m| placement::model_code(m)).collect(),
                        min_memory_bytes,
                        device_ids: g.device_ids.clone(),
                    })
                }
                _ => None,
            };
            containers.push(ContainerDemand {
                name: c.name.clone(),
                gpu,
            });
        }
        if !fields.is_empty() {
            let msgs: Vec<&str> = fields.iter().map(|f| f.message.as_str()).collect();
            return Err(invalid(msgs.join("; "), fields));
        }
        Ok(Demand { containers })
    }

    /// Read a demand back from its ledger JSON; `None` when it is not ours.
    pub fn parse(json: &str) -> Option<Demand> {
        serde_json::from_str(json).ok()
    }

    /// Its ledger JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Whether any container wants GPUs.
    pub fn wants_gpus(&self) -> bool {
        self.gpu_containers().next().is_some()
    }

    /// The containers that want GPUs: position in the spec, name and request.
    pub fn gpu_containers(&self) -> impl Iterator<Item = (usize, &str, &Request)> {
        self.containers
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((i, c.name.as_str(), c.gpu.as_ref()?)))
    }

    /// `invalid`, naming `containers[i].gpu.<field>`, when a request can
    /// never be satisfied on `inventory`, alone or with the others.
    pub fn check(&self, inventory: &[Gpu]) -> Result<(), Error> {
        let mut fields = Vec::new();
        let mut msgs = Vec::new();
        for (i, name, r) in self.gpu_containers() {
            if let Some(p) = placement::never_fits(r, inventory) {
                msgs.push(format!("container {name} {}", p.message));
                fields.push(FieldError {
                    field: format!("containers[{i}].gpu.{}", p.field),
                    message: p.message,
                });
            }
        }
        if fields.is_empty() {
            let gpu: Vec<(usize, &str, &Request)> = self.gpu_containers().collect();
            let reqs: Vec<&Request> = gpu.iter().map(|(_, _, r)| *r).collect();
            if let Some(s) = placement::never_fits_together(&reqs, inventory) {
                let names: Vec<&str> = s.members.iter().map(|&k| gpu[k].1).collect();
                let message = format!(
                    "containers {} ask for {} GPUs together but this host has {} they accept",
                    names.join(" and "),
                    s.wanted,
                    s.have
                );
                for &k in &s.members {
                    fields.push(FieldError {
                        field: format!("containers[{}].gpu.count", gpu[k].0),
                        message: message.clone(),
                    });
                }
                msgs.push(message);
            }
        }
        if fields.is_empty() {
            return Ok(());
        }
        let message = format!(
            "GPU request cannot be met on this host: {}",
            msgs.join("; ")
        );
        Err(invalid(message, fields))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gantry_sdk::scheduler::gantry::plugin::types::GpuRequest;

    fn container(name: &str, count: u32, models: &[&str], label: Option<&str>) -> ContainerSpec {
        let mut c = ContainerSpec::new(name, "busybox:1.36");
        if count > 0 {
            c.gpu = Some(GpuRequest {
                count,
                models: models.iter().map(|m| m.to_string()).collect(),
                device_ids: Vec::new(),
                capabilities: Vec::new(),
            });
        }
        if let Some(v) = label {
            c.labels.push((MIN_MEMORY_LABEL.into(), v.into()));
        }
        c
    }

    fn gpu(index: u32, model: &str) -> Gpu {
        Gpu {
            index,
            uuid: format!("GPU-{index}"),
            model: model.into(),
            memory_bytes: 40 << 30,
            healthy: true,
        }
    }

    fn fields(e: Error) -> Vec<String> {
        match e {
            Error::Invalid(i) => i.fields.into_iter().map(|f| f.field).collect(),
            e => panic!("not invalid: {e:?}"),
        }
    }

    #[test]
    fn reads_requests_and_the_memory_label() {
        let spec = WorkloadSpec::new(vec![
            container("web", 0, &[], Some("5")),
            container("train", 2, &["Nvidia a100"], Some(" 42949672960 ")),
        ]);
        let d = Demand::read(&spec).expect("accepted");
        assert!(d.wants_gpus());
        assert_eq!(d.containers[0].gpu, None);
        let r = d.containers[1].gpu.as_ref().expect("accepted");
        assert_eq!((r.count, r.models.clone()), (2, vec!["a100".to_string()]));
        assert_eq!(r.min_memory_bytes, Some(40 << 30));
        assert_eq!(Demand::parse(&d.to_json()), Some(d));
        assert_eq!(Demand::parse("{not ours"), None);
    }

    #[test]
    fn a_bad_memory_label_is_invalid() {
        for bad in ["0", "-5", "40Gi", ""] {
            let spec = WorkloadSpec::new(vec![
                container("web", 0, &[], None),
                container("train", 1, &[], Some(bad)),
            ]);
            let e = Demand::read(&spec).expect_err("refused");
            assert_eq!(fields(e), vec!["containers[1].gpu.memory"], "{bad}");
        }
    }

    #[test]
    fn check_names_the_container_fields() {
        let inv = vec![gpu(0, "a100"), gpu(1, "a100"), gpu(2, "t4")];
        let read = |cs: Vec<ContainerSpec>| Demand::read(&WorkloadSpec::new(cs)).expect("accepted");
        let ok = read(vec![
            container("a", 2, &["a100"], None),
            container("b", 1, &[], None),
        ]);
        assert!(ok.check(&inv).is_ok());
        let d = read(vec![
            container("a", 1, &[], None),
            container("b", 1, &["k80"], None),
        ]);
        assert_eq!(
            fields(d.check(&inv).expect_err("refused")),
            vec!["containers[1].gpu.models"]
        );
        let d = read(vec![container("a", 3, &["a100"], None)]);
        assert_eq!(
            fields(d.check(&inv).expect_err("refused")),
            vec!["containers[0].gpu.count"]
        );
        let d = read(vec![container("a", 1, &[], Some("50000000000"))]);
        assert_eq!(
            fields(d.check(&inv).expect_err("refused")),
            vec!["containers[0].gpu.memory"]
        );
        let d = read(vec![
            container("a", 2, &["a100"], None),
            container("b", 1, &["a100"], None),
        ]);
        let want = vec!["containers[0].gpu.count", "containers[1].gpu.count"];
        assert_eq!(fields(d.check(&inv).expect_err("refused")), want);
    }
}
