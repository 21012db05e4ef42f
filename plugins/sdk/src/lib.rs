//! Guest SDK for gantry plugins.
//!
//! Each module holds the bindings of one `gantry:plugin` world; a plugin
//! implements that world's export and calls the module's `export!` macro:
//!
//! ```ignore
//! use gantry_sdk::backend::exports::gantry::plugin::driver::Guest;
//! struct MyDriver;
//! impl Guest for MyDriver { /* ... */ }
//! gantry_sdk::backend::export_backend!(MyDriver);
//! ```
//!
//! Enable the feature named after your plugin's world (`http-frontend`,
//! `mqtt-frontend`, `backend` or `scheduler`). `backend` and `scheduler` both
//! export `driver` and cannot be enabled in the same build.
//!
//! Every generated record, enum and variant derives `serde`'s `Serialize` and
//! `Deserialize`, with the same field names as the host's own bindings.
//!
//! `wasi:*` types are those of the [`wasip2`] crate, re-exported here, so
//! plugins can use its helpers for HTTP, clocks and I/O.

#![deny(missing_docs)]

pub use wasip2;

pub mod clock;
pub mod defaults;
pub mod ingress;
#[cfg(feature = "json")]
pub mod json;
pub mod names;
pub mod stream;
pub mod units;

/// The request header in which the host names the caller it verified to an
/// HTTP frontend: `{"subject": ..., "roles": [...]}`, or
/// `{"unauthenticated": "<reason>"}`. The host sets it on every request and
/// drops any a client sent.
pub const CALLER_HEADER: &str = "gantry-caller";

/// Role names the host's callers carry.
pub mod roles {
    /// May act on every caller's workloads (and list them with `all-owners`).
    pub const ADMIN: &str = "ADMIN";
    /// An ordinary caller: acts on its own workloads.
    pub const USER: &str = "USER";
}

/// Label keys the host asks backends to put on everything they create
/// (`deployment.labels`), and that `driver.list` selects on.
pub mod labels {
    /// The workload's id.
    pub const WORKLOAD: &str = "io.gantry.workload";
    /// The revision number.
    pub const REVISION: &str = "io.gantry.revision";
    /// The container's name within the workload.
    pub const CONTAINER: &str = "io.gantry.container";
    /// The id of the host (state store) that deployed it.
    pub const HOST: &str = "io.gantry.host";
    /// On a container spec (not put there by the host): the minimum memory
    /// per GPU it asks for, in bytes, read by GPU schedulers (a record
    /// cannot grow a field within 0.1; see `gpu-request`).
    pub const GPU_MIN_MEMORY: &str = "io.gantry.gpu.min-memory-bytes";
    /// On a container spec: how many replicas of it to run, a decimal
    /// number from 1 (since 0.1.4; a label for the same reason). Backends
    /// that run one copy of a container refuse more with `unsupported`
    /// ([`crate::replicas`]).
    pub const REPLICAS: &str = "io.gantry.replicas";
    /// On a container spec: placement constraints for a cluster backend,
    /// separated by `;` (e.g. `node.labels.gpu.model==a100;node.role==worker`).
    pub const PLACEMENT_CONSTRAINTS: &str = "io.gantry.placement.constraints";
    /// On a container spec: node labels to spread replicas over, separated
    /// by `;` (e.g. `node.labels.zone`), in order of preference.
    pub const PLACEMENT_SPREAD: &str = "io.gantry.placement.spread";
}

pub mod replicas;

#[cfg(feature = "http-frontend")]
pub mod http;

#[cfg(feature = "backend")]
pub mod client;
#[cfg(feature = "backend")]
pub mod command;
#[cfg(feature = "backend")]
pub mod gpus;
#[cfg(feature = "backend")]
pub mod listing;
#[cfg(feature = "backend")]
pub mod logs;
#[cfg(feature = "scheduler")]
pub mod relay;

#[cfg(all(feature = "backend", feature = "scheduler"))]
compile_error!(
    "features `backend` and `scheduler` both export `driver`: enable one per plugin build"
);

/// Bindings of a world that speaks `wasi:http`, its `wasi:*` types those of
/// the [`wasip2`] crate (the frontends' and backends' worlds differ only in
/// the world and the names of the export macro and module).
#[cfg(any(feature = "http-frontend", feature = "backend"))]
macro_rules! wasi_http_bindings {
    ($world:tt, $export_macro:tt, $module:tt) => {
        wit_bindgen::generate!({
            path: "../../wit",
            world: $world,
            with: {
                "wasi:http/types@0.2.12": wasip2::http::types,
                "wasi:http/outgoing-handler@0.2.12": wasip2::http::outgoing_handler,
                "wasi:io/streams@0.2.12": wasip2::io::streams,
                "wasi:io/error@0.2.12": wasip2::io::error,
                "wasi:io/poll@0.2.12": wasip2::io::poll,
                "wasi:clocks/monotonic-clock@0.2.12": wasip2::clocks::monotonic_clock,
            },
            additional_derives: [serde::Serialize, serde::Deserialize],
            pub_export_macro: true,
            export_macro_name: $export_macro,
            default_bindings_module: $module,
        });
    };
}

#[cfg(feature = "http-frontend")]
/// World `http-frontend`: export `wasi:http/incoming-handler`, call `control`.
#[allow(missing_docs)]
pub mod http_frontend {
    wasi_http_bindings!(
        "gantry:plugin/http-frontend",
        "export_http_frontend",
        "gantry_sdk::http_frontend"
    );
}

#[cfg(feature = "mqtt-frontend")]
/// World `mqtt-frontend`: export `mqtt-handler`, call `control` and `mqtt-client`.
#[allow(missing_docs)]
pub mod mqtt_frontend {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "gantry:plugin/mqtt-frontend",
        additional_derives: [serde::Serialize, serde::Deserialize],
        pub_export_macro: true,
        export_macro_name: "export_mqtt_frontend",
        default_bindings_module: "gantry_sdk::mqtt_frontend",
    });
}

#[cfg(feature = "backend")]
/// World `backend`: export `driver`, reach granted endpoints over `wasi:http`.
/// With the `cluster` feature, world `cluster-backend`: also export `cluster`.
#[allow(missing_docs)]
pub mod backend {
    #[cfg(not(feature = "cluster"))]
    wasi_http_bindings!(
        "gantry:plugin/backend",
        "export_backend",
        "gantry_sdk::backend"
    );
    #[cfg(feature = "cluster")]
    wasi_http_bindings!(
        "gantry:plugin/cluster-backend",
        "export_backend",
        "gantry_sdk::backend"
    );
}

#[cfg(feature = "scheduler")]
/// World `scheduler`: export `driver`, drive the downstream `driver`, read
/// `devices`, record placements in `allocations`.
#[allow(missing_docs)]
pub mod scheduler {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "gantry:plugin/scheduler",
        additional_derives: [serde::Serialize, serde::Deserialize],
        pub_export_macro: true,
        export_macro_name: "export_scheduler",
        default_bindings_module: "gantry_sdk::scheduler",
    });
}
