//! Per-call guards: a guest-time deadline enforced through epochs, and a
//! per-instance linear-memory cap; the limits config they come from, and the
//! instance-lifetime policy of a plugin.
//!
//! The deadline counts only time spent executing guest code: time the guest
//! spends blocked in a host call (an HTTP request to the runtime, a log
//! follow) is subtracted, so a plugin streaming logs for an hour is fine while
//! a plugin spinning in a loop is stopped after `call_timeout`.
//!
//! A second deadline, `answer_timeout`, is wall-clock time: how long a call
//! may take to answer, waiting on the host included. The pool cuts a call
//! that passes it ([`super::pool::InstancePool::call`]), so a plugin waiting
//! on a runtime that never answers fails its call instead of holding it
//! forever.

use serde::Deserialize;
use std::time::{Duration, Instant};
use wasmtime::{CallHook, ResourceLimiter, Store, UpdateDeadline};

/// Plugin resource limits (`[limits]`, and a plugin's `limits` overrides).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Guest execution time allowed per call, in milliseconds (time spent
    /// waiting on the host is not counted).
    #[serde(default = "default_call_ms")]
    pub call_timeout_ms: u64,
    /// Wall-clock time a call may take to answer, in milliseconds, time
    /// spent waiting on the host (a runtime's API, an image pull) included.
    /// A call that passes it is cut and its instance dropped.
    #[serde(default = "default_answer_ms")]
    pub answer_timeout_ms: u64,
    /// Linear memory cap per plugin instance, in MiB.
    #[serde(default = "default_memory_mib")]
    pub memory_mib: u64,
    /// How many calls a warm instance serves before it is recycled
    /// (plugins whose world keeps pooled instances).
    #[serde(default = "default_reuse")]
    pub max_reuse: u32,
    /// How many warm instances a plugin keeps (pooled worlds).
    #[serde(default = "default_idle")]
    pub max_idle: usize,
    /// A pooled instance whose linear memory grew past this many MiB (a
    /// listing of 10,000 containers, say) is dropped after its call instead
    /// of kept warm, so that memory goes back to the system.
    #[serde(default = "default_retain")]
    pub retain_memory_mib: u64,
}

fn default_call_ms() -> u64 {
    5_000
}
fn default_answer_ms() -> u64 {
    // Long enough for a create that pulls a large image or waits for a
    // cluster to converge; a runtime that says nothing for this long is
    // not going to.
    300_000
}
fn default_memory_mib() -> u64 {
    128
}
fn default_reuse() -> u32 {
    1_000
}
fn default_idle() -> usize {
    // As many as 32 concurrent requests find a warm instance: fewer, and
    // instances are dropped and started again at every burst.
    32
}
fn default_retain() -> u64 {
    16
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            call_timeout_ms: default_call_ms(),
            answer_timeout_ms: default_answer_ms(),
            memory_mib: default_memory_mib(),
            max_reuse: default_reuse(),
            max_idle: default_idle(),
            retain_memory_mib: default_retain(),
        }
    }
}

/// Per-plugin overrides of [`LimitsConfig`].
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsOverride {
    /// See [`LimitsConfig::call_timeout_ms`].
    pub call_timeout_ms: Option<u64>,
    /// See [`LimitsConfig::answer_timeout_ms`].
    pub answer_timeout_ms: Option<u64>,
    /// See [`LimitsConfig::memory_mib`].
    pub memory_mib: Option<u64>,
    /// See [`LimitsConfig::max_reuse`].
    pub max_reuse: Option<u32>,
    /// See [`LimitsConfig::max_idle`].
    pub max_idle: Option<usize>,
    /// See [`LimitsConfig::retain_memory_mib`].
    pub retain_memory_mib: Option<u64>,
}

impl LimitsOverride {
    /// Whether this override sets a pooling knob (`max_reuse`, `max_idle`,
    /// `retain_memory_mib`).
    pub fn sets_pooling(&self) -> bool {
        self.max_reuse.is_some() || self.max_idle.is_some() || self.retain_memory_mib.is_some()
    }
}

impl LimitsConfig {
    /// These limits with a plugin's overrides applied.
    pub fn with(&self, o: &LimitsOverride) -> LimitsConfig {
        LimitsConfig {
            call_timeout_ms: o.call_timeout_ms.unwrap_or(self.call_timeout_ms),
            answer_timeout_ms: o.answer_timeout_ms.unwrap_or(self.answer_timeout_ms),
            memory_mib: o.memory_mib.unwrap_or(self.memory_mib),
            max_reuse: o.max_reuse.unwrap_or(self.max_reuse),
            max_idle: o.max_idle.unwrap_or(self.max_idle),
            retain_memory_mib: o.retain_memory_mib.unwrap_or(self.retain_memory_mib),
        }
    }

    /// How large a pooled instance's memory may be and still be kept warm, in bytes.
    pub fn retain_bytes(&self) -> usize {
        usize::try_from(self.retain_memory_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }

    /// How long a call may take to answer.
    pub fn answer_within(&self) -> Duration {
        Duration::from_millis(self.answer_timeout_ms)
    }

    /// The memory cap in bytes.
    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mib.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }

    /// Fresh guards for one instance.
    pub fn guards(&self) -> Guards {
        Guards {
            memory: MemoryCap::new(self.memory_bytes()),
            watch: CallWatch::new(Duration::from_millis(self.call_timeout_ms)),
            answer_within: self.answer_within(),
            answer_by: None,
        }
    }
}

/// How long a plugin's instances live. A plugin's world declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstancePolicy {
    /// Up to `max_idle` warm instances, each serving at most `max_reuse`
    /// calls. Nothing a plugin keeps in memory survives past that: worlds
    /// with this policy must not rely on state between calls.
    Pooled,
    /// One instance that lives as long as the host and keeps its memory
    /// between calls, which the pool makes one at a time; a call that fails
    /// it (trap, deadline, memory) replaces it with a fresh one.
    LongLived,
}

/// The memory cap and the call watch of one instance.
#[derive(Debug)]
pub struct Guards {
    /// The linear-memory cap.
    pub memory: MemoryCap,
    /// The guest-time deadline.
    pub watch: CallWatch,
    answer_within: std::time::Duration,
    answer_by: Option<Instant>,
}

impl Guards {
    /// Reset for a new call.
    pub fn begin_call(&mut self) {
        self.watch.begin();
        self.memory.exceeded = false;
        self.answer_by = Instant::now().checked_add(self.answer_within);
    }

    /// When the current call must have answered by (see
    /// [`LimitsConfig::answer_timeout_ms`]): what the host does on the
    /// call's behalf is bounded by it too.
    pub fn answer_by(&self) -> Option<Instant> {
        self.answer_by
    }

    /// Give the current call until `by` to answer instead.
    pub fn answer_until(&mut self, by: Instant) {
        self.answer_by = Some(by);
    }

    /// Whether the last call hit the memory cap, and the cap.
    pub fn memory_exceeded(&self) -> Option<usize> {
        self.memory.exceeded.then(|| self.memory.limit())
    }

    /// Whether the last call ran out of time, and the budget.
    pub fn deadline_expired(&self) -> Option<u128> {
        self.watch.expired.then(|| self.watch.budget().as_millis())
    }
}

/// Caps the linear memory of one instance.
#[derive(Debug)]
pub struct MemoryCap {
    limit: usize,
    /// The size of the largest memory the instance has grown, in bytes.
    grown: usize,
    /// Set when the guest asked for more than `limit`.
    pub exceeded: bool,
}

impl MemoryCap {
    /// A cap of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            grown: 0,
            exceeded: false,
        }
    }

    /// The cap in bytes.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The size of the instance's largest linear memory, in bytes.
    pub fn grown(&self) -> usize {
        self.grown
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
        self.grown = self.grown.max(desired);
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

/// What a store's data must offer for the runtime to run it: its guards, and
/// a way to forget what was bound for a call before the instance is reused.
pub trait PluginData: Send + 'static {
    /// The instance's guards.
    fn guards(&mut self) -> &mut Guards;
    /// Forget per-call bindings (such as the caller) once a call ended.
    fn end_call(&mut self);
}

/// Install the memory cap, the call hook and the epoch callback on a store.
pub fn install<T: PluginData>(store: &mut Store<T>) {
    store.limiter(|s| &mut s.guards().memory);
    store.call_hook(|mut ctx, hook| {
        ctx.data_mut().guards().watch.on_hook(hook);
        Ok(())
    });
    store.epoch_deadline_callback(|mut ctx| {
        let watch = &mut ctx.data_mut().guards().watch;
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

    #[test]
    fn memory_cap_remembers_the_largest_growth_it_allowed() {
        let mut cap = MemoryCap::new(8 << 20);
        assert!(cap.memory_growing(0, 3 << 20, None).expect("within cap"));
        assert!(
            cap.memory_growing(3 << 20, 5 << 20, None)
                .expect("within cap")
        );
        assert!(cap.memory_growing(5 << 20, 9 << 20, None).is_err());
        assert_eq!(cap.grown(), 5 << 20, "a refused growth is not counted");
    }
}
