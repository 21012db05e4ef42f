//! Host-side bindings of the `gantry:plugin` WIT package (world `host`, the
//! union of what the host provides and calls). The generated records double
//! as the control plane's model: they serialize to the state store as they are.
//!
//! This module is the bottom of the host's module graph: it imports nothing
//! from the crate, so the log-stream types the bindings name live here too.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "gantry:plugin/host",
    imports: { default: async | trappable },
    exports: { default: async },
    require_store_data_send: true,
    additional_derives: [serde::Serialize, serde::Deserialize, PartialEq],
    with: {
        "gantry:plugin/control.log-reader": LogReader,
        "gantry:plugin/driver.log-reader": LogReader,
        "gantry:plugin/artifacts.download": ArtifactDownload,
    },
});

pub use self::gantry::plugin::types;

/// A stream of container output.
#[async_trait::async_trait]
pub trait LogSource: Send {
    /// The next lines, waiting at most `wait_ms`; `Ok(None)` when the stream ended.
    async fn next(&mut self, wait_ms: u32) -> Result<Option<Vec<types::LogLine>>, types::Error>;
}

/// A `log-reader` resource handed to a plugin: an open log stream.
pub struct LogReader(pub Box<dyn LogSource>);

impl LogReader {
    /// Longest a plugin may block in one `next`.
    pub const MAX_WAIT_MS: u32 = 30_000;

    /// The next lines, waiting at most `wait_ms` (capped at [`Self::MAX_WAIT_MS`]).
    pub async fn next(
        &mut self,
        wait_ms: u32,
    ) -> Result<Option<Vec<types::LogLine>>, types::Error> {
        self.0.next(wait_ms.min(Self::MAX_WAIT_MS)).await
    }
}

/// The body of an artifact being downloaded, as the `artifacts` capability
/// streams it.
#[async_trait::async_trait]
pub trait ArtifactBody: Send {
    /// The length the server announced.
    fn size(&self) -> Option<u64>;
    /// The next chunk of at most `max_bytes`; `Ok(None)` once the body ended
    /// and matched its checksums.
    async fn next(
        &mut self,
        max_bytes: u32,
    ) -> Result<Option<Vec<u8>>, gantry::plugin::artifacts::FetchError>;
}

/// A `download` resource handed to a plugin.
pub struct ArtifactDownload(pub Box<dyn ArtifactBody>);
