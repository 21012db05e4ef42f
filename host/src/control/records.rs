//! Workload records: the state store, per-workload locks, the event bus, and
//! the reads the operations share (load with authorisation, pages, commit).

use super::authz::authorize;
use super::events::EventBus;
use crate::bindings::gantry::plugin::control::{PageRequest, WorkloadFilter, WorkloadPage};
use crate::bindings::types::{Caller, Error, EventKind, Workload};
use crate::store::{Selection, StateStore, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        // The one constraint a caller can break: a claimed ingress name
        // taken between the check and the write by a concurrent request.
        if let StoreError::Sqlite(rusqlite::Error::SqliteFailure(f, _)) = &e
            && f.code == rusqlite::ErrorCode::ConstraintViolation
        {
            return Error::Conflict(format!(
                "{}: another workload took it meanwhile",
                gantry_sdk::ingress::NAME_TAKEN
            ));
        }
        tracing::error!(error = %e, "state store failure");
        Error::Internal(e.to_string())
    }
}

/// The records of every workload, and who may read them.
///
/// Every store call runs on tokio's blocking threads ([`Records::with_store`]):
/// SQLite blocks, and a commit waits for its fsync, which must not stall the
/// async workers serving other requests.
pub struct Records {
    store: Arc<StateStore>,
    events: Arc<EventBus>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Creates still deploying, by workload id: a delete abandons them.
    creating: Mutex<HashMap<String, Arc<tokio::sync::Notify>>>,
}

/// A create in progress, registered so that a delete can abandon it
/// ([`Records::abandon`]); unregistered when dropped.
pub struct Creating<'a> {
    records: &'a Records,
    id: String,
    abandoned: Arc<tokio::sync::Notify>,
}

impl Creating<'_> {
    /// Resolves once a delete abandoned this create.
    pub async fn abandoned(&self) {
        self.abandoned.notified().await;
    }
}

impl Drop for Creating<'_> {
    fn drop(&mut self) {
        self.records
            .creating
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl Records {
    /// Records in `store`, announcing changes on `events`.
    pub fn new(store: StateStore, events: Arc<EventBus>) -> Self {
        Self {
            store: Arc::new(store),
            events,
            locks: Mutex::new(HashMap::new()),
            creating: Mutex::new(HashMap::new()),
        }
    }

    /// Register the create of `id`, which a delete may abandon.
    pub fn creating(&self, id: &str) -> Creating<'_> {
        let abandoned = Arc::new(tokio::sync::Notify::new());
        self.creating
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id.to_string(), abandoned.clone());
        Creating {
            records: self,
            id: id.to_string(),
            abandoned,
        }
    }

    /// Tell the create of `id`, if one is deploying, to stop waiting on its
    /// backend and undo what it made; whether there was one.
    pub fn abandon(&self, id: &str) -> bool {
        match self
            .creating
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
        {
            // A stored permit: the create sees it even if not waiting yet.
            Some(n) => {
                n.notify_one();
                true
            }
            None => false,
        }
    }

    /// Run `f` on the state store on a blocking thread.
    pub async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&StateStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, Error> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || f(&store)).await {
            Ok(result) => Ok(result?),
            Err(e) => Err(Error::Internal(format!("state store call failed: {e}"))),
        }
    }

    /// The event bus.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// The event bus, shared.
    pub fn event_bus(&self) -> Arc<EventBus> {
        self.events.clone()
    }

    /// The id of the host this store belongs to (read once, at start-up).
    pub fn host_id(&self) -> Result<String, StoreError> {
        self.store.host_id()
    }

    /// The lock serialising operations on workload `id`.
    pub fn lock_for(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    /// Forget the lock of a removed workload.
    pub fn forget(&self, id: &str) {
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(id);
    }

    /// A workload the caller may act on.
    pub async fn load(&self, caller: &Caller, id: &str) -> Result<Workload, Error> {
        let key = id.to_string();
        let w = self
            .with_store(move |s| s.get(&key))
            .await?
            .ok_or_else(|| Error::NotFound(format!("workload {id}")))?;
        authorize(caller, &w)?;
        Ok(w)
    }

    /// Persist, publish an event, return the record.
    pub async fn commit(
        &self,
        w: Workload,
        kind: EventKind,
        container: Option<String>,
    ) -> Result<Workload, Error> {
        let w = self.save(w).await?;
        self.events.publish(kind, &w.id, container, Some(w.clone()));
        Ok(w)
    }

    /// Persist without an event; the record back.
    pub async fn save(&self, w: Workload) -> Result<Workload, Error> {
        self.with_store(move |s| s.save(&w).map(|()| w)).await
    }

    /// The record of `id`, unauthorised (the reconciler's read).
    pub async fn get(&self, id: &str) -> Result<Option<Workload>, Error> {
        let key = id.to_string();
        self.with_store(move |s| s.get(&key)).await
    }

    /// The workload carrying annotation `key` = `value`, unauthorised.
    pub async fn find_by_annotation(
        &self,
        key: &str,
        value: &str,
    ) -> Result<Option<Workload>, Error> {
        let (key, value) = (key.to_string(), value.to_string());
        self.with_store(move |s| match s.find_by_annotation(&key, &value)? {
            Some(id) => s.get(&id),
            None => Ok(None),
        })
        .await
    }

    /// Delete a record and announce it.
    pub async fn remove(&self, id: &str) -> Result<(), Error> {
        let key = id.to_string();
        self.with_store(move |s| s.delete(&key)).await?;
        self.events.publish(EventKind::Removed, id, None, None);
        self.forget(id);
        Ok(())
    }

    /// A page of the workloads `filter` selects among those the caller may list.
    pub async fn list(
        &self,
        caller: &Caller,
        filter: WorkloadFilter,
        page: PageRequest,
    ) -> Result<WorkloadPage, Error> {
        if filter.all_owners && !caller.is_admin() {
            return Err(Error::Forbidden(
                "listing every owner's workloads needs the ADMIN role".into(),
            ));
        }
        let owner = if filter.all_owners {
            None
        } else {
            Some(caller.subject.as_str())
        };
        let (offset, rows) = page_window(&page);
        let owner = owner.map(str::to_string);
        let (items, total) = self
            .with_store(move |s| {
                s.page(
                    &Selection {
                        owner: owner.as_deref(),
                        namespace: filter.namespace.as_deref(),
                        namespace_prefix: filter.namespace_prefix.as_deref(),
                        name: filter.name.as_deref(),
                        annotations: &filter.annotations,
                    },
                    offset as u64,
                    rows as u64,
                )
            })
            .await?;
        Ok(WorkloadPage { items, total })
    }
}

/// Offset and row count of a 1-based page (rows default 10, at most 1000).
pub fn page_window(page: &PageRequest) -> (usize, usize) {
    let rows = if page.rows == 0 {
        10
    } else {
        page.rows.min(1000)
    } as usize;
    let p = page.page.max(1) as usize;
    ((p - 1) * rows, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_one_based_with_bounded_rows() {
        assert_eq!(page_window(&PageRequest { page: 0, rows: 0 }), (0, 10));
        assert_eq!(page_window(&PageRequest { page: 3, rows: 5 }), (10, 5));
        assert_eq!(
            page_window(&PageRequest {
                page: 1,
                rows: 5000
            }),
            (0, 1000)
        );
    }
}
