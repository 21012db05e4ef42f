//! Leases: what keeps containerd's garbage collector off the snapshots and
//! content a create is still wiring together (a snapshot prepared but not
//! yet referenced by a container is otherwise fair game). The Go client
//! takes one per operation the same way (`WithLease`).

use crate::api::containerd::services::leases::v1::{CreateRequest, CreateResponse, DeleteRequest};
use crate::grpc::{self, unary};
use gantry_sdk::backend::gantry::plugin::logging::{Level, log};
use gantry_sdk::backend::gantry::plugin::types::Error;

/// How long an abandoned lease (a plugin that trapped mid-create) protects its objects.
const EXPIRY_SECONDS: i64 = 3600;

/// Run `f` under a fresh lease, deleted afterwards whatever `f` returns.
pub fn with_lease<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Error> {
    let now = gantry_sdk::clock::now();
    let expire = gantry_sdk::clock::rfc3339(now.seconds + EXPIRY_SECONDS, 0).unwrap_or_default();
    let id = format!(
        "gantry-{}-{:x}",
        now.seconds,
        gantry_sdk::wasip2::random::random::get_random_u64()
    );
    let created: CreateResponse = unary(
        "/containerd.services.leases.v1.Leases/Create",
        &CreateRequest {
            id: id.clone(),
            labels: [("containerd.io/gc.expire".to_string(), expire)]
                .into_iter()
                .collect(),
        },
    )?;
    let lease = created.lease.map_or(id, |l| l.id);
    grpc::set_lease(Some(lease.clone()));
    let result = f();
    grpc::set_lease(None);
    if let Err(e) = unary::<_, ()>(
        "/containerd.services.leases.v1.Leases/Delete",
        &DeleteRequest {
            id: lease.clone(),
            sync: false,
        },
    ) {
        log(
            Level::Warn,
            &format!("deleting lease {lease}: {e:?} (it expires by itself)"),
        );
    }
    result
}
