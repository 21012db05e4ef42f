//! The host's GPUs: the inventory (read through NVML, or declared in
//! config), its health, the models callers may ask for, and the container
//! edits that hand a GPU to a container (from CDI spec files, or derived).
//!
//! Schedulers read the inventory and edits through the `devices`
//! capability; allocations are the control plane's ledger
//! ([`crate::control::gpus`]).

pub mod catalogue;
pub mod cdi;
mod config;
mod device;
mod edits;
mod inventory;
mod nvml;

pub use config::{DevicesConfig, GpuConfig, SourceChoice};
pub use device::GpuInfo;
pub use inventory::{Inventory, Source};
