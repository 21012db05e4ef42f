//! Host-side bindings of the `gantry:plugin` WIT package (world `host`, the
//! union of what the host provides and calls). The generated records double
//! as the control plane's model: they serialize to the state store as they are.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "gantry:plugin/host",
    imports: { default: async | trappable },
    exports: { default: async },
    require_store_data_send: true,
    additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
    with: {
        "gantry:plugin/control.log-reader": crate::runtime::host_api::LogReaderHandle,
    },
});

pub use self::gantry::plugin::types;
