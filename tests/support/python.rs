//! Python virtual environments with real clients from PyPI (schemathesis,
//! the Azure SDK), made once under `target/` and reused between runs.

use std::path::PathBuf;
use std::process::Command;

/// A venv at `target/<name>` with `packages` installed (pinned specs such as
/// `pkg==1.2.3`). It is reused while it holds exactly these packages. Returns
/// the venv's directory.
pub fn venv(name: &str, packages: &[&str]) -> PathBuf {
    let venv = crate::workspace_root().join("target").join(name);
    let marker = venv.join(".gantry-packages");
    let wanted = packages.join("\n");
    if std::fs::read_to_string(&marker).is_ok_and(|had| had == wanted) {
        return venv;
    }
    let s = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .expect("python3 -m venv");
    assert!(
        s.success(),
        "creating a Python venv failed (is python3-venv installed?)"
    );
    let s = Command::new(venv.join("bin/pip"))
        .args(["install", "-q"])
        .args(packages)
        .status()
        .expect("pip install");
    assert!(s.success(), "pip install {packages:?} failed");
    std::fs::write(&marker, wanted).expect("writing the venv marker");
    venv
}
