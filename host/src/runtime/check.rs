//! Checking a component against a contract: the export its world must
//! provide (by interface and compatible version), and the imports a linker
//! offers (deny-all: a world's imports and nothing more).

use super::RuntimeError;
use wasmtime::Engine;
use wasmtime::component::{Component, InstancePre, Linker};

/// What a world asks of a component, as far as the runtime can check it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Contract {
    /// The world's full name, for messages.
    pub world: &'static str,
    /// The interface the component must export, without a version.
    pub export: &'static str,
    /// The compatible versions of that export: a semver prefix, such as `0.1.`
    /// (for 0.x packages a minor bump is breaking; patch releases are compatible).
    pub version: &'static str,
}

/// The names a component exports and imports.
pub fn exports(engine: &Engine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .exports(engine)
        .map(|(n, _)| n.to_string())
        .collect()
}

/// The names a component imports.
pub fn imports(engine: &Engine, component: &Component) -> Vec<String> {
    component
        .component_type()
        .imports(engine)
        .map(|(n, _)| n.to_string())
        .collect()
}

/// The version of `iface` among `names` (`iface@1.2.3` → `Some("1.2.3")`;
/// `Some("")` for an unversioned name), if present.
pub fn version_of<'a>(names: &'a [String], iface: &str) -> Option<&'a str> {
    names.iter().find_map(|n| match n.split_once('@') {
        Some((name, v)) if name == iface => Some(v),
        None if n == iface => Some(""),
        _ => None,
    })
}

/// Check `component` against `contract` and pre-instantiate it with `linker`.
pub fn check<D>(
    engine: &Engine,
    linker: &Linker<D>,
    contract: &Contract,
    plugin: &str,
    component: &Component,
) -> Result<InstancePre<D>, RuntimeError> {
    let invalid = |message: String| RuntimeError::Invalid {
        plugin: plugin.to_string(),
        message,
    };
    let Contract {
        world,
        export,
        version,
    } = contract;
    let exports = exports(engine, component);
    match version_of(&exports, export) {
        None => {
            return Err(invalid(format!(
                "does not fit world {world}: missing export `{export}@{version}x` (it exports: {})",
                if exports.is_empty() {
                    "nothing".to_string()
                } else {
                    exports.join(", ")
                }
            )));
        }
        Some(v) if !v.starts_with(version) => {
            return Err(invalid(format!(
                "does not fit world {world}: exports `{export}@{v}`, but this host speaks `{export}@{version}x`"
            )));
        }
        Some(_) => {}
    }
    linker.instantiate_pre(component).map_err(|e| {
        invalid(format!(
            "does not fit world {world}: {e:#} (imports outside the world are not provided)"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_versions_by_interface() {
        let names = vec![
            "wasi:cli/run@0.2.3".to_string(),
            "gantry:plugin/driver@0.1.0".to_string(),
            "plain".to_string(),
        ];
        assert_eq!(version_of(&names, "gantry:plugin/driver"), Some("0.1.0"));
        assert_eq!(version_of(&names, "plain"), Some(""));
        assert_eq!(version_of(&names, "gantry:plugin/control"), None);
    }
}
