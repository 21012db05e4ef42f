//! Times as gantry's records carry them, from containerd's protobuf times
//! (RFC 3339 and the wall clock are the SDK's: `gantry_sdk::clock`).

use gantry_sdk::backend::gantry::plugin::types::Timestamp;

/// A protobuf time as gantry's; containerd's zero time (year 1) is none.
pub fn timestamp(t: Option<&prost_types::Timestamp>) -> Option<Timestamp> {
    let t = t?;
    (t.seconds > 0).then(|| Timestamp {
        seconds: t.seconds,
        nanoseconds: u32::try_from(t.nanos).unwrap_or(0),
    })
}
