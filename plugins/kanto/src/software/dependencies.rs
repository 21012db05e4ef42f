//! `status/installedDependencies`: every container, however it was created,
//! as hawkBit sees it.
//!
//! Kanto writes the whole map on every creation and removal. So does this,
//! at once, for a burst of up to [`BURST`] changes (refilled at
//! [`PER_SECOND`]); past that, changes go out together after a pause that
//! grows with the map ([`settle_ms`]: 100 ms per thousand entries, at
//! least 100 ms, at most 5 s), so that creating or removing thousands of
//! containers writes a bounded number of bytes per second, not a
//! thousand-entry map each time.
//! A container feature's deletion waits for the write that drops its
//! dependency: the dependency change precedes the deletion, as in Kanto.

use super::{DEPENDENCIES_TIMER, Twin, status_path};
use gantry_sdk::mqtt_frontend::gantry::plugin::control;
use gantry_sdk::mqtt_frontend::gantry::plugin::mqtt_client;
use gantry_sdk::mqtt_frontend::gantry::plugin::types::Workload;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

/// Writes made at once in a burst.
const BURST: f64 = 16.0;
/// How fast the burst refills, in writes per second.
const PER_SECOND: f64 = 10.0;
/// How long held changes wait, once a burst is spent, for a map of `len`
/// entries.
fn settle_ms(len: usize) -> u32 {
    let thousands = u32::try_from(len / 1000).unwrap_or(u32::MAX).max(1);
    thousands.saturating_mul(100).min(5_000)
}

/// One installed container as hawkBit sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) group: Option<String>,
    pub(super) name: String,
    #[serde(default)]
    pub(super) version: String,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub(super) kind: Option<String>,
}

thread_local! {
    static DEPENDENCIES: RefCell<BTreeMap<String, Dependency>> = const { RefCell::new(BTreeMap::new()) };
    /// Writes left in the burst, and when that was counted (milliseconds
    /// since the epoch).
    static ALLOWANCE: Cell<(f64, u64)> = const { Cell::new((BURST, 0)) };
    /// Whether a change waits for the timer.
    static HELD: Cell<bool> = const { Cell::new(false) };
    /// Feature deletions waiting for the held change.
    static DELETIONS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

/// hawkBit's view of a container: the image repository as its group, the
/// container id as its name, the tag as its version.
fn dependency(w: &Workload) -> Option<Dependency> {
    let image = &w.spec.containers.first()?.image;
    let last_slash = image.rfind('/').map_or(0, |i| i + 1);
    let (group, version) = match image[last_slash..].rfind(':') {
        Some(i) => (&image[..last_slash + i], &image[last_slash + i + 1..]),
        None => (image.as_str(), ""),
    };
    Some(Dependency {
        group: Some(group.to_string()),
        name: w.id.clone(),
        version: version.to_string(),
        kind: None,
    })
}

/// `installedDependencies`' key for a dependency: `group.name:version`,
/// slashes escaped.
fn key(d: &Dependency) -> String {
    format!(
        "{}.{}:{}",
        d.group.as_deref().unwrap_or(""),
        d.name,
        d.version
    )
    .replace('/', "%2F")
}

/// Start over from every workload (after a (re)connection, before the whole
/// feature is written again); the feature deletions that were waiting, for
/// the caller to make.
pub fn reset_dependencies(all: &[Workload]) -> Vec<String> {
    if HELD.replace(false) {
        mqtt_client::cancel_timer(DEPENDENCIES_TIMER);
    }
    DEPENDENCIES.with(|d| {
        let mut d = d.borrow_mut();
        d.clear();
        for w in all {
            if let Some(dep) = dependency(w) {
                d.insert(w.id.clone(), dep);
            }
        }
    });
    DELETIONS.with(|d| std::mem::take(&mut *d.borrow_mut()))
}

/// A workload was created.
pub fn added(twin: &dyn Twin, w: &Workload) {
    if insert(w) {
        changed(twin, false);
    }
}

/// Workload `w` was created by an `install`: the map with it is written
/// now, so that it comes before the install finishes, as in Kanto.
pub(super) fn installed(twin: &dyn Twin, w: &Workload) {
    if insert(w) {
        changed(twin, true);
    }
}

/// Whether adding `w` changed the map.
fn insert(w: &Workload) -> bool {
    let Some(dep) = dependency(w) else {
        return false;
    };
    DEPENDENCIES.with(|d| d.borrow_mut().insert(w.id.clone(), dep.clone()) != Some(dep))
}

/// Workload `id` was removed; `feature`, its container feature, is deleted
/// once the map without it is written.
pub fn removed(twin: &dyn Twin, id: &str, feature: Option<String>) {
    if DEPENDENCIES.with(|d| d.borrow_mut().remove(id).is_some()) {
        changed(twin, false);
    }
    if let Some(f) = feature {
        if HELD.get() {
            DELETIONS.with(|d| d.borrow_mut().push(f));
        } else {
            twin.delete(&f);
        }
    }
}

/// Workload `id` is being removed by a `remove` operation: the map without
/// it is written now, so that it comes before REMOVED, as in Kanto.
pub(super) fn removing(twin: &dyn Twin, id: &str) {
    if DEPENDENCIES.with(|d| d.borrow_mut().remove(id).is_some()) {
        changed(twin, true);
    }
}

fn now_ms() -> u64 {
    let t = control::now();
    u64::try_from(t.seconds)
        .unwrap_or(0)
        .saturating_mul(1000)
        .saturating_add(u64::from(t.nanoseconds / 1_000_000))
}

/// Whether a change may be written now, given the burst allowance left
/// and when it was counted; and the allowance after.
fn allowance(left: f64, counted_ms: u64, now_ms: u64) -> (bool, f64) {
    let elapsed = now_ms.saturating_sub(counted_ms) as f64 / 1000.0;
    let left = (left + elapsed * PER_SECOND).min(BURST);
    if left < 1.0 {
        (false, left)
    } else {
        (true, left - 1.0)
    }
}

fn changed(twin: &dyn Twin, at_once: bool) {
    if HELD.get() && !at_once {
        return;
    }
    let now = now_ms();
    let (left, counted) = ALLOWANCE.get();
    let (now_allowed, left) = allowance(left, counted, now);
    ALLOWANCE.set((left, now));
    if !now_allowed && !at_once {
        HELD.set(true);
        let len = DEPENDENCIES.with(|d| d.borrow().len());
        mqtt_client::set_timer(DEPENDENCIES_TIMER, settle_ms(len), false);
        return;
    }
    if HELD.get() {
        mqtt_client::cancel_timer(DEPENDENCIES_TIMER);
    }
    write(twin);
}

/// The dependency timer fired: write what was held back.
pub fn dependencies_due(twin: &dyn Twin) {
    if HELD.get() {
        write(twin);
    }
}

fn write(twin: &dyn Twin) {
    HELD.set(false);
    twin.modify(&status_path("installedDependencies"), value());
    for f in DELETIONS.with(|d| std::mem::take(&mut *d.borrow_mut())) {
        twin.delete(&f);
    }
}

/// `installedDependencies` now (null when empty, as Kanto writes it).
pub fn value() -> Value {
    DEPENDENCIES.with(|d| {
        let d = d.borrow();
        if d.is_empty() {
            return Value::Null;
        }
        Value::Object(
            d.values()
                .map(|dep| (key(dep), serde_json::to_value(dep).unwrap_or(Value::Null)))
                .collect(),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependency_keys_escape_slashes_and_split_the_tag() {
        let d = Dependency {
            group: Some("docker.io/library/influxdb".into()),
            name: "3f2c".into(),
            version: "1.8.4".into(),
            kind: None,
        };
        assert_eq!(key(&d), "docker.io%2Flibrary%2Finfluxdb.3f2c:1.8.4");
    }

    #[test]
    fn a_burst_is_written_at_once_and_what_follows_is_held() {
        let (mut left, mut at) = (BURST, 0);
        for i in 0..16 {
            let (now, l) = allowance(left, at, 1_000);
            assert!(now, "change {i} of the burst");
            (left, at) = (l, 1_000);
        }
        let (now, l) = allowance(left, at, 1_050);
        assert!(!now, "the 17th within 50 ms waits");
        // A tenth of a second refills one write.
        let (now, _) = allowance(l, 1_050, 1_150);
        assert!(now);
        // An idle minute refills the whole burst, no more.
        let (_, l) = allowance(0.0, 0, 60_000);
        assert_eq!(l, BURST - 1.0);
    }

    #[test]
    fn big_maps_are_written_less_often() {
        assert_eq!(settle_ms(0), 100);
        assert_eq!(settle_ms(1_500), 100);
        assert_eq!(settle_ms(10_000), 1_000);
        assert_eq!(settle_ms(1_000_000), 5_000);
    }
}
