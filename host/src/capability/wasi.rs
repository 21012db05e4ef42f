//! WASI (`wasi:cli`, `io`, `clocks`, `random`, `filesystem`, `sockets`;
//! Rust's std imports them): stdout and stderr to the host's, no
//! environment, no sockets, and no files but the directories a plugin's
//! table grants (`read_dirs`), each preopened read-only at its own path.
//! The containerd backend reads its containers' json-file logs this way.

use super::{HostCapability, Part, Services, Store};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use wasmtime::component::Linker;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView};

/// The capability.
pub struct Wasi;

impl HostCapability for Wasi {
    const NAME: &'static str = "wasi";
    const PROVIDES: &'static [(&'static str, &'static str)] = &[
        ("wasi:cli/", "0.2."),
        ("wasi:io/", "0.2."),
        ("wasi:clocks/", "0.2."),
        ("wasi:random/", "0.2."),
        ("wasi:filesystem/", "0.2."),
        ("wasi:sockets/", "0.2."),
    ];
    const KEYS: &'static [&'static str] = &["read_dirs"];
    type Grant = ReadDirs;
    fn grant(table: &toml::Table) -> Result<ReadDirs, String> {
        let dirs: ReadDirs = super::read_key(table, "read_dirs")?;
        dirs.validate()?;
        Ok(dirs)
    }
    fn prepare(grant: &ReadDirs) -> Result<(), String> {
        grant
            .prepare()
            .map_err(|e| format!("cannot create its read_dirs: {e}"))
    }
    type State = WasiCtx;
    fn state(grant: &ReadDirs, services: &Services) -> WasiCtx {
        let mut wasi = WasiCtx::builder();
        wasi.inherit_stdout().inherit_stderr();
        grant.preopen(&services.plugin, &mut wasi);
        wasi.build()
    }
    fn link<T: Store<Self>>(l: &mut Linker<T>) -> wasmtime::Result<()> {
        wasmtime_wasi::p2::add_to_linker_async(l)
    }
}

/// The view WASI's own linking reads a store through.
pub fn view<'a>(part: Part<'a, Wasi>) -> WasiCtxView<'a> {
    WasiCtxView {
        ctx: part.state,
        table: part.table,
    }
}

/// The directories granted to one plugin, read-only.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct ReadDirs(Vec<PathBuf>);

impl ReadDirs {
    /// Grant `dirs`.
    pub fn new(dirs: Vec<PathBuf>) -> Self {
        Self(dirs)
    }

    /// The granted directories.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.0
    }

    /// Refuse what cannot be granted: relative paths, and `/` itself.
    pub fn validate(&self) -> Result<(), String> {
        for d in &self.0 {
            if !d.is_absolute() {
                return Err(format!(
                    "read_dirs: `{}` must be an absolute path",
                    d.display()
                ));
            }
            if d.parent().is_none() {
                return Err("read_dirs: granting `/` would expose the whole host".into());
            }
        }
        Ok(())
    }

    /// Create the directories that do not exist yet (the plugin's runtime
    /// may write them later, as containerd's log driver does).
    pub fn prepare(&self) -> std::io::Result<()> {
        for d in &self.0 {
            std::fs::create_dir_all(d)?;
        }
        Ok(())
    }

    /// Preopen every granted directory, read-only, at its host path. A
    /// directory that cannot be opened is left out (and logged): the plugin
    /// gets "not found", never more than it was granted.
    pub fn preopen(&self, plugin: &str, builder: &mut WasiCtxBuilder) {
        for d in &self.0 {
            if let Err(e) = builder.preopened_dir(d, guest_path(d), FsPerms::ReadOnly) {
                tracing::warn!(plugin, dir = %d.display(), error = %e, "granted directory cannot be opened");
            }
        }
    }
}

fn guest_path(d: &Path) -> String {
    d.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_directories_below_the_root_are_granted() {
        assert!(ReadDirs::new(vec!["/var/log/x".into()]).validate().is_ok());
        assert!(ReadDirs::new(vec!["logs".into()]).validate().is_err());
        assert!(ReadDirs::new(vec!["/".into()]).validate().is_err());
    }
}
