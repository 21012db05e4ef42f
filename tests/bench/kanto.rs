//! `bench kanto`: a Kanto command round trip over gantry's embedded broker
//! (`Container:{id}` `rename`: MQTT in, the Kanto plugin, the control
//! plane, the Docker plugin, the engine, the record persisted, MQTT out)
//! against the same engine work called directly (list the container by
//! label, rename it, through bollard), measured in the same run.
//! Measured on the embedded broker and on mosquitto (`set_tcp_nodelay`).
//! Run by `cargo xtask bench`.

use anyhow::{Context, Result, bail};
use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
    RenameContainerOptionsBuilder,
};
use gantry_tests::backends::Backend;
use gantry_tests::bench::{Row, Samples, count, report};
use gantry_tests::gantry::Gantry;
use gantry_tests::mqtt::{TestClient, kanto_config_on};
use gantry_tests::runtimes::{TEST_IMAGE, runtimes};
use serde_json::json;
use std::time::{Duration, Instant};

const THING: &str = "edge:device:edge:containers";
const WAIT: Duration = Duration::from_secs(60);
/// Round trips per side.
const ROUNDS: usize = 300;

/// Rename through the engine the way the Docker plugin does: find the
/// container by label, then rename it.
async fn engine_rename(docker: &bollard::Docker, label: &str, name: &str) -> Result<()> {
    let opts = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&[("label", vec![label])].into())
        .build();
    let found = docker.list_containers(Some(opts)).await?;
    let c = found
        .first()
        .and_then(|c| c.id.clone())
        .context("the raw container")?;
    let opts = RenameContainerOptionsBuilder::default().name(name).build();
    docker.rename_container(&c, opts).await?;
    Ok(())
}

/// `ROUNDS` Kanto renames through `broker`, each followed by the same
/// engine work done directly: (Kanto, direct) samples.
fn measure(mosquitto: bool) -> Result<(Samples, Samples)> {
    let dir = tempfile::tempdir()?;
    let mosq = mosquitto.then(|| gantry_tests::mqtt::Mosquitto::start(dir.path()));
    let port = mosq
        .as_ref()
        .map_or_else(gantry_tests::free_port, |m| m.port);
    let broker = match &mosq {
        Some(_) => format!("tcp://127.0.0.1:{port}"),
        None => "embedded".into(),
    };
    let config = kanto_config_on(
        Backend::Docker,
        &broker,
        mosq.is_none().then_some(port),
        "config = { device-id = \"edge:device\", tenant-id = \"t1\" }\n",
    )
    // A resync every 30 s, not the tests' 2 s, so it does not run mid-measure.
    .replace("resync_seconds = 2", "resync_seconds = 30");
    let _g = Gantry::start_in(dir.path(), &config);
    let client = TestClient::connect(port, &format!("bench-{port}"), &["command//+/res/#"]);
    let created = client.kanto_command(
        THING,
        ("create", "ContainerFactory", "createWithConfig"),
        json!({"imageRef": TEST_IMAGE, "name": "kr-0", "start": false,
               "config": {"cmd": ["sleep", "3600"], "restartPolicy": {"type": "no"}}}),
        WAIT,
    );
    if created["status"] != 200 {
        bail!("create answered {created}");
    }
    let id = created["value"]
        .as_str()
        .context("the container's id")?
        .to_string();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let docker = rt.block_on(runtimes().docker());
    let raw = format!("bench-kanto-raw-{port}");
    let label = format!("bench-kanto={port}");
    rt.block_on(async {
        let opts = CreateContainerOptionsBuilder::default().name(&raw).build();
        let body = ContainerCreateBody {
            image: Some(TEST_IMAGE.into()),
            cmd: Some(vec!["sleep".into(), "3600".into()]),
            labels: Some([("bench-kanto".to_string(), port.to_string())].into()),
            ..Default::default()
        };
        docker.create_container(Some(opts), body).await
    })?;
    let (mut kanto, mut direct) = (Samples::default(), Samples::default());
    let n = count(ROUNDS, 5);
    for i in 0..n {
        let t = Instant::now();
        let env = client.kanto_command(
            THING,
            (&format!("rename-{i}"), &format!("Container:{id}"), "rename"),
            json!(format!("kr-{}", i % 2 + 1)),
            WAIT,
        );
        kanto.push(t.elapsed());
        if env["status"] != 204 && env["status"] != 200 {
            bail!("rename answered {env}");
        }
        let t = Instant::now();
        rt.block_on(engine_rename(&docker, &label, &format!("{raw}-{}", i % 2)))?;
        direct.push(t.elapsed());
    }
    rt.block_on(async {
        let opts = RemoveContainerOptionsBuilder::default().force(true).build();
        let _ = docker
            .remove_container(&format!("{raw}-{}", (n - 1) % 2), Some(opts))
            .await;
    });
    Ok((kanto, direct))
}

pub fn main() -> Result<()> {
    let (embedded, direct_e) = measure(false)?;
    let (mosquitto, direct_m) = measure(true)?;
    report(
        "kanto",
        "the same engine calls made directly (list by label + rename, bollard)",
        &[
            Row::new("rename round trip, embedded broker", &embedded, &direct_e),
            Row::new("rename round trip, mosquitto", &mosquitto, &direct_m),
        ],
    )
}
