//! Who may act on a workload: its owner, or an ADMIN.

use crate::bindings::types::{Caller, Error, Workload};

/// `Ok` when `caller` owns `w` or holds the ADMIN role.
pub fn authorize(caller: &Caller, w: &Workload) -> Result<(), Error> {
    if caller.subject == w.owner || caller.is_admin() {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "workload {} belongs to another user",
            w.id
        )))
    }
}
