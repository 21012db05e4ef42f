//! The control plane's event stream.

use crate::bindings::types::{Event, EventKind, Workload};
use crate::model::now;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::broadcast;

/// Broadcasts events with a per-host sequence number. Slow subscribers lose
/// the oldest events (and are told how many) rather than slowing the host.
pub struct EventBus {
    tx: broadcast::Sender<Event>,
    seq: AtomicU64,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A bus with room for 1024 undelivered events per subscriber.
    pub fn new() -> Self {
        Self {
            tx: broadcast::channel(1024).0,
            seq: AtomicU64::new(0),
        }
    }

    /// Subscribe.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Publish one event (no subscribers is fine).
    pub fn publish(
        &self,
        kind: EventKind,
        workload_id: &str,
        container: Option<String>,
        workload: Option<Workload>,
    ) {
        let sequence = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = self.tx.send(Event {
            sequence,
            kind,
            workload_id: workload_id.to_string(),
            container,
            workload,
            at: now(),
        });
    }
}
