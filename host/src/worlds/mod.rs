//! Plugins as the host runs them: which world a component implements (read
//! from its exports), the capabilities each world links, the store data that
//! composes those capabilities' state, and the adapters that call a world's
//! exports (an HTTP frontend, a backend's driver).
//!
//! This is the wiring between the generic runtime and the capabilities; it
//! depends on both, and neither depends on it.

pub mod authoring;
pub mod backend;
pub mod http_frontend;
pub mod registry;
pub mod template;

pub use registry::{Capability, Grants, PluginSetup, PluginState};

use crate::runtime::RuntimeError;
use crate::runtime::check::{self, Contract};
use crate::runtime::limits::InstancePolicy;
use wasmtime::Engine;
use wasmtime::component::{Component, InstancePre, Linker};

/// The `gantry:plugin` package version this host provides. Plugins built
/// against any `0.1.x` load: 0.x packages change compatibly only in patch
/// releases, and the linker and export lookups match semver-compatibly.
pub const PACKAGE_VERSION: &str = "0.1.5";

/// The worlds of the `gantry:plugin` package that plugins implement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum World {
    /// `http-frontend`: exports `wasi:http/incoming-handler`.
    HttpFrontend,
    /// `mqtt-frontend`: exports `mqtt-handler`.
    MqttFrontend,
    /// `backend`: exports `driver`.
    Backend,
    /// `scheduler`: exports `driver` and imports a downstream `driver`.
    Scheduler,
}

impl World {
    /// Every world plugins implement.
    pub const ALL: [World; 4] = [
        World::HttpFrontend,
        World::MqttFrontend,
        World::Backend,
        World::Scheduler,
    ];

    /// The world's name, e.g. `gantry:plugin/backend@0.1.5`.
    pub fn name(self) -> String {
        format!("{}@{PACKAGE_VERSION}", self.contract().world)
    }

    /// What a component of this world must export.
    pub fn contract(self) -> Contract {
        match self {
            World::HttpFrontend => Contract {
                world: "gantry:plugin/http-frontend",
                export: "wasi:http/incoming-handler",
                version: "0.2.",
            },
            World::MqttFrontend => Contract {
                world: "gantry:plugin/mqtt-frontend",
                export: "gantry:plugin/mqtt-handler",
                version: "0.1.",
            },
            World::Backend => Contract {
                world: "gantry:plugin/backend",
                export: "gantry:plugin/driver",
                version: "0.1.",
            },
            World::Scheduler => Contract {
                world: "gantry:plugin/scheduler",
                export: "gantry:plugin/driver",
                version: "0.1.",
            },
        }
    }

    /// How long this world's instances live. MQTT frontends keep one
    /// long-lived instance, so session state (a learnt device id, pending
    /// bootstrap answers) survives between messages, as the WIT documents;
    /// every other world is pooled and must not rely on state between calls.
    pub fn policy(self) -> InstancePolicy {
        match self {
            World::MqttFrontend => InstancePolicy::LongLived,
            _ => InstancePolicy::Pooled,
        }
    }

    /// The capabilities this world links: its imports, and nothing more.
    pub fn capabilities(self) -> &'static [Capability] {
        use Capability::*;
        match self {
            World::HttpFrontend => &[Wasi, OutgoingHttp, Logging, Settings, Control, Artifacts],
            World::MqttFrontend => &[Wasi, Logging, Settings, Control, MqttClient, Artifacts],
            World::Backend => &[Wasi, OutgoingHttp, Logging, Settings, Progress, Devices],
            World::Scheduler => &[Wasi, Logging, Settings, Devices, Allocations, Downstream],
        }
    }

    /// A linker offering exactly this world's capabilities.
    pub fn linker(self, engine: &Engine) -> Result<Linker<PluginState>, RuntimeError> {
        let mut l = Linker::new(engine);
        for c in self.capabilities() {
            c.link(&mut l).map_err(|e| {
                RuntimeError::Engine(format!(
                    "cannot link {} for {}: {e:#}",
                    c.name(),
                    self.name()
                ))
            })?;
        }
        Ok(l)
    }

    /// Check `component` as plugin `name`, listed (`listed_as`, for the
    /// message) as implementing this world: the world its exports tell must
    /// be this one, and its imports must all be linked. A component that
    /// implements no gantry world is checked against this one, which names
    /// what is missing.
    pub fn prepare(
        self,
        engine: &Engine,
        name: &str,
        listed_as: &str,
        component: &Component,
    ) -> Result<InstancePre<PluginState>, RuntimeError> {
        if let Some(found) = World::of(engine, component)
            && found != self
        {
            return Err(RuntimeError::Invalid {
                plugin: name.to_string(),
                message: format!(
                    "listed as {listed_as} (world {}, exporting `{}`), but the component implements world {} (it exports `{}`)",
                    self.name(),
                    self.contract().export,
                    found.name(),
                    found.contract().export,
                ),
            });
        }
        let linker = self.linker(engine)?;
        check::check(engine, &linker, &self.contract(), name, component)
    }

    /// The world a component implements, read from what it exports (and, to
    /// tell a scheduler from a backend, whether it imports `driver`).
    pub fn of(engine: &Engine, component: &Component) -> Option<World> {
        let exports = check::exports(engine, component);
        let has = |names: &[String], iface: &str| check::version_of(names, iface).is_some();
        if has(&exports, "gantry:plugin/driver") {
            let imports = check::imports(engine, component);
            return Some(if has(&imports, "gantry:plugin/driver") {
                World::Scheduler
            } else {
                World::Backend
            });
        }
        if has(&exports, "gantry:plugin/mqtt-handler") {
            return Some(World::MqttFrontend);
        }
        if has(&exports, "wasi:http/incoming-handler") {
            return Some(World::HttpFrontend);
        }
        None
    }
}
