//! Container Device Interface spec files: what a container needs to use a
//! device, as the vendor's tooling (`nvidia-ctk cdi generate`) wrote it.
//!
//! Only the parts the backends can apply are read: device nodes, mounts and
//! environment. OCI hooks (such as `update-ldcache`) are left out: Docker's
//! and containerd's APIs as the backends drive them cannot run them, and a
//! spec's devices work without them once the driver's libraries are mounted.

use crate::bindings::types::{ContainerEdits, DeviceNode as EditNode, EnvVar, Mount};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// One spec file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// `vendor.com/class`, e.g. `nvidia.com/gpu`.
    pub kind: String,
    /// Its devices, by name.
    #[serde(default)]
    pub devices: Vec<Device>,
    /// Edits every device of the spec needs.
    #[serde(default)]
    pub container_edits: Edits,
}

/// One device of a spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// Its name within the kind: an index, a UUID, `all`...
    pub name: String,
    /// What a container needs to use it.
    #[serde(default)]
    pub container_edits: Edits,
}

/// The container edits of a spec or device.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Edits {
    /// `NAME=value` entries.
    #[serde(default)]
    pub env: Vec<String>,
    /// Device nodes.
    #[serde(default)]
    pub device_nodes: Vec<DeviceNode>,
    /// Bind mounts.
    #[serde(default)]
    pub mounts: Vec<SpecMount>,
}

/// A device node of a spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceNode {
    /// Path in the container.
    pub path: String,
    /// Path on the host; defaults to `path`.
    #[serde(default)]
    pub host_path: Option<String>,
    /// cgroup permissions; defaults to `rwm`.
    #[serde(default)]
    pub permissions: Option<String>,
}

/// A mount of a spec.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SpecMount {
    /// Source on the host.
    pub host_path: String,
    /// Destination in the container.
    pub container_path: String,
    /// Mount options (`ro`, `nosuid`, `rbind`, a propagation...).
    #[serde(default)]
    pub options: Vec<String>,
}

/// The spec files found in some directories.
#[derive(Debug, Default)]
pub struct Registry {
    specs: Vec<(PathBuf, Spec)>,
}

/// Mount propagations an option may name.
const PROPAGATIONS: [&str; 6] = [
    "private", "rprivate", "shared", "rshared", "slave", "rslave",
];

impl Registry {
    /// Read every `*.json`, `*.yaml` and `*.yml` file of `dirs` (missing
    /// directories are fine); files that do not parse are skipped and named
    /// in the second value.
    pub fn load(dirs: &[PathBuf]) -> (Self, Vec<String>) {
        let mut specs = Vec::new();
        let mut problems = Vec::new();
        for dir in dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut paths: Vec<PathBuf> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("json" | "yaml" | "yml")
                    )
                })
                .collect();
            paths.sort();
            for p in paths {
                match read(&p) {
                    Ok(s) => specs.push((p, s)),
                    Err(e) => problems.push(format!("{}: {e}", p.display())),
                }
            }
        }
        (Self { specs }, problems)
    }

    /// The edits of `kind`'s device named by any of `names` (its index,
    /// its UUID), with the spec-wide edits; the spec file it came from.
    pub fn lookup(&self, kind: &str, names: &[&str]) -> Option<(&Path, Vec<&Edits>)> {
        self.specs
            .iter()
            .filter(|(_, s)| s.kind == kind)
            .find_map(|(path, s)| {
                let d = s
                    .devices
                    .iter()
                    .find(|d| names.contains(&d.name.as_str()))?;
                Some((path.as_path(), vec![&s.container_edits, &d.container_edits]))
            })
    }
}

fn read(p: &Path) -> Result<Spec, String> {
    let text = std::fs::read_to_string(p).map_err(|e| e.to_string())?;
    // YAML 1.2 is a superset of JSON: one parser reads both.
    serde_yaml::from_str(&text).map_err(|e| e.to_string())
}

/// Add `e` to `out`, skipping device nodes and mounts already there (two
/// GPUs of one spec share its spec-wide edits) and letting a later value of
/// an environment variable win.
pub fn apply(out: &mut ContainerEdits, e: &Edits) {
    for kv in &e.env {
        let (name, value) = kv.split_once('=').unwrap_or((kv, ""));
        set_env(out, name, value);
    }
    for n in &e.device_nodes {
        if out.devices.iter().any(|d| d.path_in_container == n.path) {
            continue;
        }
        out.devices.push(node(
            n.host_path.as_deref().unwrap_or(&n.path),
            &n.path,
            n.permissions.as_deref().unwrap_or("rwm"),
        ));
    }
    for m in &e.mounts {
        if out.mounts.iter().any(|x| x.destination == m.container_path) {
            continue;
        }
        out.mounts.push(Mount {
            source: m.host_path.clone(),
            destination: m.container_path.clone(),
            read_only: m.options.iter().any(|o| o == "ro"),
            propagation: m
                .options
                .iter()
                .find(|o| PROPAGATIONS.contains(&o.as_str()))
                .cloned(),
        });
    }
}

/// A device node edit; its numbers are read from the host node later.
pub fn node(on_host: &str, in_container: &str, permissions: &str) -> EditNode {
    EditNode {
        path_on_host: on_host.to_string(),
        path_in_container: in_container.to_string(),
        cgroup_permissions: permissions.to_string(),
        block: false,
        major: 0,
        minor: 0,
    }
}

/// Give every device node of `out` its type and numbers, read from the
/// host's node; an error names a node that is missing or not a device.
pub fn read_numbers(out: &mut ContainerEdits) -> Result<(), String> {
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    for n in &mut out.devices {
        let m = std::fs::metadata(&n.path_on_host)
            .map_err(|e| format!("device node {}: {e}", n.path_on_host))?;
        let t = m.file_type();
        if !t.is_char_device() && !t.is_block_device() {
            return Err(format!("{} is not a device node", n.path_on_host));
        }
        let rdev = m.rdev();
        n.block = t.is_block_device();
        // Linux's encoding of dev_t (glibc's gnu_dev_major/minor).
        n.major = (((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0x0000_0fff)) as u32;
        n.minor = (((rdev >> 12) & 0xffff_ff00) | (rdev & 0x0000_00ff)) as u32;
    }
    Ok(())
}

/// Set `name` in `out`'s environment, replacing an earlier value.
pub fn set_env(out: &mut ContainerEdits, name: &str, value: &str) {
    out.env.retain(|v| v.name != name);
    out.env.push(EnvVar {
        name: name.to_string(),
        value: value.to_string(),
        secret: false,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: &str = r#"
cdiVersion: 0.5.0
kind: nvidia.com/gpu
devices:
- name: "0"
  containerEdits:
    deviceNodes:
    - path: /dev/nvidia0
      hostPath: /dev/null
- name: GPU-aaaa
  containerEdits:
    deviceNodes:
    - path: /dev/nvidia1
containerEdits:
  env:
  - NVIDIA_VISIBLE_DEVICES=void
  deviceNodes:
  - path: /dev/nvidiactl
  mounts:
  - hostPath: /usr/lib/libcuda.so.1
    containerPath: /usr/lib/libcuda.so.1
    options: [ro, nosuid, nodev, bind, rslave]
  hooks:
  - hookName: createContainer
    path: /usr/bin/nvidia-ctk
"#;

    fn registry() -> (tempfile::TempDir, Registry) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("nvidia.yaml"), SPEC).expect("write");
        std::fs::write(dir.path().join("broken.json"), "{").expect("write");
        std::fs::write(dir.path().join("notes.txt"), "ignored").expect("write");
        let (r, problems) = Registry::load(&[dir.path().into(), "/nonexistent".into()]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("broken.json"));
        (dir, r)
    }

    #[test]
    fn a_device_is_found_by_index_or_uuid_with_the_spec_wide_edits() {
        let (_d, r) = registry();
        let mut out = ContainerEdits {
            env: vec![],
            devices: vec![],
            mounts: vec![],
        };
        for names in [["0", "GPU-zzzz"], ["1", "GPU-aaaa"]] {
            let (_, edits) = r.lookup("nvidia.com/gpu", &names).expect("found");
            for e in edits {
                apply(&mut out, e);
            }
        }
        let nodes: Vec<_> = out
            .devices
            .iter()
            .map(|d| (d.path_on_host.as_str(), d.path_in_container.as_str()))
            .collect();
        assert_eq!(
            nodes,
            [
                ("/dev/nvidiactl", "/dev/nvidiactl"),
                ("/dev/null", "/dev/nvidia0"),
                ("/dev/nvidia1", "/dev/nvidia1")
            ]
        );
        assert_eq!(out.mounts.len(), 1);
        assert!(out.mounts[0].read_only);
        assert_eq!(out.mounts[0].propagation.as_deref(), Some("rslave"));
        assert_eq!(out.env.len(), 1);
        assert!(r.lookup("nvidia.com/gpu", &["7"]).is_none());
        assert!(r.lookup("amd.com/gpu", &["0"]).is_none());
    }
}
