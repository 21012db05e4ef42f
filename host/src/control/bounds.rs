//! Bounds on what a caller may ask for (`[bounds]`), checked by the host for
//! every protocol before anything is stored or sent to a backend: how many
//! containers a workload has, how much environment, command line, labels and
//! annotations they carry. A breach is `invalid`, naming the field and the
//! bound, which each frontend renders in its protocol's error shape. Keys and
//! values hold no NUL (a process could not be given them).
//!
//! The defaults let through what a runtime can still run: Linux refuses an
//! `execve` whose arguments and environment pass a quarter of the stack limit
//! (2 MiB with the usual 8 MiB), and one string past 128 KiB.

use crate::bindings::types::{Annotation, ContainerSpec, FieldError, WorkloadSpec};
use serde::Deserialize;

/// `[bounds]`: limits on a workload's spec, per workload or per container.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Bounds {
    /// Containers in one workload (ACI allows 60 in a container group).
    pub containers: usize,
    /// Environment variables of one container.
    pub env_entries: usize,
    /// Bytes of one container's environment, names and values together.
    pub env_bytes: usize,
    /// Entries of one container's command and arguments together.
    pub args_entries: usize,
    /// Bytes of one container's command and arguments together.
    pub args_bytes: usize,
    /// Bytes of one variable (`NAME=value`), argument or annotation value:
    /// what one string passed to `execve` may hold.
    pub value_bytes: usize,
    /// Labels of one container.
    pub labels: usize,
    /// Bytes of one label, key and value together (containerd refuses more
    /// than 4096; one limit for every runtime).
    pub label_bytes: usize,
    /// Bytes of one container's labels, keys and values together.
    pub labels_bytes: usize,
    /// Annotations of one workload.
    pub annotations: usize,
    /// Bytes of one workload's annotations, keys and values together.
    pub annotations_bytes: usize,
    /// Characters of a workload's name.
    pub name_chars: usize,
    /// Extra `/etc/hosts` entries of one workload.
    pub extra_hosts: usize,
}

impl Default for Bounds {
    fn default() -> Self {
        Self {
            containers: 60,
            env_entries: 1_000,
            env_bytes: 1 << 20,
            args_entries: 10_000,
            args_bytes: 1 << 20,
            value_bytes: 128 << 10,
            labels: 256,
            label_bytes: 4096,
            labels_bytes: 256 << 10,
            annotations: 256,
            annotations_bytes: 256 << 10,
            name_chars: 128,
            extra_hosts: 256,
        }
    }
}

/// Collects the breaches of one spec.
struct Breaches<'a> {
    bounds: &'a Bounds,
    fields: Vec<FieldError>,
}

impl Breaches<'_> {
    fn push(&mut self, field: String, message: String) {
        self.fields.push(FieldError { field, message });
    }

    /// At most `max` entries of at most `max_bytes` in all (each counted by
    /// `size`: its whole, and the part held to `max_one`).
    fn sized<'s, T: 's>(
        &mut self,
        field: String,
        items: impl IntoIterator<Item = &'s T>,
        (max, max_bytes, max_one): (usize, usize, usize),
        size: impl Fn(&T) -> (usize, usize),
    ) {
        let (mut count, mut bytes, mut longest) = (0usize, 0usize, 0usize);
        for item in items {
            let (whole, one) = size(item);
            count += 1;
            bytes = bytes.saturating_add(whole);
            longest = longest.max(one);
        }
        if count > max {
            self.push(field, format!("{count} entries; at most {max}"));
        } else if bytes > max_bytes {
            self.push(field, format!("{bytes} bytes; at most {max_bytes}"));
        } else if longest > max_one {
            self.push(
                field,
                format!("an entry of {longest} bytes; at most {max_one} each"),
            );
        }
    }

    fn container(&mut self, i: usize, c: &ContainerSpec) {
        let at = |f: &str| format!("containers[{i}].{f}");
        if let Err(m) = super::reference::check(&c.image) {
            self.push(at("image"), m);
        }
        self.sized(
            at("env"),
            &c.env,
            (
                self.bounds.env_entries,
                self.bounds.env_bytes,
                self.bounds.value_bytes,
            ),
            |e| {
                (
                    e.name.len() + e.value.len() + 2,
                    e.name.len() + e.value.len() + 1,
                )
            },
        );
        // A variable's name is whatever `execve` carries: anything but '='
        // and NUL (the host's rule for names is for names people read).
        if c.env
            .iter()
            .any(|e| e.name.contains('\0') || e.value.contains('\0'))
        {
            self.push(at("env"), "a variable holds a NUL character".into());
        }
        let args: Vec<&String> = c.command.iter().chain(&c.args).flatten().collect();
        self.sized(
            at("command"),
            args.iter().copied(),
            (
                self.bounds.args_entries,
                self.bounds.args_bytes,
                self.bounds.value_bytes,
            ),
            |a| (a.len() + 1, a.len() + 1),
        );
        if args.iter().any(|a| a.contains('\0')) {
            self.push(at("command"), "an argument holds a NUL character".into());
        }
        self.sized(
            at("labels"),
            &c.labels,
            (
                self.bounds.labels,
                self.bounds.labels_bytes,
                self.bounds.label_bytes,
            ),
            |(k, v)| (k.len() + v.len(), k.len() + v.len()),
        );
        if c.labels
            .iter()
            .any(|(k, v)| k.is_empty() || k.contains('\0') || v.contains('\0'))
        {
            self.push(
                at("labels"),
                "a label with an empty key or a NUL character".into(),
            );
        }
    }
}

impl Bounds {
    /// Every bound `spec` breaks, as field errors (none: within bounds).
    pub fn check_spec(&self, spec: &WorkloadSpec) -> Vec<FieldError> {
        let mut b = Breaches {
            bounds: self,
            fields: Vec::new(),
        };
        if spec.containers.len() > self.containers {
            b.push(
                "containers".into(),
                format!(
                    "{} containers; at most {} in a workload",
                    spec.containers.len(),
                    self.containers
                ),
            );
            // Each of a thousand containers checked would only repeat it.
            return b.fields;
        }
        for (i, c) in spec.containers.iter().enumerate() {
            b.container(i, c);
        }
        if spec.extra_hosts.len() > self.extra_hosts {
            b.push(
                "extraHosts".into(),
                format!(
                    "{} entries; at most {}",
                    spec.extra_hosts.len(),
                    self.extra_hosts
                ),
            );
        }
        b.fields
    }

    /// Every bound a workload's annotations break.
    pub fn check_annotations(&self, annotations: &[Annotation]) -> Vec<FieldError> {
        let mut b = Breaches {
            bounds: self,
            fields: Vec::new(),
        };
        b.sized(
            "annotations".into(),
            annotations,
            (self.annotations, self.annotations_bytes, self.value_bytes),
            |(k, v)| (k.len() + v.len(), v.len()),
        );
        if annotations
            .iter()
            .any(|(k, v)| k.is_empty() || k.contains('\0') || v.contains('\0'))
        {
            b.push(
                "annotations".into(),
                "an annotation with an empty key or a NUL character".into(),
            );
        }
        b.fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::types::EnvVar;

    fn container(name: &str, image: &str) -> ContainerSpec {
        ContainerSpec::new(name, image)
    }

    fn var(name: &str, value: String) -> EnvVar {
        EnvVar {
            name: name.into(),
            value,
            secret: false,
        }
    }

    fn spec_of(containers: Vec<ContainerSpec>) -> WorkloadSpec {
        WorkloadSpec::new(containers)
    }

    fn fields(v: &[FieldError]) -> Vec<&str> {
        v.iter().map(|f| f.field.as_str()).collect()
    }

    #[test]
    fn a_workload_within_bounds_passes() {
        let mut c = container("web", "busybox:1.36");
        c.env = (0..16)
            .map(|i| var(&format!("V{i}"), "x".repeat(60 << 10)))
            .collect();
        c.command = Some(vec!["sh".into(), "-c".into(), "sleep 1".into()]);
        assert!(Bounds::default().check_spec(&spec_of(vec![c])).is_empty());
    }

    #[test]
    fn too_many_containers_is_one_breach() {
        let many = (0..61)
            .map(|i| container(&format!("c{i}"), "busybox:1.36"))
            .collect();
        let breaches = Bounds::default().check_spec(&spec_of(many));
        assert_eq!(fields(&breaches), ["containers"]);
        assert!(breaches[0].message.contains("at most 60"), "{breaches:?}");
    }

    #[test]
    fn environment_command_and_labels_are_bounded() {
        let b = Bounds {
            env_bytes: 100,
            args_entries: 3,
            labels: 1,
            ..Bounds::default()
        };
        let mut c = container("web", "busybox:1.36");
        c.env = vec![var("BIG", "x".repeat(200))];
        c.command = Some(vec!["a".into(), "b".into()]);
        c.args = Some(vec!["c".into(), "d".into()]);
        c.labels = vec![("a".into(), "1".into()), ("b".into(), "2".into())];
        let breaches = b.check_spec(&spec_of(vec![c]));
        assert_eq!(
            fields(&breaches),
            [
                "containers[0].env",
                "containers[0].command",
                "containers[0].labels"
            ],
            "{breaches:?}"
        );
    }

    #[test]
    fn one_value_past_what_execve_takes_is_refused() {
        let mut c = container("web", "busybox:1.36");
        c.env = vec![var("ONE", "x".repeat(200 << 10))];
        let breaches = Bounds::default().check_spec(&spec_of(vec![c]));
        assert_eq!(fields(&breaches), ["containers[0].env"]);
    }

    #[test]
    fn nul_characters_and_empty_keys_are_refused() {
        let mut c = container("web", "busybox:1.36");
        c.env = vec![var("A\u{202E}B", "v\0".into())];
        c.labels = vec![(String::new(), "v".into())];
        let breaches = Bounds::default().check_spec(&spec_of(vec![c]));
        assert_eq!(
            fields(&breaches),
            ["containers[0].env", "containers[0].labels"],
            "{breaches:?}"
        );
        let a = Bounds::default().check_annotations(&[("k".into(), "v\0".into())]);
        assert_eq!(fields(&a), ["annotations"]);
        // Any other character is a variable's own business.
        let mut odd = container("web", "busybox:1.36");
        odd.env = vec![var("\u{8D}\u{202E}x", "y".into())];
        assert!(Bounds::default().check_spec(&spec_of(vec![odd])).is_empty());
    }
}
