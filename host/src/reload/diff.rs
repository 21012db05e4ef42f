//! What changed between the config a host runs and the one a reload read,
//! told apart into what a swap applies and what only a restart can.
//!
//! The comparison is on the files' TOML, not the parsed structs: it names
//! the key that changed (`server.listen`, `frontend "rest": http.prefix`)
//! whatever its type, and a key added later needs no new comparison code.

use toml::{Table, Value};

/// The keys of a plugin's table a swap applies: its component, its limits,
/// and the keys of the capabilities whose grants apply live (the settings it
/// reads, the endpoints it may call). Everything else in the table (name,
/// mount, broker, stacking, directories, downloads) shapes the host around
/// the plugin and needs a restart.
pub fn live_plugin_keys() -> Vec<&'static str> {
    let mut keys = vec!["plugin", "limits"];
    for c in crate::worlds::Capability::ALL.iter().filter(|c| c.live()) {
        keys.extend(c.keys());
    }
    keys
}

/// Top-level tables a swap applies: the default limits every plugin inherits.
const LIVE_TOP_KEYS: [&str; 1] = ["limits"];

/// The arrays of plugin tables, keyed by their `name`.
const PLUGIN_ARRAYS: [&str; 2] = ["frontend", "backend"];

/// Every change from `running` to `next` that a swap cannot apply, named
/// by its key path; empty when a swap applies all of them.
pub fn restart_only(running: &Table, next: &Table) -> Vec<String> {
    let mut out = Vec::new();
    for key in keys(running, next) {
        if LIVE_TOP_KEYS.contains(&key.as_str()) {
            continue;
        }
        let (a, b) = (running.get(&key), next.get(&key));
        if PLUGIN_ARRAYS.contains(&key.as_str()) {
            plugin_tables(&key, a, b, &mut out);
        } else {
            differences(&key, a, b, &mut out);
        }
    }
    out
}

/// What of plugin `name`'s table, and of the defaults it inherits, a swap
/// applies: equal for two configs exactly when the swap has nothing to do
/// besides a changed component.
pub fn live_part(config: &Table, name: &str) -> Value {
    let mut live = Table::new();
    if let Some(table) = plugin_table(config, name) {
        for key in live_plugin_keys().into_iter().filter(|k| *k != "plugin") {
            if let Some(v) = table.get(key) {
                live.insert(key.to_string(), v.clone());
            }
        }
    }
    for key in LIVE_TOP_KEYS {
        if let Some(v) = config.get(key) {
            live.insert(format!("top.{key}"), v.clone());
        }
    }
    Value::Table(live)
}

fn plugin_table<'a>(config: &'a Table, name: &str) -> Option<&'a Table> {
    PLUGIN_ARRAYS
        .iter()
        .filter_map(|a| config.get(*a)?.as_array())
        .flatten()
        .filter_map(Value::as_table)
        .find(|t| t.get("name").and_then(Value::as_str) == Some(name))
}

fn keys(a: &Table, b: &Table) -> Vec<String> {
    let mut keys: Vec<String> = a.keys().chain(b.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Plugin tables matched by name: one added or removed, or a change to a
/// key a swap does not apply.
fn plugin_tables(array: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<String>) {
    let named = |v: Option<&Value>| -> Vec<(String, Table)> {
        v.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_table)
            .map(|t| {
                let name = t.get("name").and_then(Value::as_str).unwrap_or_default();
                (name.to_string(), t.clone())
            })
            .collect()
    };
    let (before, after) = (named(a), named(b));
    for (name, table) in &before {
        match after.iter().find(|(n, _)| n == name) {
            None => out.push(format!("{array} \"{name}\" removed")),
            Some((_, next)) => {
                for key in keys(table, next) {
                    if !live_plugin_keys().contains(&key.as_str()) {
                        let path = format!("{array} \"{name}\": {key}");
                        differences(&path, table.get(&key), next.get(&key), out);
                    }
                }
            }
        }
    }
    for (name, _) in &after {
        if !before.iter().any(|(n, _)| n == name) {
            out.push(format!("{array} \"{name}\" added"));
        }
    }
}

/// The deepest keys under `path` where `a` and `b` differ.
fn differences(path: &str, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<String>) {
    match (a, b) {
        (Some(Value::Table(x)), Some(Value::Table(y))) => {
            for key in keys(x, y) {
                let sep = if path.ends_with(": ") { "" } else { "." };
                differences(&format!("{path}{sep}{key}"), x.get(&key), y.get(&key), out);
            }
        }
        (x, y) if x != y => out.push(path.to_string()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> Table {
        toml::from_str(text).expect("TOML")
    }

    const RUNNING: &str = r#"
        [server]
        listen = "127.0.0.1:8080"
        [limits]
        memory_mib = 64
        [[frontend]]
        name = "rest"
        plugin = "rest.wasm"
        http = { prefix = "/v1" }
        config = { page = "10" }
        [[backend]]
        name = "docker"
        plugin = "docker.wasm"
    "#;

    #[test]
    fn live_changes_are_not_named() {
        let next = RUNNING
            .replace("rest.wasm", "rest-2.wasm")
            .replace("page = \"10\"", "page = \"20\"")
            .replace("memory_mib = 64", "memory_mib = 96");
        assert!(restart_only(&table(RUNNING), &table(&next)).is_empty());
        assert_ne!(
            live_part(&table(RUNNING), "rest"),
            live_part(&table(&next), "rest")
        );
        assert_eq!(
            live_part(&table(RUNNING), "docker"),
            live_part(&table(RUNNING), "docker")
        );
    }

    #[test]
    fn restart_only_changes_are_named_by_key() {
        let next = RUNNING
            .replace("127.0.0.1:8080", "127.0.0.1:9090")
            .replace("prefix = \"/v1\"", "prefix = \"/v2\"")
            .replace("name = \"docker\"", "name = \"engine\"");
        let named = restart_only(&table(RUNNING), &table(&next));
        assert_eq!(
            named,
            vec![
                "backend \"docker\" removed",
                "backend \"engine\" added",
                "frontend \"rest\": http.prefix",
                "server.listen",
            ]
        );
    }
}
