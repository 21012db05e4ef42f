//! The generic Wasm runtime: the engine and its component cache, checks of a
//! component against a contract, instance pools with their lifetime policy,
//! and per-call guards (deadline, memory). It knows nothing of what plugins
//! import: the store's data is a type parameter ([`limits::PluginData`]).

pub mod busy;
pub mod check;
pub mod engine;
pub mod limits;
pub mod pool;

use std::path::PathBuf;

/// Failures loading or checking a plugin.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The engine could not be created.
    #[error("cannot create the wasm engine: {0}")]
    Engine(String),
    /// The plugin's file is missing (not built yet?).
    #[error("plugin `{plugin}`: {path}: {source}")]
    Missing {
        /// Plugin name.
        plugin: String,
        /// Where it was looked for.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a component, or does not fit its world.
    #[error("plugin `{plugin}`: {message}")]
    Invalid {
        /// Plugin name.
        plugin: String,
        /// What does not fit, naming the missing import or export.
        message: String,
    },
}

/// How one plugin call failed, beyond the call's own typed result.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The guest trapped.
    #[error("plugin `{plugin}` trapped: {message}")]
    Trap {
        /// Plugin name.
        plugin: String,
        /// The trap, with its wasm backtrace where available.
        message: String,
    },
    /// The guest ran past its deadline.
    #[error("plugin `{plugin}` ran past its {ms} ms deadline and was stopped")]
    Deadline {
        /// Plugin name.
        plugin: String,
        /// The deadline.
        ms: u128,
    },
    /// The call did not answer within its wall-clock budget (the plugin
    /// waited on something that never came) and was cut.
    #[error(
        "plugin `{plugin}` did not answer `{call}` within {ms} ms; the call was cut and its instance dropped"
    )]
    Unanswered {
        /// Plugin name.
        plugin: String,
        /// The export called.
        call: &'static str,
        /// The budget.
        ms: u128,
    },
    /// The guest asked for more memory than its cap.
    #[error("plugin `{plugin}` exceeded its memory limit of {limit} bytes")]
    Memory {
        /// Plugin name.
        plugin: String,
        /// The cap.
        limit: usize,
    },
    /// A fresh instance could not be created.
    #[error("plugin `{plugin}` could not be instantiated: {message}")]
    Instantiate {
        /// Plugin name.
        plugin: String,
        /// Why.
        message: String,
    },
}

impl CallError {
    /// The metric label of this failure.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Trap { .. } => "trap",
            CallError::Deadline { .. } => "deadline",
            CallError::Unanswered { .. } => "unanswered",
            CallError::Memory { .. } => "memory",
            CallError::Instantiate { .. } => "instantiate",
        }
    }
}
