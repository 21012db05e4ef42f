//! Building `driver.list`'s answer from a runtime's flat listing.

use crate::backend::exports::gantry::plugin::driver::InstanceSummary;
use crate::backend::gantry::plugin::types::ContainerState;
use std::collections::HashMap;

/// Groups containers into one summary per (workload, revision), in the order
/// each revision is first seen and each container within it. Indexed, so a
/// listing of 10,000 containers costs 10,000 lookups, not 10,000².
#[derive(Debug, Default)]
pub struct Summaries {
    out: Vec<InstanceSummary>,
    index: HashMap<(String, u32), usize>,
}

impl Summaries {
    /// Add one container of `workload_id`'s `revision`.
    pub fn push(&mut self, workload_id: &str, revision: u32, state: ContainerState) {
        let key = (workload_id.to_string(), revision);
        match self.index.get(&key) {
            Some(&i) => self.out[i].containers.push(state),
            None => {
                self.index.insert(key, self.out.len());
                self.out.push(InstanceSummary {
                    workload_id: workload_id.to_string(),
                    revision,
                    containers: vec![state],
                });
            }
        }
    }

    /// The summaries.
    pub fn finish(self) -> Vec<InstanceSummary> {
        self.out
    }
}
