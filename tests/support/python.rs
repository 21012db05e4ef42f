//! Python virtual environments with real clients from PyPI (schemathesis,
//! the Azure SDK), made once under `target/` and reused between runs.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

/// Tests of one binary building the same venv wait for each other.
static BUILDING: Mutex<()> = Mutex::new(());

/// An exclusive `flock` on `target/<name>.lock`, held while alive: test
/// binaries running side by side build a venv once, not over each other.
struct FileLock {
    _file: std::fs::File,
}

impl FileLock {
    fn take(name: &str) -> FileLock {
        use std::os::fd::AsRawFd;
        let path = crate::workspace_root()
            .join("target")
            .join(format!("{name}.lock"));
        let _ = std::fs::create_dir_all(path.parent().unwrap_or(&path));
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .expect("venv lock file");
        // SAFETY: flock(2) on a descriptor this struct owns; no memory is involved.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "locking {}", path.display());
        FileLock { _file: f }
    }
}

/// A venv at `target/<name>` with `packages` installed (pinned specs such as
/// `pkg==1.2.3`). It is reused while it holds exactly these packages. Returns
/// the venv's directory.
pub fn venv(name: &str, packages: &[&str]) -> PathBuf {
    let _guard = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let _lock = FileLock::take(name);
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

/// Run `cmd`, a client that prints a line per step it passed (the
/// scripts' `ok <step>`, schemathesis' summary): it must exit 0 and have
/// printed each of `steps`. Returns what it printed, stdout then stderr;
/// `gantry_log` is shown with a failure.
pub fn run_steps(
    cmd: &mut Command,
    what: &str,
    gantry_log: impl Fn() -> String,
    steps: &[&str],
) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {what}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "{what} failed:\n{text}\n--- gantry log ---\n{}",
        gantry_log()
    );
    for step in steps {
        assert!(
            text.contains(step),
            "{what}: missing step `{step}`:\n{text}"
        );
    }
    eprintln!("{text}");
    text
}
