//! gantry's GPU scheduler (world `scheduler`): a backend stacked on another
//! that places containers' GPU requests on the host's inventory
//! (`devices`), records what each deployment holds or waits for in the
//! host's ledger (`allocations`), and hands the chosen GPUs to its
//! downstream as device ids.
//!
//! - A container asks with `gpu` (a count over accepted models, or device
//!   ids) and, for a minimum memory per GPU, the label [`MIN_MEMORY_LABEL`].
//! - A request this host can never satisfy is refused as `invalid`, naming
//!   `containers[i].gpu.count`, `.models`, `.memory` or `.device-ids`.
//! - One that does not fit now waits, first come first served among
//!   requests competing for the same models, and is reported `creating`
//!   with a message such as `waiting for 2 × a100, 1 free`.
//! - Config `policy`: `binpack` (default), `spread` or `first-fit`
//!   ([`placement::Policy`]).
//!
//! Instances are pooled and keep nothing between calls: all state is the host's.

#![deny(missing_docs)]

pub mod placement;

// The plugin proper needs the SDK's `scheduler` bindings; the placement
// policy alone (for the benchmark) does not, and is built without them so a
// native build beside the backends does not unify the SDK's world features.
#[cfg(feature = "plugin")]
mod driver;
#[cfg(feature = "plugin")]
mod export;
#[cfg(feature = "plugin")]
pub mod request;
#[cfg(feature = "plugin")]
mod schedule;

#[cfg(feature = "plugin")]
pub use driver::POLICY_KEY;
#[cfg(feature = "plugin")]
pub use request::MIN_MEMORY_LABEL;
