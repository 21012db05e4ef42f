//! What the device's operator lets Kanto commands reach of the host: bind
//! mounts of granted host paths, granted device nodes, privileged mode.
//! Whoever may send the device a command must not get its file system by
//! asking, so each is refused (`parameter.invalid`) unless the frontend's
//! config grants it:
//!
//! - `allowed-host-paths`: host directories (or files) a mount may bind,
//!   with everything under them;
//! - `allowed-devices`: device nodes a container may be given;
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
    privileged: bool,
}

impl Policy {
    /// The grants the config makes (none when absent).
    pub fn from_settings() -> Policy {
        Policy {
            host_paths: list(host_config::get("allowed-host-paths")),
            devices: list(host_config::get("allowed-devices")),
            privileged: host_config::get("allow-privileged").as_deref() == Some("true"),
        }
    }

    /// A policy granting exactly these (for tests).
    #[cfg(test)]
    pub fn granting(host_paths: &[&str], devices: &[&str], privileged: bool) -> Policy {
        Policy {
            host_paths: host_paths.iter().map(|s| s.to_string()).collect(),
            devices: devices.iter().map(|s| s.to_string()).collect(),
            privileged,
        }
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

fn plain_absolute(field: &str, path: &str) -> Result<(), Failure> {
    let plain = path.starts_with('/')
        && path
            .split('/')
            .skip(1)
            .all(|c| c != "." && c != ".." && !c.contains('\0'));
    if plain {
        Ok(())
    } else {
        Err(Failure::invalid(format!(
            "{field} `{path}` must be an absolute path without `.` or `..`"
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
        assert!(Policy::default().check_mount("/srv/data").is_err());
    }

    #[test]
    fn lists_are_comma_separated_or_toml_arrays() {
        assert_eq!(list(Some("/a, /b".into())), vec!["/a", "/b"]);
        assert_eq!(list(Some(r#"["/a", "/b"]"#.into())), vec!["/a", "/b"]);
        assert!(list(None).is_empty());
    }
}
