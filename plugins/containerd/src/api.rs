//! containerd's API messages, generated at build time from `proto/`, and the
//! `Any` wrappers containerd expects.
//!
//! containerd matches type URLs exactly, and prost's `Name::type_url` adds a
//! leading `/`: every URL here is written out. Spec types carry JSON.
#![allow(missing_docs, dead_code, clippy::all, clippy::pedantic)]

include!(concat!(env!("OUT_DIR"), "/containerd_api.rs"));

/// Type URL of an OCI runtime spec (JSON).
pub const SPEC_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Spec";
/// Type URL of OCI Linux resources (JSON), for `Tasks.Update`.
pub const RESOURCES_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

/// An OCI spec as containerd stores it.
pub fn spec_any(spec: &serde_json::Value) -> prost_types::Any {
    prost_types::Any {
        type_url: SPEC_URL.into(),
        value: spec.to_string().into_bytes(),
    }
}

/// Linux resources as `Tasks.Update` takes them.
pub fn resources_any(resources: &serde_json::Value) -> prost_types::Any {
    prost_types::Any {
        type_url: RESOURCES_URL.into(),
        value: resources.to_string().into_bytes(),
    }
}
