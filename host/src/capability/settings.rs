//! The plugin's settings, its WIT import `config`: the `settings` table of
//! its table in the host's config file (`config`, its old name, still
//! read), flattened to string pairs.

use super::{HostCapability, Services, Store};
use crate::bindings::gantry::plugin::config;
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

/// A plugin's `config` table as written in the host's config file.
pub type PluginTable = BTreeMap<String, toml::Value>;

/// The capability, its grant and its per-instance state: the plugin's
/// settings, shared by its instances.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    values: Arc<[(String, String)]>,
}

impl Settings {
    /// Settings from a config table: strings as they are, other values in TOML syntax.
    pub fn from_table(table: &PluginTable) -> Self {
        let values: Vec<(String, String)> = table
            .iter()
            .map(|(k, v)| {
                let s = match v {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (k.clone(), s)
            })
            .collect();
        Self {
            values: values.into(),
        }
    }
}

impl config::Host for Settings {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self
            .values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone()))
    }
    async fn all(&mut self) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.values.to_vec())
    }
}

impl HostCapability for Settings {
    const NAME: &'static str = "config";
    const PROVIDES: &'static [(&'static str, &'static str)] = &[("gantry:plugin/config", "0.1.")];
    // `settings`, once `config` (one name for the host's config file and a
    // plugin's settings); the old key still works, with a warning.
    const KEYS: &'static [&'static str] = &["settings", "config"];
    const LIVE: bool = true;
    type Grant = Settings;
    fn grant(table: &toml::Table) -> Result<Settings, String> {
        match (table.contains_key("settings"), table.contains_key("config")) {
            (true, true) => Err("`settings` and `config` (its old name) are both set".into()),
            (false, true) => {
                tracing::warn!("a plugin table's `config` is deprecated: name it `settings`");
                Ok(Settings::from_table(&super::read_key(table, "config")?))
            }
            _ => Ok(Settings::from_table(&super::read_key(table, "settings")?)),
        }
    }
    type State = Settings;
    fn state(grant: &Settings, _: &Services) -> Settings {
        grant.clone()
    }
    fn link<T: Store<Self>>(l: &mut Linker<T>) -> wasmtime::Result<()> {
        config::add_to_linker::<T, HasSelf<Settings>>(l, |t| t.part().state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::gantry::plugin::config::Host;

    #[tokio::test]
    async fn strings_stay_strings_and_other_values_are_toml() {
        let table: PluginTable =
            toml::from_str("device-id = \"edge:device\"\nport = 8080\n").expect("toml");
        let mut c = Settings::from_table(&table);
        assert_eq!(
            c.get("device-id".into()).await.expect("get"),
            Some("edge:device".into())
        );
        assert_eq!(
            c.get("port".into()).await.expect("get"),
            Some("8080".into())
        );
        assert_eq!(c.get("nope".into()).await.expect("get"), None);
    }
}
