//! One artifact of a software module: downloaded through the host's
//! `artifacts` capability, and read as Kanto's container descriptor.

use super::{ArtifactAction, Stop};
use gantry_sdk::mqtt_frontend::gantry::plugin::artifacts::{self, Checksums, FetchError};
use gantry_sdk::mqtt_frontend::gantry::plugin::types::WorkloadSpec;
use serde::Deserialize;
use serde_json::{Map, Value};

/// Chunk size of artifact reads.
const CHUNK: u32 = 64 * 1024;

/// The artifact's body, downloaded through the host (HTTP preferred, as Kanto does).
pub(super) fn download(a: &ArtifactAction) -> Result<Vec<u8>, Stop> {
    let link = a
        .download
        .get("HTTP")
        .or_else(|| a.download.get("HTTPS"))
        .ok_or_else(|| {
            Stop(
                "FINISHED_ERROR",
                format!(
                    "artifact `{}` has no HTTP or HTTPS download link",
                    a.filename
                ),
            )
        })?;
    let digest = |key: &str| {
        a.checksums
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let checksums = Checksums {
        sha256: digest("SHA256"),
        md5: digest("MD5"),
    };
    if checksums.sha256.is_none() && checksums.md5.is_none() && digest("SHA1").is_some() {
        return Err(Stop(
            "FINISHED_REJECTED",
            format!(
                "artifact `{}`: only a SHA1 checksum is given; gantry checks MD5 and SHA256",
                a.filename
            ),
        ));
    }
    // Checked here, so a malformed checksum is the sender's (REJECTED)
    // before anything is fetched; the host checks again for itself.
    for (name, given, bytes) in [
        ("md5", &checksums.md5, 16),
        ("sha256", &checksums.sha256, 32),
    ] {
        if let Some(hex) = given
            && !(hex.len() == bytes * 2 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(Stop(
                "FINISHED_REJECTED",
                format!("`{hex}` is not a {name} digest ({bytes} bytes in hex)"),
            ));
        }
    }
    let failed = |e: FetchError| match e {
        FetchError::ChecksumMismatch(alg) => Stop(
            "FINISHED_REJECTED",
            format!("{alg} checksum does not match"),
        ),
        FetchError::Denied(why) => Stop("FINISHED_ERROR", format!("download denied: {why}")),
        FetchError::Status(code) => Stop(
            "FINISHED_ERROR",
            format!("downloading {} answered HTTP {code}", link.url),
        ),
        FetchError::TooLarge(limit) => Stop(
            "FINISHED_ERROR",
            format!(
                "artifact `{}` is larger than the {limit} bytes allowed",
                a.filename
            ),
        ),
        FetchError::TimedOut => Stop(
            "FINISHED_ERROR",
            format!("downloading {} timed out", link.url),
        ),
        FetchError::Failed(why) => {
            Stop("FINISHED_ERROR", format!("downloading {}: {why}", link.url))
        }
    };
    let d = artifacts::fetch(&link.url, &checksums).map_err(failed)?;
    let mut body = Vec::new();
    while let Some(chunk) = d.next(CHUNK).map_err(failed)? {
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Kanto's container descriptor (its own snake_case container JSON).
#[derive(Debug, Deserialize)]
struct Descriptor {
    container_name: Option<String>,
    image: DescriptorImage,
    #[serde(default)]
    config: Option<DescriptorConfig>,
    #[serde(default)]
    host_config: Option<DescriptorHostConfig>,
    #[serde(default)]
    mount_points: Option<Vec<Value>>,
}

#[derive(Debug, Deserialize)]
struct DescriptorImage {
    name: String,
    #[serde(default)]
    decrypt_config: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct DescriptorConfig {
    env: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
struct DescriptorHostConfig {
    privileged: Option<bool>,
    devices: Option<Vec<Value>>,
    restart_policy: Option<DescriptorRestart>,
}

#[derive(Debug, Deserialize)]
struct DescriptorRestart {
    #[serde(rename = "type")]
    kind: Option<String>,
    maximum_retry_count: Option<i64>,
    retry_timeout: Option<i64>,
}

/// The container a descriptor stands for: its name and spec.
pub(super) fn descriptor(a: &ArtifactAction, body: &[u8]) -> Result<(String, WorkloadSpec), Stop> {
    let rejected = |why: String| {
        Stop(
            "FINISHED_REJECTED",
            format!("artifact `{}`: {why}", a.filename),
        )
    };
    let d: Descriptor = serde_json::from_slice(body).map_err(|e| {
        Stop(
            "FINISHED_ERROR",
            format!(
                "artifact `{}` is not a container descriptor: {e}",
                a.filename
            ),
        )
    })?;
    if d.image
        .decrypt_config
        .as_ref()
        .is_some_and(|v| !v.is_null())
    {
        return Err(rejected("image.decrypt_config is not supported".into()));
    }
    if d.mount_points.as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(rejected(
            "mount_points are not supported in descriptors".into(),
        ));
    }
    let host = d.host_config.unwrap_or_default();
    if host.privileged == Some(true) {
        return Err(rejected("privileged containers are not allowed".into()));
    }
    if host.devices.as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(rejected(
            "host_config.devices are not supported in descriptors".into(),
        ));
    }
    let config = d.config.unwrap_or_default();
    // The same container as createWithConfig would make.
    let mut with = Map::new();
    if let Some(env) = config.env {
        with.insert("env".into(), env.into());
    }
    if let Some(cmd) = config.cmd {
        with.insert("cmd".into(), cmd.into());
    }
    if let Some(r) = host.restart_policy {
        let mut p = Map::new();
        if let Some(k) = r.kind {
            p.insert("type".into(), k.into());
        }
        if let Some(n) = r.maximum_retry_count {
            p.insert("maxRetryCount".into(), n.into());
        }
        if let Some(t) = r.retry_timeout {
            p.insert("retryTimeout".into(), t.into());
        }
        with.insert("restartPolicy".into(), Value::Object(p));
    }
    let config: crate::config::ContainerConfig =
        serde_json::from_value(Value::Object(with)).map_err(|e| rejected(e.to_string()))?;
    let name = d
        .container_name
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| crate::name_from_image(&d.image.name));
    let spec =
        crate::config::spec(&name, &d.image.name, config).map_err(|f| rejected(f.message))?;
    Ok((name, spec))
}
