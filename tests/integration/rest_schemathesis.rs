//! schemathesis (from PyPI) against the REST frontend's own OpenAPI document,
//! served by a live gantry on the harness's dockerd: `--checks all`, bounded
//! in examples and request time.

use gantry_tests::gantry::Gantry;
use gantry_tests::rpc::docker_config;
use std::path::PathBuf;
use std::process::Command;

const SCHEMATHESIS: &str = "schemathesis==4.32.5";

/// schemathesis, in a venv kept under `target/` between runs.
fn schemathesis() -> PathBuf {
    gantry_tests::python::venv("schemathesis-venv", &[SCHEMATHESIS]).join("bin/schemathesis")
}

#[test]
fn schemathesis_finds_no_failures() {
    let st = schemathesis();
    let dir = tempfile::tempdir().expect("tempdir");
    let g = Gantry::start_in(dir.path(), &docker_config(30));
    let token = g.token("schemathesis-user", &["USER"]);
    gantry_tests::python::run_steps(
        Command::new(st)
            .arg("run")
            .arg(g.url("/v1/openapi.json"))
            .args([
                "--checks",
                "all",
                "--max-examples",
                "12",
                "--seed",
                "20261123",
                "--request-timeout",
                "60",
            ])
            // The log stream follows forever by design; its behaviour is tested in rest_api.rs.
            .args(["--exclude-path", "/v1/containers/{id}/logs"])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            .current_dir(dir.path())
            .env("NO_COLOR", "1"),
        "schemathesis",
        || tail(&g.log(), 40),
        &[" passed"],
    );
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
