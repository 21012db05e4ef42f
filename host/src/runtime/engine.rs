//! The shared wasmtime engine: pooling allocator, epoch ticker, and a
//! precompiled-component cache on disk keyed by the component's hash and the
//! engine's settings.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;
use wasmtime::component::Component;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::RuntimeError;

/// How often the epoch advances; the granularity of call deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The engine every plugin runs on.
#[derive(Clone)]
pub struct PluginEngine {
    engine: Engine,
    cache_dir: Option<PathBuf>,
    max_memory_bytes: u64,
}

impl PluginEngine {
    /// An engine whose pooled memories can hold `max_memory_bytes`.
    pub fn new(max_memory_bytes: u64, cache_dir: Option<PathBuf>) -> Result<Self, RuntimeError> {
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(256)
            .total_core_instances(1024)
            .total_memories(512)
            .total_tables(512)
            .max_memory_size(usize::try_from(max_memory_bytes).unwrap_or(usize::MAX));
        let mut config = Config::new();
        config
            .wasm_component_model(true)
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| RuntimeError::Engine(e.to_string()))?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("gantry-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })
            .map_err(|e| RuntimeError::Engine(e.to_string()))?;
        Ok(Self {
            engine,
            cache_dir,
            max_memory_bytes,
        })
    }

    /// The largest linear memory the engine's pool can give an instance:
    /// a plugin's `memory_mib` cannot grow past it without a new engine.
    pub fn max_memory_bytes(&self) -> u64 {
        self.max_memory_bytes
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Load a component, from the cache when a compatible precompiled copy exists.
    pub fn load(&self, plugin: &str, path: &Path) -> Result<Component, RuntimeError> {
        let bytes = std::fs::read(path).map_err(|source| RuntimeError::Missing {
            plugin: plugin.to_string(),
            path: path.to_path_buf(),
            source,
        })?;
        self.load_bytes(plugin, path, &bytes)
    }

    /// Load a component read from `path` already.
    pub fn load_bytes(
        &self,
        plugin: &str,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Component, RuntimeError> {
        let compile = || {
            Component::new(&self.engine, bytes).map_err(|e| RuntimeError::Invalid {
                plugin: plugin.to_string(),
                message: format!("{}: not a valid component: {e:#}", path.display()),
            })
        };
        let Some(dir) = &self.cache_dir else {
            return compile();
        };
        let entry = dir.join(format!("{}.cwasm", self.cache_key(bytes)));
        if entry.exists() {
            match self.deserialize(&entry) {
                Ok(c) => return Ok(c),
                Err(e) => {
                    tracing::warn!(plugin, entry = %entry.display(), error = %e, "discarding unusable cache entry")
                }
            }
        }
        let component = compile()?;
        if let Err(e) = self.store_entry(dir, &entry, &component) {
            tracing::warn!(plugin, error = %e, "cannot write component cache");
        }
        Ok(component)
    }

    /// The cache file name for these component bytes on this engine.
    pub fn cache_key(&self, bytes: &[u8]) -> String {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.engine.precompile_compatibility_hash().hash(&mut h);
        format!("{}-{:016x}", hex::encode(Sha256::digest(bytes)), h.finish())
    }

    #[allow(unsafe_code)]
    fn deserialize(&self, entry: &Path) -> wasmtime::Result<Component> {
        // SAFETY: entries are written only by `store_entry` into the host's own
        // cache directory, named by the source's SHA-256 and the engine's
        // compatibility hash, and renamed into place only once complete.
        unsafe { Component::deserialize_file(&self.engine, entry) }
    }

    fn store_entry(&self, dir: &Path, entry: &Path, component: &Component) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let bytes = component
            .serialize()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let tmp = entry.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, bytes)?;
        std::fs::rename(tmp, entry)
    }
}
