//! The GPU scheduler stacked on the Docker and containerd backends, on a
//! config-declared inventory of mixed models (2 × a100 80 GiB, 2 × t4 16 GiB)
//! whose device nodes are harmless stand-ins (character devices 1:3, the
//! numbers of `/dev/null`, made in the test's directory). Real workloads on
//! the harness's runtimes are placed, seen through REST and ARM, see their
//! devices and environment inside the container, wait when the GPUs are
//! taken, start when a holder goes, keep their GPUs across a host restart,
//! and are refused, leaving nothing, when they can never fit.

use gantry_tests::api::Api;
use gantry_tests::config::ConfigBuilder;
use gantry_tests::plugins;
use gantry_tests::rpc::{Rpc, frontends};
use gantry_tests::runtimes::{TEST_IMAGE, runtimes};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

const USER: &str = "0c6f3d55-7a1e-4d59-9a55-3f4fb1e1a0c4";
const SUB: &str = "00000000-0000-0000-0000-000000000001";

/// Index, UUID, model, MiB of each declared GPU.
const GPUS: [(u32, &str, &str, u64); 4] = [
    (0, "GPU-a100-0", "a100", 81920),
    (1, "GPU-a100-1", "a100", 81920),
    (2, "GPU-t4-2", "t4", 16384),
    (3, "GPU-t4-3", "t4", 16384),
];

/// A stand-in GPU device node at `path`: a character device 1:3.
fn make_node(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: mknod reads the NUL-terminated path and writes nothing of ours.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) };
    assert_eq!(
        rc,
        0,
        "mknod {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// The stand-in nodes in `dir/dev`, and the `[devices]` table declaring them.
fn inventory(dir: &Path) -> String {
    std::fs::create_dir_all(dir.join("dev")).expect("dev dir");
    let mut t = format!(
        "[devices]\nsource = \"config\"\nhealth_interval_ms = 200\ncdi_dirs = [\"{}\"]\n\n",
        dir.join("cdi").display()
    );
    for (index, uuid, model, mib) in GPUS {
        let node = dir.join(format!("dev/gpu{index}"));
        make_node(&node);
        t.push_str(&format!(
            "[[devices.gpus]]\nindex = {index}\nuuid = \"{uuid}\"\nmodel = \"{model}\"\n\
             memory_mib = {mib}\ndevice = \"{}\"\n\n",
            node.display()
        ));
    }
    t
}

/// Frontends, `backend` (its table already in `base`), the GPU scheduler on
/// it, and the inventory.
fn config(base: ConfigBuilder, downstream: &str, dir: &Path) -> String {
    base.raw(&format!(
        "[[backend]]\nname = \"gpu\"\nplugin = \"{}\"\ndownstream = \"{downstream}\"\n\
         config = {{ policy = \"binpack\" }}\n\n\
         [placement]\ndefault = \"{downstream}\"\ngpu = \"gpu\"\n\n{}",
        plugins::gpu_scheduler().display(),
        inventory(dir)
    ))
    .build()
}

fn start_on_docker() -> Api {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(
        frontends("gpu-tests", 1, 10_000).docker_backend(),
        "docker",
        dir.path(),
    );
    Api::start_in(dir, &cfg)
}

/// A container printing which stand-in GPUs and which variable it sees.
const PROBE: &str = "for d in /dev/nvidia*; do [ -c $d ] && echo dev=$d; done; \
                     echo visible=$NVIDIA_VISIBLE_DEVICES; exec sleep 3600";

fn rest_body(name: &str, gpu: u32, models: &[&str]) -> Value {
    json!({
        "name": name, "image": TEST_IMAGE, "gpu": gpu, "desiredGPUs": models,
        "command": ["sh", "-c", PROBE],
    })
}

fn rest_create(api: &Api, token: &str, body: Value) -> Value {
    let (status, c) = api.send("POST", "/v1/containers", Some(token), Some(body));
    assert_eq!(status, 201, "{c}");
    c
}

/// Poll the REST container until `pred` holds (at most 60 s).
fn rest_wait(api: &Api, token: &str, id: &str, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let c = rest_get(api, token, id);
        if pred(&c) {
            return c;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {c}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn rest_delete(api: &Api, token: &str, id: &str) {
    let (status, e) = api.send("DELETE", &format!("/v1/containers/{id}"), Some(token), None);
    assert_eq!(status, 204, "{e}");
}

fn rest_get(api: &Api, token: &str, id: &str) -> Value {
    let (status, c) = api.send("GET", &format!("/v1/containers/{id}"), Some(token), None);
    assert_eq!(status, 200, "{c}");
    c
}

/// Wait until `/metrics` says the GPU `uuid` is (un)healthy.
fn wait_health(api: &Api, uuid: &str, healthy: bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let want = if healthy { " 1" } else { " 0" };
    loop {
        let text = api
            .raw("GET", "/metrics", None, None)
            .text()
            .unwrap_or_default();
        let line = text
            .lines()
            .find(|l| {
                l.starts_with("gantry_gpu_healthy{") && l.contains(&format!("uuid=\"{uuid}\""))
            })
            .map(str::to_string);
        if line.as_deref().is_some_and(|l| l.ends_with(want)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{uuid} never turned healthy={healthy}: {line:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn uuids(c: &Value) -> Vec<String> {
    let mut u: Vec<String> = c["assignedGPUs"]
        .as_array()
        .unwrap_or_else(|| panic!("assignedGPUs in {c}"))
        .iter()
        .filter_map(|g| g["uuid"].as_str().map(str::to_string))
        .collect();
    u.sort();
    u
}

/// What the probe printed, once it printed its `visible=` line.
fn probe_output(rpc: &Rpc, id: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let lines: Vec<String> = rpc
            .logs(id, "")
            .text()
            .expect("logs")
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|l| l["line"].as_str().map(str::to_string))
            .collect();
        if lines.iter().any(|l| l.starts_with("visible=")) {
            return lines;
        }
        assert!(Instant::now() < deadline, "no probe output: {lines:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn arm_path(name: &str) -> String {
    format!(
        "/subscriptions/{SUB}/resourceGroups/gpu-rg/providers/Microsoft.ContainerInstance/containerGroups/{name}?api-version=2023-05-01"
    )
}

fn arm_group(sku: &str, count: u32) -> Value {
    json!({
        "location": "westeurope",
        "properties": {
            "osType": "Linux",
            "restartPolicy": "Always",
            "containers": [{"name": "infer", "properties": {
                "image": TEST_IMAGE,
                "command": ["sh", "-c", PROBE],
                "resources": {"requests": {"cpu": 0.5, "memoryInGB": 0.5,
                    "gpu": {"count": count, "sku": sku}}}
            }}]
        }
    })
}

/// The ARM events of the group's first container.
fn arm_events(g: &Value) -> Vec<(String, String)> {
    g["properties"]["containers"][0]["properties"]["instanceView"]["events"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|e| {
                    (
                        e["name"].as_str().unwrap_or("").to_string(),
                        e["message"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn gpu_workloads_are_placed_queued_and_keep_their_gpus_across_a_restart() {
    let mut api = start_on_docker();
    let token = api.token(USER, "USER");
    let rpc = Rpc::new(&api.g, USER, &["USER"]);

    // The models callers may ask for are the inventory's.
    let (_, models) = api.send("GET", "/v1/gpu-models", Some(&token), None);
    let codes: Vec<&str> = models["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|m| m["code"].as_str())
        .collect();
    assert_eq!(codes, ["a100", "t4"], "{models}");

    // 2 × a100: placed, and handed both stand-in nodes and the variable.
    let train = rest_create(&api, &token, rest_body("train", 2, &["Nvidia a100"]));
    let id_train = train["id"].as_str().expect("id").to_string();
    let train = rest_wait(&api, &token, &id_train, "train deployed", |c| {
        c["status"] == "deployed"
    });
    assert_eq!(uuids(&train), ["GPU-a100-0", "GPU-a100-1"], "{train}");
    assert_eq!(train["assignedGPUs"][0]["model"], "Nvidia a100", "{train}");
    let out = probe_output(&rpc, &id_train);
    assert!(
        out.contains(&"dev=/dev/nvidia0".to_string())
            && out.contains(&"dev=/dev/nvidia1".to_string())
            && !out.iter().any(|l| l.starts_with("dev=/dev/nvidia2")),
        "{out:?}"
    );
    assert!(
        out.contains(&"visible=GPU-a100-0,GPU-a100-1".to_string()),
        "{out:?}"
    );

    // 1 × a100 more: accepted, waiting, nothing on the engine yet.
    let wait = rest_create(&api, &token, rest_body("wait", 1, &["a100"]));
    let id_wait = wait["id"].as_str().expect("id").to_string();
    assert_eq!(wait["status"], "deploying", "{wait}");
    assert_eq!(wait["message"], "waiting for 1 × a100, 0 free", "{wait}");
    assert_eq!(uuids(&wait), Vec::<String>::new());
    assert!(runtimes().containers_of(&id_wait).is_empty());

    // An ARM group asking for a T4 takes one, and its instance view says which.
    let (status, g) = api.send(
        "PUT",
        &arm_path("infer"),
        Some(&token),
        Some(arm_group("T4", 1)),
    );
    assert!(status == 200 || status == 201, "{status} {g}");
    let deadline = Instant::now() + Duration::from_secs(60);
    let g = loop {
        let (_, g) = api.send("GET", &arm_path("infer"), Some(&token), None);
        if g["properties"]["instanceView"]["state"] == "Running" {
            break g;
        }
        assert!(Instant::now() < deadline, "group never ran: {g}");
        std::thread::sleep(Duration::from_millis(200));
    };
    let events = arm_events(&g);
    assert!(
        events
            .iter()
            .any(|(n, m)| n == "Assigned" && m.contains("T4 GPU-t4-2")),
        "{events:?}"
    );
    assert_eq!(
        g["properties"]["containers"][0]["properties"]["resources"]["requests"]["gpu"],
        json!({"count": 1, "sku": "T4"})
    );

    // Deleting the a100 holder lets the waiting one start.
    rest_delete(&api, &token, &id_train);
    let wait = rest_wait(&api, &token, &id_wait, "wait deployed", |c| {
        c["status"] == "deployed"
    });
    let held = uuids(&wait);
    assert_eq!(held.len(), 1, "{wait}");
    assert!(held[0].starts_with("GPU-a100-"), "{wait}");
    assert!(
        wait.get("message").is_none(),
        "the waiting message is gone: {wait}"
    );

    // After a restart, what is held stays held: 2 × a100 does not fit in the 1 free.
    api.g.restart();
    let big = rest_create(&api, &token, rest_body("big", 2, &["a100"]));
    let id_big = big["id"].as_str().expect("id").to_string();
    assert_eq!(big["message"], "waiting for 2 × a100, 1 free", "{big}");
    let wait_again = rest_get(&api, &token, &id_wait);
    assert_eq!(uuids(&wait_again), held, "{wait_again}");

    // An update runs on the GPUs its predecessor held; one that cannot run
    // now is refused and the running revision stays, GPUs and all.
    let (status, upd) = api.send(
        "PUT",
        &format!("/v1/containers/{id_wait}"),
        Some(&token),
        Some(json!({"env": {"STEP": "2"}})),
    );
    assert_eq!(status, 200, "{upd}");
    let upd = rest_wait(&api, &token, &id_wait, "update deployed", |c| {
        c["status"] == "deployed"
    });
    assert_eq!(uuids(&upd), held, "{upd}");
    let (status, e) = api.send(
        "PUT",
        &format!("/v1/containers/{id_wait}"),
        Some(&token),
        Some(json!({"gpu": 2})),
    );
    assert_eq!(status, 409, "{e}");
    assert!(
        e["error"]
            .as_str()
            .is_some_and(|m| m.contains("waiting for 2 × a100")),
        "{e}"
    );
    let kept = rest_get(&api, &token, &id_wait);
    assert_eq!(
        (kept["status"].as_str(), uuids(&kept)),
        (Some("deployed"), held.clone()),
        "{kept}"
    );

    // A GPU whose node disappears takes nothing new; back, it does.
    let t4_node = api.dir().join("dev/gpu3");
    std::fs::remove_file(&t4_node).expect("remove stand-in");
    wait_health(&api, "GPU-t4-3", false);
    let t4 = rest_create(&api, &token, rest_body("t4", 1, &["t4"]));
    let id_t4 = t4["id"].as_str().expect("id").to_string();
    assert_eq!(t4["message"], "waiting for 1 × t4, 0 free", "{t4}");
    make_node(&t4_node);
    let t4 = rest_wait(&api, &token, &id_t4, "t4 deployed", |c| {
        c["status"] == "deployed"
    });
    assert_eq!(uuids(&t4), ["GPU-t4-3"], "{t4}");

    // Deleting the other a100 holder lets `big` in, first come first served.
    rest_delete(&api, &token, &id_wait);
    let big = rest_wait(&api, &token, &id_big, "big deployed", |c| {
        c["status"] == "deployed"
    });
    assert_eq!(uuids(&big), ["GPU-a100-0", "GPU-a100-1"], "{big}");

    for id in [&id_big, &id_t4] {
        rest_delete(&api, &token, id);
    }
    let (status, _) = api.send("DELETE", &arm_path("infer"), Some(&token), None);
    assert!(status == 200 || status == 202 || status == 204, "{status}");

    // A workload made without GPUs asks for one: its new revision goes
    // through the scheduler, on the same engine.
    let mut plain = rest_body("plain", 0, &[]);
    plain["desiredGPUs"] = Value::Null;
    let plain = rest_create(&api, &token, plain);
    let id_plain = plain["id"].as_str().expect("id").to_string();
    rest_wait(&api, &token, &id_plain, "plain deployed", |c| {
        c["status"] == "deployed"
    });
    let (status, upd) = api.send(
        "PUT",
        &format!("/v1/containers/{id_plain}"),
        Some(&token),
        Some(json!({"gpu": 1, "desiredGPUs": ["t4"]})),
    );
    assert_eq!(status, 200, "{upd}");
    let upd = rest_wait(&api, &token, &id_plain, "plain with a GPU", |c| {
        c["status"] == "deployed" && c["assignedGPUs"].as_array().is_some_and(|a| a.len() == 1)
    });
    assert!(uuids(&upd)[0].starts_with("GPU-t4-"), "{upd}");
    rest_delete(&api, &token, &id_plain);
}

#[test]
fn requests_that_can_never_fit_are_refused_naming_the_field_and_leave_nothing() {
    let api = start_on_docker();
    let token = api.token(USER, "USER");
    let refused = |body: Value, field: &str, says: &str| {
        let (status, e) = api.send("POST", "/v1/containers", Some(&token), Some(body));
        assert_eq!(status, 400, "{e}");
        let m = e["fields"][field]
            .as_str()
            .unwrap_or_else(|| panic!("no `{field}` in {e}"));
        assert!(m.contains(says), "`{field}`: {m}");
    };
    refused(rest_body("never-3", 3, &["a100"]), "gpu", "3 × a100");
    refused(rest_body("never-5", 5, &[]), "gpu", "5 ×");
    refused(
        rest_body("never-h100", 1, &["Nvidia h100"]),
        "desiredGPUs",
        "h100",
    );
    let mut negative = rest_body("never-neg", 1, &["a100"]);
    negative["gpuMemory"] = json!("-1Gi");
    refused(negative, "gpuMemory", "");
    let mut huge = rest_body("never-huge", 1, &["t4"]);
    huge["gpuMemory"] = json!("40Gi");
    refused(huge, "gpuMemory", "40 GiB");

    let arm_refused = |name: &str, body: Value, target: &str| {
        let (status, e) = api.send("PUT", &arm_path(name), Some(&token), Some(body));
        assert_eq!(status, 400, "{e}");
        let targets: Vec<&str> = e["error"]["details"]
            .as_array()
            .map(|d| d.iter().filter_map(|d| d["target"].as_str()).collect())
            .unwrap_or_default();
        assert!(targets.contains(&target), "{target} in {e}");
    };
    arm_refused(
        "never-h100",
        arm_group("H100", 1),
        "properties.containers[0].properties.resources.requests.gpu.sku",
    );
    arm_refused(
        "never-3",
        arm_group("A100", 3),
        "properties.containers[0].properties.resources.requests.gpu.count",
    );

    // Nothing was kept: no record, no container.
    let admin = api.token(USER, "ADMIN");
    let (_, page) = api.send("GET", "/v1/containers", Some(&admin), None);
    assert_eq!(page["total"], 0, "{page}");
    assert!(runtimes().containers_where("name", "never-").is_empty());
}

#[test]
fn the_gpu_scheduler_stacks_on_containerd_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(
        frontends("gpu-containerd-tests", 1, 20_000).containerd_backend(),
        "containerd",
        dir.path(),
    );
    let api = Api::start_in(dir, &cfg);
    let token = api.token(USER, "USER");
    let rpc = Rpc::new(&api.g, USER, &["USER"]);
    let mut body = rest_body("cd-t4", 1, &["t4"]);
    body["gpuMemory"] = json!("8Gi");
    let c = rest_create(&api, &token, body);
    let id = c["id"].as_str().expect("id").to_string();
    let c = rest_wait(&api, &token, &id, "deployed on containerd", |c| {
        c["status"] == "deployed"
    });
    assert_eq!(uuids(&c), ["GPU-t4-2"], "{c}");
    assert_eq!(c["gpuMemory"], "8Gi");
    let out = probe_output(&rpc, &id);
    assert!(
        out.contains(&"dev=/dev/nvidia2".to_string())
            && out.contains(&"visible=GPU-t4-2".to_string()),
        "{out:?}"
    );
    rest_delete(&api, &token, &id);
}

#[test]
fn without_a_scheduler_a_gpu_workload_fails_with_a_clear_message_and_creates_nothing() {
    let api = Api::start(1);
    let token = api.token(USER, "USER");
    let c = rest_create(&api, &token, rest_body("unplaced", 1, &[]));
    let id = c["id"].as_str().expect("id").to_string();
    assert_eq!(c["status"], "failed", "{c}");
    assert!(
        c["message"].as_str().is_some_and(
            |m| m.contains("asks for 1 GPU(s) by count") && m.contains("GPU scheduler")
        ),
        "{c}"
    );
    assert!(runtimes().containers_of(&id).is_empty());
    rest_delete(&api, &token, &id);
}
