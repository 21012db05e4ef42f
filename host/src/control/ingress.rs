//! The names container URLs answer to (`gantry_sdk::ingress`): a workload's
//! own label, or a name a frontend claimed for it, which no other workload
//! may hold.

use super::ControlPlane;
use crate::bindings::types::{Annotation, Error, Workload};
use gantry_sdk::ingress::{self, NAME_ANNOTATION};

impl ControlPlane {
    /// The workload a container URL names (`name` is the host name without
    /// the ingress domain). No caller: a container URL is public, like the
    /// address of the service it reaches.
    pub async fn ingress_target(&self, name: &str) -> Result<Option<Workload>, Error> {
        if let Some(id) = ingress::workload_id(name)
            && let Some(w) = self.records.get(&id).await?
        {
            return Ok(Some(w));
        }
        self.records.find_by_annotation(NAME_ANNOTATION, name).await
    }

    /// `conflict` when `annotations` claim a name that a workload other
    /// than `id` holds. (The store's unique index guards the race between
    /// this check and the write; this answers with the name.)
    pub(super) async fn ingress_name_free(
        &self,
        id: Option<&str>,
        annotations: &[Annotation],
    ) -> Result<(), Error> {
        let Some((_, name)) = annotations.iter().find(|(k, _)| k == NAME_ANNOTATION) else {
            return Ok(());
        };
        // Only the holder's id is needed: no record is read and decoded.
        let wanted = name.clone();
        let holder = self
            .records
            .with_store(move |s| s.find_by_annotation(NAME_ANNOTATION, &wanted))
            .await?;
        match holder {
            Some(holder) if Some(holder.as_str()) != id => Err(Error::Conflict(format!(
                "{}: `{name}` is held by another workload",
                ingress::NAME_TAKEN
            ))),
            _ => Ok(()),
        }
    }
}
