//! Whether a long-lived plugin is still answering: the call its one
//! instance is in, and since when. `/readyz` asks through [`Responsive`].

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a long-lived plugin may be in one call before it counts as not
/// answering: half its budget, and never more than this.
const UNRESPONSIVE_AFTER: Duration = Duration::from_secs(30);

/// A plugin whose one instance can stop answering: what `/readyz` asks.
pub trait Responsive: Send + Sync {
    /// Why the plugin is not answering, if it is not.
    fn unresponsive(&self) -> Option<String>;
}

/// A call in progress.
#[derive(Debug, Clone, Copy)]
struct Busy {
    what: &'static str,
    since: Instant,
    within: Duration,
}

/// The call a long-lived plugin is in, if any.
#[derive(Debug, Default)]
pub struct BusySlot(Mutex<Option<Busy>>);

/// Clears its slot however the call ends (answered, failed, or its future
/// dropped).
pub struct Mark<'a>(&'a BusySlot);

impl Drop for Mark<'_> {
    fn drop(&mut self) {
        *self.0.lock() = None;
    }
}

impl BusySlot {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Busy>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A call to `what`, cut after `within`, starts now; it ends when the
    /// mark is dropped.
    pub fn enter(&self, what: &'static str, within: Duration) -> Mark<'_> {
        *self.lock() = Some(Busy {
            what,
            since: Instant::now(),
            within,
        });
        Mark(self)
    }

    /// Why plugin `name` counts as not answering: its call has run past
    /// half its budget (30 s at most).
    pub fn overdue(&self, name: &str) -> Option<String> {
        let busy = (*self.lock())?;
        let running = busy.since.elapsed();
        (running > (busy.within / 2).min(UNRESPONSIVE_AFTER)).then(|| {
            format!(
                "plugin `{name}` has not answered `{}` for {} s (it is cut at {} s)",
                busy.what,
                running.as_secs(),
                busy.within.as_secs()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_is_overdue_past_half_its_budget_and_forgotten_when_it_ends() {
        let slot = BusySlot::default();
        assert_eq!(slot.overdue("p"), None);
        let mark = slot.enter("on-message", Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(15));
        let why = slot.overdue("p").expect("overdue");
        assert!(
            why.contains("plugin `p` has not answered `on-message`"),
            "{why}"
        );
        drop(mark);
        assert_eq!(slot.overdue("p"), None);
        let _long = slot.enter("on-timer", Duration::from_secs(600));
        assert_eq!(
            slot.overdue("p"),
            None,
            "not yet half of ten minutes, nor 30 s"
        );
    }
}
