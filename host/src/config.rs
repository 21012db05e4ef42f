//! The host's TOML configuration: server, auth, plugins and placement.
//!
//! Unknown keys are errors that name the key and its line, so a typo in a
//! profile never silently changes what runs.

use crate::control::{Bounds, ScopeGrant};
use crate::gpu::DevicesConfig;
use crate::ingress::IngressConfig;
use crate::ingress::published::PortsConfig;
use crate::mqtt::MqttBinding;
use crate::runtime::limits::{LimitsConfig, LimitsOverride};
pub use crate::tls::TlsConfig;
use crate::worlds::{Grants, World};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The dev profile, compiled in: `gantry serve` without `--config` runs it.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../examples/profiles/dev.toml");

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown or mistyped keys.
    #[error("{origin}: {message}")]
    Parse {
        /// The file, or "embedded defaults".
        origin: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The values are inconsistent (e.g. placement names an unknown backend).
    #[error("{origin}: {message}")]
    Invalid {
        /// The file, or "embedded defaults".
        origin: String,
        /// What is wrong.
        message: String,
    },
}

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listening address, state file, caches.
    #[serde(default)]
    pub server: ServerConfig,
    /// Token verification.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Limits applied to every plugin unless a plugin overrides them.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Bounds on what callers may ask for, whatever the protocol.
    #[serde(default)]
    pub bounds: Bounds,
    /// Scopes (tenants' spaces, such as ARM subscriptions) given to callers.
    #[serde(default, rename = "scope")]
    pub scopes: Vec<ScopeGrant>,
    /// Protocol frontends.
    #[serde(default, rename = "frontend")]
    pub frontends: Vec<FrontendConfig>,
    /// Runtime backends and schedulers.
    #[serde(default, rename = "backend")]
    pub backends: Vec<BackendConfig>,
    /// Which backend gets which workload.
    #[serde(default)]
    pub placement: PlacementConfig,
    /// GPU inventory for schedulers and the gpu-models listing.
    #[serde(default)]
    pub devices: DevicesConfig,
    /// Container URLs.
    #[serde(default)]
    pub ingress: IngressConfig,
    /// Ports published from workloads' own namespaces.
    #[serde(default)]
    pub ports: PortsConfig,
    /// Directory that relative plugin paths are resolved against.
    #[serde(skip)]
    pub base_dir: PathBuf,
    /// Where this config came from, for messages.
    #[serde(skip)]
    pub origin: String,
    /// Where to read it again (a reload).
    #[serde(skip)]
    pub source: ConfigSource,
    /// The file as TOML, to tell what a reload changes.
    #[serde(skip)]
    pub raw: toml::Table,
}

/// Where a configuration is read from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigSource {
    /// The embedded dev profile.
    #[default]
    Embedded,
    /// A file.
    File(PathBuf),
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// HTTP listen address for ingress, health and metrics.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// SQLite file for state, or `:memory:`.
    #[serde(default = "default_state")]
    pub state: String,
    /// Directory of precompiled components; none disables the cache.
    #[serde(default = "default_cache_dir")]
    pub cache_dir: Option<PathBuf>,
    /// Log format: "human" or "json".
    #[serde(default = "default_log_format")]
    pub log_format: String,
    /// Seconds between full reconciliations of every backend.
    #[serde(default = "default_resync")]
    pub resync_seconds: u64,
    /// An HTTPS listener beside the HTTP one.
    pub tls: Option<TlsConfig>,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_state() -> String {
    "gantry.db".into()
}
fn default_cache_dir() -> Option<PathBuf> {
    Some(PathBuf::from(".gantry-cache"))
}
fn default_log_format() -> String {
    "human".into()
}
fn default_resync() -> u64 {
    30
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            state: default_state(),
            cache_dir: default_cache_dir(),
            log_format: default_log_format(),
            resync_seconds: default_resync(),
            tls: None,
        }
    }
}

/// `[auth]`: how bearer tokens are verified and minted.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Environment variable holding the HS256 secret.
    pub hs256_secret_env: Option<String>,
    /// PEM files of RS256 public keys.
    #[serde(default)]
    pub rs256_public_keys: Vec<PathBuf>,
    /// PEM files of ES256 public keys.
    #[serde(default)]
    pub es256_public_keys: Vec<PathBuf>,
    /// Expected `iss`, if any.
    pub issuer: Option<String>,
    /// Expected `aud`, if any.
    pub audience: Option<String>,
    /// Dev only: when no secret is set in the environment, use this one.
    pub dev_secret: Option<String>,
}

/// `[[frontend]]`. Keys other than these belong to the capabilities its
/// world links (`endpoints`, `artifacts`, `config`...), which read them
/// into its [`Grants`] when the config is read; any other key is an error.
#[derive(Debug, Clone, Deserialize)]
pub struct FrontendConfig {
    /// Unique plugin name.
    pub name: String,
    /// Path of the `.wasm` component.
    pub plugin: PathBuf,
    /// Served over HTTP under a path prefix.
    pub http: Option<HttpBinding>,
    /// Served over MQTT.
    pub mqtt: Option<MqttBinding>,
    /// Limit overrides.
    #[serde(default)]
    pub limits: LimitsOverride,
    /// The capabilities' keys, as written.
    #[serde(flatten)]
    pub capabilities: toml::Table,
    /// What those keys grant, read once.
    #[serde(skip)]
    pub grants: Grants,
}

/// How an HTTP frontend is mounted.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpBinding {
    /// Path prefix, e.g. "/v1". The longest matching prefix wins.
    pub prefix: String,
    /// More prefixes served by the same plugin (an API rooted in several
    /// places, such as ARM's `/subscriptions` and `/providers`).
    #[serde(default)]
    pub extra_prefixes: Vec<String>,
}

impl HttpBinding {
    /// Every prefix this frontend is mounted under.
    pub fn prefixes(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.prefix).chain(&self.extra_prefixes)
    }
}

/// `[[backend]]`. Keys other than these belong to the capabilities its
/// world links (`endpoints`, `read_dirs`, `config`...), as a frontend's do.
#[derive(Debug, Clone, Deserialize)]
pub struct BackendConfig {
    /// Unique plugin name.
    pub name: String,
    /// Path of the `.wasm` component.
    pub plugin: PathBuf,
    /// For schedulers: the backend this one drives.
    pub downstream: Option<String>,
    /// Limit overrides.
    #[serde(default)]
    pub limits: LimitsOverride,
    /// The capabilities' keys, as written.
    #[serde(flatten)]
    pub capabilities: toml::Table,
    /// What those keys grant, read once.
    #[serde(skip)]
    pub grants: Grants,
}

impl FrontendConfig {
    /// The world its table calls for.
    pub fn world(&self) -> World {
        if self.http.is_some() {
            World::HttpFrontend
        } else {
            World::MqttFrontend
        }
    }
}

impl BackendConfig {
    /// The world its table calls for: a scheduler when it has a downstream.
    pub fn world(&self) -> World {
        if self.downstream.is_some() {
            World::Scheduler
        } else {
            World::Backend
        }
    }
}

/// One plugin's table, from whichever list it is in.
#[derive(Debug, Clone, Copy)]
pub struct PluginTableRef<'a> {
    /// Plugin name.
    pub name: &'a str,
    /// Its `.wasm` file, as written.
    pub plugin: &'a Path,
    /// The world the table calls for: `[[frontend]]` with `http` or `mqtt`,
    /// `[[backend]]` without or with `downstream`.
    pub world: World,
    /// Its limit overrides.
    pub limits: &'a LimitsOverride,
    /// What its table grants the capabilities of its world.
    pub grants: &'a Grants,
}

impl PluginTableRef<'_> {
    /// How the table lists the plugin, for messages.
    pub fn listed_as(&self) -> &'static str {
        match self.world {
            World::HttpFrontend => "a [[frontend]] with `http`",
            World::MqttFrontend => "a [[frontend]] with `mqtt`",
            World::Scheduler => "a [[backend]] with `downstream` (a scheduler)",
            _ => "a [[backend]]",
        }
    }
}

/// `[placement]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlacementConfig {
    /// Backend for workloads without GPUs (default: the first backend).
    pub default: Option<String>,
    /// Backend for workloads that request GPUs (default: `default`).
    pub gpu: Option<String>,
}

impl Config {
    /// Parse a config file; relative plugin paths resolve against its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let mut config = Self::parse(&text, &path.display().to_string(), base)?;
        config.source = ConfigSource::File(path.to_path_buf());
        Ok(config)
    }

    /// Read the config again from where this one came from.
    pub fn reread(&self) -> Result<Config, ConfigError> {
        match &self.source {
            ConfigSource::File(path) => Self::load(path),
            ConfigSource::Embedded => Self::embedded(self.base_dir.clone()),
        }
    }

    /// The embedded dev profile; relative plugin paths resolve against `base`.
    pub fn embedded(base: PathBuf) -> Result<Config, ConfigError> {
        Self::parse(EMBEDDED_DEFAULT, "embedded defaults", base)
    }

    /// Parse TOML text.
    pub fn parse(text: &str, origin: &str, base_dir: PathBuf) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: describe_toml_error(text, &e),
        })?;
        config.raw = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_string(),
            message: describe_toml_error(text, &e),
        })?;
        config.base_dir = base_dir;
        config.origin = origin.to_string();
        config.validate()?;
        config.share_ingress();
        config.read_grants(text)?;
        Ok(config)
    }

    /// Every plugin table, frontends first, with the world each calls for.
    pub fn plugin_tables(&self) -> impl Iterator<Item = PluginTableRef<'_>> {
        let frontends = self.frontends.iter().map(|f| PluginTableRef {
            name: &f.name,
            plugin: &f.plugin,
            world: f.world(),
            limits: &f.limits,
            grants: &f.grants,
        });
        let backends = self.backends.iter().map(|b| PluginTableRef {
            name: &b.name,
            plugin: &b.plugin,
            world: b.world(),
            limits: &b.limits,
            grants: &b.grants,
        });
        frontends.chain(backends)
    }

    /// Read every plugin table's capability keys into its grants, once:
    /// a key no capability of its world reads is an error naming it and
    /// its line, as is a grant that does not check.
    fn read_grants(&mut self, text: &str) -> Result<(), ConfigError> {
        let origin = self.origin.clone();
        let fail = |array: &str, index: usize, name: &str, key: Option<&str>, message: String| {
            let at = key
                .and_then(|k| key_line(text, array, index, k))
                .map(|l| format!("line {l}: "))
                .unwrap_or_default();
            ConfigError::Invalid {
                origin: origin.clone(),
                message: format!("{at}{array} `{name}`: {message}"),
            }
        };
        let tables = self
            .frontends
            .iter_mut()
            .enumerate()
            .map(|(i, f)| {
                (
                    "frontend",
                    i,
                    f.world(),
                    &f.name,
                    &f.capabilities,
                    &mut f.grants,
                )
            })
            .chain(self.backends.iter_mut().enumerate().map(|(i, b)| {
                (
                    "backend",
                    i,
                    b.world(),
                    &b.name,
                    &b.capabilities,
                    &mut b.grants,
                )
            }));
        for (array, index, world, name, keys, grants) in tables {
            let linked = world.capabilities();
            if let Some(unknown) = keys
                .keys()
                .find(|k| !linked.iter().any(|c| c.keys().contains(&k.as_str())))
            {
                let elsewhere = crate::worlds::Capability::ALL
                    .iter()
                    .any(|c| c.keys().contains(&unknown.as_str()));
                let why = if elsewhere {
                    format!("`{unknown}` is not read by world {}", world.name())
                } else {
                    format!("unknown field `{unknown}`")
                };
                return Err(fail(array, index, name, Some(unknown), why));
            }
            *grants = Grants::read(keys, linked).map_err(|e| {
                let key = keys.keys().find(|k| e.contains(&format!("`{k}`")));
                fail(array, index, name, key.map(String::as_str), e)
            })?;
        }
        Ok(())
    }

    /// Resolve a plugin path against the config's directory.
    pub fn plugin_path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// The backend a workload goes to.
    pub fn placement_for(&self, wants_gpu: bool) -> Option<&str> {
        let default = self
            .placement
            .default
            .as_deref()
            .or_else(|| self.backends.first().map(|b| b.name.as_str()));
        if wants_gpu {
            self.placement.gpu.as_deref().or(default)
        } else {
            default
        }
    }

    fn invalid(&self, message: String) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.clone(),
            message,
        }
    }

    /// Give every HTTP frontend the ingress domain (and the address the
    /// ingress listens on, when it is one address), unless its table sets
    /// them: the names it hands out are the ones the host answers.
    fn share_ingress(&mut self) {
        use gantry_sdk::ingress::{ADDRESS_KEY, DOMAIN_KEY};
        let domain = self.ingress.domain.trim_matches('.').to_ascii_lowercase();
        let address = self
            .server
            .listen
            .parse::<std::net::SocketAddr>()
            .ok()
            .map(|a| a.ip())
            .filter(|ip| !ip.is_unspecified());
        for f in self.frontends.iter_mut().filter(|f| f.http.is_some()) {
            // Into the table the plugin's settings are read from: `settings`,
            // or `config` where a profile still uses the old name.
            let key = if f.capabilities.contains_key("config") {
                "config"
            } else {
                "settings"
            };
            let Some(settings) = f
                .capabilities
                .entry(key)
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
            else {
                continue; // Not a table: reading the grants says so.
            };
            settings
                .entry(DOMAIN_KEY.to_string())
                .or_insert_with(|| toml::Value::String(domain.clone()));
            if let Some(ip) = address {
                settings
                    .entry(ADDRESS_KEY.to_string())
                    .or_insert_with(|| toml::Value::String(ip.to_string()));
            }
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(tls) = &self.server.tls {
            match (&tls.cert, &tls.key, tls.self_signed) {
                (Some(_), Some(_), false) | (None, None, true) => {}
                _ => {
                    return Err(self.invalid(
                        "[server.tls] takes `cert` and `key`, or `self_signed = true`".into(),
                    ));
                }
            }
            if tls.self_signed && tls.names.is_empty() {
                return Err(
                    self.invalid("[server.tls] `names` is empty: a certificate for no name".into())
                );
            }
        }
        if !gantry_sdk::ingress::valid_name(&self.ingress.domain) {
            return Err(self.invalid(format!(
                "[ingress] domain `{}` is not a lower-case DNS name",
                self.ingress.domain
            )));
        }
        for g in &self.scopes {
            if crate::control::scopes::check(&g.scope).is_err() || g.owners.is_empty() {
                return Err(self.invalid(format!(
                    "[[scope]] `{}`: a path of non-empty segments (`/subscriptions/0000`), with at least one owner",
                    g.scope
                )));
            }
        }
        let mut names = std::collections::HashSet::new();
        for name in self
            .frontends
            .iter()
            .map(|f| &f.name)
            .chain(self.backends.iter().map(|b| &b.name))
        {
            if !names.insert(name) {
                return Err(self.invalid(format!("plugin name `{name}` is used twice")));
            }
        }
        for f in &self.frontends {
            match (&f.http, &f.mqtt) {
                (None, None) => {
                    return Err(self.invalid(format!(
                        "frontend `{}` needs `http = {{ prefix = ... }}` or `mqtt = {{ ... }}`",
                        f.name
                    )));
                }
                (Some(_), Some(_)) => {
                    return Err(self.invalid(format!(
                        "frontend `{}` has both `http` and `mqtt`: a component implements one world",
                        f.name
                    )));
                }
                (Some(h), _) => {
                    if let Some(bad) = h.prefixes().find(|p| !p.starts_with('/')) {
                        return Err(self.invalid(format!(
                            "frontend `{}`: http prefix `{bad}` must start with `/`",
                            f.name
                        )));
                    }
                }
                _ => {}
            }
        }
        for f in &self.frontends {
            if f.mqtt.is_some() && f.limits.sets_pooling() {
                return Err(self.invalid(format!(
                    "frontend `{}`: an MQTT frontend keeps one long-lived instance (the \
                     mqtt-frontend world's instance policy), so `limits.max_reuse`, \
                     `limits.max_idle` and `limits.retain_memory_mib` do not apply to it",
                    f.name
                )));
            }
        }
        let backend_names: Vec<&str> = self.backends.iter().map(|b| b.name.as_str()).collect();
        for b in &self.backends {
            if let Some(d) = &b.downstream
                && !backend_names.contains(&d.as_str())
            {
                return Err(self.invalid(format!(
                    "backend `{}`: downstream `{d}` is not a configured backend",
                    b.name
                )));
            }
            // A scheduler stack must end on a backend: follow it, at most once per backend.
            let mut chain = vec![b.name.as_str()];
            let mut at = b;
            while let Some(d) = &at.downstream {
                if chain.contains(&d.as_str()) {
                    chain.push(d);
                    return Err(self.invalid(format!(
                        "backend `{}`: its downstream chain loops ({})",
                        b.name,
                        chain.join(" → ")
                    )));
                }
                chain.push(d);
                match self.backends.iter().find(|x| &x.name == d) {
                    Some(next) => at = next,
                    None => break,
                }
            }
        }
        for (key, value) in [
            ("placement.default", &self.placement.default),
            ("placement.gpu", &self.placement.gpu),
        ] {
            if let Some(v) = value
                && !backend_names.contains(&v.as_str())
            {
                return Err(self.invalid(format!("{key}: `{v}` is not a configured backend")));
            }
        }
        if self.server.log_format != "human" && self.server.log_format != "json" {
            return Err(self.invalid(format!(
                "server.log_format must be \"human\" or \"json\", not {:?}",
                self.server.log_format
            )));
        }
        Ok(())
    }
}

/// The line `key` of the `index`th `[[array]]` table is on in `text`.
fn key_line(text: &str, array: &str, index: usize, key: &str) -> Option<usize> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let tables = doc.get_ref().get(array)?;
    let DeValue::Array(items) = tables.get_ref() else {
        return None;
    };
    let DeValue::Table(table) = items.get(index)?.get_ref() else {
        return None;
    };
    let (k, _) = table.iter().find(|(k, _)| k.get_ref().as_ref() == key)?;
    Some(text[..k.span().start.min(text.len())].matches('\n').count() + 1)
}

/// toml's message plus a 1-based line number computed from its byte span.
fn describe_toml_error(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            let key = text.get(span.clone()).unwrap_or("").trim();
            if key.is_empty() || key.contains('\n') {
                format!("line {line}: {msg}")
            } else {
                format!("line {line}: `{key}`: {msg}")
            }
        }
        None => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_key_names_key_and_line() {
        let text = "[server]\nlisten = \"127.0.0.1:1\"\nlistne = \"x\"\n";
        let err = Config::parse(text, "t.toml", PathBuf::from(".")).expect_err("must be refused");
        let msg = err.to_string();
        assert!(msg.contains("line 3"), "{msg}");
        assert!(msg.contains("listne"), "{msg}");
    }

    #[test]
    fn unknown_key_in_plugin_table_is_an_error() {
        let text = "[[backend]]\nname = \"d\"\nplugin = \"d.wasm\"\nendpoint = {}\n";
        let msg = Config::parse(text, "t.toml", PathBuf::from("."))
            .expect_err("must be refused")
            .to_string();
        assert!(msg.contains("line 4") && msg.contains("endpoint"), "{msg}");
    }

    #[test]
    fn http_frontends_are_told_the_ingress_domain_unless_they_set_one() {
        let text = "[server]\nlisten = \"127.0.0.1:8080\"\n[ingress]\ndomain = \"apps.test\"\n\
            [[frontend]]\nname = \"a\"\nplugin = \"a.wasm\"\nhttp = { prefix = \"/a\" }\n\
            [[frontend]]\nname = \"b\"\nplugin = \"b.wasm\"\nhttp = { prefix = \"/b\" }\n\
            config = { ingress-domain = \"own.test\" }\n";
        let c = Config::parse(text, "t.toml", PathBuf::from(".")).expect("valid");
        // `a` has no table of settings: it gets one; `b` keeps the old key.
        let setting = |i: usize, k: &str| {
            let t = &c.frontends[i].capabilities;
            t.get("settings")
                .or_else(|| t.get("config"))
                .and_then(|v| v.get(k))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        assert_eq!(setting(0, "ingress-domain").as_deref(), Some("apps.test"));
        assert_eq!(setting(0, "ingress-address").as_deref(), Some("127.0.0.1"));
        assert_eq!(setting(1, "ingress-domain").as_deref(), Some("own.test"));
        let bad = "[ingress]\ndomain = \"Not A Domain\"\n";
        let msg = Config::parse(bad, "t.toml", PathBuf::from("."))
            .expect_err("refused")
            .to_string();
        assert!(msg.contains("[ingress] domain"), "{msg}");
    }

    #[test]
    fn placement_must_name_a_backend() {
        let text = "[placement]\ndefault = \"nope\"\n";
        let msg = Config::parse(text, "t.toml", PathBuf::from("."))
            .expect_err("must be refused")
            .to_string();
        assert!(msg.contains("nope"), "{msg}");
    }

    #[test]
    fn embedded_defaults_parse() {
        let c = Config::embedded(PathBuf::from(".")).expect("embedded config parses");
        assert!(!c.frontends.is_empty());
        assert_eq!(c.placement_for(false), Some("docker"));
    }

    #[test]
    fn pooling_limits_on_an_mqtt_frontend_are_refused() {
        let text = "[[frontend]]\nname = \"k\"\nplugin = \"k.wasm\"\nmqtt = {}\nlimits = { max_reuse = 5 }\n";
        let msg = Config::parse(text, "t", PathBuf::from("."))
            .expect_err("must be refused")
            .to_string();
        assert!(
            msg.contains("long-lived") && msg.contains("max_reuse"),
            "{msg}"
        );
        let text = "[[frontend]]\nname = \"k\"\nplugin = \"k.wasm\"\nmqtt = {}\nlimits = { call_timeout_ms = 100 }\n";
        Config::parse(text, "t", PathBuf::from("."))
            .expect("deadline overrides apply to every world");
    }

    #[test]
    fn a_frontend_is_http_or_mqtt_not_both() {
        let text = "[[frontend]]\nname = \"k\"\nplugin = \"k.wasm\"\nmqtt = {}\nhttp = { prefix = \"/k\" }\n";
        let msg = Config::parse(text, "t", PathBuf::from("."))
            .expect_err("must be refused")
            .to_string();
        assert!(msg.contains("both"), "{msg}");
    }

    #[test]
    fn downstream_loops_are_refused() {
        let text = "[[backend]]\nname = \"a\"\nplugin = \"a.wasm\"\ndownstream = \"b\"\n\n[[backend]]\nname = \"b\"\nplugin = \"b.wasm\"\ndownstream = \"a\"\n";
        let msg = Config::parse(text, "t", PathBuf::from("."))
            .expect_err("must be refused")
            .to_string();
        assert!(msg.contains("loops") && msg.contains("a → b → a"), "{msg}");
        let text = "[[backend]]\nname = \"gpu\"\nplugin = \"g.wasm\"\ndownstream = \"docker\"\n\n[[backend]]\nname = \"docker\"\nplugin = \"d.wasm\"\n";
        Config::parse(text, "t", PathBuf::from(".")).expect("a stack ending on a backend");
    }

    #[test]
    fn gpu_placement_falls_back_to_default() {
        let text = "[[backend]]\nname = \"d\"\nplugin = \"d.wasm\"\n";
        let c = Config::parse(text, "t", PathBuf::from(".")).expect("parses");
        assert_eq!(c.placement_for(true), Some("d"));
    }
}
