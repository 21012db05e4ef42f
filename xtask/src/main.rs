//! `cargo xtask`: build the plugins, run the host on its embedded defaults,
//! run the whole test suite.
//!
//! - `cargo xtask build`  builds every wasm32-wasip2 crate (plugins and test fixtures),
//!   and the out-of-tree example plugins under `examples/` into `target/out-of-tree`
//! - `cargo xtask serve`  builds the plugins (not the fixtures or examples) and the
//!   release host, then runs `gantry serve` on the embedded dev profile
//! - `cargo xtask test`   installs what the tests need if missing, builds, runs every test
//! - `cargo xtask lint`   `cargo fmt --check` and `cargo clippy -D warnings`, native and wasm
//! - `cargo xtask install [--prefix P] [--debug]`  the binary, plugins, containerd log
//!   driver, profiles and systemd unit laid out under `/usr` (or `P`)
//! - `cargo xtask install-check`  that layout in a fresh directory, checked: every
//!   profile passes `gantry check`, the unit verifies and starts

mod install;

use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

// The components to build: one list, shared with the tests' support.
#[path = "../../tests/support/wasm_plugins.rs"]
mod wasm_plugins;
use wasm_plugins::{WASM_BINS, WASM_LIBS};

/// Debian packages the integration tests drive.
const PACKAGES: &[(&str, &str)] = &[
    ("dockerd", "docker.io"),
    ("containerd", "containerd"),
    ("runc", "runc"),
    ("busybox", "busybox-static"),
    ("mosquitto", "mosquitto"),
    ("ctr", "containerd"),
    ("python3", "python3-venv"),
    ("docker-registry", "docker-registry"),
    ("podman", "podman"),
    ("catatonit", "catatonit"),
];

/// Example plugins: standalone Cargo projects outside the workspace (each
/// with its own `[workspace]` and lock file), built as a third party would
/// build them, into `target/out-of-tree` (shared with the tests' out-of-tree
/// builds, so their crates.io dependencies compile once).
const EXAMPLES: &[&str] = &["examples/podman-backend"];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: {cmd:?}");
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn have(bin: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|d| d.join(bin).is_file())
            || ["/usr/sbin", "/sbin", "/usr/bin"]
                .iter()
                .any(|d| Path::new(d).join(bin).is_file())
    })
}

fn ensure_wasm_target() -> Result<()> {
    let out = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(root())
        .output();
    match out {
        Ok(o)
            if String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == "wasm32-wasip2") =>
        {
            Ok(())
        }
        Ok(_) => run(Command::new("rustup")
            .args(["target", "add", "wasm32-wasip2"])
            .current_dir(root())),
        Err(_) => {
            eprintln!("xtask: rustup not found; assuming the wasm32-wasip2 target is installed");
            Ok(())
        }
    }
}

fn ensure_packages() -> Result<()> {
    let mut missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|(bin, _)| !have(bin))
        .map(|(_, pkg)| *pkg)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {missing:?}");
    let sudo = |args: &[&str]| -> Command {
        let is_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| o.stdout.starts_with(b"0"))
            .unwrap_or(false);
        let mut c = if is_root {
            Command::new(args[0])
        } else {
            let mut c = Command::new("sudo");
            c.arg(args[0]);
            c
        };
        c.args(&args[1..]).env("DEBIAN_FRONTEND", "noninteractive");
        c
    };
    run(&mut sudo(&["apt-get", "update", "-q"]))?;
    let mut args = vec!["apt-get", "install", "-y", "-q", "--no-install-recommends"];
    args.extend(&missing);
    if run(&mut sudo(&args)).is_err() {
        // apt installs fail transiently here and there: retry once, then repair.
        let _ = run(&mut sudo(&["apt-get", "install", "-f", "-y"]));
        run(&mut sudo(&args))?;
    }
    Ok(())
}

/// `cargo` in example `dir`, its output under `target/out-of-tree`.
fn example_cargo(dir: &str) -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root().join(dir))
        .env("CARGO_TARGET_DIR", root().join("target/out-of-tree"));
    c
}

fn build_examples() -> Result<()> {
    for dir in EXAMPLES {
        run(example_cargo(dir).args(["build", "--release", "--target", "wasm32-wasip2"]))?;
    }
    Ok(())
}

fn build_wasm() -> Result<()> {
    build_wasm_libs(WASM_LIBS.iter())?;
    let mut c = cargo();
    c.args(["build", "--release", "--target", "wasm32-wasip2"]);
    for (p, _) in WASM_BINS {
        c.args(["-p", p]);
    }
    run(&mut c)?;
    build_examples()
}

/// The plugins a profile can name (no test fixtures, no examples): what
/// `cargo xtask serve` needs.
fn build_plugins() -> Result<()> {
    build_wasm_libs(WASM_LIBS.iter().filter(|(p, _)| !p.starts_with("fixture-")))
}

fn build_wasm_libs<'a>(libs: impl Iterator<Item = &'a (&'a str, &'a str)>) -> Result<()> {
    ensure_wasm_target()?;
    for (p, _) in libs {
        run(cargo().args([
            "rustc",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--lib",
            "--crate-type",
            "cdylib",
            "-p",
            p,
        ]))?;
    }
    Ok(())
}

/// The wasm32 packages clippy checks in one invocation each: those whose
/// SDK world features unify without conflict. Every component package must
/// be in exactly one.
const WASM_CLIPPY_GROUPS: &[&[&str]] = &[
    &[
        "gantry-rest",
        "gantry-arm",
        "gantry-kanto",
        "gantry-docker",
        "gantry-containerd",
        "fixture-misbehave",
        "fixture-control-rpc",
        "fixture-stall-backend",
    ],
    &["gantry-swarm"],
    &["gantry-gpu-scheduler", "fixture-passthrough-scheduler"],
    &["fixture-compat-0-1-0"],
    &["fixture-wrong-world"],
];

/// [`WASM_CLIPPY_GROUPS`], checked against the list of components.
fn wasm_clippy_groups() -> Result<&'static [&'static [&'static str]]> {
    for (p, _) in WASM_LIBS.iter().chain(WASM_BINS) {
        let n = WASM_CLIPPY_GROUPS.iter().filter(|g| g.contains(p)).count();
        if n != 1 {
            bail!("component package `{p}` is in {n} clippy groups (xtask's WASM_CLIPPY_GROUPS)");
        }
    }
    Ok(WASM_CLIPPY_GROUPS)
}

/// Plugins whose native unit tests and lints run one package at a time
/// (outside the default members: their SDK world feature would be unified
/// with the backends').
const ALONE: &[&str] = &["gantry-gpu-scheduler", "gantry-swarm"];

/// Run the test suite with one set of runtimes shared by every test binary.
fn test_with_runtimes(extra: &[String]) -> Result<()> {
    for p in ALONE {
        run(cargo().args(["test", "-p", p]))?;
    }
    // The examples' unit tests, natively.
    for dir in EXAMPLES {
        run(example_cargo(dir).args(["test"]))?;
    }
    build_native_debug()?;
    with_runtimes("test", |dir| {
        run(cargo()
            .args(["test", "--no-fail-fast"])
            .args(extra)
            .env("GANTRY_TEST_RUNTIMES", dir))
    })
}

/// Every native binary and test of the default members, in debug: built in
/// one invocation, so the binaries (gantry, the runtimes launcher, the
/// containerd log driver) share the tests' feature resolution and
/// `cargo test` afterwards builds nothing again (a `cargo build --bins` of
/// its own would resolve dependencies' features without the tests' and
/// compile wasmtime a second time).
fn build_native_debug() -> Result<()> {
    run(cargo().args(["build", "--bins", "--tests"]))
}

/// Start the harness's runtimes under a fresh temp dir, run `f` with it, and
/// stop them by PID whatever `f` returned.
fn with_runtimes(what: &str, f: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("gantry-{what}-run-{}", std::process::id()));
    let runtimes = root().join("target/debug/gantry-test-runtimes");
    run(Command::new(&runtimes).arg("start").arg(&dir))?;
    let result = f(&dir);
    if let Err(e) = run(Command::new(&runtimes).arg("stop").arg(&dir)) {
        eprintln!("xtask: stopping the {what} runtimes: {e:#}");
    }
    result
}

/// The benchmarks of the tests crate's `bench` binary, run by `cargo xtask
/// bench` in this order (`list-scale` last: it leaves 10,000 containers).
const BENCHES: &[&str] = &[
    "serve-start",
    "rest-get",
    "docker-create",
    "containerd-create",
    "kanto",
    "gpu-placement",
    "hot-swap",
    "ingress",
    "swarm",
    "fuzz",
    "list-scale",
];

/// `cargo xtask bench`: the release host, the plugins and the harness's
/// runtimes, then every benchmark of the `bench` binary (built in release,
/// so what runs in its own process measures the release build); each
/// prints its table and writes JSON under `target/bench/`. `--smoke` runs
/// each briefly on the debug host and binary (what CI does, so they cannot
/// rot; its figures mean nothing).
fn bench(args: &[String]) -> Result<()> {
    let smoke = args.iter().any(|a| a == "--smoke");
    if !smoke {
        run(cargo().args(["build", "--release", "-p", "gantry"]))?;
        run(cargo().args(["build", "--release", "-p", "gantry-tests", "--bin", "bench"]))?;
    }
    // The runtimes launcher and the containerd log driver (and, for a
    // smoke pass, the debug host and `bench`), as the tests build them.
    build_native_debug()?;
    let profile = if smoke { "debug" } else { "release" };
    with_runtimes("bench", |dir| {
        let mut result = Ok(());
        for b in BENCHES {
            let mut c = Command::new(root().join("target").join(profile).join("bench"));
            // A backtrace on every error slows wasmtime measurably.
            c.arg(b)
                .env("GANTRY_TEST_RUNTIMES", dir)
                .env_remove("RUST_BACKTRACE");
            if smoke {
                c.env("GANTRY_BENCH_SMOKE", "1");
            } else {
                c.env("GANTRY_BIN", root().join("target/release/gantry"));
            }
            let r = run(&mut c);
            if r.is_err() {
                result = r;
            }
        }
        result
    })
}

/// Where the Docker engine gantry's embedded defaults drive is expected.
fn docker_socket() -> Option<PathBuf> {
    match std::env::var("DOCKER_HOST") {
        Ok(h) if !h.is_empty() => h.strip_prefix("unix://").map(PathBuf::from),
        _ => Some(PathBuf::from("/var/run/docker.sock")),
    }
}

/// Whether a Docker engine answers `/_ping` on `sock`.
fn engine_answers(sock: &Path) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::os::unix::net::UnixStream::connect(sock) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    if s.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    answer.starts_with("HTTP/1.") && answer.contains(" 200 ")
}

/// `cargo xtask serve`: run gantry on its embedded defaults. When no Docker
/// engine answers where they point, start a private one the way the test
/// harness does (installing the Debian packages if missing), and stop it
/// when gantry stops.
fn serve(args: &[String]) -> Result<()> {
    run(cargo().args(["build", "--release", "-p", "gantry"]))?;
    let gantry = root().join("target/release/gantry");
    let mut cmd = Command::new(&gantry);
    cmd.arg("serve").args(args).current_dir(root());
    // Registered before anything is started: from here on Ctrl-C and TERM
    // are passed to gantry, and xtask lives on to clean up.
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    let own_config = args
        .iter()
        .any(|a| a == "--config" || a.starts_with("--config=") || a.starts_with("-c"));
    let mut _engine: Option<PrivateEngine> = None;
    match docker_socket() {
        Some(sock) if !own_config && !engine_answers(&sock) => {
            let engine = PrivateEngine::start()?;
            eprintln!(
                "xtask: no Docker engine answers at {}; started a private one at {} (stopped when gantry stops)",
                sock.display(),
                engine.docker_host()
            );
            cmd.env("DOCKER_HOST", engine.docker_host());
            _engine = Some(engine);
        }
        _ => {}
    }
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", gantry.display()))?;
    let pid = child.id().to_string();
    let handle = signals.handle();
    let forward = std::thread::spawn(move || {
        for _ in signals.forever() {
            let _ = Command::new("kill").args(["-TERM", &pid]).status();
        }
    });
    let status = child.wait()?;
    handle.close();
    let _ = forward.join();
    if !status.success() && status.code().is_some() {
        bail!("gantry exited with {status}");
    }
    Ok(())
}

/// A Docker engine started the way the test harness starts one, under
/// `target/gantry-engine`; stopped when dropped, whatever happened since.
struct PrivateEngine {
    runtimes: PathBuf,
    dir: PathBuf,
}

impl PrivateEngine {
    fn start() -> Result<PrivateEngine> {
        ensure_packages()?;
        // The launcher alone: a small crate, no second build of the host.
        run(cargo().args([
            "build",
            "-p",
            "gantry-test-runtimes",
            "--bin",
            "gantry-test-runtimes",
        ]))?;
        let engine = PrivateEngine {
            runtimes: root().join("target/debug/gantry-test-runtimes"),
            dir: root().join("target/gantry-engine"),
        };
        // One left over by an xtask that was killed outright.
        let _ = Command::new(&engine.runtimes)
            .arg("stop")
            .arg(&engine.dir)
            .output();
        let out = Command::new(&engine.runtimes)
            .arg("start")
            .arg(&engine.dir)
            .output()?;
        if !out.status.success() {
            bail!(
                "starting a private Docker engine failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The README's tour runs busybox:1.36; no registry is reachable, so
        // the harness's busybox image answers to that name too.
        let _ = Command::new("docker")
            .args(["-H", &engine.docker_host()])
            .args(["tag", "gantry-test/busybox:1.0", "busybox:1.36"])
            .output();
        Ok(engine)
    }

    fn docker_host(&self) -> String {
        format!("unix://{}", self.dir.join("docker.sock").display())
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        if let Err(e) = run(Command::new(&self.runtimes).arg("stop").arg(&self.dir)) {
            eprintln!("xtask: stopping the private Docker engine: {e:#}");
        }
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("build") => build_wasm(),
        Some("serve") => {
            build_plugins()?;
            serve(&args[1..])
        }
        Some("test") => {
            ensure_packages()?;
            build_wasm()?;
            test_with_runtimes(&args[1..])
        }
        Some("bench") => {
            ensure_packages()?;
            build_wasm()?;
            bench(&args[1..])
        }
        Some("install") => install::install(&args[1..]),
        Some("install-check") => install::check(),
        Some("lint") => {
            build_wasm()?;
            run(cargo().args(["fmt", "--all", "--", "--check"]))?;
            run(cargo().args(["clippy", "--all-targets", "--", "-D", "warnings"]))?;
            for p in ALONE {
                run(cargo().args(["clippy", "-p", p, "--all-targets", "--", "-D", "warnings"]))?;
            }
            // Packages whose SDK features may be unified are checked together;
            // `backend` and `scheduler` both export `driver`, and `cluster`
            // changes the backend's world, so those go apart.
            for group in wasm_clippy_groups()? {
                let mut c = cargo();
                c.args(["clippy", "--release", "--target", "wasm32-wasip2"]);
                for p in group.iter() {
                    c.args(["-p", p]);
                }
                run(c.args(["--", "-D", "warnings"]))?;
            }
            for dir in EXAMPLES {
                run(example_cargo(dir).args(["fmt", "--", "--check"]))?;
                run(example_cargo(dir).args(["clippy", "--all-targets", "--", "-D", "warnings"]))?;
                run(example_cargo(dir).args([
                    "clippy",
                    "--release",
                    "--target",
                    "wasm32-wasip2",
                    "--",
                    "-D",
                    "warnings",
                ]))?;
            }
            Ok(())
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <build|serve|test|bench|lint|install|install-check> [args...]"
            );
            std::process::exit(2)
        }
    }
}
