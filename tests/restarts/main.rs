//! Runtimes killed and restarted under a running host: a binary of its own,
//! because each restarts a runtime every other test of the run shares (and
//! dockerd runs on the shared containerd), one at a time.

#[path = "../conformance/mod.rs"]
mod conformance;
mod containerd;
mod docker;
mod podman;

/// One restart at a time: dockerd depends on the containerd another test
/// restarts.
fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}
