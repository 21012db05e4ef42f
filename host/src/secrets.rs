//! Secret environment values: passed to the runtime, never handed back to a
//! plugin. Workloads leave the host with secret values blanked; a spec that
//! comes back with a blanked secret keeps the value stored for it.

use crate::bindings::gantry::plugin::control::{RevisionPage, WorkloadPage};
use crate::bindings::types::{ContainerStats, GpuAssignment, Workload, WorkloadSpec};

/// A value that may carry secrets, made safe to return to a plugin.
pub trait Redact {
    /// The value with every secret environment value blanked.
    fn redact(self) -> Self;
}

fn blank(spec: &mut WorkloadSpec) {
    for var in spec.containers.iter_mut().flat_map(|c| c.env.iter_mut()) {
        if var.secret {
            var.value.clear();
        }
    }
}

impl Redact for Workload {
    fn redact(mut self) -> Self {
        blank(&mut self.spec);
        self
    }
}

impl Redact for WorkloadPage {
    fn redact(mut self) -> Self {
        self.items = self.items.into_iter().map(Redact::redact).collect();
        self
    }
}

impl Redact for RevisionPage {
    fn redact(mut self) -> Self {
        for r in &mut self.items {
            blank(&mut r.spec);
        }
        self
    }
}

impl Redact for ContainerStats {
    fn redact(self) -> Self {
        self
    }
}

impl Redact for Vec<GpuAssignment> {
    fn redact(self) -> Self {
        self
    }
}

impl Redact for () {
    fn redact(self) -> Self {}
}

/// Give blank secret values in `new` the value stored for the same variable
/// of the same container in `stored`, so a spec read back (redacted) and
/// resubmitted does not wipe its secrets.
pub fn restore(new: &mut WorkloadSpec, stored: &WorkloadSpec) {
    for c in &mut new.containers {
        let Some(old) = stored.containers.iter().find(|o| o.name == c.name) else {
            continue;
        };
        for var in c.env.iter_mut().filter(|v| v.secret && v.value.is_empty()) {
            if let Some(kept) = old.env.iter().find(|o| o.secret && o.name == var.name) {
                var.value = kept.value.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::types::{ContainerSpec, EnvVar};

    fn spec(vars: &[(&str, &str, bool)]) -> WorkloadSpec {
        WorkloadSpec::new(vec![ContainerSpec {
            env: vars
                .iter()
                .map(|(n, v, secret)| EnvVar {
                    name: n.to_string(),
                    value: v.to_string(),
                    secret: *secret,
                })
                .collect(),
            ..ContainerSpec::new("app", "busybox:1")
        }])
    }

    fn values(s: &WorkloadSpec) -> Vec<String> {
        s.containers[0]
            .env
            .iter()
            .map(|v| v.value.clone())
            .collect()
    }

    #[test]
    fn redaction_blanks_only_secrets() {
        let mut s = spec(&[("PLAIN", "p", false), ("TOKEN", "hunter2", true)]);
        blank(&mut s);
        assert_eq!(values(&s), ["p", ""]);
    }

    #[test]
    fn blank_secrets_get_their_stored_value_back() {
        let stored = spec(&[("TOKEN", "hunter2", true), ("OTHER", "x", true)]);
        let mut new = spec(&[
            ("TOKEN", "", true),
            ("OTHER", "changed", true),
            ("NEW", "", true),
        ]);
        restore(&mut new, &stored);
        assert_eq!(values(&new), ["hunter2", "changed", ""]);
    }
}
