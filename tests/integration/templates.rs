//! `gantry new`: a backend, an HTTP frontend and an MQTT frontend generated
//! into a temp dir, outside the workspace, each built into a component,
//! clippy-clean for the component and natively, and its own test run (it
//! checks the component and serves it from a real host). Then the generated
//! backend and HTTP frontend serve together: a request goes in through the
//! one and reaches the other.

use gantry_tests::builds;
use gantry_tests::config::ConfigBuilder;
use gantry_tests::gantry::Gantry;
use gantry_tests::plugins::gantry_bin;
use gantry_tests::workspace_root;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `gantry new ARGS` in `dir`; the project's directory.
fn generate(dir: &Path, args: &[&str], name: &str) -> PathBuf {
    let mut c = Command::new(gantry_bin());
    c.arg("new")
        .args(args)
        .arg("--sdk")
        .arg(workspace_root().join("plugins/sdk"))
        .current_dir(dir);
    let out = builds::run(&mut c, "gantry new");
    assert!(out.contains("created"), "{out}");
    let project = dir.join(name);
    // The workspace's lock pins the versions the SDK is tested with, and
    // lets the shared target dir reuse what other builds compiled.
    std::fs::copy(
        workspace_root().join("Cargo.lock"),
        project.join("Cargo.lock"),
    )
    .expect("copying Cargo.lock");
    project
}

/// Build, lint and test a generated project; its component.
fn build_and_test(project: &Path, name: &str) -> PathBuf {
    let cargo = |args: &[&str], what: &str| {
        let mut c = builds::cargo();
        c.args(args)
            .current_dir(project)
            .env("GANTRY_BIN", gantry_bin());
        builds::run(&mut c, &format!("{what} of {name}"))
    };
    cargo(
        &["build", "--release", "--target", "wasm32-wasip2"],
        "the component build",
    );
    cargo(
        &[
            "clippy",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--",
            "-D",
            "warnings",
        ],
        "clippy for the component",
    );
    cargo(
        &["clippy", "--all-targets", "--", "-D", "warnings"],
        "native clippy",
    );
    let tests = cargo(&["test"], "the project's tests");
    assert!(
        tests.contains("the_component_checks_and_serves ... ok"),
        "the generated host test ran:\n{tests}"
    );
    let component = builds::target_dir()
        .join("wasm32-wasip2/release")
        .join(format!("{}.wasm", name.replace('-', "_")));
    assert!(component.exists(), "{} built", component.display());
    component
}

#[test]
fn generated_plugins_build_out_of_tree_check_and_serve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let backend = generate(dir.path(), &["backend", "acme-runtime"], "acme-runtime");
    let api = generate(
        dir.path(),
        &["frontend", "acme-api", "--http", "--prefix", "/acme"],
        "acme-api",
    );
    let mqtt = generate(
        dir.path(),
        &["frontend", "acme-mqtt", "--mqtt"],
        "acme-mqtt",
    );
    assert!(
        std::fs::read_to_string(backend.join("Cargo.toml"))
            .is_ok_and(|t| t.contains("[workspace]")),
        "a project of its own, outside any workspace"
    );
    let backend_wasm = build_and_test(&backend, "acme-runtime");
    let api_wasm = build_and_test(&api, "acme-api");
    build_and_test(&mqtt, "acme-mqtt");

    // The generated frontend in front of the generated backend.
    let config = ConfigBuilder::new("templates")
        .http_frontend("acme-api", &api_wasm, "/acme")
        .raw(&format!(
            "[[backend]]\nname = \"acme-runtime\"\nplugin = \"{}\"\n",
            backend_wasm.display()
        ))
        .build();
    let home = tempfile::tempdir().expect("tempdir");
    let g = Gantry::start_in(home.path(), &config);
    let http = reqwest::blocking::Client::new();
    let token = g.token("vendor", &["USER"]);
    let send = |req: reqwest::blocking::RequestBuilder| {
        let r = req.bearer_auth(&token).send().expect("request");
        let status = r.status().as_u16();
        (status, r.json::<Value>().unwrap_or(Value::Null))
    };
    let (status, body) = send(
        http.post(g.url("/acme/workloads"))
            .json(&json!({"name": "first", "image": "example/app:1"})),
    );
    assert_eq!(status, 501, "the backend's own refusal, kind kept: {body}");
    assert!(
        body["error"]
            .as_str()
            .is_some_and(|e| e.contains("acme-runtime cannot create")),
        "{body}"
    );
    let (status, body) = send(http.get(g.url("/acme/workloads")));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["total"], 0, "nothing half-created: {body}");
    let (status, body) = send(http.post(g.url("/acme/workloads")).body("{"));
    assert_eq!(status, 400, "{body}");
}
