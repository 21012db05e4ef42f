//! Paths of built plugins and fixtures (from the one list in
//! [`wasm_plugins`], shared with `cargo xtask`); builds them when missing.

pub use crate::wasm_plugins::{WASM_BINS, WASM_LIBS};
use crate::workspace_root;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

static BUILD: Mutex<()> = Mutex::new(());

/// Path of the wasm32-wasip2 component of library package `package`, linked
/// as a `cdylib` in release mode if the file is missing (as `cargo xtask
/// build` links every plugin).
pub fn wasm(package: &str) -> PathBuf {
    let file = stem(WASM_LIBS, package);
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

fn stem(list: &[(&'static str, &'static str)], package: &str) -> &'static str {
    list.iter()
        .find(|(p, _)| *p == package)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("`{package}` is not in tests/support/wasm_plugins.rs"))
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

/// The REST frontend.
pub fn rest() -> PathBuf {
    wasm("gantry-rest")
}

/// The ARM (Azure Container Instances) frontend.
pub fn arm() -> PathBuf {
    wasm("gantry-arm")
}

/// The Kanto frontend.
pub fn kanto() -> PathBuf {
    wasm("gantry-kanto")
}

/// The Docker backend.
pub fn docker() -> PathBuf {
    wasm("gantry-docker")
}

/// The Docker Swarm backend.
pub fn swarm() -> PathBuf {
    wasm("gantry-swarm")
}

/// The GPU scheduler plugin.
pub fn gpu_scheduler() -> PathBuf {
    wasm("gantry-gpu-scheduler")
}

/// The control-rpc fixture frontend (`control` as JSON).
pub fn control_rpc() -> PathBuf {
    wasm("fixture-control-rpc")
}

/// The misbehaving http-frontend fixture.
pub fn misbehave() -> PathBuf {
    wasm("fixture-misbehave")
}

/// The backend fixture that never answers the calls its `stall` setting names.
pub fn stall_backend() -> PathBuf {
    wasm("fixture-stall-backend")
}

/// An mqtt-frontend built against `gantry:plugin@0.1.0`.
pub fn compat_0_1_0() -> PathBuf {
    wasm("fixture-compat-0-1-0")
}

/// A scheduler that passes every driver call to its downstream.
pub fn passthrough_scheduler() -> PathBuf {
    wasm("fixture-passthrough-scheduler")
}

/// A wasi:cli command that fits no gantry world.
pub fn wrong_world() -> PathBuf {
    let package = "fixture-wrong-world";
    build_if_missing(
        package,
        stem(WASM_BINS, package),
        &[
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "-p",
            package,
        ],
    )
}

/// The gantry binary: `GANTRY_BIN` when set (benchmarks run the release
/// build), else the debug build, built if missing.
pub fn gantry_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("GANTRY_BIN") {
        return PathBuf::from(bin);
    }
    native_bin("gantry", "gantry")
}

/// The log driver the containerd backend hands to containerd's shim (debug), built if missing.
pub fn containerd_logger() -> PathBuf {
    native_bin("gantry-containerd-logger", "gantry-containerd-logger")
}

/// The containerd backend plugin.
pub fn containerd() -> PathBuf {
    wasm("gantry-containerd")
}

/// The Podman backend, a standalone example outside the workspace
/// (`examples/podman-backend`), built into the out-of-tree target dir if
/// missing (as `cargo xtask build` builds it).
pub fn podman_backend() -> PathBuf {
    let target = crate::builds::target_dir();
    let path = target.join("wasm32-wasip2/release/gantry_podman_backend.wasm");
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--target", "wasm32-wasip2"])
            .env("CARGO_TARGET_DIR", &target)
            .current_dir(workspace_root().join("examples/podman-backend"))
            .status()
            .expect("running cargo to build the Podman example backend");
        assert!(status.success(), "building examples/podman-backend failed");
    }
    assert!(path.exists(), "{} missing after build", path.display());
    path
}

fn native_bin(package: &str, bin: &str) -> PathBuf {
    let path = workspace_root().join("target/debug").join(bin);
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if !path.exists() {
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "-p", package])
            .current_dir(workspace_root())
            .status()
            .expect("running cargo");
        assert!(status.success(), "building {package} failed");
    }
    path
}
