//! `status/installedDependencies`: every container, however it was created,
//! as hawkBit sees it.
//!
//! Kanto writes the whole map on every creation and removal. So does this,
//! at once, for a burst of up to [`BURST`] changes (refilled at one write
//! per pause); past that, changes go out together after a pause that
//! grows with the map ([`settle_ms`]: 100 ms per thousand entries, at
//! least 100 ms, at most 5 s), so that creating or removing thousands of
//! containers writes a bounded number of bytes per second, not a
//! thousand-entry map each time.
//! A container feature's deletion waits for the write that drops its
//! dependency: the dependency change precedes the deletion, as in Kanto.
//!
//! A map too big for one message ([`WHOLE_LIMIT`] serialized; thousands of
//! containers) is written as Ditto merge patches instead, in chunks under
//! that size: the entries added since the last write, and `null` for those
//! removed (at a (re)connection, every entry, after a feature without it).

use super::{DEPENDENCIES_TIMER, Twin, status_path};
use gantry_sdk::mqtt_frontend::gantry::plugin::control;
use gantry_sdk::mqtt_frontend::gantry::plugin::mqtt_client;
use gantry_sdk::mqtt_frontend::gantry::plugin::types::Workload;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};

/// Writes made at once in a burst.
const BURST: f64 = 16.0;
/// The largest map written whole, serialized, in bytes (well within the
/// host's packets of 4 MiB, and quick for the cloud to take).
const WHOLE_LIMIT: usize = 512 * 1024;
/// How long held changes wait, once a burst is spent, for a map of `len`
/// entries; the burst refills at one write per this long.
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
    /// Workloads added, and keys removed, since the map was last written.
    static ADDED: RefCell<BTreeSet<String>> = const { RefCell::new(BTreeSet::new()) };
    static REMOVED: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// Whether the feature was last written without its (too big) map.
    static LEFT_OUT: Cell<bool> = const { Cell::new(false) };
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
    ADDED.with(|a| a.borrow_mut().clear());
    REMOVED.with(|r| r.borrow_mut().clear());
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
    let changed =
        DEPENDENCIES.with(|d| d.borrow_mut().insert(w.id.clone(), dep.clone()) != Some(dep));
    if changed {
        ADDED.with(|a| a.borrow_mut().insert(w.id.clone()));
    }
    changed
}

/// Take workload `id` out of the map; whether it was there.
fn take(id: &str) -> bool {
    let Some(dep) = DEPENDENCIES.with(|d| d.borrow_mut().remove(id)) else {
        return false;
    };
    if !ADDED.with(|a| a.borrow_mut().remove(id)) {
        REMOVED.with(|r| r.borrow_mut().push(key(&dep)));
    }
    true
}

/// Workload `id` was removed; `feature`, its container feature, is deleted
/// once the map without it is written.
pub fn removed(twin: &dyn Twin, id: &str, feature: Option<String>) {
    if take(id) {
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
    if take(id) {
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

/// Whether a change may be written now, given the burst allowance left,
/// when it was counted and how fast it refills (a write per `refill_ms`);
/// and the allowance after.
fn allowance(left: f64, counted_ms: u64, now_ms: u64, refill_ms: u32) -> (bool, f64) {
    let elapsed = now_ms.saturating_sub(counted_ms) as f64;
    let left = (left + elapsed / f64::from(refill_ms.max(1))).min(BURST);
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
    let settle = settle_ms(DEPENDENCIES.with(|d| d.borrow().len()));
    let (left, counted) = ALLOWANCE.get();
    let (now_allowed, left) = allowance(left, counted, now, settle);
    ALLOWANCE.set((left, now));
    if !now_allowed && !at_once {
        HELD.set(true);
        mqtt_client::set_timer(DEPENDENCIES_TIMER, settle, false);
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
        // A held write spends the allowance too: a steady stream of
        // changes stays at one write per pause.
        let now = now_ms();
        let settle = settle_ms(DEPENDENCIES.with(|d| d.borrow().len()));
        let (left, counted) = ALLOWANCE.get();
        let (_, left) = allowance(left, counted, now, settle);
        ALLOWANCE.set(((left - 1.0).max(0.0), now));
        write(twin);
    }
}

fn write(twin: &dyn Twin) {
    HELD.set(false);
    let whole = value();
    if !LEFT_OUT.get() && whole.to_string().len() <= WHOLE_LIMIT {
        twin.modify(&status_path("installedDependencies"), whole);
        ADDED.with(|a| a.borrow_mut().clear());
        REMOVED.with(|r| r.borrow_mut().clear());
    } else {
        merge_changes(twin);
    }
    for f in DELETIONS.with(|d| std::mem::take(&mut *d.borrow_mut())) {
        twin.delete(&f);
    }
}

/// The changes since the last write as merge patches, each under
/// [`WHOLE_LIMIT`] serialized.
fn merge_changes(twin: &dyn Twin) {
    let added: Vec<String> =
        ADDED.with(|a| std::mem::take(&mut *a.borrow_mut()).into_iter().collect());
    let removed = REMOVED.with(|r| std::mem::take(&mut *r.borrow_mut()));
    let mut entries: Vec<(String, Value)> = DEPENDENCIES.with(|d| {
        let d = d.borrow();
        added
            .iter()
            .filter_map(|id| d.get(id))
            .map(|dep| (key(dep), serde_json::to_value(dep).unwrap_or(Value::Null)))
            .collect()
    });
    entries.extend(removed.into_iter().map(|k| (k, Value::Null)));
    for patch in chunks(entries, WHOLE_LIMIT) {
        twin.merge(&status_path("installedDependencies"), patch);
    }
    LEFT_OUT.set(false);
}

/// `entries` as objects of at most `limit` bytes serialized (an entry
/// bigger than that alone in its own).
fn chunks(entries: Vec<(String, Value)>, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut current = serde_json::Map::new();
    let mut size = 2;
    for (k, v) in entries {
        let len = k.len() + v.to_string().len() + 4;
        if !current.is_empty() && size + len > limit {
            out.push(Value::Object(std::mem::take(&mut current)));
            size = 2;
        }
        size += len;
        current.insert(k, v);
    }
    if !current.is_empty() {
        out.push(Value::Object(current));
    }
    out
}

/// The map for the feature written whole at a (re)connection, or nothing
/// when it is too big for one message: then every entry follows as merge
/// patches ([`after_feature`]).
pub fn for_feature() -> Value {
    let whole = value();
    let fits = whole.to_string().len() <= WHOLE_LIMIT;
    LEFT_OUT.set(!fits);
    if fits { whole } else { Value::Null }
}

/// After the feature was written: a map left out of it, as merge patches.
pub fn after_feature(twin: &dyn Twin) {
    if LEFT_OUT.get() {
        DEPENDENCIES
            .with(|d| ADDED.with(|a| *a.borrow_mut() = d.borrow().keys().cloned().collect()));
        REMOVED.with(|r| r.borrow_mut().clear());
        merge_changes(twin);
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
            let (now, l) = allowance(left, at, 1_000, 100);
            assert!(now, "change {i} of the burst");
            (left, at) = (l, 1_000);
        }
        let (now, l) = allowance(left, at, 1_050, 100);
        assert!(!now, "the 17th within 50 ms waits");
        // A pause refills one write; a big map's pause is longer.
        let (now, _) = allowance(l, 1_050, 1_150, 100);
        assert!(now);
        let (now, _) = allowance(l, 1_050, 1_150, 1_000);
        assert!(!now);
        // An idle minute refills the whole burst, no more.
        let (_, l) = allowance(0.0, 0, 60_000, 100);
        assert_eq!(l, BURST - 1.0);
    }

    #[test]
    fn big_maps_go_out_in_chunks_under_the_limit() {
        let entries: Vec<(String, Value)> = (0..1000)
            .map(|i| {
                (
                    format!("key-{i:04}"),
                    serde_json::json!({"name": "x".repeat(100)}),
                )
            })
            .collect();
        let out = chunks(entries, 10_000);
        assert!(out.len() > 10);
        assert!(out.iter().all(|c| c.to_string().len() <= 10_000));
        let total: usize = out
            .iter()
            .map(|c| c.as_object().map_or(0, |o| o.len()))
            .sum();
        assert_eq!(total, 1000);
        let removed = chunks(vec![("gone".into(), Value::Null)], 10_000);
        assert_eq!(removed, vec![serde_json::json!({"gone": null})]);
    }

    #[test]
    fn big_maps_are_written_less_often() {
        assert_eq!(settle_ms(0), 100);
        assert_eq!(settle_ms(1_500), 100);
        assert_eq!(settle_ms(10_000), 1_000);
        assert_eq!(settle_ms(1_000_000), 5_000);
    }
}
