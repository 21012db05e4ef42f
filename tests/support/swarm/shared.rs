//! One swarm per test process, for the tests that do not change its nodes.

use super::Swarm;
use std::sync::OnceLock;

/// The swarm, or why it could not start (kept, so later tests fail with the
/// same reason instead of each trying a three-node start again).
static SHARED: OnceLock<Result<Swarm, String>> = OnceLock::new();

/// One swarm for every test of this process that does not change its
/// nodes (the backend conformance suite), started on first use and stopped
/// by PID when the process exits normally (a process killed outright
/// leaves it; the names carry the PID). Panics (failing the test) when it
/// cannot start.
pub fn shared() -> &'static Swarm {
    let started = SHARED.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("gantry-swarm-{}", std::process::id()));
        let swarm = Swarm::start(&dir).map_err(|e| format!("{e:#}"))?;
        extern "C" fn stop_shared() {
            if let Some(Ok(s)) = SHARED.get() {
                s.stop();
            }
        }
        // SAFETY: registering a plain extern "C" fn with no captured state.
        #[allow(unsafe_code)]
        unsafe {
            libc::atexit(stop_shared);
        }
        Ok(swarm)
    });
    match started {
        Ok(swarm) => swarm,
        Err(e) => panic!("a three-node swarm: {e}"),
    }
}
