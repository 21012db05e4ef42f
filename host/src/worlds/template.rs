//! `gantry new`: a standalone Cargo project for a new plugin (a backend, an
//! HTTP or an MQTT frontend) that depends on the SDK by path, builds into a
//! loadable component, and carries a README, a profile and a test that
//! loads it into a real host. The files are `host/templates/`, compiled in.

use std::path::{Path, PathBuf};

/// What kind of plugin to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// World `backend`.
    Backend,
    /// World `http-frontend`, mounted under a prefix.
    HttpFrontend,
    /// World `mqtt-frontend`.
    MqttFrontend,
}

/// Why a project could not be generated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The name cannot be a package and plugin name.
    #[error(
        "`{0}` cannot name a plugin: use lowercase letters, digits and '-', starting with a letter (at most 64)"
    )]
    Name(String),
    /// The HTTP prefix is not a path.
    #[error("`{0}` is not a path prefix: it starts with '/' and has no spaces, '?' or '#'")]
    Prefix(String),
    /// The target directory exists and is not empty.
    #[error("{0} exists and is not empty")]
    Occupied(PathBuf),
    /// The SDK is not where it was said to be.
    #[error("no gantry SDK at {0} (a directory with gantry-sdk's Cargo.toml); pass --sdk PATH")]
    Sdk(PathBuf),
    /// Writing failed.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A project to generate.
#[derive(Debug, Clone)]
pub struct Template {
    kind: Kind,
    name: String,
    prefix: String,
    sdk: PathBuf,
}

const CARGO: &str = include_str!("../../templates/common/Cargo.toml.tmpl");
const README: &str = include_str!("../../templates/common/README.md.tmpl");
const HOST_TEST: &str = include_str!("../../templates/common/host.rs.tmpl");

/// The SDK beside the sources this binary was built from, when it is there.
pub fn default_sdk() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/sdk")
}

impl Template {
    /// A plugin `name` of `kind` (`prefix` for HTTP frontends; `/<name>`
    /// when none), depending on the SDK at `sdk`.
    pub fn new(
        kind: Kind,
        name: &str,
        prefix: Option<&str>,
        sdk: &Path,
    ) -> Result<Self, TemplateError> {
        let valid = name.len() <= 64
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !name.ends_with('-');
        // Not the name of a crate the project depends on (cargo would see a cycle).
        let taken = [
            "gantry-sdk",
            "serde",
            "serde-json",
            "serde_json",
            "wit-bindgen",
            "wasip2",
        ];
        if !valid || taken.contains(&name) {
            return Err(TemplateError::Name(name.to_string()));
        }
        let prefix = prefix.map_or_else(|| format!("/{name}"), str::to_string);
        let prefix = prefix.trim_end_matches('/').to_string();
        if !prefix.starts_with('/') || prefix.contains([' ', '?', '#', '"', '\\']) {
            return Err(TemplateError::Prefix(prefix));
        }
        let sdk = sdk
            .canonicalize()
            .ok()
            // Written into Cargo.toml as a TOML literal string.
            .filter(|p| !p.to_string_lossy().contains(['\'', '\n']))
            .filter(|p| {
                std::fs::read_to_string(p.join("Cargo.toml"))
                    .is_ok_and(|t| t.contains("name = \"gantry-sdk\""))
            })
            .ok_or_else(|| TemplateError::Sdk(sdk.to_path_buf()))?;
        Ok(Self {
            kind,
            name: name.to_string(),
            prefix,
            sdk,
        })
    }

    /// The world's name, as `gantry check --world` takes it.
    fn world(&self) -> &'static str {
        match self.kind {
            Kind::Backend => "backend",
            Kind::HttpFrontend => "http-frontend",
            Kind::MqttFrontend => "mqtt-frontend",
        }
    }

    /// The generated files, relative to the project's directory.
    pub fn files(&self) -> Vec<(&'static str, String)> {
        let (lib, profile, serves, table, next) = match self.kind {
            Kind::Backend => (
                include_str!("../../templates/backend/lib.rs.tmpl"),
                include_str!("../../templates/backend/profile.toml.tmpl"),
                include_str!("../../templates/backend/serves.rs.tmpl"),
                "backend",
                "Implement each `driver` call in `src/lib.rs` against your runtime, and \
                 say in `capabilities` what it can do. Then run gantry's backend \
                 conformance suite on it (`tests/conformance/`).",
            ),
            Kind::HttpFrontend => (
                include_str!("../../templates/http-frontend/lib.rs.tmpl"),
                include_str!("../../templates/http-frontend/profile.toml.tmpl"),
                include_str!("../../templates/http-frontend/serves.rs.tmpl"),
                "frontend",
                "Replace the routes in `src/lib.rs` with your protocol's; answer every \
                 error in its own format. The host authenticates callers: read who \
                 called with `Request::caller`.",
            ),
            Kind::MqttFrontend => (
                include_str!("../../templates/mqtt-frontend/lib.rs.tmpl"),
                include_str!("../../templates/mqtt-frontend/profile.toml.tmpl"),
                include_str!("../../templates/mqtt-frontend/serves.rs.tmpl"),
                "frontend",
                "Replace the topics and payloads in `src/lib.rs` with your protocol's. \
                 Messages, events and timers reach the one instance in order.",
            ),
        };
        let fill = |text: &str| {
            text.replace("{{serves}}", serves)
                .replace("{{next}}", next)
                .replace("{{table}}", table)
                .replace("{{world}}", self.world())
                .replace("{{feature}}", self.world())
                .replace("{{crate}}", &self.name.replace('-', "_"))
                .replace("{{prefix}}", &self.prefix)
                .replace("{{sdk}}", &self.sdk.display().to_string())
                .replace("{{name}}", &self.name)
        };
        vec![
            ("Cargo.toml", fill(CARGO)),
            ("README.md", fill(README)),
            ("profile.toml", fill(profile)),
            ("src/lib.rs", fill(lib)),
            ("tests/host.rs", fill(HOST_TEST)),
            (".gitignore", "/target\n".to_string()),
        ]
    }

    /// Write the project into `dir` (created; refused when it holds anything).
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>, TemplateError> {
        if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
            return Err(TemplateError::Occupied(dir.to_path_buf()));
        }
        let mut written = Vec::new();
        for (file, text) in self.files() {
            let path = dir.join(file);
            let io = |source| TemplateError::Write {
                path: path.clone(),
                source,
            };
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            std::fs::write(&path, text).map_err(io)?;
            written.push(path);
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_prefixes_are_checked() {
        let sdk = default_sdk();
        assert!(Template::new(Kind::Backend, "acme-runtime", None, &sdk).is_ok());
        for bad in [
            "Acme",
            "1acme",
            "acme_runtime",
            "acme-",
            "",
            "serde",
            "gantry-sdk",
        ] {
            assert!(
                matches!(
                    Template::new(Kind::Backend, bad, None, &sdk),
                    Err(TemplateError::Name(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            Template::new(Kind::HttpFrontend, "api", Some("v1"), &sdk),
            Err(TemplateError::Prefix(_))
        ));
        assert!(matches!(
            Template::new(Kind::Backend, "acme", None, Path::new("/nonexistent")),
            Err(TemplateError::Sdk(_))
        ));
    }

    #[test]
    fn every_placeholder_is_filled() {
        for kind in [Kind::Backend, Kind::HttpFrontend, Kind::MqttFrontend] {
            let t = Template::new(kind, "acme-x", Some("/acme/"), &default_sdk()).expect("valid");
            for (file, text) in t.files() {
                assert!(!text.contains("{{"), "{kind:?} {file} left a placeholder");
            }
            let cargo = &t.files()[0].1;
            assert!(cargo.contains(&format!("features = [\"{}\"]", t.world())));
        }
    }
}
