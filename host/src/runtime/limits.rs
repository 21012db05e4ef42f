//! Per-call guards: a guest-time deadline enforced through epochs, and a
//! per-instance linear-memory cap.
//!
//! The deadline counts only time spent executing guest code: time the guest
//! spends blocked in a host call (an HTTP request to the runtime, a log
//! follow) is subtracted, so a plugin streaming logs for an hour is fine while
//! a plugin spinning in a loop is stopped after `call_timeout`.

use std::time::{Duration, Instant};
use wasmtime::{CallHook, ResourceLimiter, Store, UpdateDeadline};

/// Caps the linear memory of one instance.
#[derive(Debug)]
pub struct MemoryCap {
    limit: usize,
    /// Set when the guest asked for more than `limit`.
    pub exceeded: bool,
}

impl MemoryCap {
    /// A cap of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            exceeded: false,
        }
    }

    /// The cap in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.exceeded = true;
            wasmtime::bail!(
                "plugin memory limit of {} bytes exceeded (asked for {desired} bytes)",
                self.limit
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

/// Tracks guest time of the current call.
#[derive(Debug)]
pub struct CallWatch {
    budget: Duration,
    started: Instant,
    in_host_since: Option<Instant>,
    // Host calls nest: lowering a host call's result runs the guest's
    // allocator, whose `memory.grow` is itself a host call. Only the
    // outermost one is host time.
    host_depth: u32,
    host_time: Duration,
    /// Set when the guest ran past its budget.
    pub expired: bool,
}

impl CallWatch {
    /// A watch with this guest-time budget per call.
    pub fn new(budget: Duration) -> Self {
        Self {
            budget,
            started: Instant::now(),
            in_host_since: None,
            host_depth: 0,
            host_time: Duration::ZERO,
            expired: false,
        }
    }

    /// The budget per call.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Reset for a new call.
    pub fn begin(&mut self) {
        self.started = Instant::now();
        self.in_host_since = None;
        self.host_depth = 0;
        self.host_time = Duration::ZERO;
        self.expired = false;
    }

    fn guest_time(&self, now: Instant) -> Duration {
        let in_host = self.in_host_since.map_or(Duration::ZERO, |t| now - t);
        (now - self.started).saturating_sub(self.host_time + in_host)
    }

    fn on_hook(&mut self, hook: CallHook) {
        match hook {
            CallHook::CallingHost => {
                self.host_depth += 1;
                if self.host_depth == 1 {
                    self.in_host_since = Some(Instant::now());
                }
            }
            CallHook::ReturningFromHost => {
                self.host_depth = self.host_depth.saturating_sub(1);
                if self.host_depth == 0
                    && let Some(t) = self.in_host_since.take()
                {
                    self.host_time += t.elapsed();
                }
            }
            CallHook::CallingWasm | CallHook::ReturningFromWasm => {}
        }
    }
}

/// What a store's data must offer for the guards to work.
pub trait Guarded: Send + 'static {
    /// The memory cap.
    fn memory_cap(&mut self) -> &mut MemoryCap;
    /// The call watch.
    fn call_watch(&mut self) -> &mut CallWatch;
}

/// Install the memory cap, the call hook and the epoch callback on a store.
pub fn install<T: Guarded>(store: &mut Store<T>) {
    store.limiter(|s| s.memory_cap());
    store.call_hook(|mut ctx, hook| {
        ctx.data_mut().call_watch().on_hook(hook);
        Ok(())
    });
    store.epoch_deadline_callback(|mut ctx| {
        let watch = ctx.data_mut().call_watch();
        if watch.guest_time(Instant::now()) > watch.budget {
            watch.expired = true;
            wasmtime::bail!(
                "plugin exceeded its {} ms deadline",
                watch.budget.as_millis()
            );
        }
        Ok(UpdateDeadline::Continue(1))
    });
    store.set_epoch_deadline(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_time_is_not_guest_time() {
        let mut w = CallWatch::new(Duration::from_millis(50));
        w.begin();
        w.on_hook(CallHook::CallingHost);
        std::thread::sleep(Duration::from_millis(80));
        w.on_hook(CallHook::ReturningFromHost);
        assert!(w.guest_time(Instant::now()) < Duration::from_millis(50));
    }

    #[test]
    fn nested_host_calls_count_once_as_host_time() {
        let mut w = CallWatch::new(Duration::from_millis(50));
        w.begin();
        w.on_hook(CallHook::CallingHost);
        std::thread::sleep(Duration::from_millis(40));
        // The result is lowered: the guest's allocator grows memory, a nested host call.
        w.on_hook(CallHook::CallingWasm);
        w.on_hook(CallHook::CallingHost);
        w.on_hook(CallHook::ReturningFromHost);
        w.on_hook(CallHook::ReturningFromWasm);
        std::thread::sleep(Duration::from_millis(40));
        w.on_hook(CallHook::ReturningFromHost);
        assert!(
            w.guest_time(Instant::now()) < Duration::from_millis(50),
            "{:?}",
            w.guest_time(Instant::now())
        );
    }

    #[test]
    fn memory_cap_refuses_growth_past_limit() {
        let mut cap = MemoryCap::new(1 << 20);
        assert!(cap.memory_growing(0, 1 << 19, None).expect("within cap"));
        assert!(cap.memory_growing(0, 2 << 20, None).is_err());
        assert!(cap.exceeded);
    }
}
