//! The Azure CLI, unmodified (azure-cli 2.66.0 from PyPI, the last release
//! on the 2023-05-01 Container Instances SDK), against a live gantry over
//! HTTPS and the harness's dockerd: `tests/arm/az_flow.py` registers gantry
//! as a cloud's resource manager, logs in with a managed identity whose
//! token endpoint it serves on loopback (handing out a gantry token), and
//! runs `az container create/show/list/logs/restart/stop/start/delete`,
//! asserting each command's JSON, and fetches the created group's FQDN
//! through the ingress over HTTP and HTTPS.

use gantry_tests::api::Api;
use gantry_tests::runtimes::TEST_IMAGE;
use std::process::Command;

/// The subscription and tenant the CLI signs in to (the script's too).
const SUBSCRIPTION: &str = "11111111-2222-3333-4444-555555555555";
const TENANT: &str = "00000000-0000-0000-0000-00000000a2e0";

#[test]
fn azure_cli_drives_container_groups_end_to_end() {
    let venv = gantry_tests::python::venv("azure-cli-venv", &["azure-cli==2.66.0"]);
    let arm_settings =
        format!("config = {{ subscriptions = \"{SUBSCRIPTION}\", tenant-id = \"{TENANT}\" }}");
    let config = gantry_tests::config::ConfigBuilder::new("az-cli")
        .resync_seconds(30)
        .limit("call_timeout_ms", 15_000)
        .tls_self_signed()
        .http_frontend_with(
            "arm",
            &gantry_tests::plugins::arm(),
            "prefix = \"/subscriptions\", extra_prefixes = [\"/providers\"]",
            &arm_settings,
        )
        .docker_backend();
    let arm = Api::start_with(&config.build());
    let token = arm
        .g
        .token_in_tenant("az-cli-user", &["USER"], Some(TENANT));
    gantry_tests::python::run_steps(
        Command::new(venv.join("bin/python"))
            .arg(gantry_tests::workspace_root().join("tests/arm/az_flow.py"))
            .env("AZ", venv.join("bin/az"))
            .env("GANTRY_URL", arm.g.https_url(""))
            .env("REQUESTS_CA_BUNDLE", arm.g.authority())
            .env("GANTRY_TOKEN", &token)
            .env("TEST_IMAGE", TEST_IMAGE)
            .env("GANTRY_INGRESS_PORT", arm.g.port.to_string())
            .env("GANTRY_INGRESS_TLS_PORT", arm.g.tls_port.to_string()),
        "the Azure CLI flow",
        || arm.g.log(),
        &[
            "ok az version 2.66.0",
            "ok cloud register and set",
            "ok az login --identity",
            "ok container create",
            "ok group show and exists",
            "ok container show: Running",
            "ok GET http://",
            "ok GET https://",
            "ok container list",
            "ok container logs",
            "ok container restart",
            "ok container stop: Stopped",
            "ok container start: Running",
            "ok container delete",
        ],
    );
}
