//! Constructors with defaults for the WIT records every plugin writes, so a
//! plugin names only the fields it sets:
//!
//! ```ignore
//! use gantry_sdk::backend::gantry::plugin::types::{ContainerSpec, Resources};
//! let c = ContainerSpec {
//!     command: Some(vec!["httpd".into(), "-f".into()]),
//!     resources: Resources { cpu: Some(0.5), ..Resources::default() },
//!     ..ContainerSpec::new("web", "busybox:1.36")
//! };
//! ```
//!
//! Each world's bindings have their own copies of the records; these impls
//! are written once here and stamped onto every world the build enables (and
//! onto the host's own bindings, through [`wit_record_defaults!`](crate::wit_record_defaults)).

/// Implements the defaults of this module for one set of bindings of the
/// `gantry:plugin` package: `types` and `control` are the paths of its two
/// interfaces' modules.
#[macro_export]
macro_rules! wit_record_defaults {
    (types: $types:path, control: $control:path) => {
        $crate::wit_record_defaults!(types: $types);
        const _: () = {
            use $control as c;

            impl Default for c::WorkloadFilter {
                /// The caller's own workloads, in any namespace.
                fn default() -> Self {
                    Self {
                        namespace: None,
                        namespace_prefix: None,
                        name: None,
                        annotations: Vec::new(),
                        all_owners: false,
                    }
                }
            }
        };
    };
    (types: $types:path) => {
        const _: () = {
            use $types as t;

            impl Default for t::Resources {
                /// No limits.
                fn default() -> Self {
                    Self {
                        cpu: None,
                        memory_bytes: None,
                        memory_reservation_bytes: None,
                        memory_swap_bytes: None,
                        ephemeral_storage_bytes: None,
                        pids_limit: None,
                    }
                }
            }

            impl Default for t::RestartPolicy {
                /// Never restart.
                fn default() -> Self {
                    Self {
                        kind: t::RestartKind::No,
                        max_retries: 0,
                        retry_timeout_seconds: 0,
                    }
                }
            }

            impl t::ContainerSpec {
                /// A container running `image` as it is: the image's command,
                /// no environment, ports, limits, mounts or devices.
                pub fn new(name: impl Into<String>, image: impl Into<String>) -> Self {
                    Self {
                        name: name.into(),
                        image: image.into(),
                        command: None,
                        args: None,
                        env: Vec::new(),
                        ports: Vec::new(),
                        resources: t::Resources::default(),
                        gpu: None,
                        mounts: Vec::new(),
                        devices: Vec::new(),
                        working_dir: None,
                        privileged: false,
                        extra_capabilities: Vec::new(),
                        tty: false,
                        open_stdin: false,
                        log: None,
                        labels: Vec::new(),
                    }
                }

                /// Whether this container asks for GPUs.
                pub fn wants_gpu(&self) -> bool {
                    self.gpu.as_ref().is_some_and(t::GpuRequest::asks)
                }
            }

            impl t::GpuRequest {
                /// Whether it asks for any GPU: a count, or devices by id.
                pub fn asks(&self) -> bool {
                    self.count > 0 || !self.device_ids.is_empty()
                }
            }

            impl t::WorkloadSpec {
                /// `containers` sharing an isolated network namespace, never restarted.
                pub fn new(containers: Vec<t::ContainerSpec>) -> Self {
                    Self {
                        containers,
                        restart: t::RestartPolicy::default(),
                        network: t::NetworkMode::Isolated,
                        hostname: None,
                        domain_name: None,
                        extra_hosts: Vec::new(),
                    }
                }
            }

            impl t::PortMapping {
                /// A TCP port of the container, published nowhere.
                pub fn tcp(container_port: u16) -> Self {
                    Self {
                        container_port,
                        protocol: t::PortProtocol::Tcp,
                        host_port: None,
                        host_port_end: None,
                        host_ip: None,
                    }
                }
            }

            impl t::ContainerState {
                /// Whether its backend holds it back (a scheduler waiting for
                /// GPUs): not created yet, nothing on the runtime, and why.
                pub fn held_back(&self) -> bool {
                    self.status == t::ContainerStatus::Creating
                        && self.runtime_id.is_none()
                        && self.error.is_some()
                }

                /// A container in `status` that never ran (no pid, times or
                /// exit code), with the runtime's `error` if any.
                pub fn bare(
                    name: impl Into<String>,
                    runtime_id: Option<String>,
                    status: t::ContainerStatus,
                    error: Option<String>,
                ) -> Self {
                    Self {
                        name: name.into(),
                        runtime_id,
                        status,
                        pid: None,
                        exit_code: None,
                        started_at: None,
                        finished_at: None,
                        oom_killed: false,
                        restart_count: 0,
                        error,
                    }
                }
            }

            impl t::Caller {
                /// Whether the caller holds the [`ADMIN`]($crate::roles::ADMIN) role.
                pub fn is_admin(&self) -> bool {
                    self.roles.iter().any(|r| r == $crate::roles::ADMIN)
                }
            }
        };
    };
}

#[cfg(feature = "http-frontend")]
wit_record_defaults!(
    types: crate::http_frontend::gantry::plugin::types,
    control: crate::http_frontend::gantry::plugin::control
);
#[cfg(feature = "mqtt-frontend")]
wit_record_defaults!(
    types: crate::mqtt_frontend::gantry::plugin::types,
    control: crate::mqtt_frontend::gantry::plugin::control
);
#[cfg(feature = "backend")]
wit_record_defaults!(types: crate::backend::gantry::plugin::types);
#[cfg(feature = "scheduler")]
wit_record_defaults!(types: crate::scheduler::gantry::plugin::types);
