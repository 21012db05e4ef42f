//! The GPU ledger's tables: which deployed revision holds which GPU, and
//! which revisions wait for GPUs, in what order.

use super::{StateStore, StoreError};
use crate::bindings::gantry::plugin::allocations::Claim;
use crate::bindings::types::GpuAssignment;
use rusqlite::{OptionalExtension, params};
use std::collections::BTreeMap;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS gpu_claims (
    workload_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    request TEXT NOT NULL,
    ticket INTEGER,
    PRIMARY KEY (workload_id, revision)
);
CREATE TABLE IF NOT EXISTS gpu_holds (
    uuid TEXT NOT NULL,
    workload_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    container TEXT NOT NULL,
    gpu_index INTEGER NOT NULL,
    model TEXT NOT NULL,
    memory_bytes INTEGER NOT NULL,
    PRIMARY KEY (uuid, workload_id, revision)
);
CREATE INDEX IF NOT EXISTS gpu_holds_revision ON gpu_holds(workload_id, revision);
";

/// The columns of a `gpu_holds` row read as an assignment, after two others.
const HOLD_COLUMNS: &str = "container, gpu_index, uuid, model, memory_bytes";

/// The assignment in columns `at..at + 5` of a row selecting [`HOLD_COLUMNS`].
fn assignment(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<GpuAssignment> {
    Ok(GpuAssignment {
        container: r.get(at)?,
        index: r.get(at + 1)?,
        uuid: r.get(at + 2)?,
        model: r.get(at + 3)?,
        memory_bytes: r.get::<_, i64>(at + 4)?.max(0) as u64,
    })
}

/// Why a hold was refused.
#[derive(Debug, PartialEq, Eq)]
pub struct HeldElsewhere {
    /// The GPU.
    pub uuid: String,
    /// The workload holding it.
    pub workload_id: String,
}

impl StateStore {
    /// Every claim, held or waiting, waiting ones by ticket.
    pub fn gpu_claims(&self) -> Result<Vec<Claim>, StoreError> {
        let conn = self.lock();
        let mut holds: BTreeMap<(String, u32), Vec<GpuAssignment>> = BTreeMap::new();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT workload_id, revision, {HOLD_COLUMNS}
             FROM gpu_holds ORDER BY workload_id, revision, container, gpu_index"
        ))?;
        let rows = stmt.query_map([], |r| {
            Ok((
                (r.get::<_, String>(0)?, r.get::<_, u32>(1)?),
                assignment(r, 2)?,
            ))
        })?;
        for row in rows {
            let (key, a) = row?;
            holds.entry(key).or_default().push(a);
        }
        let mut stmt = conn.prepare_cached(
            "SELECT workload_id, revision, request, ticket FROM gpu_claims
             ORDER BY ticket IS NULL, ticket, workload_id, revision",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(Claim {
                workload_id: r.get(0)?,
                revision: r.get(1)?,
                gpus: Vec::new(),
                request: r.get(2)?,
                ticket: r.get::<_, Option<i64>>(3)?.map(|t| t.max(0) as u64),
            })
        })?;
        let mut out = Vec::new();
        for row in rows {
            let mut c = row?;
            c.gpus = holds
                .remove(&(c.workload_id.clone(), c.revision))
                .unwrap_or_default();
            out.push(c);
        }
        Ok(out)
    }

    /// The GPUs one revision holds.
    pub fn gpu_holds_of(
        &self,
        workload_id: &str,
        revision: u32,
    ) -> Result<Vec<GpuAssignment>, StoreError> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {HOLD_COLUMNS} FROM gpu_holds WHERE workload_id = ?1 AND revision = ?2
             ORDER BY container, gpu_index"
        ))?;
        let rows = stmt.query_map(params![workload_id, revision], |r| assignment(r, 0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Record that a revision holds `gpus`, unless another workload holds
    /// one of them; in one transaction, so two schedulers racing for a GPU
    /// cannot both win.
    pub fn gpu_hold(
        &self,
        workload_id: &str,
        revision: u32,
        gpus: &[GpuAssignment],
        request: &str,
    ) -> Result<Result<(), HeldElsewhere>, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        for g in gpus {
            let other: Option<String> = tx
                .query_row(
                    "SELECT workload_id FROM gpu_holds WHERE uuid = ?1 AND workload_id != ?2 LIMIT 1",
                    params![g.uuid, workload_id],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(other) = other {
                return Ok(Err(HeldElsewhere {
                    uuid: g.uuid.clone(),
                    workload_id: other,
                }));
            }
        }
        tx.execute(
            "DELETE FROM gpu_holds WHERE workload_id = ?1 AND revision = ?2",
            params![workload_id, revision],
        )?;
        for g in gpus {
            tx.execute(
                "INSERT OR REPLACE INTO gpu_holds
                 (uuid, workload_id, revision, container, gpu_index, model, memory_bytes)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    g.uuid,
                    workload_id,
                    revision,
                    g.container,
                    g.index,
                    g.model,
                    i64::try_from(g.memory_bytes).unwrap_or(i64::MAX)
                ],
            )?;
        }
        tx.execute(
            "INSERT OR REPLACE INTO gpu_claims (workload_id, revision, request, ticket)
             VALUES (?1, ?2, ?3, NULL)",
            params![workload_id, revision, request],
        )?;
        tx.commit()?;
        Ok(Ok(()))
    }

    /// Record that a revision waits; its ticket is the one its workload
    /// already has, or a new one after every other.
    pub fn gpu_wait(
        &self,
        workload_id: &str,
        revision: u32,
        request: &str,
    ) -> Result<u64, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let ticket: i64 = match tx.query_row(
            "SELECT MIN(ticket) FROM gpu_claims WHERE workload_id = ?1",
            params![workload_id],
            |r| r.get::<_, Option<i64>>(0),
        )? {
            Some(t) => t,
            None => tx.query_row(
                "SELECT COALESCE(MAX(ticket), 0) + 1 FROM gpu_claims",
                [],
                |r| r.get(0),
            )?,
        };
        tx.execute(
            "DELETE FROM gpu_holds WHERE workload_id = ?1 AND revision = ?2",
            params![workload_id, revision],
        )?;
        tx.execute(
            "INSERT OR REPLACE INTO gpu_claims (workload_id, revision, request, ticket)
             VALUES (?1, ?2, ?3, ?4)",
            params![workload_id, revision, request, ticket],
        )?;
        tx.commit()?;
        Ok(ticket.max(0) as u64)
    }

    /// Forget what a revision holds or waits for (every revision when
    /// `revision` is none); whether it held any GPU.
    pub fn gpu_release(
        &self,
        workload_id: &str,
        revision: Option<u32>,
    ) -> Result<bool, StoreError> {
        let mut conn = self.lock();
        let tx = conn.transaction()?;
        let held = match revision {
            Some(r) => {
                tx.execute(
                    "DELETE FROM gpu_claims WHERE workload_id = ?1 AND revision = ?2",
                    params![workload_id, r],
                )?;
                tx.execute(
                    "DELETE FROM gpu_holds WHERE workload_id = ?1 AND revision = ?2",
                    params![workload_id, r],
                )?
            }
            None => {
                tx.execute(
                    "DELETE FROM gpu_claims WHERE workload_id = ?1",
                    params![workload_id],
                )?;
                tx.execute(
                    "DELETE FROM gpu_holds WHERE workload_id = ?1",
                    params![workload_id],
                )?
            }
        };
        tx.commit()?;
        Ok(held > 0)
    }
}
