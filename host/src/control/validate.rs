//! Protocol-independent validation of what callers send.

use super::Bounds;
use crate::bindings::types::{Annotation, Error, FieldError, InvalidInput, WorkloadSpec};
use crate::model::invalid_field;
use gantry_sdk::ingress;
use std::collections::HashSet;

/// A workload name: the bound's characters at most, nothing
/// [`gantry_sdk::names::forbidden`] (no whitespace, control or invisible
/// formatting characters such as U+202E), no '/'.
pub fn name(n: &str, bounds: &Bounds) -> Result<(), Error> {
    gantry_sdk::names::check(n, bounds.name_chars).map_err(|m| invalid_field("name", m))?;
    if n.contains('/') {
        return Err(invalid_field("name", "'/' is not allowed"));
    }
    Ok(())
}

/// A workload spec: at least one container, unique names, images, sane
/// resources, within `bounds`.
pub fn spec(s: &WorkloadSpec, bounds: &Bounds) -> Result<(), Error> {
    let mut fields = bounds.check_spec(s);
    if fields.iter().any(|f| f.field == "containers") {
        // Past the container bound: the rest would only repeat per container.
        return invalid(fields);
    }
    if s.containers.is_empty() {
        fields.push(FieldError {
            field: "containers".into(),
            message: "at least one container is required".into(),
        });
    }
    let mut seen = HashSet::new();
    for (i, c) in s.containers.iter().enumerate() {
        let at = |f: &str| format!("containers[{i}].{f}");
        if c.name.is_empty()
            || !c
                .name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' || ch == '.')
        {
            fields.push(FieldError {
                field: at("name"),
                message: "letters, digits, '-', '_' and '.' only, not empty".into(),
            });
        }
        if !seen.insert(c.name.as_str()) {
            fields.push(FieldError {
                field: at("name"),
                message: format!("`{}` is used twice", c.name),
            });
        }
        if c.resources.cpu.is_some_and(|v| !(v.is_finite() && v > 0.0)) {
            fields.push(FieldError {
                field: at("resources.cpu"),
                message: "must be a positive number of cores".into(),
            });
        }
        if c.resources.memory_bytes == Some(0) {
            fields.push(FieldError {
                field: at("resources.memory"),
                message: "must be positive".into(),
            });
        }
        if let Err(message) = gantry_sdk::replicas::of(&c.labels) {
            fields.push(FieldError {
                field: at(&format!("labels.{}", gantry_sdk::labels::REPLICAS)),
                message,
            });
        }
        for e in &c.env {
            if e.name.is_empty() || e.name.contains('=') {
                fields.push(FieldError {
                    field: at("env"),
                    message: format!("invalid variable name `{}`", e.name),
                });
            }
        }
    }
    invalid(fields)
}

/// `invalid` naming every field, or fine when there are none.
fn invalid(fields: Vec<FieldError>) -> Result<(), Error> {
    if fields.is_empty() {
        return Ok(());
    }
    let message = fields
        .iter()
        .map(|f| format!("{}: {}", f.field, f.message))
        .collect::<Vec<_>>()
        .join("; ");
    Err(Error::Invalid(InvalidInput { message, fields }))
}

/// The annotations the host reads itself (`gantry_sdk::ingress`): one
/// claimed name, a DNS name; ports, decimal and exposed by the spec over TCP.
pub fn annotations(a: &[Annotation], spec: &WorkloadSpec, bounds: &Bounds) -> Result<(), Error> {
    invalid(bounds.check_annotations(a))?;
    let names: Vec<&str> = a
        .iter()
        .filter(|(k, _)| k == ingress::NAME_ANNOTATION)
        .map(|(_, v)| v.as_str())
        .collect();
    if names.len() > 1 {
        return Err(invalid_field(
            ingress::NAME_ANNOTATION,
            "a workload claims one ingress name",
        ));
    }
    if let Some(n) = names.first()
        && !ingress::valid_name(n)
    {
        return Err(invalid_field(
            ingress::NAME_ANNOTATION,
            "DNS labels of lower-case letters, digits and inner '-', joined by '.'",
        ));
    }
    for (_, ports) in a.iter().filter(|(k, _)| k == ingress::PORTS_ANNOTATION) {
        for p in ports.split(',') {
            let exposed = p.trim().parse::<u16>().ok().is_some_and(|p| {
                spec.containers.iter().flat_map(|c| &c.ports).any(|m| {
                    m.container_port == p && m.protocol == crate::bindings::types::PortProtocol::Tcp
                })
            });
            if !exposed {
                return Err(invalid_field(
                    ingress::PORTS_ANNOTATION,
                    format!("`{p}` is not a TCP port the spec exposes"),
                ));
            }
        }
    }
    Ok(())
}
