//! The host's module graph: no import loops between its top-level modules,
//! the Wasm runtime knows nothing of the domain, and capabilities know
//! neither each other nor the wiring that composes them.
//!
//! The graph is read from the sources: every `crate::<module>` path outside a
//! comment is an edge from the file's module to `<module>`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module path of a source file: `src/a/b.rs` → `["a", "b"]`, `src/a/mod.rs` → `["a"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap_or(file);
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

/// The `crate::a::b` paths used in `text`, comments left out, as `["a", "b"]`.
fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let mut found = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let path: Vec<String> = after
                .split("::")
                .map(|seg| {
                    seg.chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect::<String>()
                })
                .take_while(|seg| !seg.is_empty())
                .collect();
            if !path.is_empty() {
                found.push(path);
            }
            rest = after;
        }
    }
    found
}

/// Edges between modules at `depth` levels (1 = top-level modules).
fn edges(depth: usize) -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(
        files.len() > 10,
        "found the host's sources in {}",
        src.display()
    );
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let from = module_of(&src, &f);
        if from.is_empty() {
            continue; // lib.rs and main.rs: the crate root declares, it does not depend.
        }
        let from_key = from[..from.len().min(depth)].join("::");
        let text = std::fs::read_to_string(&f).expect("readable source");
        for path in crate_paths(&text) {
            let to_key = path[..path.len().min(depth)].join("::");
            if to_key != from_key && !to_key.starts_with(&format!("{from_key}::")) {
                graph.entry(from_key.clone()).or_default().insert(to_key);
            }
        }
    }
    graph
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
    let graph = edges(1);
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import loop: {}\ngraph: {graph:#?}", cycle.join(" → "));
    }
}

#[test]
fn capabilities_have_no_import_loop_among_themselves_or_with_the_rest() {
    let graph = edges(2);
    if let Some(cycle) = find_cycle(&graph) {
        panic!("import loop: {}", cycle.join(" → "));
    }
}

#[test]
fn the_runtime_knows_nothing_of_the_domain() {
    let graph = edges(1);
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
    let graph = edges(2);
    let wiring = [
        "plugin", "server", "config", "ingress", "gateway", "mqtt", "auth", "reload", "tls",
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
    assert_eq!(
        crate_paths("use crate::control::ControlPlane; // crate::nope\n/// [`crate::doc`]"),
        vec![vec!["control".to_string(), "ControlPlane".to_string()]]
    );
}
