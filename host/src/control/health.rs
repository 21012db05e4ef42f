//! Whether each backend answers, as the reconciler last found it: what
//! `/readyz` reports, and the one place that decides when an unreachable
//! backend is logged (once when it goes, then at growing intervals, once
//! when it comes back) instead of at every retry.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// What is known of one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reachability {
    /// Not asked yet.
    Unknown,
    /// Its last call succeeded.
    Reachable,
    /// Its calls fail: the last error, and how many failures in a row.
    Unreachable {
        /// The last error.
        reason: String,
        /// Consecutive failures.
        failures: u64,
    },
}

/// The reachability of every backend.
#[derive(Debug, Default)]
pub struct BackendHealth {
    backends: Mutex<BTreeMap<String, Reachability>>,
}

impl BackendHealth {
    /// Health of `names`, none asked yet.
    pub fn new<'a>(names: impl IntoIterator<Item = &'a String>) -> Self {
        Self {
            backends: Mutex::new(
                names
                    .into_iter()
                    .map(|n| (n.clone(), Reachability::Unknown))
                    .collect(),
            ),
        }
    }

    /// A call to `backend` succeeded.
    pub fn reached(&self, backend: &str) {
        let mut b = self.backends.lock().unwrap_or_else(|e| e.into_inner());
        let before = b.insert(backend.to_string(), Reachability::Reachable);
        if let Some(Reachability::Unreachable { failures, .. }) = before {
            tracing::info!(backend, failures, "backend reachable again");
        }
    }

    /// A call to `backend` failed with `reason`. Logged at the 1st, 2nd, 4th,
    /// 8th... failure in a row, so a backend that stays down is not a log flood.
    pub fn failed(&self, backend: &str, reason: &str) {
        let mut b = self.backends.lock().unwrap_or_else(|e| e.into_inner());
        let failures = match b.get(backend) {
            Some(Reachability::Unreachable { failures, .. }) => failures + 1,
            _ => 1,
        };
        b.insert(
            backend.to_string(),
            Reachability::Unreachable {
                reason: reason.to_string(),
                failures,
            },
        );
        if failures.is_power_of_two() {
            tracing::warn!(
                backend,
                failures,
                error = reason,
                "backend unreachable (logged again at the next power of two)"
            );
        }
    }

    /// What keeps the host from being ready: one line per backend not reachable.
    pub fn problems(&self) -> Vec<String> {
        let b = self.backends.lock().unwrap_or_else(|e| e.into_inner());
        b.iter()
            .filter_map(|(name, r)| match r {
                Reachability::Reachable => None,
                Reachability::Unknown => Some(format!("backend `{name}`: not reached yet")),
                Reachability::Unreachable { reason, .. } => {
                    Some(format!("backend `{name}` is unreachable: {reason}"))
                }
            })
            .collect()
    }

    /// The state of one backend.
    pub fn of(&self, backend: &str) -> Reachability {
        let b = self.backends.lock().unwrap_or_else(|e| e.into_inner());
        b.get(backend).cloned().unwrap_or(Reachability::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_backends_are_named_until_they_answer() {
        let names = vec!["docker".to_string(), "edge".to_string()];
        let h = BackendHealth::new(&names);
        assert_eq!(h.problems().len(), 2, "unknown is not ready");
        h.reached("edge");
        h.failed("docker", "connection refused");
        h.failed("docker", "connection refused");
        assert_eq!(
            h.of("docker"),
            Reachability::Unreachable {
                reason: "connection refused".into(),
                failures: 2
            }
        );
        let p = h.problems();
        assert_eq!(p.len(), 1);
        assert!(
            p[0].contains("docker") && p[0].contains("connection refused"),
            "{p:?}"
        );
        h.reached("docker");
        assert!(h.problems().is_empty());
    }
}
