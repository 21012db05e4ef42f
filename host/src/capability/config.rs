//! `config`: the plugin's own `config` table from the host's config file,
//! flattened to string pairs.

use crate::bindings::gantry::plugin::config;
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker};

/// A plugin's `config` table as written in the host's config file.
pub type PluginTable = BTreeMap<String, toml::Value>;

/// Per-instance state: the plugin's settings, shared by its instances.
#[derive(Debug, Clone, Default)]
pub struct ConfigCtx {
    values: Arc<[(String, String)]>,
}

impl ConfigCtx {
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

impl config::Host for ConfigCtx {
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

/// Link `config`.
pub fn add_to_linker<T: Send + 'static>(
    l: &mut Linker<T>,
    get: fn(&mut T) -> &mut ConfigCtx,
) -> wasmtime::Result<()> {
    config::add_to_linker::<T, HasSelf<ConfigCtx>>(l, get)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::gantry::plugin::config::Host;

    #[tokio::test]
    async fn strings_stay_strings_and_other_values_are_toml() {
        let table: PluginTable =
            toml::from_str("device-id = \"edge:device\"\nport = 8080\n").expect("toml");
        let mut c = ConfigCtx::from_table(&table);
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
