//! For schedulers: handing `driver` calls on to the downstream backend. The
//! exported and imported `driver` records are the same WIT records in two
//! Rust types; these move values across.

use crate::scheduler::exports::gantry::plugin::driver as exported;
use crate::scheduler::gantry::plugin::driver as downstream;
use crate::scheduler::gantry::plugin::types::{Error, LogLine};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Move a record from one side's Rust type to the other's, through its serde
/// form (the two are the same WIT record).
pub fn convert<A: Serialize, B: DeserializeOwned>(a: A) -> Result<B, Error> {
    serde_json::to_value(a)
        .and_then(serde_json::from_value)
        .map_err(|e| Error::Internal(format!("relaying a driver record: {e}")))
}

/// The downstream's reference to the same deployed revision.
pub fn downstream_ref(i: &exported::InstanceRef) -> downstream::InstanceRef {
    downstream::InstanceRef {
        workload_id: i.workload_id.clone(),
        revision: i.revision,
    }
}

/// A downstream log reader, handed on as the scheduler's own
/// (`type LogReader = DownstreamLogs` in its `Guest`).
pub struct DownstreamLogs(pub downstream::LogReader);

impl exported::GuestLogReader for DownstreamLogs {
    fn next(&self, wait_ms: u32) -> Result<Option<Vec<LogLine>>, Error> {
        self.0.next(wait_ms)
    }
}
