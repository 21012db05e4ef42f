//! Paths of built plugins and fixtures; builds them when missing.

use crate::workspace_root;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

static BUILD: Mutex<()> = Mutex::new(());

/// Path of the wasm32-wasip2 component of library package `package` (file
/// `file`.wasm), linked as a `cdylib` in release mode if the file is missing
/// (as `cargo xtask build` links every plugin).
pub fn wasm(package: &str, file: &str) -> PathBuf {
    build_if_missing(
        package,
        file,
        &[
            "rustc",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--lib",
            "--crate-type",
            "cdylib",
            "-p",
            package,
        ],
    )
}

fn build_if_missing(package: &str, file: &str, cargo_args: &[&str]) -> PathBuf {
    let path = workspace_root()
        .join("target/wasm32-wasip2/release")
        .join(format!("{file}.wasm"));
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(cargo_args)
            .current_dir(workspace_root())
            .status()
            .expect("running cargo to build a plugin");
        assert!(
            status.success(),
            "building {package} for wasm32-wasip2 failed"
        );
    }
    assert!(path.exists(), "{} missing after build", path.display());
    path
}

/// The misbehaving http-frontend fixture.
pub fn misbehave() -> PathBuf {
    wasm("fixture-misbehave", "fixture_misbehave")
}

/// A wasi:cli command that fits no gantry world.
pub fn wrong_world() -> PathBuf {
    build_if_missing(
        "fixture-wrong-world",
        "fixture-wrong-world",
        &[
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            "fixture-wrong-world",
        ],
    )
}

/// The gantry binary (debug), built if missing.
pub fn gantry_bin() -> PathBuf {
    let path = workspace_root().join("target/debug/gantry");
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "-p", "gantry"])
            .current_dir(workspace_root())
            .status()
            .expect("running cargo to build gantry");
        assert!(status.success(), "building gantry failed");
    }
    path
}
