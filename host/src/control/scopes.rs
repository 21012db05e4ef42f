//! Scopes: who may act in a tenant's space. A frontend maps a tenant's space
//! to a namespace prefix, its scope (ARM: a subscription,
//! `/subscriptions/<id>`); workloads in namespaces at or below it belong to
//! that space. A scope is held by the owners `[[scope]]` in the config gives
//! it, or else by the first caller that claims it (ARM claims a subscription
//! with its first container group). A caller that does not hold a scope may
//! not act in it, and learns nothing of what is there; ADMIN may act in any.

use super::ControlPlane;
use crate::bindings::types::{Caller, Error};
use serde::Deserialize;

/// `[[scope]]`: a scope given to callers by configuration; nobody else can
/// claim it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeGrant {
    /// The namespace prefix (`/subscriptions/0000`).
    pub scope: String,
    /// The subjects that hold it.
    pub owners: Vec<String>,
}

/// Longest scope accepted, in bytes.
const SCOPE_MAX: usize = 512;

/// The refusal for a scope the caller does not hold: the same whoever holds
/// it, naming nobody.
fn not_yours() -> Error {
    Error::Forbidden("the caller does not hold this scope".into())
}

/// Whether `namespace` is `scope` or lies below it.
fn covers(scope: &str, namespace: &str) -> bool {
    namespace
        .strip_prefix(scope)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// A scope as callers may name one: a path of non-empty segments.
pub fn check(scope: &str) -> Result<(), Error> {
    let well_formed = scope.len() <= SCOPE_MAX
        && scope.starts_with('/')
        && scope[1..].split('/').all(|s| !s.is_empty())
        && !scope.chars().any(gantry_sdk::names::forbidden);
    if well_formed {
        Ok(())
    } else {
        Err(crate::model::invalid_field(
            "scope",
            format!("a path of non-empty segments, at most {SCOPE_MAX} bytes"),
        ))
    }
}

impl ControlPlane {
    /// Whether `caller` may act in `scope`; with `claim`, an unheld scope
    /// becomes the caller's. An unheld scope is open to reading without a
    /// claim (a new tenant lists its empty space).
    pub async fn scope_access(
        &self,
        caller: &Caller,
        scope: &str,
        claim: bool,
    ) -> Result<(), Error> {
        check(scope)?;
        if caller.is_admin() {
            return Ok(());
        }
        if let Some(owners) = self.granted(scope) {
            return owners
                .contains(&caller.subject)
                .then_some(())
                .ok_or_else(not_yours);
        }
        let (key, subject) = (scope.to_string(), caller.subject.clone());
        let (held, below) = self
            .records
            .with_store(move |s| Ok((s.scope_holder(&key)?, s.scope_held_below(&key, &subject)?)))
            .await?;
        match held {
            Some((_, owner)) if owner == caller.subject => Ok(()),
            Some(_) => Err(not_yours()),
            None if below => Err(not_yours()),
            None if !claim => Ok(()),
            None => {
                let (key, subject) = (scope.to_string(), caller.subject.clone());
                let now = crate::model::now().seconds;
                let owner = self
                    .records
                    .with_store(move |s| s.claim_scope(&key, &subject, now))
                    .await?;
                (owner == caller.subject)
                    .then_some(())
                    .ok_or_else(not_yours)
            }
        }
    }

    /// Refuse a caller acting in `namespace` when a scope covering it is
    /// someone else's (whatever the frontend checked).
    pub(super) async fn may_use_namespace(
        &self,
        caller: &Caller,
        namespace: &str,
    ) -> Result<(), Error> {
        if namespace.is_empty() || caller.is_admin() {
            return Ok(());
        }
        if let Some(owners) = self.granted(namespace) {
            return owners
                .contains(&caller.subject)
                .then_some(())
                .ok_or_else(not_yours);
        }
        let key = namespace.to_string();
        match self
            .records
            .with_store(move |s| s.scope_holder(&key))
            .await?
        {
            Some((_, owner)) if owner != caller.subject => Err(not_yours()),
            _ => Ok(()),
        }
    }

    /// The owners the config gives the nearest scope covering `namespace`.
    fn granted(&self, namespace: &str) -> Option<&[String]> {
        self.admission
            .scopes
            .iter()
            .filter(|g| covers(&g.scope, namespace))
            .max_by_key(|g| g.scope.len())
            .map(|g| g.owners.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scope_covers_itself_and_what_lies_below_only() {
        assert!(covers("/subscriptions/s1", "/subscriptions/s1"));
        assert!(covers(
            "/subscriptions/s1",
            "/subscriptions/s1/resourcegroups/rg"
        ));
        assert!(!covers("/subscriptions/s1", "/subscriptions/s10"));
        assert!(!covers("/subscriptions/s1", "/other"));
    }

    #[test]
    fn scopes_are_paths_of_named_segments() {
        check("/subscriptions/0000").expect("fine");
        for bad in ["", "subscriptions/x", "/a//b", "/a/", "/a\u{202E}b"] {
            assert!(check(bad).is_err(), "{bad:?}");
        }
    }
}
