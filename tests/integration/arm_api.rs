//! The ARM frontend (Azure Container Instances) against a live gantry and the
//! harness's dockerd: the real Azure SDK from PyPI drives the container
//! group lifecycle, and raw HTTP checks api-version handling, CloudErrors,
//! long-running operation headers and the namespace shared with REST.

use gantry_tests::api::Api;
use gantry_tests::backends::Backend;
use gantry_tests::runtimes::{TEST_IMAGE, runtimes};

use serde_json::{Value, json};
use std::process::Command;

const API: &str = "api-version=2023-05-01";
const SUB: &str = "11111111-2222-3333-4444-555555555555";
const RG_PATH: &str = "/subscriptions/11111111-2222-3333-4444-555555555555/resourceGroups/Test-RG/providers/Microsoft.ContainerInstance/containerGroups";

/// The Azure SDK and what it runs on, pinned.
const AZURE_SDK: &[&str] = &[
    "azure-mgmt-containerinstance==10.1.0",
    "azure-mgmt-core==1.6.0",
    "azure-core==1.41.0",
];

fn group_body(script: &str) -> Value {
    json!({
        "location": "West Europe",
        "tags": {"env": "test"},
        "properties": {
            "osType": "Linux",
            "restartPolicy": "Always",
            "containers": [{
                "name": "main",
                "properties": {
                    "image": TEST_IMAGE,
                    "command": ["sh", "-c", script],
                    "resources": {"requests": {"cpu": 0.5, "memoryInGB": 0.5}},
                    "environmentVariables": [
                        {"name": "MODE", "value": "test"},
                        {"name": "API_KEY", "secureValue": "very-secret"}
                    ]
                }
            }]
        }
    })
}

fn code(v: &Value) -> &str {
    v["error"]["code"]
        .as_str()
        .unwrap_or("<no CloudError code>")
}

#[test]
fn azure_sdk_drives_the_container_group_lifecycle() {
    azure_sdk_flow(Backend::Docker);
}

#[test]
fn azure_sdk_drives_the_container_group_lifecycle_on_containerd() {
    azure_sdk_flow(Backend::Containerd);
}

fn azure_sdk_flow(backend: Backend) {
    let venv = gantry_tests::python::venv("azure-sdk-venv", AZURE_SDK);
    // Over HTTPS, as Azure is reached: the SDK needs no plain-http tweak.
    let arm = Api::start_with(&backend.config_builder(30).tls_self_signed().build());
    let token = arm.token("azure-sdk-user", "USER");
    gantry_tests::python::run_steps(
        Command::new(venv.join("bin/python"))
            .arg(gantry_tests::workspace_root().join("tests/arm/sdk_flow.py"))
            .env("GANTRY_URL", arm.g.https_url(""))
            .env("REQUESTS_CA_BUNDLE", arm.g.authority())
            .env("GANTRY_TOKEN", &token)
            .env("TEST_IMAGE", TEST_IMAGE),
        "the Azure SDK flow",
        || arm.g.log(),
        &[
            "ok create one-container group",
            "ok create two-container group",
            "ok get with instanceView Running",
            "ok list and list_by_resource_group",
            "ok containers.list_logs",
            "ok begin_restart",
            "ok stop",
            "ok begin_start",
            "ok begin_create_or_update on an existing group updates it",
            "ok begin_delete",
            "ok get on a missing group raises ResourceNotFoundError",
        ],
    );
    // The secure value went to the container but never into gantry's log.
    assert!(!arm.g.log().contains("s3cr3t-value"), "secure value logged");
}

#[test]
fn api_version_is_required_and_checked() {
    let arm = Api::start(30);
    let token = arm.token("versions-user", "USER");
    let (s, v) = arm.send("GET", RG_PATH, Some(&token), None);
    assert_eq!((s, code(&v)), (400, "MissingApiVersionParameter"), "{v}");
    let (s, v) = arm.send(
        "GET",
        &format!("{RG_PATH}?api-version=2015-01-01"),
        Some(&token),
        None,
    );
    assert_eq!((s, code(&v)), (400, "NoRegisteredProviderFound"), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("2023-05-01"),
        "{v}"
    );
    for version in ["2023-05-01", "2024-05-01-preview"] {
        let (s, v) = arm.send(
            "GET",
            &format!("{RG_PATH}?api-version={version}"),
            Some(&token),
            None,
        );
        assert_eq!(s, 200, "{version}: {v}");
        assert_eq!(v["value"], json!([]));
    }
    let (s, v) = arm.send(
        "GET",
        &format!("/providers/Microsoft.ContainerInstance/operations?{API}"),
        Some(&token),
        None,
    );
    assert_eq!(s, 200, "{v}");
    assert!(
        v["value"].as_array().is_some_and(|ops| ops
            .iter()
            .any(|o| o["name"] == "Microsoft.ContainerInstance/containerGroups/write")),
        "{v}"
    );
    let (s, v) = arm.send("GET", &format!("/subscriptions/{SUB}/providers/Microsoft.ContainerInstance/locations/westeurope/capabilities?{API}"), Some(&token), None);
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["value"][0]["osType"], "Linux");
}

#[test]
fn subscriptions_and_resource_groups_answer_as_the_resource_manager() {
    let arm = Api::start(30);
    let token = arm.token("subscriptions-user", "USER");
    let other = arm.token("someone-else", "USER");
    let subs = "/subscriptions?api-version=2022-12-01";
    // None configured and no group yet: nothing to list.
    let (s, v) = arm.send("GET", subs, Some(&token), None);
    assert_eq!((s, v["value"].clone()), (200, json!([])), "{v}");
    let (s, v) = arm.send(
        "GET",
        "/subscriptions?api-version=2023-05-01",
        Some(&token),
        None,
    );
    assert_eq!((s, code(&v)), (400, "NoRegisteredProviderFound"), "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("'subscriptions'"),
        "{v}"
    );
    let (s, v) = arm.send("GET", "/subscriptions", None, None);
    assert_eq!(s, 401, "{v}");

    let (s, v) = arm.send(
        "PUT",
        &format!("{RG_PATH}/listed?{API}"),
        Some(&token),
        Some(group_body("sleep 600")),
    );
    assert_eq!(s, 201, "{v}");
    // Listed once the caller has a group in it, in the caller's spelling.
    let (s, v) = arm.send("GET", subs, Some(&token), None);
    assert_eq!(s, 200, "{v}");
    let listed = v["value"].as_array().expect("value");
    assert_eq!(listed.len(), 1, "{v}");
    assert_eq!(listed[0]["id"], format!("/subscriptions/{SUB}"));
    assert_eq!(listed[0]["subscriptionId"], SUB);
    assert_eq!(listed[0]["state"], "Enabled");
    let (s, v) = arm.send(
        "GET",
        &format!("/subscriptions/{SUB}?api-version=2022-12-01"),
        Some(&token),
        None,
    );
    assert_eq!((s, v["subscriptionId"].clone()), (200, json!(SUB)), "{v}");
    // Not another caller's.
    let (s, v) = arm.send("GET", subs, Some(&other), None);
    assert_eq!((s, v["value"].clone()), (200, json!([])), "{v}");
    let (s, v) = arm.send(
        "GET",
        &format!("/subscriptions/{SUB}?api-version=2022-12-01"),
        Some(&other),
        None,
    );
    assert_eq!((s, code(&v)), (404, "SubscriptionNotFound"), "{v}");

    // A resource group is where its container groups are.
    let rg = |name: &str, t: &str| {
        arm.send(
            "GET",
            &format!("/subscriptions/{SUB}/resourcegroups/{name}?api-version=2022-09-01"),
            Some(t),
            None,
        )
    };
    let (s, v) = rg("Test-RG", &token);
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["id"],
        format!("/subscriptions/{SUB}/resourceGroups/Test-RG")
    );
    assert_eq!(v["type"], "Microsoft.Resources/resourceGroups");
    assert_eq!(v["location"], "westeurope", "{v}");
    assert_eq!(v["properties"]["provisioningState"], "Succeeded");
    let (s, v) = rg("Empty-RG", &token);
    assert_eq!((s, v["location"].clone()), (200, json!("local")), "{v}");
    // The subscription is the first caller's: another gets ARM's 403 for
    // its resource groups, naming nothing of what is in them.
    let (s, v) = rg("Test-RG", &other);
    assert_eq!((s, code(&v)), (403, "AuthorizationFailed"), "{v}");
    let (s, v) = arm.send(
        "DELETE",
        &format!("/subscriptions/{SUB}/resourcegroups/Test-RG?api-version=2022-09-01"),
        Some(&token),
        None,
    );
    assert_eq!((s, code(&v)), (405, "MethodNotAllowed"), "{v}");
    let (s, v) = arm.send(
        "DELETE",
        &format!("{RG_PATH}/listed?{API}"),
        Some(&token),
        None,
    );
    assert_eq!(s, 200, "{v}");
}

#[test]
fn bad_requests_get_cloud_errors_and_create_nothing() {
    let arm = Api::start(30);
    let token = arm.token("bad-input-user", "USER");
    let put = |name: &str, body: &str| {
        let r = arm
            .http
            .put(arm.g.url(&format!("{RG_PATH}/{name}?{API}")))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .expect("request");
        let status = r.status().as_u16();
        let v: Value = r.json().expect("a CloudError body");
        (status, v)
    };
    let valid = group_body("sleep 60");
    let with = |pointer: &str, value: Value| {
        let mut b = valid.clone();
        *b.pointer_mut(pointer).expect("pointer") = value;
        b.to_string()
    };
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("g1", "{not json".into(), "InvalidRequestContent", ""),
        ("g1", "".into(), "InvalidRequestContent", ""),
        (
            "g1",
            with("/properties/containers", json!([])),
            "InvalidRequestContent",
            "properties.containers",
        ),
        ("g1", with("/location", json!("")), "LocationRequired", ""),
        (
            "g1",
            with("/properties/restartPolicy", json!("Sometimes")),
            "InvalidRequestContent",
            "properties.restartPolicy",
        ),
        (
            "g1",
            with("/properties/osType", json!("Windows")),
            "OsTypeNotSupported",
            "",
        ),
        (
            "g1",
            with("/properties/containers/0/name", json!("Bad_Name")),
            "InvalidRequestContent",
            "properties.containers[0].name",
        ),
        (
            "g1",
            with(
                "/properties/containers/0/properties/resources",
                json!({"requests": {"cpu": 0, "memoryInGB": 1}}),
            ),
            "InvalidRequestContent",
            "properties.containers[0].properties.resources.requests.cpu",
        ),
        (
            "g1",
            with(
                "/properties/containers/0/properties/resources",
                json!({"requests": {"cpu": 1, "memoryInGB": 1, "gpu": {"count": 1, "sku": "B200"}}}),
            ),
            "InvalidRequestContent",
            "properties.containers[0].properties.resources.requests.gpu.sku",
        ),
        (
            "g1",
            with("/properties/containers/0/properties/image", json!(42)),
            "InvalidRequestContent",
            "",
        ),
        (
            "g1",
            {
                let mut b = valid.clone();
                b["properties"]["ipAddress"] = json!({"type": "Public", "ports": [{"port": 443}]});
                b.to_string()
            },
            "InvalidRequestContent",
            "properties.ipAddress.ports[0]",
        ),
        (
            "g1",
            {
                let mut b = valid.clone();
                b["properties"]["volumes"] = json!([{"name": "v", "emptyDir": {}}]);
                b.to_string()
            },
            "InvalidRequestContent",
            "properties.volumes",
        ),
        (
            "Upper-Case",
            valid.to_string(),
            "InvalidContainerGroupName",
            "",
        ),
    ];
    for (name, body, want, target) in cases {
        let (s, v) = put(name, &body);
        assert_eq!((s, code(&v)), (400, want), "{body}\n=> {v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{v}"
        );
        if !target.is_empty() {
            assert!(
                v["error"]["details"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|d| d["target"] == target)),
                "expected a detail for {target}: {v}"
            );
        }
    }
    // Nothing was created, here or in the engine.
    let (s, v) = arm.send("GET", &format!("{RG_PATH}?{API}"), Some(&token), None);
    assert_eq!((s, v["value"].clone()), (200, json!([])));
    let (_, v) = arm.send("GET", "/v1/containers", Some(&token), None);
    assert_eq!(v["total"], 0, "{v}");

    let (s, v) = arm.send(
        "GET",
        &format!("{RG_PATH}/nothing-here?{API}"),
        Some(&token),
        None,
    );
    assert_eq!((s, code(&v)), (404, "ResourceNotFound"), "{v}");
    let (s, v) = arm.send("GET", &format!("{RG_PATH}?{API}"), None, None);
    assert_eq!((s, code(&v)), (401, "AuthenticationFailed"), "{v}");
    let r = arm.raw("POST", &format!("{RG_PATH}/g1?{API}"), Some(&token), None);
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(
        r.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET, PUT, PATCH, DELETE")
    );
    let (s, v) = arm.send(
        "POST",
        &format!("{RG_PATH}/g1/containers/main/exec?{API}"),
        Some(&token),
        Some(json!({"command": "sh"})),
    );
    assert_eq!((s, code(&v)), (501, "OperationNotSupported"), "{v}");
    let (s, v) = arm.send("GET", &format!("/subscriptions/{SUB}/providers/Microsoft.ContainerInstance/locations/westeurope/operations/put.nope.1?{API}"), Some(&token), None);
    assert_eq!((s, code(&v)), (404, "OperationNotFound"), "{v}");
    let (s, v) = arm.send(
        "DELETE",
        &format!("{RG_PATH}/never-was?{API}"),
        Some(&token),
        None,
    );
    assert_eq!((s, v), (204, Value::Null));
}

#[test]
fn a_group_is_a_workload_of_its_owner_everywhere() {
    let arm = Api::start(30);
    let owner = arm.token("arm-owner", "USER");
    let other = arm.token("arm-other", "USER");
    let url = format!("{RG_PATH}/shared-web?{API}");
    let r = arm.raw(
        "PUT",
        &url,
        Some(&owner),
        Some(group_body("echo up; sleep 600")),
    );
    assert_eq!(r.status().as_u16(), 201);
    let op_url = r
        .headers()
        .get("azure-asyncoperation")
        .and_then(|v| v.to_str().ok())
        .expect("Azure-AsyncOperation header")
        .to_string();
    assert!(
        op_url.starts_with(&arm.g.url("/subscriptions/")),
        "not absolute: {op_url}"
    );
    assert!(
        op_url.contains("/providers/Microsoft.ContainerInstance/locations/westeurope/operations/"),
        "{op_url}"
    );
    assert_eq!(
        r.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let created: Value = r.json().expect("group body");
    assert_eq!(
        created["id"],
        format!(
            "/subscriptions/{SUB}/resourceGroups/Test-RG/providers/Microsoft.ContainerInstance/containerGroups/shared-web"
        )
    );
    assert_eq!(
        created["type"],
        "Microsoft.ContainerInstance/containerGroups"
    );
    assert_eq!(created["location"], "westeurope");
    let env = &created["properties"]["containers"][0]["properties"]["environmentVariables"];
    assert_eq!(
        env,
        &json!([{"name": "MODE", "value": "test"}, {"name": "API_KEY"}])
    );

    let (s, op) = arm.send("GET", &op_url, Some(&owner), None);
    assert_eq!((s, op["status"].as_str()), (200, Some("Succeeded")), "{op}");
    // Another user: the subscription is the owner's, and every path in it
    // answers ARM's 403, naming nothing of what is there.
    let (s, op) = arm.send("GET", &op_url, Some(&other), None);
    assert_eq!(
        (s, code(&op)),
        (403, "AuthorizationFailed"),
        "another user polled: {op}"
    );

    // The same workload, through REST, for its owner only.
    let (_, mine) = arm.send("GET", "/v1/containers", Some(&owner), None);
    assert_eq!(mine["total"], 1, "{mine}");
    assert_eq!(mine["items"][0]["name"], "shared-web");
    let id = mine["items"][0]["id"].as_str().expect("id").to_string();
    let (_, theirs) = arm.send("GET", "/v1/containers", Some(&other), None);
    assert_eq!(theirs["total"], 0, "{theirs}");
    let (s, v) = arm.send("GET", &url, Some(&other), None);
    assert_eq!((s, code(&v)), (403, "AuthorizationFailed"), "{v}");
    // Resource group names are case-insensitive, as in ARM.
    let (s, v) = arm.send(
        "GET",
        &url.replace("Test-RG", "test-rg"),
        Some(&owner),
        None,
    );
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["properties"]["instanceView"]["state"], "Running", "{v}");
    assert_eq!(runtimes().containers_of(&id).len(), 1);

    // Tags change in place.
    let (s, v) = arm.send(
        "PATCH",
        &url,
        Some(&owner),
        Some(json!({"tags": {"env": "prod", "owner": "me"}})),
    );
    assert_eq!(
        (s, v["tags"].clone()),
        (200, json!({"env": "prod", "owner": "me"})),
        "{v}"
    );

    let r = arm.raw("DELETE", &url, Some(&owner), None);
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("azure-asyncoperation").is_some());
    let deleted: Value = r.json().expect("deleted group body");
    assert_eq!(deleted["properties"]["provisioningState"], "Deleting");
    assert!(
        runtimes().containers_of(&id).is_empty(),
        "containers left after delete"
    );
    let (s, _) = arm.send("GET", &url, Some(&owner), None);
    assert_eq!(s, 404);
    let (s, _) = arm.send("DELETE", &url, Some(&owner), None);
    assert_eq!(s, 204);
}
