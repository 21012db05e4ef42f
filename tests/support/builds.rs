//! Builds beside the workspace's usual artifacts: a plugin built again with
//! another build id (two builds that differ visibly, for hot swap), and
//! projects generated outside the workspace (the `gantry new` templates).
//! They share one target dir, `target/out-of-tree`, so their crates.io
//! dependencies compile once per run.

use crate::workspace_root;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The target dir every out-of-tree build uses.
pub fn target_dir() -> PathBuf {
    workspace_root().join("target/out-of-tree")
}

/// `cargo` as the tests run it (the one that runs them, when it says so).
pub fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.env("CARGO_TARGET_DIR", target_dir())
        .env_remove("RUST_BACKTRACE")
        // The test binary's own cargo environment must not leak into a
        // build of another project.
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("CARGO_PKG_NAME");
    c
}

/// Run `c`, panicking with its output when it fails.
pub fn run(c: &mut Command, what: &str) -> String {
    let out = c.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

/// The REST frontend built with `GANTRY_BUILD_ID=id`: it serves
/// `info.x-gantry-build = "<version>+<id>"` in `/v1/openapi.json`, where
/// the workspace's build serves `"<version>"`. Copied out under its id.
pub fn rest_with_build_id(id: &str) -> PathBuf {
    let out = target_dir().join(format!("gantry_rest+{id}.wasm"));
    let mut c = cargo();
    c.current_dir(workspace_root())
        .env("GANTRY_BUILD_ID", id)
        .args([
            "rustc",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--lib",
            "--crate-type",
            "cdylib",
            "-p",
            "gantry-rest",
        ]);
    run(&mut c, "building the REST frontend with a build id");
    let built = target_dir().join("wasm32-wasip2/release/gantry_rest.wasm");
    replace_file(&built, &out);
    out
}

/// Copy `from` over `to` the way an operator drops a new build in: written
/// beside it, then renamed, so a reader sees the old file or the new one.
pub fn replace_file(from: &Path, to: &Path) {
    let tmp = to.with_extension(format!("tmp{}", std::process::id()));
    std::fs::copy(from, &tmp)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", from.display(), tmp.display()));
    std::fs::rename(&tmp, to).unwrap_or_else(|e| panic!("renaming to {}: {e}", to.display()));
}
