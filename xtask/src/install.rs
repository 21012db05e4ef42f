//! `cargo xtask install [--prefix P] [--debug]`: gantry laid out as a system
//! installs it, the profiles' paths pointing at it. Under `/usr` (the
//! default): `/usr/bin/gantry`, the plugins in `/usr/lib/gantry/plugins`,
//! the containerd log driver in `/usr/lib/gantry`, the profiles in
//! `/etc/gantry`, the systemd unit `gantry@.service` in
//! `/lib/systemd/system`, state in `/var/lib/gantry`. Under another prefix,
//! everything is below it, and the profiles and the unit say so.
//!
//! `cargo xtask install-check` installs the debug build into a fresh
//! directory and checks it as an operator would: `gantry check` passes on
//! every installed profile, `systemd-analyze verify` takes the unit, and the
//! unit's `ExecStart` serves `/healthz`, then stops on SIGTERM.

use super::{WASM_LIBS, build_native_debug, build_plugins, cargo, root, run};
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The profiles an installation ships: the ones written for an installed
/// layout (`dev` and `edge-dev` run from a checkout).
const PROFILES: &[&str] = &["cloud", "edge", "swarm"];

/// Where each part goes.
struct Layout {
    bin: PathBuf,
    lib: PathBuf,
    etc: PathBuf,
    systemd: PathBuf,
    state: PathBuf,
    cache: PathBuf,
}

impl Layout {
    fn under(prefix: &Path) -> Layout {
        if prefix == Path::new("/usr") {
            return Layout {
                bin: "/usr/bin".into(),
                lib: "/usr/lib/gantry".into(),
                etc: "/etc/gantry".into(),
                systemd: "/lib/systemd/system".into(),
                state: "/var/lib/gantry".into(),
                cache: "/var/cache/gantry".into(),
            };
        }
        Layout {
            bin: prefix.join("bin"),
            lib: prefix.join("lib/gantry"),
            etc: prefix.join("etc/gantry"),
            systemd: prefix.join("lib/systemd/system"),
            state: prefix.join("var/lib/gantry"),
            cache: prefix.join("var/cache/gantry"),
        }
    }

    /// A profile or the unit as written for `/usr`, with this layout's paths.
    fn rewrite(&self, text: &str) -> String {
        let d = |p: &Path| p.display().to_string();
        text.replace("/usr/bin/gantry", &d(&self.bin.join("gantry")))
            .replace("/usr/lib/gantry", &d(&self.lib))
            .replace("/etc/gantry", &d(&self.etc))
            .replace("/var/lib/gantry", &d(&self.state))
            .replace("/var/cache/gantry", &d(&self.cache))
    }
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    Ok(())
}

/// Build and lay out gantry under `prefix`.
pub fn install(args: &[String]) -> Result<()> {
    let prefix = args
        .iter()
        .position(|a| a == "--prefix")
        .and_then(|i| args.get(i + 1))
        .map_or_else(|| PathBuf::from("/usr"), PathBuf::from);
    let debug = args.iter().any(|a| a == "--debug");
    let prefix = if prefix.is_absolute() {
        prefix
    } else {
        std::env::current_dir()?.join(prefix)
    };
    lay_out(&prefix, debug)
}

fn lay_out(prefix: &Path, debug: bool) -> Result<()> {
    build_plugins()?;
    if debug {
        build_native_debug()?;
    } else {
        run(cargo().args([
            "build",
            "--release",
            "-p",
            "gantry",
            "-p",
            "gantry-containerd-logger",
            "--bins",
        ]))?;
    }
    let out = root()
        .join("target")
        .join(if debug { "debug" } else { "release" });
    let l = Layout::under(prefix);
    for dir in [
        &l.bin,
        &l.lib.join("plugins"),
        &l.etc,
        &l.systemd,
        &l.state,
        &l.cache,
    ] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    copy(&out.join("gantry"), &l.bin.join("gantry"))?;
    copy(
        &out.join("gantry-containerd-logger"),
        &l.lib.join("gantry-containerd-logger"),
    )?;
    let wasm = root().join("target/wasm32-wasip2/release");
    for (_, stem) in WASM_LIBS.iter().filter(|(p, _)| !p.starts_with("fixture-")) {
        let file = format!("{stem}.wasm");
        copy(&wasm.join(&file), &l.lib.join("plugins").join(&file))?;
    }
    for p in PROFILES {
        let text = std::fs::read_to_string(root().join(format!("examples/profiles/{p}.toml")))?;
        std::fs::write(l.etc.join(format!("{p}.toml")), l.rewrite(&text))?;
    }
    let unit = std::fs::read_to_string(root().join("examples/systemd/gantry@.service"))?;
    std::fs::write(l.systemd.join("gantry@.service"), l.rewrite(&unit))?;
    eprintln!(
        "xtask: installed under {}: {}, plugins in {}, profiles ({}) in {}, the unit gantry@.service in {}",
        prefix.display(),
        l.bin.join("gantry").display(),
        l.lib.join("plugins").display(),
        PROFILES.join(", "),
        l.etc.display(),
        l.systemd.display()
    );
    Ok(())
}

/// Install into a fresh directory and check what was installed.
pub fn check() -> Result<()> {
    let prefix = std::env::temp_dir().join(format!("gantry-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&prefix);
    let result = lay_out(&prefix, true).and_then(|()| check_installed(&prefix));
    let _ = std::fs::remove_dir_all(&prefix);
    result
}

fn check_installed(prefix: &Path) -> Result<()> {
    let l = Layout::under(prefix);
    let gantry = l.bin.join("gantry");
    for p in PROFILES {
        let profile = l.etc.join(format!("{p}.toml"));
        let out = Command::new(&gantry)
            .args(["check", "--config"])
            .arg(&profile)
            .env("GANTRY_JWT_SECRET", "install-check")
            .output()?;
        if !out.status.success() {
            bail!(
                "gantry check on the installed {p} profile failed:\n{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        eprintln!("xtask: installed profile {p}: gantry check passes");
    }
    let unit = std::fs::read_to_string(l.systemd.join("gantry@.service"))?;
    verify_unit(&l, &unit)?;
    start_as_the_unit_does(&unit, "edge")
}

/// `systemd-analyze verify` on an instance of the unit, where systemd is.
fn verify_unit(l: &Layout, unit: &str) -> Result<()> {
    let Ok(analyze) = which("systemd-analyze") else {
        eprintln!("xtask: no systemd-analyze on this machine; the unit is checked by starting it");
        return Ok(());
    };
    let dir = l.state.join("unit-check");
    std::fs::create_dir_all(&dir)?;
    let instance = dir.join("gantry@edge.service");
    std::fs::write(&instance, unit)?;
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&instance)
        .output()?;
    let said = String::from_utf8_lossy(&out.stderr);
    // Units it mentions that this machine lacks (docker.service...) are
    // not the unit's fault; anything about the unit itself is.
    let own: Vec<&str> = said
        .lines()
        .filter(|l| l.contains("gantry@edge.service") && !l.contains("not found"))
        .collect();
    if !out.status.success() && !own.is_empty() {
        bail!("systemd-analyze verify refused the unit:\n{said}");
    }
    eprintln!("xtask: systemd-analyze verify takes gantry@.service");
    Ok(())
}

fn which(bin: &str) -> Result<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
        .with_context(|| format!("{bin} not found"))
}

/// Run the unit's `ExecStart` for `instance` as systemd would, wait for
/// `/healthz`, then stop it with SIGTERM and wait for it to exit.
fn start_as_the_unit_does(unit: &str, instance: &str) -> Result<()> {
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .context("the unit has no ExecStart")?
        .replace("%i", instance);
    let mut words = exec.split_whitespace();
    let program = words.next().context("an empty ExecStart")?;
    let mut child = Command::new(program)
        .args(words)
        .env("GANTRY_JWT_SECRET", "install-check")
        .spawn()
        .with_context(|| format!("starting `{exec}`"))?;
    let healthy = wait_healthy("127.0.0.1:8080", Duration::from_secs(60));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait()? {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if !healthy {
        bail!("`{exec}` did not answer /healthz on 127.0.0.1:8080 within 60 s");
    }
    match status {
        Some(s) if s.success() => {
            eprintln!("xtask: `{exec}` served /healthz and stopped on SIGTERM");
            Ok(())
        }
        other => bail!("`{exec}` did not stop cleanly on SIGTERM: {other:?}"),
    }
}

fn wait_healthy(address: &str, within: Duration) -> bool {
    use std::io::{Read, Write};
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(address) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
            let asked = s.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n");
            let mut answer = String::new();
            if asked.is_ok() && s.read_to_string(&mut answer).is_ok() && answer.contains(" 200 ") {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}
