//! Durable state in SQLite: workload records and their revisions, the
//! GPU ledger (`gpus`) and who holds which scope (`scopes`).
//!
//! Every write is committed (WAL, `synchronous=FULL`) before the control
//! plane acknowledges the call that caused it, so a `kill -9` loses nothing
//! that was acknowledged.

use crate::bindings::types::{ContainerStatus, DesiredState, Revision, Workload, WorkloadPhase};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use std::sync::Mutex;

/// A state-store failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite failed.
    #[error("state store: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A stored record could not be decoded.
    #[error("state store: corrupt record: {0}")]
    Decode(#[from] serde_json::Error),
}

/// What [`StateStore::page`] selects; `None` and empty select everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct Selection<'a> {
    /// Only this owner's.
    pub owner: Option<&'a str>,
    /// Only in this namespace.
    pub namespace: Option<&'a str>,
    /// Only in namespaces starting with this.
    pub namespace_prefix: Option<&'a str>,
    /// Only with this name.
    pub name: Option<&'a str>,
    /// Only carrying every one of these annotations.
    pub annotations: &'a [(String, String)],
}

/// What a resync reads of every record: enough to compare it with a
/// backend's listing. Decoded from the stored record without its spec, so
/// reading 10,000 of them allocates a fraction of what whole records would.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct RecordHead {
    /// Workload id.
    pub id: String,
    /// The backend it is placed on.
    pub backend: String,
    /// Current revision.
    pub revision: u32,
    /// Desired state.
    pub desired: DesiredState,
    /// Phase.
    pub phase: WorkloadPhase,
    /// Its containers' names and statuses as last observed.
    pub containers: Vec<ContainerHead>,
}

/// A container's name and status, in a [`RecordHead`].
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct ContainerHead {
    /// Name within the workload.
    pub name: String,
    /// Last observed status.
    pub status: ContainerStatus,
}

impl From<&Workload> for RecordHead {
    fn from(w: &Workload) -> Self {
        RecordHead {
            id: w.id.clone(),
            backend: w.backend.clone(),
            revision: w.revision,
            desired: w.desired,
            phase: w.phase,
            containers: w
                .containers
                .iter()
                .map(|c| ContainerHead {
                    name: c.name.clone(),
                    status: c.status,
                })
                .collect(),
        }
    }
}

/// Replace a workload's record and its annotation rows (inside the caller's transaction).
fn update_record(tx: &rusqlite::Transaction<'_>, w: &Workload) -> Result<(), StoreError> {
    tx.execute(
        "UPDATE workloads SET name = ?2, namespace = ?3, record = ?4 WHERE id = ?1",
        params![w.id, w.name, w.namespace, serde_json::to_string(w)?],
    )?;
    write_annotations(tx, w)
}

/// Replace a workload's rows in the annotations table (inside the caller's
/// transaction). Most saves are observed-state changes that leave the
/// annotations as they were: those are only read, not rewritten.
fn write_annotations(tx: &rusqlite::Transaction<'_>, w: &Workload) -> Result<(), StoreError> {
    let mut stored: Vec<(String, String)> = {
        let mut stmt =
            tx.prepare_cached("SELECT key, value FROM annotations WHERE workload_id = ?1")?;
        let rows = stmt.query_map(params![w.id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let mut wanted = w.annotations.clone();
    stored.sort();
    wanted.sort();
    wanted.dedup();
    if stored == wanted {
        return Ok(());
    }
    tx.execute(
        "DELETE FROM annotations WHERE workload_id = ?1",
        params![w.id],
    )?;
    let mut stmt = tx.prepare_cached(
        "INSERT OR IGNORE INTO annotations (workload_id, key, value) VALUES (?1, ?2, ?3)",
    )?;
    for (k, v) in &w.annotations {
        stmt.execute(params![w.id, k, v])?;
    }
    Ok(())
}

/// The SQLite state store: one connection writes; reads go through their
/// own (WAL lets them proceed while a write commits), except in memory.
pub struct StateStore {
    conn: Mutex<Connection>,
    reader: Option<Mutex<Connection>>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS workloads (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    backend TEXT NOT NULL,
    created_s INTEGER NOT NULL,
    created_ns INTEGER NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS workloads_owner ON workloads(owner);
CREATE INDEX IF NOT EXISTS workloads_ns_name ON workloads(namespace, name);
CREATE INDEX IF NOT EXISTS workloads_owner_created ON workloads(owner, created_s DESC, created_ns DESC, id);
CREATE INDEX IF NOT EXISTS workloads_created ON workloads(created_s DESC, created_ns DESC, id);
CREATE TABLE IF NOT EXISTS annotations (
    workload_id TEXT NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (workload_id, key, value)
);
CREATE INDEX IF NOT EXISTS annotations_key_value ON annotations(key, value);
-- A name claimed on the ingress belongs to one workload (gantry_sdk::ingress).
CREATE UNIQUE INDEX IF NOT EXISTS annotations_ingress_name ON annotations(value) WHERE key = 'io.gantry.ingress.name';
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS revisions (
    workload_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (workload_id, number)
);
";

impl StateStore {
    /// Open (or create) the store at `path`; `:memory:` for a throwaway one.
    pub fn open(path: &str) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(SCHEMA)?;
        conn.execute_batch(gpus::SCHEMA)?;
        conn.execute_batch(scopes::SCHEMA)?;
        let reader = if path == ":memory:" {
            None
        } else {
            let r = Connection::open(path)?;
            r.busy_timeout(std::time::Duration::from_secs(5))?;
            r.pragma_update(None, "query_only", true)?;
            Some(Mutex::new(r))
        };
        let store = Self {
            conn: Mutex::new(conn),
            reader,
        };
        store.index_annotations()?;
        Ok(store)
    }

    /// Stores written before annotations had their own table: fill it once.
    fn index_annotations(&self) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let done: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'annotations_indexed'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        if done.is_some() {
            return Ok(());
        }
        let tx = conn.transaction()?;
        let records: Vec<String> = {
            let mut stmt = tx.prepare("SELECT record FROM workloads")?;
            let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect::<Result<_, _>>()?
        };
        for r in records {
            let w: Workload = serde_json::from_str(&r)?;
            write_annotations(&tx, &w)?;
        }
        tx.execute(
            "INSERT INTO meta (key, value) VALUES ('annotations_indexed', '1')",
            [],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// This store's host id, created on first use: it labels everything the
    /// host deploys, so hosts sharing a runtime tell their workloads apart.
    pub fn host_id(&self) -> Result<String, StoreError> {
        let conn = self.lock();
        let existing: Option<String> = conn
            .query_row("SELECT value FROM meta WHERE key = 'host_id'", [], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(id) = existing {
            return Ok(id);
        }
        let id = uuid::Uuid::new_v4().to_string();
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('host_id', ?1)",
            params![id],
        )?;
        Ok(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The connection reads use.
    fn read(&self) -> std::sync::MutexGuard<'_, Connection> {
        match &self.reader {
            Some(r) => r.lock().unwrap_or_else(|e| e.into_inner()),
            None => self.lock(),
        }
    }

    /// Insert a new workload and its first revision, atomically.
    pub fn insert(&self, w: &Workload, rev: &Revision) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "INSERT INTO workloads (id, owner, namespace, name, backend, created_s, created_ns, record) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![w.id, w.owner, w.namespace, w.name, w.backend, w.created_at.seconds, w.created_at.nanoseconds, serde_json::to_string(w)?],
        )?;
        write_annotations(&tx, w)?;
        tx.execute(
            "INSERT INTO revisions (workload_id, number, record) VALUES (?1, ?2, ?3)",
            params![rev.workload_id, rev.number, serde_json::to_string(rev)?],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Replace a workload's record.
    pub fn save(&self, w: &Workload) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        update_record(&tx, w)?;
        tx.commit()?;
        Ok(())
    }

    /// Save a workload together with a new revision, atomically.
    pub fn save_with_revision(&self, w: &Workload, rev: &Revision) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        update_record(&tx, w)?;
        tx.execute(
            "INSERT OR REPLACE INTO revisions (workload_id, number, record) VALUES (?1, ?2, ?3)",
            params![rev.workload_id, rev.number, serde_json::to_string(rev)?],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Drop one revision (used to roll back a failed update).
    pub fn delete_revision(&self, id: &str, number: u32) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute(
            "DELETE FROM revisions WHERE workload_id = ?1 AND number = ?2",
            params![id, number],
        )?;
        // Its number is used again by the next update: nothing of it may stay.
        for table in ["gpu_claims", "gpu_holds"] {
            tx.execute(
                &format!("DELETE FROM {table} WHERE workload_id = ?1 AND revision = ?2"),
                params![id, number],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// One workload.
    pub fn get(&self, id: &str) -> Result<Option<Workload>, StoreError> {
        // Statements are cached per connection: a read parses no SQL.
        let rec: Option<String> = self
            .read()
            .prepare_cached("SELECT record FROM workloads WHERE id = ?1")?
            .query_row(params![id], |r| r.get(0))
            .optional()?;
        Ok(rec.map(|r| serde_json::from_str(&r)).transpose()?)
    }

    /// The id of the workload with this name in this namespace.
    pub fn find_by_name(&self, namespace: &str, name: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .read()
            .prepare_cached("SELECT id FROM workloads WHERE namespace = ?1 AND name = ?2")?
            .query_row(params![namespace, name], |r| r.get(0))
            .optional()?)
    }

    /// The id of the workload carrying annotation `key` = `value` (the
    /// first one, for a key that is not unique).
    pub fn find_by_annotation(&self, key: &str, value: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .read()
            .prepare_cached("SELECT workload_id FROM annotations WHERE key = ?1 AND value = ?2")?
            .query_row(params![key, value], |r| r.get(0))
            .optional()?)
    }

    /// The head of every record.
    pub fn heads(&self) -> Result<Vec<RecordHead>, StoreError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached("SELECT record FROM workloads")?;
        let mut rows = stmt.query([])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            // Borrowed text: the record is parsed where SQLite holds it.
            let text = row.get_ref(0)?.as_str().map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?;
            out.push(serde_json::from_str(text)?);
        }
        Ok(out)
    }

    /// A page of the workloads `sel` selects, newest first, and how many it selects.
    /// Filters, count and page run in SQL on indexed columns: only the page's
    /// records are read and decoded.
    pub fn page(
        &self,
        sel: &Selection<'_>,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Workload>, u64), StoreError> {
        let mut cond = vec!["1 = 1".to_string()];
        let mut args: Vec<Value> = Vec::new();
        let arg = |v: &str, args: &mut Vec<Value>| {
            args.push(Value::Text(v.to_string()));
            format!("?{}", args.len())
        };
        if let Some(o) = sel.owner {
            let a = arg(o, &mut args);
            cond.push(format!("owner = {a}"));
        }
        if let Some(n) = sel.namespace {
            let a = arg(n, &mut args);
            cond.push(format!("namespace = {a}"));
        }
        if let Some(p) = sel.namespace_prefix {
            let a = arg(p, &mut args);
            cond.push(format!("substr(namespace, 1, length({a})) = {a}"));
        }
        if let Some(n) = sel.name {
            let a = arg(n, &mut args);
            cond.push(format!("name = {a}"));
        }
        for (k, v) in sel.annotations {
            let (ka, va) = (arg(k, &mut args), arg(v, &mut args));
            cond.push(format!(
                "EXISTS (SELECT 1 FROM annotations a WHERE a.workload_id = w.id AND a.key = {ka} AND a.value = {va})"
            ));
        }
        let filter = cond.join(" AND ");
        let conn = self.read();
        let total: u64 = conn
            .prepare_cached(&format!("SELECT COUNT(*) FROM workloads w WHERE {filter}"))?
            .query_row(params_from_iter(args.iter()), |r| r.get(0))?;
        args.push(Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)));
        args.push(Value::Integer(i64::try_from(offset).unwrap_or(i64::MAX)));
        let (l, o) = (args.len() - 1, args.len());
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT record FROM workloads w WHERE {filter} ORDER BY created_s DESC, created_ns DESC, id LIMIT ?{l} OFFSET ?{o}"
        ))?;
        let rows = stmt.query_map(params_from_iter(args.iter()), |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(serde_json::from_str(&row?)?);
        }
        Ok((out, total))
    }

    /// Remove a workload and its revisions.
    pub fn delete(&self, id: &str) -> Result<(), StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM workloads WHERE id = ?1", params![id])?;
        tx.execute("DELETE FROM revisions WHERE workload_id = ?1", params![id])?;
        tx.execute(
            "DELETE FROM annotations WHERE workload_id = ?1",
            params![id],
        )?;
        // A workload gone is a workload holding no GPU, whatever its
        // scheduler managed to release.
        tx.execute("DELETE FROM gpu_claims WHERE workload_id = ?1", params![id])?;
        tx.execute("DELETE FROM gpu_holds WHERE workload_id = ?1", params![id])?;
        tx.commit()?;
        Ok(())
    }

    /// Revisions of a workload, newest first, with the total.
    pub fn revisions(
        &self,
        id: &str,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Revision>, u64), StoreError> {
        let conn = self.read();
        let total: u64 = conn.query_row(
            "SELECT COUNT(*) FROM revisions WHERE workload_id = ?1",
            params![id],
            |r| r.get(0),
        )?;
        let mut stmt =
            conn.prepare("SELECT record FROM revisions WHERE workload_id = ?1 ORDER BY number DESC LIMIT ?2 OFFSET ?3")?;
        let rows = stmt.query_map(params![id, limit, offset], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for row in rows {
            out.push(serde_json::from_str(&row?)?);
        }
        Ok((out, total))
    }
}

mod gpus;
mod scopes;
#[cfg(test)]
mod tests;

pub use gpus::HeldElsewhere;
