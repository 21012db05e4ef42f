//! Scope claims: which caller a scope belongs to. A scope is a namespace
//! prefix a frontend maps a tenant's space to (an ARM subscription,
//! `/subscriptions/<id>`); it covers itself and every namespace below it.
//! The first caller to claim an unheld scope holds it.

use super::{StateStore, StoreError};
use rusqlite::{OptionalExtension, params};

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS scopes (
    scope TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    claimed_s INTEGER NOT NULL
);
";

impl StateStore {
    /// The claim covering `namespace` (the claim of it, or of the nearest
    /// scope above it): the scope and its holder.
    pub fn scope_holder(&self, namespace: &str) -> Result<Option<(String, String)>, StoreError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT scope, owner FROM scopes
             WHERE scope = ?1 OR substr(?1, 1, length(scope) + 1) = scope || '/'
             ORDER BY length(scope) DESC LIMIT 1",
        )?;
        Ok(stmt
            .query_row(params![namespace], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// Whether a scope below `scope` is held by someone other than `owner`.
    pub fn scope_held_below(&self, scope: &str, owner: &str) -> Result<bool, StoreError> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT 1 FROM scopes
             WHERE substr(scope, 1, length(?1) + 1) = ?1 || '/' AND owner != ?2 LIMIT 1",
        )?;
        Ok(stmt.exists(params![scope, owner])?)
    }

    /// Claim `scope` for `owner` unless it is held; who holds it after.
    pub fn claim_scope(&self, scope: &str, owner: &str, now_s: i64) -> Result<String, StoreError> {
        let conn = self.lock();
        conn.execute(
            "INSERT INTO scopes (scope, owner, claimed_s) VALUES (?1, ?2, ?3)
             ON CONFLICT(scope) DO NOTHING",
            params![scope, owner, now_s],
        )?;
        Ok(conn.query_row(
            "SELECT owner FROM scopes WHERE scope = ?1",
            params![scope],
            |r| r.get(0),
        )?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_covers_its_scope_and_below_and_the_first_claim_wins() {
        let s = StateStore::open(":memory:").expect("store");
        assert_eq!(
            s.claim_scope("/subscriptions/s1", "alice", 1)
                .expect("claim"),
            "alice"
        );
        assert_eq!(
            s.claim_scope("/subscriptions/s1", "bob", 2).expect("claim"),
            "alice"
        );
        let held = |ns: &str| s.scope_holder(ns).expect("read").map(|(_, o)| o);
        assert_eq!(held("/subscriptions/s1").as_deref(), Some("alice"));
        assert_eq!(
            held("/subscriptions/s1/resourcegroups/rg").as_deref(),
            Some("alice")
        );
        assert_eq!(
            held("/subscriptions/s10"),
            None,
            "a prefix of the text is not a parent"
        );
        assert_eq!(held("/subscriptions/s_"), None, "no wildcards");
        assert!(s.scope_held_below("/subscriptions", "bob").expect("read"));
        assert!(!s.scope_held_below("/subscriptions", "alice").expect("read"));
    }
}
