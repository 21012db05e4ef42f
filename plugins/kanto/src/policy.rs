//! What the device's operator lets Kanto commands reach of the host: bind
//! mounts of granted host paths, granted device nodes, added capabilities,
//! the host's network, privileged mode. Whoever may send the device a
//! command must not get its file system or its loopback services by asking,
//! so each is refused (`parameter.invalid`) unless the frontend's config
//! grants it:
//!
//! - `allowed-host-paths`: host directories (or files) a mount may bind,
//!   with everything under them;
//! - `allowed-devices`: device nodes a container may be given;
//! - `allowed-capabilities`: capabilities `extraCapabilities` may add
//!   (`NET_ADMIN` or `CAP_NET_ADMIN`);
//! - `allow-host-network = true`: `networkMode` HOST;
//! - `allow-privileged = true`: privileged containers.
//!
//! Lists are comma-separated (a TOML array is read too). Paths must be
//! absolute and plain (no `.` or `..`): the grant is checked on the path as
//! written, and the runtime resolves symbolic links under it, so grant only
//! directories whose content you control.

use crate::envelope::Failure;
use gantry_sdk::mqtt_frontend::gantry::plugin::config as host_config;

/// The grants of the frontend's config.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    host_paths: Vec<String>,
    devices: Vec<String>,
    capabilities: Vec<String>,
    host_network: bool,
    privileged: bool,
}

impl Policy {
    /// The grants the config makes (none when absent). A granted path that
    /// is not absolute and plain grants nothing.
    pub fn from_settings() -> Policy {
        let paths = |key: &str| -> Vec<String> {
            list(host_config::get(key))
                .into_iter()
                .filter(|p| plain_absolute(key, p).is_ok())
                .collect()
        };
        let yes = |key: &str| host_config::get(key).as_deref() == Some("true");
        Policy {
            host_paths: paths("allowed-host-paths"),
            devices: paths("allowed-devices"),
            capabilities: list(host_config::get("allowed-capabilities"))
                .iter()
                .map(|c| capability(c))
                .collect(),
            host_network: yes("allow-host-network"),
            privileged: yes("allow-privileged"),
        }
    }

    /// A policy granting exactly these (for tests).
    #[cfg(test)]
    pub fn granting(host_paths: &[&str], devices: &[&str], privileged: bool) -> Policy {
        Policy {
            host_paths: host_paths.iter().map(|s| s.to_string()).collect(),
            devices: devices.iter().map(|s| s.to_string()).collect(),
            capabilities: Vec::new(),
            host_network: false,
            privileged,
        }
    }

    /// This policy, granting the host's network too (for tests).
    #[cfg(test)]
    pub fn with_host_network(self) -> Policy {
        Policy {
            host_network: true,
            ..self
        }
    }

    /// Whether `extraCapabilities` may add `wanted`.
    pub fn check_capability(&self, wanted: &str) -> Result<(), Failure> {
        if self.capabilities.contains(&capability(wanted)) {
            return Ok(());
        }
        Err(Failure::invalid(format!(
            "extraCapabilities `{wanted}` is not a capability this device allows (allowed-capabilities)"
        )))
    }

    /// Whether containers may use the host's network.
    pub fn check_host_network(&self) -> Result<(), Failure> {
        if self.host_network {
            return Ok(());
        }
        Err(Failure::invalid(
            "networkMode HOST is not allowed on this device: it reaches the host's loopback services (allow-host-network)",
        ))
    }

    /// Whether a mount may bind host path `source`.
    pub fn check_mount(&self, source: &str) -> Result<(), Failure> {
        plain_absolute("mountPoints.source", source)?;
        if self.host_paths.iter().any(|g| under(source, g)) {
            return Ok(());
        }
        Err(Failure::invalid(format!(
            "mountPoints.source `{source}` is not under a host path this device allows (allowed-host-paths)"
        )))
    }

    /// Whether a container may be given device node `path`.
    pub fn check_device(&self, path: &str) -> Result<(), Failure> {
        plain_absolute("devices.pathOnHost", path)?;
        if self.devices.iter().any(|d| d == path) {
            return Ok(());
        }
        Err(Failure::invalid(format!(
            "devices.pathOnHost `{path}` is not a device this device allows (allowed-devices)"
        )))
    }

    /// Whether privileged containers are allowed.
    pub fn check_privileged(&self) -> Result<(), Failure> {
        if self.privileged {
            return Ok(());
        }
        Err(Failure::invalid(
            "privileged containers are not allowed on this device (allow-privileged)",
        ))
    }
}

/// A capability's name without the `CAP_` prefix, upper-case.
fn capability(name: &str) -> String {
    let upper = name.trim().to_ascii_uppercase();
    upper.strip_prefix("CAP_").unwrap_or(&upper).to_string()
}

/// A comma-separated list, or a TOML array of strings.
fn list(setting: Option<String>) -> Vec<String> {
    let Some(s) = setting else { return Vec::new() };
    s.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .map(|p| p.trim().trim_matches('"').trim_matches('\'').to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Absolute, no `.` or `..` component, and none of the characters a
/// runtime's `source:destination:options` form would read as separators.
pub fn plain_absolute(field: &str, path: &str) -> Result<(), Failure> {
    let plain = path.starts_with('/')
        && !path.contains([':', ',', '\0'])
        && path.split('/').skip(1).all(|c| c != "." && c != "..");
    if plain {
        Ok(())
    } else {
        Err(Failure::invalid(format!(
            "{field} `{path}` must be an absolute path without `.`, `..`, `:` or `,`"
        )))
    }
}

/// Whether `path` is `grant` or under it, component by component.
fn under(path: &str, grant: &str) -> bool {
    let grant = grant.trim_end_matches('/');
    if grant.is_empty() {
        // "/" grants everything.
        return true;
    }
    path == grant
        || path
            .strip_prefix(grant)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_cover_what_is_under_them_and_nothing_beside() {
        let p = Policy::granting(&["/srv/data/"], &["/dev/zero"], false);
        assert!(p.check_mount("/srv/data").is_ok());
        assert!(p.check_mount("/srv/data/app/x").is_ok());
        assert!(p.check_mount("/srv/database").is_err());
        assert!(p.check_mount("/srv/data/../../etc").is_err());
        assert!(p.check_mount("srv/data").is_err());
        assert!(p.check_device("/dev/zero").is_ok());
        assert!(p.check_device("/dev/sda").is_err());
        assert_eq!(p.check_privileged().map_err(|f| f.status), Err(400));
        assert!(p.check_mount("/srv/data:/etc").is_err());
        assert!(Policy::default().check_mount("/srv/data").is_err());
        assert!(Policy::default().check_capability("NET_ADMIN").is_err());
        assert!(Policy::default().check_host_network().is_err());
        let caps = Policy {
            capabilities: vec![capability("cap_net_admin")],
            ..Policy::default()
        };
        assert!(caps.check_capability("NET_ADMIN").is_ok());
        assert!(caps.check_capability("CAP_NET_ADMIN").is_ok());
        assert!(caps.check_capability("SYS_ADMIN").is_err());
    }

    #[test]
    fn lists_are_comma_separated_or_toml_arrays() {
        assert_eq!(list(Some("/a, /b".into())), vec!["/a", "/b"]);
        assert_eq!(list(Some(r#"["/a", "/b"]"#.into())), vec!["/a", "/b"]);
        assert!(list(None).is_empty());
    }
}
