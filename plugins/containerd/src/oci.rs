//! The image documents both the store and a registry hand out: OCI and
//! Docker indexes and manifests, read as JSON.

use crate::api::containerd::types::Descriptor;
use serde::Deserialize;

/// An index or a manifest (the fields of either; the other's stay empty).
#[derive(Deserialize)]
pub struct Manifest {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    /// An index's entries.
    #[serde(default)]
    pub manifests: Vec<Desc>,
    /// A manifest's config.
    pub config: Option<Desc>,
    /// A manifest's layers, bottom first.
    #[serde(default)]
    pub layers: Vec<Desc>,
}

/// A descriptor as the documents write it.
#[derive(Deserialize, Clone)]
pub struct Desc {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    #[serde(default)]
    pub size: i64,
    pub platform: Option<Platform>,
}

/// The platform an index entry is for.
#[derive(Deserialize, Clone)]
pub struct Platform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
}

/// Whether a media type names an index (OCI) or a manifest list (Docker).
pub fn is_index_type(media_type: &str) -> bool {
    media_type.contains("index") || media_type.contains("manifest.list")
}

impl Manifest {
    /// The index entry for exactly `os`/`arch`.
    pub fn for_platform(&self, os: &str, arch: &str) -> Option<&Desc> {
        self.manifests.iter().find(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| p.os == os && p.architecture == arch)
        })
    }
}

impl Desc {
    /// As containerd's descriptor.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.size,
            annotations: Default::default(),
        }
    }
}
