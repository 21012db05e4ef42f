//! Generates containerd's API messages from the `.proto` files vendored under
//! `proto/` (containerd's published API, see `proto/README.md`): prost types
//! only, no gRPC stubs; the plugin frames gRPC itself over `wasi:http`.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "github.com/containerd/containerd/api/services/containers/v1/containers.proto",
    "github.com/containerd/containerd/api/services/content/v1/content.proto",
    "github.com/containerd/containerd/api/services/diff/v1/diff.proto",
    "github.com/containerd/containerd/api/services/events/v1/events.proto",
    "github.com/containerd/containerd/api/services/images/v1/images.proto",
    "github.com/containerd/containerd/api/services/leases/v1/leases.proto",
    "github.com/containerd/containerd/api/services/snapshots/v1/snapshots.proto",
    "github.com/containerd/containerd/api/services/tasks/v1/tasks.proto",
    "github.com/containerd/containerd/api/services/version/v1/version.proto",
    "github.com/containerd/containerd/api/events/task.proto",
    "github.com/containerd/containerd/api/types/runc/options/oci.proto",
    "github.com/containerd/cgroups/v3/cgroup1/stats/metrics.proto",
    "github.com/containerd/cgroups/cgroup2/stats/metrics.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from("proto");
    println!("cargo:rerun-if-changed={}", root.display());
    // protox resolves file names against the working directory (the crate's).
    let files: Vec<PathBuf> = PROTOS.iter().map(|p| root.join(p)).collect();
    let descriptors = protox::compile(&files, [&root])?;
    prost_build::Config::new()
        .include_file("containerd_api.rs")
        .compile_fds(descriptors)?;
    Ok(())
}
