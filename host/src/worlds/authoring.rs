//! Checking one component file against a world, for plugin authors
//! (`gantry check --plugin FILE`): every problem at once, each with what the
//! host expects, rather than the first error instantiation would give.

use super::{Capability, World};
use crate::runtime::check;
use serde::Serialize;
use wasmtime::Engine;
use wasmtime::component::Component;

/// The WIT the host speaks, searched for the signatures a world expects.
const WIT: [&str; 6] = [
    include_str!("../../../wit/driver.wit"),
    include_str!("../../../wit/control.wit"),
    include_str!("../../../wit/host.wit"),
    include_str!("../../../wit/types.wit"),
    include_str!("../../../wit/worlds.wit"),
    include_str!("../../../wit/deps/http.wit"),
];

/// What is wrong with a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProblemKind {
    /// The world's export is missing.
    MissingExport,
    /// The world's export is there in an incompatible version.
    ExportVersion,
    /// An import the world does not provide.
    ForeignImport,
    /// An import the world provides, in an incompatible version.
    ImportVersion,
    /// Names fit, but a type or function does not (as instantiation says).
    Mismatch,
}

/// One problem.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    /// What kind.
    pub kind: ProblemKind,
    /// The export or import concerned.
    pub name: String,
    /// What the host expects instead, when it can say: a version, or the
    /// interface's functions as WIT declares them.
    pub expected: Vec<String>,
    /// The whole sentence.
    pub message: String,
}

/// The outcome of checking one component.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The world checked against, e.g. `gantry:plugin/backend@0.1.4`.
    pub world: String,
    /// Whether the world was read from the component's exports (not named).
    pub inferred: bool,
    /// What the component exports.
    pub exports: Vec<String>,
    /// What it imports.
    pub imports: Vec<String>,
    /// Everything wrong; empty when it fits.
    pub problems: Vec<Problem>,
}

/// The world called `name` (`backend`, `gantry:plugin/backend@0.1.4`...).
pub fn world_named(name: &str) -> Option<World> {
    let short = name
        .trim_start_matches("gantry:plugin/")
        .split('@')
        .next()
        .unwrap_or_default();
    World::ALL
        .into_iter()
        .find(|w| w.contract().world.trim_start_matches("gantry:plugin/") == short)
}

/// Check `component` against `world` (or the world its exports say).
pub fn inspect(engine: &Engine, component: &Component, world: Option<World>) -> Report {
    let exports = check::exports(engine, component);
    let imports = check::imports(engine, component);
    let (world, inferred) = match world {
        Some(w) => (w, false),
        // A component exporting nothing of any world is checked as a
        // backend, the most common thing to write, and told what it lacks.
        None => (World::of(engine, component).unwrap_or(World::Backend), true),
    };
    let mut problems = Vec::new();
    let contract = world.contract();
    match check::version_of(&exports, contract.export) {
        None => problems.push(Problem {
            kind: ProblemKind::MissingExport,
            name: format!("{}@{}x", contract.export, contract.version),
            expected: signatures(contract.export),
            message: format!(
                "missing export `{}@{}x`, which a component of world {} exports",
                contract.export,
                contract.version,
                world.name()
            ),
        }),
        Some(v) if !v.starts_with(contract.version) => problems.push(Problem {
            kind: ProblemKind::ExportVersion,
            name: format!("{}@{v}", contract.export),
            expected: vec![format!("{}@{}x", contract.export, contract.version)],
            message: format!(
                "exports `{}@{v}`, but this host speaks `{}@{}x`",
                contract.export, contract.export, contract.version
            ),
        }),
        Some(_) => {}
    }
    for name in &imports {
        if let Some(p) = import_problem(world, name) {
            problems.push(p);
        }
    }
    if problems.is_empty()
        && let Ok(linker) = world.linker(engine)
        && let Err(e) = linker.instantiate_pre(component)
    {
        problems.push(Problem {
            kind: ProblemKind::Mismatch,
            name: String::new(),
            expected: Vec::new(),
            message: format!("{e:#}"),
        });
    }
    Report {
        world: world.name(),
        inferred,
        exports,
        imports,
        problems,
    }
}

/// What is wrong with importing `name` in `world`, if anything.
fn import_problem(world: World, name: &str) -> Option<Problem> {
    let (iface, version) = name.split_once('@').unwrap_or((name, ""));
    if iface == "gantry:plugin/types" {
        // Types only: every world's gantry imports bring them.
        return None;
    }
    let provider = world
        .capabilities()
        .iter()
        .find_map(|c| Some(*c).zip(provides(*c, iface)));
    match provider {
        Some((_, compatible)) if version.starts_with(compatible) => None,
        Some((_, compatible)) => Some(Problem {
            kind: ProblemKind::ImportVersion,
            name: name.to_string(),
            expected: vec![format!("{iface}@{compatible}x")],
            message: format!("imports `{name}`, but this host provides `{iface}@{compatible}x`"),
        }),
        None => {
            let elsewhere: Vec<String> = World::ALL
                .into_iter()
                .filter(|w| {
                    w.capabilities()
                        .iter()
                        .any(|c| provides(*c, iface).is_some())
                })
                .map(|w| {
                    w.contract()
                        .world
                        .trim_start_matches("gantry:plugin/")
                        .to_string()
                })
                .collect();
            let hint = match elsewhere.as_slice() {
                [] => "no world provides it".to_string(),
                [one] => format!("world {one} does"),
                many => format!("worlds {} do", many.join(", ")),
            };
            Some(Problem {
                kind: ProblemKind::ForeignImport,
                name: name.to_string(),
                expected: Vec::new(),
                message: format!(
                    "imports `{name}`, which world {} does not provide ({hint})",
                    world.name()
                ),
            })
        }
    }
}

/// The compatible version prefix of `iface` when capability `c` provides it.
fn provides(c: Capability, iface: &str) -> Option<&'static str> {
    c.provides()
        .iter()
        .find(|(i, _)| match i.strip_suffix('/') {
            Some(package) => iface.starts_with(package) && iface[package.len()..].starts_with('/'),
            None => iface == *i,
        })
        .map(|(_, version)| *version)
}

/// The functions interface `iface` (`gantry:plugin/driver`,
/// `wasi:http/incoming-handler`) declares in the WIT this host speaks.
fn signatures(iface: &str) -> Vec<String> {
    let name = iface.rsplit('/').next().unwrap_or(iface);
    let opening = format!("interface {name} {{");
    for text in WIT {
        let Some(start) = text.find(&opening) else {
            continue;
        };
        let mut depth = 0usize;
        let mut out = Vec::new();
        for line in text[start..].lines() {
            let l = line.trim();
            if l.contains(": func(") && depth == 1 {
                out.push(l.to_string());
            }
            depth += l.matches('{').count();
            depth = depth.saturating_sub(l.matches('}').count());
            if depth == 0 {
                break;
            }
        }
        return out;
    }
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worlds_are_named_short_or_full() {
        assert_eq!(world_named("backend"), Some(World::Backend));
        assert_eq!(
            world_named("gantry:plugin/http-frontend@0.1.4"),
            Some(World::HttpFrontend)
        );
        assert_eq!(world_named("nope"), None);
    }

    #[test]
    fn the_drivers_signatures_come_from_the_wit() {
        let s = signatures("gantry:plugin/driver");
        assert!(
            s.iter().any(|l| l.starts_with("capabilities: func()")),
            "{s:?}"
        );
        assert!(s.iter().any(|l| l.starts_with("watch: func(")), "{s:?}");
        assert!(
            !s.iter().any(|l| l.starts_with("next: func(")),
            "resource methods are not the interface's: {s:?}"
        );
        assert!(!signatures("wasi:http/incoming-handler").is_empty());
    }

    #[test]
    fn imports_are_told_apart() {
        assert!(import_problem(World::Backend, "gantry:plugin/logging@0.1.0").is_none());
        assert!(import_problem(World::Backend, "wasi:io/streams@0.2.3").is_none());
        let p = import_problem(World::Backend, "gantry:plugin/control@0.1.2").expect("foreign");
        assert_eq!(p.kind, ProblemKind::ForeignImport);
        assert!(
            p.message.contains("http-frontend, mqtt-frontend"),
            "{}",
            p.message
        );
        let p = import_problem(World::Backend, "gantry:plugin/logging@0.2.0").expect("version");
        assert_eq!(p.kind, ProblemKind::ImportVersion);
    }
}
