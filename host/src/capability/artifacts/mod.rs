//! `artifacts`: downloads for frontends, deny-all by default. A frontend's
//! `artifacts` table grants URL prefixes (scheme, host, port, path prefix)
//! and bounds each download's size and time; anything else, a redirect's
//! target included, is refused before a connection is made. Bodies stream to
//! the plugin in chunks and are checked against the checksums it gave.
//!
//! This capability owns the `artifacts` table of a frontend's config, its
//! per-instance state (the grant) and its linker step; downloads live in the
//! store's resource table.

mod fetch;

use super::{HostCapability, Services, Store};
use crate::bindings::gantry::plugin::artifacts::{self, Checksums, FetchError};
use crate::bindings::{ArtifactBody, ArtifactDownload};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

/// `artifacts = { allow = [...], max_bytes = ..., timeout_ms = ..., ca = ... }`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ArtifactGrants {
    /// URL prefixes downloads may come from, e.g.
    /// `https://updates.example.com/rollouts/`.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Largest artifact, in bytes.
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Longest one download may take, request to last byte, in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// PEM certificates trusted for HTTPS besides the system's.
    pub ca: Option<PathBuf>,
}

fn default_max_bytes() -> u64 {
    64 << 20
}

fn default_timeout_ms() -> u64 {
    60_000
}

impl Default for ArtifactGrants {
    fn default() -> Self {
        Self {
            allow: Vec::new(),
            max_bytes: default_max_bytes(),
            timeout_ms: default_timeout_ms(),
            ca: None,
        }
    }
}

/// A granted prefix, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Prefix {
    scheme: String,
    host: String,
    port: u16,
    /// Ends with `/`, so `/a` never grants `/ab`.
    path: String,
}

impl Prefix {
    fn parse(text: &str) -> Result<Prefix, String> {
        let url = url::Url::parse(text).map_err(|e| format!("`{text}`: {e}"))?;
        let (scheme, host, port) = origin(&url).map_err(|e| format!("`{text}`: {e}"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("`{text}`: credentials do not belong in a grant"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "`{text}`: a grant is a prefix, without query or fragment"
            ));
        }
        let mut path = url.path().to_string();
        if !path.ends_with('/') {
            path.push('/');
        }
        Ok(Prefix {
            scheme,
            host,
            port,
            path,
        })
    }

    fn allows(&self, url: &url::Url) -> bool {
        let Ok((scheme, host, port)) = origin(url) else {
            return false;
        };
        let path = url.path();
        scheme == self.scheme
            && host == self.host
            && port == self.port
            && (path.starts_with(&self.path) || format!("{path}/") == self.path)
    }
}

/// Scheme, lower-case host and effective port of an http(s) URL.
fn origin(url: &url::Url) -> Result<(String, String, u16), String> {
    let scheme = url.scheme();
    if scheme != "http" && scheme != "https" {
        return Err(format!("only http and https are fetched, not {scheme}"));
    }
    let host = url
        .host_str()
        .ok_or("a URL needs a host")?
        .to_ascii_lowercase();
    let port = url.port_or_known_default().ok_or("a URL needs a port")?;
    Ok((scheme.to_string(), host, port))
}

/// A plugin's grant, checked and ready: what its instances may fetch.
#[derive(Clone, Default)]
pub struct Artifacts {
    prefixes: Vec<Prefix>,
    max_bytes: u64,
    timeout: Duration,
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Artifacts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Artifacts")
            .field("prefixes", &self.prefixes)
            .field("max_bytes", &self.max_bytes)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Artifacts {
    /// The grant of a config table; the error says what is wrong with it.
    pub fn from_grants(g: &ArtifactGrants) -> Result<Artifacts, String> {
        let prefixes = g
            .allow
            .iter()
            .map(|p| Prefix::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("artifacts.allow: {e}"))?;
        if g.max_bytes == 0 || g.timeout_ms == 0 {
            return Err("artifacts: max_bytes and timeout_ms must be above 0".into());
        }
        let tls = if prefixes.iter().any(|p| p.scheme == "https") {
            Some(fetch::client_tls(g.ca.as_deref()).map_err(|e| format!("artifacts.ca: {e}"))?)
        } else {
            None
        };
        Ok(Artifacts {
            prefixes,
            max_bytes: g.max_bytes,
            timeout: Duration::from_millis(g.timeout_ms),
            tls,
        })
    }

    /// The URL `text`, parsed, if a grant covers it.
    fn granted(&self, text: &str) -> Result<url::Url, FetchError> {
        let url =
            url::Url::parse(text).map_err(|e| FetchError::Failed(format!("`{text}`: {e}")))?;
        if self.prefixes.iter().any(|p| p.allows(&url)) {
            Ok(url)
        } else {
            Err(FetchError::Denied(format!(
                "`{url}` is not under a URL this plugin's `artifacts.allow` grants"
            )))
        }
    }
}

/// Per-instance state: the plugin's grant.
#[derive(Clone)]
pub struct ArtifactsCtx {
    plugin: Arc<str>,
    grant: Artifacts,
}

impl ArtifactsCtx {
    /// What `plugin` may fetch.
    pub fn new(plugin: Arc<str>, grant: Artifacts) -> Self {
        Self { plugin, grant }
    }
}

/// What a store hands this capability: its state and the resource table.
pub struct ArtifactsView<'a> {
    /// The capability's state.
    pub ctx: &'a mut ArtifactsCtx,
    /// The store's resource table (downloads live there).
    pub table: &'a mut ResourceTable,
}

/// The [`HasData`] of this capability.
pub struct HasArtifacts;

impl HasData for HasArtifacts {
    type Data<'a> = ArtifactsView<'a>;
}

impl HostCapability for Artifacts {
    const NAME: &'static str = "artifacts";
    const PROVIDES: &'static [(&'static str, &'static str)] =
        &[("gantry:plugin/artifacts", "0.1.")];
    const KEYS: &'static [&'static str] = &["artifacts"];
    type Grant = Artifacts;
    fn grant(table: &toml::Table) -> Result<Artifacts, String> {
        Artifacts::from_grants(&super::read_key(table, "artifacts")?)
    }
    type State = ArtifactsCtx;
    fn state(grant: &Artifacts, services: &Services) -> ArtifactsCtx {
        ArtifactsCtx::new(services.plugin.clone(), grant.clone())
    }
    fn link<T: Store<Self>>(l: &mut Linker<T>) -> wasmtime::Result<()> {
        artifacts::add_to_linker::<T, HasArtifacts>(l, |t| {
            let part = t.part();
            ArtifactsView {
                ctx: part.state,
                table: part.table,
            }
        })
    }
}

impl artifacts::Host for ArtifactsView<'_> {
    async fn fetch(
        &mut self,
        url: String,
        checksums: Checksums,
    ) -> wasmtime::Result<Result<Resource<ArtifactDownload>, FetchError>> {
        let started = fetch::Fetch::start(&self.ctx.grant, &url, &checksums).await;
        match started {
            Ok(body) => {
                tracing::debug!(plugin = %self.ctx.plugin, %url, size = ?body.size(), "artifact download started");
                Ok(Ok(self.table.push(ArtifactDownload(Box::new(body)))?))
            }
            Err(e) => {
                tracing::info!(plugin = %self.ctx.plugin, %url, error = ?e, "artifact download refused or failed");
                Ok(Err(e))
            }
        }
    }
}

impl artifacts::HostDownload for ArtifactsView<'_> {
    async fn size(&mut self, d: Resource<ArtifactDownload>) -> wasmtime::Result<Option<u64>> {
        Ok(self.table.get(&d)?.0.size())
    }

    async fn next(
        &mut self,
        d: Resource<ArtifactDownload>,
        max_bytes: u32,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, FetchError>> {
        Ok(self.table.get_mut(&d)?.0.next(max_bytes).await)
    }

    async fn drop(&mut self, d: Resource<ArtifactDownload>) -> wasmtime::Result<()> {
        self.table.delete(d)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(allow: &[&str]) -> Artifacts {
        Artifacts::from_grants(&ArtifactGrants {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            ..ArtifactGrants::default()
        })
        .expect("grant")
    }

    #[test]
    fn only_urls_under_a_granted_prefix_pass() {
        let g = grant(&[
            "http://127.0.0.1:8000/rollouts",
            "https://Updates.Example/a/",
        ]);
        for ok in [
            "http://127.0.0.1:8000/rollouts/x.json",
            "http://127.0.0.1:8000/rollouts",
            "https://updates.example:443/a/b/c",
        ] {
            assert!(g.granted(ok).is_ok(), "{ok}");
        }
        for denied in [
            "http://127.0.0.1:8000/rollouts-evil/x",
            "http://127.0.0.1:8001/rollouts/x",
            "https://127.0.0.1:8000/rollouts/x",
            "http://127.0.0.1:8000/rollouts/../secret",
            "http://updates.example/a/b",
            "https://updates.example.evil/a/b",
        ] {
            assert!(
                matches!(g.granted(denied), Err(FetchError::Denied(_))),
                "{denied}"
            );
        }
        assert!(matches!(
            grant(&[]).granted("http://127.0.0.1:8000/rollouts/x"),
            Err(FetchError::Denied(_))
        ));
        assert!(matches!(g.granted("not a url"), Err(FetchError::Failed(_))));
    }

    #[test]
    fn bad_grants_are_refused_with_their_reason() {
        for (allow, why) in [
            ("ftp://host/x", "only http and https"),
            ("http://user:pw@host/x", "credentials"),
            ("http://host/x?y=1", "without query"),
            ("/relative", "relative URL"),
        ] {
            let e = Artifacts::from_grants(&ArtifactGrants {
                allow: vec![allow.into()],
                ..ArtifactGrants::default()
            })
            .expect_err(allow);
            assert!(e.contains(why), "{allow}: {e}");
        }
        let e = Artifacts::from_grants(&ArtifactGrants {
            max_bytes: 0,
            ..ArtifactGrants::default()
        })
        .expect_err("zero");
        assert!(e.contains("above 0"), "{e}");
    }
}
