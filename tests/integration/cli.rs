//! `gantry check`, `gantry serve` and `gantry token` from the command line.

use gantry_tests::plugins::{compat_0_1_0, docker, gantry_bin, misbehave, wrong_world};
use gantry_tests::workspace_root;
use std::process::Command;

fn gantry(args: &[&str]) -> (i32, String) {
    let out = Command::new(gantry_bin())
        .args(args)
        .current_dir(workspace_root())
        .output()
        .expect("run gantry");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn write(dir: &std::path::Path, text: &str) -> String {
    let p = dir.join("gantry.toml");
    std::fs::write(&p, text).expect("write config");
    p.display().to_string()
}

#[test]
fn check_names_the_missing_export_of_a_plugin_with_the_wrong_world() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write(
        dir.path(),
        &format!(
            "[server]\ncache_dir = \"{}/cache\"\n\n[[backend]]\nname = \"impostor\"\nplugin = \"{}\"\n",
            dir.path().display(),
            wrong_world().display()
        ),
    );
    let (code, out) = gantry(&["check", "--config", &cfg]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("plugin `impostor`"), "{out}");
    assert!(
        out.contains("missing export `gantry:plugin/driver@0.1.x`"),
        "{out}"
    );
    assert!(
        out.contains("wasi:cli/run"),
        "the message says what it exports instead: {out}"
    );
    // serve refuses to start on it, with the same message.
    let (code, out) = gantry(&["serve", "--config", &cfg]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("missing export `gantry:plugin/driver@0.1.x`"),
        "{out}"
    );
}

#[test]
fn check_names_the_missing_import_of_a_frontend_loaded_as_a_backend() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write(
        dir.path(),
        &format!(
            "[server]\ncache_dir = \"{}/cache\"\n\n[[backend]]\nname = \"confused\"\nplugin = \"{}\"\n",
            dir.path().display(),
            misbehave().display()
        ),
    );
    let (code, out) = gantry(&["check", "--config", &cfg]);
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains("plugin `confused`") && out.contains("gantry:plugin/driver"),
        "{out}"
    );
}

#[test]
fn the_world_is_read_from_the_component_and_a_table_that_disagrees_is_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write(
        dir.path(),
        &format!(
            "[server]\ncache_dir = \"{}/cache\"\n\n\
             [[frontend]]\nname = \"runtime-as-api\"\nplugin = \"{}\"\nhttp = {{ prefix = \"/x\" }}\n\n\
             [[frontend]]\nname = \"mqtt-as-api\"\nplugin = \"{}\"\nhttp = {{ prefix = \"/y\" }}\n\n\
             [[backend]]\nname = \"mqtt-as-runtime\"\nplugin = \"{}\"\n",
            dir.path().display(),
            docker().display(),
            compat_0_1_0().display(),
            compat_0_1_0().display(),
        ),
    );
    let (code, out) = gantry(&["check", "--config", &cfg]);
    assert_ne!(code, 0, "{out}");
    for (name, table, world) in [
        (
            "runtime-as-api",
            "a [[frontend]] with `http`",
            "gantry:plugin/backend@",
        ),
        (
            "mqtt-as-api",
            "a [[frontend]] with `http`",
            "gantry:plugin/mqtt-frontend@",
        ),
        (
            "mqtt-as-runtime",
            "a [[backend]]",
            "gantry:plugin/mqtt-frontend@",
        ),
    ] {
        let line = out
            .lines()
            .find(|l| l.contains(&format!("plugin `{name}`")))
            .unwrap_or_else(|| panic!("no line about {name}: {out}"));
        assert!(
            line.contains(&format!("listed as {table}"))
                && line.contains(&format!("implements world {world}")),
            "{line}"
        );
    }
    // serve refuses to start on a plugin in the wrong table, naming both worlds.
    let (code, out) = gantry(&["serve", "--config", &cfg]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("implements world"), "{out}");
}

#[test]
fn check_accepts_a_fitting_plugin() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write(
        dir.path(),
        &format!(
            "[server]\ncache_dir = \"{}/cache\"\n\n[[frontend]]\nname = \"fx\"\nplugin = \"{}\"\nhttp = {{ prefix = \"/fx\" }}\n",
            dir.path().display(),
            misbehave().display()
        ),
    );
    let (code, out) = gantry(&["check", "--config", &cfg]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("ok      fx (gantry:plugin/http-frontend@0.1.5)"),
        "{out}"
    );
}

#[test]
fn unknown_config_keys_are_errors_naming_key_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write(
        dir.path(),
        "[server]\nlisten = \"127.0.0.1:0\"\n\n[[backend]]\nname = \"d\"\nplugin = \"d.wasm\"\nendpoitns = {}\n",
    );
    let (code, out) = gantry(&["check", "--config", &cfg]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("line 7") && out.contains("endpoitns"), "{out}");
}

#[test]
fn check_on_a_profile_says_which_plugins_to_build() {
    let dir = tempfile::tempdir().expect("tempdir");
    let profile = std::fs::read_to_string(workspace_root().join("examples/profiles/dev.toml"))
        .expect("dev profile");
    // The same profile, with plugin paths pointing at a build directory that has nothing in it.
    let cfg = write(
        dir.path(),
        &profile.replace(
            "../../target/wasm32-wasip2/release",
            &format!("{}/target/wasm32-wasip2/release", dir.path().display()),
        ),
    );
    let (code, out) = gantry(&["check", "--config", &cfg]);
    assert_ne!(code, 0, "{out}");
    for plugin in ["rest", "arm", "kanto", "docker"] {
        assert!(
            out.contains(&format!("plugin `{plugin}`")),
            "{plugin} missing from: {out}"
        );
    }
    assert!(out.contains("cargo xtask build"), "{out}");
}

#[test]
fn every_profile_parses() {
    for p in ["dev", "cloud", "edge", "edge-dev", "swarm"] {
        let path = workspace_root().join(format!("examples/profiles/{p}.toml"));
        let (_, out) = gantry(&["check", "--config", &path.display().to_string()]);
        assert!(!out.contains("line "), "{p}.toml does not parse: {out}");
    }
}

#[test]
fn dev_profile_serves_health_even_before_its_plugins_exist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = gantry_tests::free_port();
    let profile = std::fs::read_to_string(workspace_root().join("examples/profiles/dev.toml"))
        .expect("dev profile");
    let cfg = profile
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"))
        .replace(
            "127.0.0.1:8443",
            &format!("127.0.0.1:{}", gantry_tests::free_port()),
        )
        .replace(
            "gantry-dev.db",
            &dir.path().join("dev.db").display().to_string(),
        )
        .replace(
            "../../target",
            &workspace_root().join("target").display().to_string(),
        );
    let cfg = write(dir.path(), &cfg);
    let mut child = Command::new(gantry_bin())
        .args(["serve", "--config", &cfg])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut healthy = false;
    while std::time::Instant::now() < deadline && !healthy {
        healthy = reqwest::blocking::get(format!("http://127.0.0.1:{port}/healthz"))
            .is_ok_and(|r| r.status().is_success());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        healthy,
        "gantry serve --config dev.toml did not answer /healthz"
    );
}

#[test]
fn token_mints_a_jwt_with_the_configured_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = write(
        dir.path(),
        "[auth]\nhs256_secret_env = \"GANTRY_TEST_UNSET_SECRET\"\n",
    );
    let (code, out) = gantry(&["token", "--config", &cfg, "--sub", "u1"]);
    assert_ne!(code, 0, "minting without a secret must fail: {out}");
    assert!(out.contains("GANTRY_TEST_UNSET_SECRET"), "{out}");
    let out = Command::new(gantry_bin())
        .args(["token", "--config", &cfg, "--sub", "u1", "--role", "USER"])
        .env("GANTRY_TEST_UNSET_SECRET", "s")
        .output()
        .expect("token");
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .split('.')
            .count(),
        3,
        "a JWT has three parts"
    );
}

#[test]
fn check_plugin_names_every_problem_of_one_file_with_what_the_world_expects() {
    let (code, out) = gantry(&[
        "check",
        "--plugin",
        &docker().display().to_string(),
        "--world",
        "backend",
    ]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("world gantry:plugin/backend@0.1.5") && out.ends_with("ok\n"),
        "{out}"
    );

    // An HTTP frontend checked as a backend: the missing export with the
    // functions it must have, and the import a backend is not given.
    let (code, out) = gantry(&[
        "check",
        "--plugin",
        &misbehave().display().to_string(),
        "--world",
        "backend",
        "--json",
    ]);
    assert_ne!(code, 0, "{out}");
    let report: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    let problems = report["problems"].as_array().expect("problems");
    let kinds: Vec<&str> = problems.iter().filter_map(|p| p["kind"].as_str()).collect();
    assert_eq!(kinds, ["missing-export", "foreign-import"], "{report}");
    assert!(
        problems[0]["expected"].as_array().is_some_and(|e| e
            .iter()
            .any(|l| l == "capabilities: func() -> result<backend-capabilities, error>;")),
        "{report}"
    );
    assert!(
        problems[1]["message"]
            .as_str()
            .is_some_and(|m| m.contains("gantry:plugin/control")
                && m.contains("worlds http-frontend, mqtt-frontend do")),
        "{report}"
    );

    // Without --world, the world is read from the exports.
    let (code, out) = gantry(&["check", "--plugin", &compat_0_1_0().display().to_string()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("mqtt-frontend@0.1.5 (read from its exports)"),
        "{out}"
    );
    let (code, out) = gantry(&[
        "check",
        "--plugin",
        &docker().display().to_string(),
        "--world",
        "daemon",
    ]);
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("unknown world `daemon`"), "{out}");
}
