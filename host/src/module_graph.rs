//! The host's module graph, read from its sources: no import loops between
//! its modules, the Wasm runtime knows nothing of the domain, capabilities
//! know neither each other nor the wiring that composes them, and no module
//! but a capability's own and the registry's names that capability.
//!
//! Every path a file uses is an edge from the file's module to the module
//! the path leads to: `crate::a::b`, `super::x`, `self::y`, and each leaf of
//! a grouped `use crate::{a::{b, c}, d}`, across lines. Comments, string
//! literals and the file's `#[cfg(test)]` module are left out. A module
//! using its own ancestors or descendants is structure, not a dependency.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path of a source file: `a/b.rs` → `["a", "b"]`, `a/mod.rs` → `["a"]`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `text` without comments, string and char literals (blanked), and from
/// its `#[cfg(test)]` module on.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]\nmod ") {
        Some(i) => &text[..i],
        None => text,
    };
    let b = text.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (b[i], b.get(i + 1).copied()) {
            (b'/', Some(b'/')) => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            (b'/', Some(b'*')) => {
                i += 2;
                while i + 1 < b.len() && !(b[i] == b'*' && b[i + 1] == b'/') {
                    i += 1;
                }
                i += 2;
            }
            (b'"', _) => {
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
                out.push_str("\"\"");
            }
            // A char literal ('x', '\n'), not a lifetime ('a).
            (b'\'', _) if b.get(i + 2) == Some(&b'\'') || b.get(i + 1) == Some(&b'\\') => {
                i += 1;
                while i < b.len() && b[i] != b'\'' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            (c, _) => {
                out.push(char::from(c));
                i += 1;
            }
        }
    }
    out
}

/// The paths a `use` tree names, each leaf expanded: `a::{b, c::{d}}` →
/// `a::b`, `a::c::d`.
fn expand_tree(tree: &str, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    let (head, group) = match tree.find('{') {
        Some(open) => (
            &tree[..open],
            Some(&tree[open + 1..tree.rfind('}').unwrap_or(tree.len())]),
        ),
        None => (tree, None),
    };
    let mut path = prefix.to_vec();
    for seg in head.split("::").map(str::trim) {
        let seg = seg.split_whitespace().next().unwrap_or(""); // `x as y`
        if !seg.is_empty() && seg != "*" {
            path.push(seg.to_string());
        }
    }
    match group {
        None => out.push(path),
        Some(inner) => {
            // Split at top-level commas.
            let (mut depth, mut start) = (0, 0);
            for (i, c) in inner.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        expand_tree(&inner[start..i], &path, out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            if !inner[start..].trim().is_empty() {
                expand_tree(&inner[start..], &path, out);
            }
        }
    }
}

/// Every path `code` uses: its `use` trees expanded, and the inline
/// `crate::`, `super::` and `self::` paths elsewhere; unresolved.
fn paths_in(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("use ") {
        let boundary = rest[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let after = &rest[at + 4..];
        let end = after.find(';').unwrap_or(after.len());
        if boundary {
            expand_tree(&after[..end], &[], &mut out);
            rest = &after[end..];
        } else {
            rest = after;
        }
    }
    for root in ["crate::", "super::", "self::"] {
        let mut rest = code;
        while let Some(i) = rest.find(root) {
            let boundary = rest[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'));
            let after = &rest[i..];
            if boundary {
                let path: Vec<String> = after
                    .split("::")
                    .map(|seg| {
                        seg.chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                            .collect::<String>()
                    })
                    .take_while(|seg| !seg.is_empty())
                    .collect();
                if path.len() > 1 {
                    out.push(path);
                }
            }
            rest = &after[root.len()..];
        }
    }
    out
}

/// `path` used in module `from`, as an absolute module path; `None` for
/// paths outside the crate. (`a/mod.rs` is module `a`, so its `super` is
/// `a`'s parent, as `a/b.rs`'s is `a`.)
fn resolve(path: &[String], from: &[String]) -> Option<Vec<String>> {
    let (first, rest) = path.split_first()?;
    let here: Vec<String> = from.to_vec();
    match first.as_str() {
        "crate" => Some(rest.to_vec()),
        "self" => Some([here.as_slice(), rest].concat()),
        "super" => {
            let mut base = here;
            let mut rest = rest;
            base.pop()?;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop()?;
                rest = &rest[1..];
            }
            Some([base.as_slice(), rest].concat())
        }
        _ => None,
    }
}

/// The longest known module `path` lies in, cut to `depth` segments.
fn module_key(path: &[String], modules: &BTreeSet<Vec<String>>, depth: usize) -> Option<String> {
    let len = (1..=path.len())
        .rev()
        .find(|n| modules.contains(&path[..*n]))?;
    Some(path[..len.min(depth)].join("::"))
}

/// Sources by module path, from `files` (path relative to `src/` → text).
fn graph_of(files: &BTreeMap<PathBuf, String>, depth: usize) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<Vec<String>> = files.keys().map(|f| module_of(f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (file, text) in files {
        let from = module_of(file);
        if from.is_empty() {
            continue; // lib.rs and main.rs: the crate root declares, it does not depend.
        }
        let from_key = from[..from.len().min(depth)].join("::");
        for path in paths_in(&code_of(text)) {
            let Some(to) = resolve(&path, &from).and_then(|abs| module_key(&abs, &modules, depth))
            else {
                continue;
            };
            let related = to == from_key
                || to.starts_with(&format!("{from_key}::"))
                || from_key.starts_with(&format!("{to}::"));
            if !related {
                graph.entry(from_key.clone()).or_default().insert(to);
            }
        }
    }
    graph
}

/// The host's own sources.
fn sources() -> BTreeMap<PathBuf, String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 10,
        "found the host's sources in {}",
        src.display()
    );
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).expect("readable source");
            (f.strip_prefix(&src).unwrap_or(&f).to_path_buf(), text)
        })
        .collect()
}

/// A cycle in `graph`, if there is one, as the modules along it.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(pos) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[pos..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(c) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn top_level_modules_have_no_import_loop() {
    let graph = graph_of(&sources(), 1);
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import loop: {}\ngraph: {graph:#?}", cycle.join(" → "));
    }
}

#[test]
fn second_level_modules_have_no_import_loop() {
    let graph = graph_of(&sources(), 2);
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import loop: {}", cycle.join(" → "));
    }
}

#[test]
fn the_runtime_knows_nothing_of_the_domain() {
    let graph = graph_of(&sources(), 1);
    let allowed: BTreeSet<String> = ["metrics".to_string()].into();
    let uses = graph.get("runtime").cloned().unwrap_or_default();
    let extra: Vec<&String> = uses.difference(&allowed).collect();
    assert!(
        extra.is_empty(),
        "runtime/ imports {extra:?}; it may use only {allowed:?}"
    );
}

#[test]
fn capabilities_know_neither_each_other_nor_the_wiring() {
    let graph = graph_of(&sources(), 2);
    let wiring = [
        "worlds", "server", "config", "api", "ingress", "mqtt", "auth", "reload", "tls",
    ];
    for (from, to) in graph.iter().filter(|(m, _)| m.starts_with("capability::")) {
        for t in to {
            let top = t.split("::").next().unwrap_or("");
            assert!(
                !wiring.contains(&top),
                "{from} imports {t}: capabilities must not know the wiring"
            );
            assert!(
                !t.starts_with("capability::"),
                "{from} imports {t}: capabilities must not know each other"
            );
        }
    }
}

/// The capability modules the registry lists, one line each
/// (`Wasi / wasi: capability::wasi::Wasi,` → `wasi`).
fn registered(files: &BTreeMap<PathBuf, String>) -> Vec<String> {
    let registry = files
        .get(Path::new("worlds/registry.rs"))
        .expect("the capability registry");
    registry
        .lines()
        .filter_map(|l| l.split_once(": capability::"))
        .filter_map(|(_, path)| path.split("::").next())
        .map(str::to_string)
        .collect()
}

#[test]
fn a_capability_is_its_module_and_one_registry_line() {
    let files = sources();
    let registered = registered(&files);
    // Every capability module is registered...
    let modules: BTreeSet<String> = files
        .keys()
        .filter_map(|f| f.strip_prefix("capability").ok())
        .filter_map(|rest| rest.iter().next())
        .map(|m| m.to_string_lossy().trim_end_matches(".rs").to_string())
        .filter(|m| m != "mod" && m != "services")
        .collect();
    let listed: BTreeSet<String> = registered.iter().cloned().collect();
    assert_eq!(modules, listed, "capability modules and registry lines");
    // ...and no host module but the registry names one.
    let graph = graph_of(&files, 2);
    for (from, to) in &graph {
        for t in to {
            let Some(cap) = t.strip_prefix("capability::") else {
                continue;
            };
            assert!(
                !registered.iter().any(|r| r == cap) || from == "worlds::registry",
                "{from} names capability `{cap}`: only its module and the registry may"
            );
        }
    }
}

/// Sources for the scanner's own tests.
fn fake(files: &[(&str, &str)]) -> BTreeMap<PathBuf, String> {
    files
        .iter()
        .map(|(f, t)| (PathBuf::from(f), t.to_string()))
        .collect()
}

#[test]
fn the_scanner_sees_a_loop_when_there_is_one() {
    let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    g.entry("a".into()).or_default().insert("b".into());
    g.entry("b".into()).or_default().insert("c".into());
    assert_eq!(find_cycle(&g), None);
    g.entry("c".into()).or_default().insert("a".into());
    assert_eq!(
        find_cycle(&g),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

#[test]
fn super_paths_and_grouped_imports_are_followed_to_a_loop() {
    // Siblings that use each other through `super::`, one in a group over
    // two lines: the loop `gpu::inventory` ↔ `gpu::nvml` once hid this way.
    let files = fake(&[
        ("lib.rs", "pub mod gpu;"),
        (
            "gpu/mod.rs",
            "pub mod inventory;\npub mod nvml;\npub use inventory::Inventory;",
        ),
        (
            "gpu/inventory.rs",
            "use super::nvml::NvmlSource;\npub struct Inventory;",
        ),
        (
            "gpu/nvml.rs",
            "use super::{\n    inventory::{GpuInfo, Other as O},\n};\n// use crate::nowhere;\nconst S: &str = \"crate::control\";",
        ),
        (
            "control.rs",
            "use crate::{gpu::{inventory::Inventory, nvml}, other};",
        ),
    ]);
    let g = graph_of(&files, 2);
    assert_eq!(
        find_cycle(&g),
        Some(vec![
            "gpu::inventory".into(),
            "gpu::nvml".into(),
            "gpu::inventory".into()
        ]),
        "{g:#?}"
    );
    assert_eq!(
        g.get("control").cloned().unwrap_or_default(),
        ["gpu::inventory".to_string(), "gpu::nvml".to_string()].into(),
        "grouped imports are each an edge; comments and strings are none"
    );
    assert!(
        !g.contains_key("gpu::nvml") || !g["gpu::nvml"].contains("control"),
        "{g:#?}"
    );
    // A child using its parent, and a parent re-exporting a child, is structure.
    let g1 = graph_of(&files, 1);
    assert_eq!(find_cycle(&g1), None, "{g1:#?}");
}
