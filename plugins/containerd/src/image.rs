//! Images in the plugin's namespace: resolving a reference to its config
//! (index → manifest → config, read from the content store) and unpacking
//! its layers into the snapshotter when they are not there yet.

use crate::api::containerd::services::content::v1::{ReadContentRequest, ReadContentResponse};
use crate::api::containerd::services::diff::v1::{ApplyRequest, ApplyResponse};
use crate::api::containerd::services::images::v1::{GetImageRequest, GetImageResponse};
use crate::api::containerd::services::snapshots::v1::{
    CommitSnapshotRequest, PrepareSnapshotRequest, PrepareSnapshotResponse, RemoveSnapshotRequest,
    StatSnapshotRequest, StatSnapshotResponse,
};
use crate::api::containerd::types::Descriptor;
use crate::grpc::{Call, Code, GrpcResult, Status, unary};
use crate::oci::{Desc, Manifest, is_index_type};
use gantry_sdk::backend::gantry::plugin::progress;
use gantry_sdk::backend::gantry::plugin::types::Error;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The snapshotter images are unpacked into.
pub const SNAPSHOTTER: &str = "overlayfs";

/// What a container needs of its image.
#[derive(Debug, Clone, Default)]
pub struct ImageConfig {
    /// The image's normalised name in containerd.
    pub name: String,
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `Env`.
    pub env: Vec<String>,
    /// `WorkingDir`.
    pub working_dir: String,
    /// `User`.
    pub user: String,
    /// Chain ids of the layers, bottom first; the last is the rootfs parent.
    pub chain: Vec<String>,
    /// The layer descriptors, bottom first.
    pub(crate) layers: Vec<Descriptor>,
    /// `rootfs.diff_ids`.
    pub(crate) diff_ids: Vec<String>,
}

impl ImageConfig {
    /// The snapshot a container's rootfs is prepared on.
    pub fn top(&self) -> &str {
        self.chain.last().map_or("", String::as_str)
    }
}

/// A reference the way Docker and `ctr` name it in the store:
/// `busybox` → `docker.io/library/busybox:latest`.
pub fn normalize(reference: &str) -> String {
    let (name, digest) = match reference.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (reference, None),
    };
    let first = name.split('/').next().unwrap_or("");
    let has_domain =
        name.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut full = if has_domain {
        name.to_string()
    } else if name.contains('/') {
        format!("docker.io/{name}")
    } else {
        format!("docker.io/library/{name}")
    };
    let last = full.rsplit('/').next().unwrap_or("");
    if digest.is_none() && !last.contains(':') {
        full.push_str(":latest");
    }
    match digest {
        Some(d) => format!("{full}@{d}"),
        None => full,
    }
}

/// Chain ids from diff ids (OCI image spec: `chain[i] = sha256(chain[i-1] + " " + diff[i])`).
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => {
                let mut h = Sha256::new();
                h.update(format!("{prev} {d}").as_bytes());
                let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
                format!("sha256:{hex}")
            }
        };
        out.push(next);
    }
    out
}

/// A blob from the content store, whole.
fn read_blob(digest: &str) -> GrpcResult<Vec<u8>> {
    let req = ReadContentRequest {
        digest: digest.to_string(),
        offset: 0,
        size: 0,
    };
    let mut call = Call::open("/containerd.services.content.v1.Content/Read", &req, None)?
        .ok_or_else(|| Status {
            code: Code::Unavailable,
            message: "no answer".into(),
        })?;
    let mut out = Vec::new();
    while let Some(chunk) = call.next::<ReadContentResponse>(u64::MAX)? {
        out.extend(chunk.data);
    }
    Ok(out)
}

#[derive(Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    config: Option<RunConfig>,
    #[serde(default)]
    rootfs: Option<RootFs>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct RunConfig {
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    env: Option<Vec<String>>,
    working_dir: Option<String>,
    user: Option<String>,
}

#[derive(Deserialize, Default)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<String>,
}

fn corrupt(image: &str, what: &str, e: impl std::fmt::Display) -> Error {
    Error::Backend(format!("image {image}: unreadable {what}: {e}"))
}

/// The platform images are resolved for (plugin config `platform`, default `linux/amd64`).
fn platform() -> (String, String) {
    let p = gantry_sdk::backend::gantry::plugin::config::get("platform")
        .unwrap_or_else(|| "linux/amd64".into());
    let (os, arch) = p.split_once('/').unwrap_or(("linux", p.as_str()));
    (os.to_string(), arch.to_string())
}

/// Resolve `reference` in the namespace. An image that is absent is pulled
/// from its registry when the config grants one for it (see
/// [`crate::registry`]); otherwise it is a typed not-found error.
pub fn resolve(reference: &str, workload: &str) -> Result<ImageConfig, Error> {
    let name = normalize(reference);
    let get = || -> Result<Option<GetImageResponse>, Error> {
        match unary(
            "/containerd.services.images.v1.Images/Get",
            &GetImageRequest { name: name.clone() },
        ) {
            Ok(r) => Ok(Some(r)),
            Err(s) if s.is_not_found() => Ok(None),
            Err(s) => Err(s.into()),
        }
    };
    let got = match get()? {
        Some(r) => r,
        None => {
            let parsed = crate::registry::parse(&name);
            let endpoint = parsed
                .as_ref()
                .and_then(|r| crate::registry::endpoint_for(&r.registry));
            let (Some(r), Some(endpoint)) = (parsed, endpoint) else {
                return Err(Error::NotFound(format!(
                    "image {reference} ({name}) is not in containerd namespace `{ns}`, and no registry is granted for it (config `registries`); import it with `ctr -n {ns} images import`",
                    ns = crate::grpc::namespace()
                )));
            };
            let (os, arch) = platform();
            crate::registry::pull(&name, &r, &endpoint, workload, (&os, &arch)).map_err(
                |e| match e {
                    Error::NotFound(m) => Error::NotFound(format!("image {reference}: {m}")),
                    other => other,
                },
            )?;
            get()?.ok_or_else(|| {
                Error::NotFound(format!("image {name}: not present after its pull"))
            })?
        }
    };
    let mut desc = got
        .image
        .and_then(|i| i.target)
        .ok_or_else(|| Error::Backend(format!("image {name} has no target")))?;
    let (os, arch) = platform();
    // Index → the manifest for our platform → the config.
    let manifest: Manifest = loop {
        let bytes = read_blob(&desc.digest)?;
        let m: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| corrupt(&name, "manifest", e))?;
        let is_index =
            is_index_type(&m.media_type) || (!m.manifests.is_empty() && m.config.is_none());
        if !is_index {
            break m;
        }
        let chosen = m
            .for_platform(&os, &arch)
            .or_else(|| m.manifests.iter().find(|d| d.platform.is_none()))
            .ok_or_else(|| {
                Error::NotFound(format!("image {name} has no manifest for {os}/{arch}"))
            })?;
        desc = chosen.descriptor();
    };
    let config = manifest
        .config
        .as_ref()
        .ok_or_else(|| corrupt(&name, "manifest", "no config"))?;
    let bytes = read_blob(&config.digest)?;
    let file: ConfigFile =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(&name, "config", e))?;
    let run = file.config.unwrap_or_default();
    let diff_ids = file.rootfs.unwrap_or_default().diff_ids;
    if diff_ids.len() != manifest.layers.len() {
        return Err(corrupt(
            &name,
            "config",
            "its diff ids do not match its layers",
        ));
    }
    Ok(ImageConfig {
        name,
        entrypoint: run.entrypoint.unwrap_or_default(),
        cmd: run.cmd.unwrap_or_default(),
        env: run.env.unwrap_or_default(),
        working_dir: run.working_dir.unwrap_or_default(),
        user: run.user.unwrap_or_default(),
        chain: chain_ids(&diff_ids),
        layers: manifest.layers.iter().map(Desc::descriptor).collect(),
        diff_ids,
    })
}

fn snapshot_exists(key: &str) -> GrpcResult<bool> {
    let r: GrpcResult<StatSnapshotResponse> = unary(
        "/containerd.services.snapshots.v1.Snapshots/Stat",
        &StatSnapshotRequest {
            snapshotter: SNAPSHOTTER.into(),
            key: key.into(),
        },
    );
    match r {
        Ok(_) => Ok(true),
        Err(s) if s.is_not_found() => Ok(false),
        Err(s) => Err(s),
    }
}

/// Remove a snapshot; a missing one is fine.
pub fn remove_snapshot(key: &str) -> GrpcResult<()> {
    let r: GrpcResult<()> = unary::<_, ()>(
        "/containerd.services.snapshots.v1.Snapshots/Remove",
        &RemoveSnapshotRequest {
            snapshotter: SNAPSHOTTER.into(),
            key: key.into(),
        },
    );
    match r {
        Err(s) if !s.is_not_found() => Err(s),
        _ => Ok(()),
    }
}

/// Unpack the image's layers that are not in the snapshotter yet.
pub fn ensure_unpacked(image: &ImageConfig, workload: &str) -> Result<(), Error> {
    if image.chain.is_empty() || snapshot_exists(image.top())? {
        return Ok(());
    }
    let total = image.chain.len();
    for (i, chain) in image.chain.iter().enumerate() {
        if snapshot_exists(chain)? {
            continue;
        }
        progress::report(
            workload,
            &format!("unpacking {} layer {}/{total}", image.name, i + 1),
            u8::try_from(i * 100 / total).ok(),
        );
        let key = format!("extract-{} {chain}", nonce());
        let parent = if i == 0 {
            String::new()
        } else {
            image.chain[i - 1].clone()
        };
        let prepared: PrepareSnapshotResponse = unary(
            "/containerd.services.snapshots.v1.Snapshots/Prepare",
            &PrepareSnapshotRequest {
                snapshotter: SNAPSHOTTER.into(),
                key: key.clone(),
                parent,
                labels: Default::default(),
            },
        )?;
        let applied: GrpcResult<ApplyResponse> = unary(
            "/containerd.services.diff.v1.Diff/Apply",
            &ApplyRequest {
                diff: Some(image.layers[i].clone()),
                mounts: prepared.mounts,
                ..Default::default()
            },
        );
        let ok = match applied {
            Ok(a) if a.applied.as_ref().map(|d| d.digest.as_str()) == Some(&image.diff_ids[i]) => {
                unary::<_, ()>(
                    "/containerd.services.snapshots.v1.Snapshots/Commit",
                    &CommitSnapshotRequest {
                        snapshotter: SNAPSHOTTER.into(),
                        name: chain.clone(),
                        key: key.clone(),
                        labels: Default::default(),
                    },
                )
                .map_err(Error::from)
            }
            Ok(a) => Err(Error::Backend(format!(
                "image {}: layer {} unpacked to {:?}, expected {}",
                image.name,
                i + 1,
                a.applied.map(|d| d.digest),
                image.diff_ids[i]
            ))),
            Err(s) => Err(s.into()),
        };
        if let Err(e) = ok {
            let _ = remove_snapshot(&key);
            return Err(e);
        }
    }
    Ok(())
}

/// A value unique enough for a temporary snapshot key.
fn nonce() -> String {
    let t = gantry_sdk::wasip2::clocks::wall_clock::now();
    let r = gantry_sdk::wasip2::random::random::get_random_u64();
    format!("{}{:09}-{r:x}", t.seconds, t.nanoseconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_normalised_like_docker() {
        assert_eq!(normalize("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(
            normalize("gantry-test/busybox:1.0"),
            "docker.io/gantry-test/busybox:1.0"
        );
        assert_eq!(normalize("localhost:5000/x/y"), "localhost:5000/x/y:latest");
        assert_eq!(normalize("ghcr.io/a/b:2"), "ghcr.io/a/b:2");
    }

    #[test]
    fn chain_ids_follow_the_image_spec() {
        let d = vec!["sha256:a".to_string(), "sha256:b".to_string()];
        let c = chain_ids(&d);
        assert_eq!(c[0], "sha256:a");
        let mut h = Sha256::new();
        h.update(b"sha256:a sha256:b");
        let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(c[1], format!("sha256:{hex}"));
    }
}
