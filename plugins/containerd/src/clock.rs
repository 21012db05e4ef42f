//! Times as gantry's records carry them, from protobuf times and RFC 3339 labels.

use gantry_sdk::backend::gantry::plugin::types::Timestamp;

pub fn now() -> Timestamp {
    let t = gantry_sdk::wasip2::clocks::wall_clock::now();
    Timestamp {
        seconds: i64::try_from(t.seconds).unwrap_or(i64::MAX),
        nanoseconds: t.nanoseconds,
    }
}

/// A protobuf time as gantry's; containerd's zero time (year 1) is none.
pub fn timestamp(t: Option<&prost_types::Timestamp>) -> Option<Timestamp> {
    let t = t?;
    (t.seconds > 0).then(|| Timestamp {
        seconds: t.seconds,
        nanoseconds: u32::try_from(t.nanos).unwrap_or(0),
    })
}

pub fn rfc3339(t: Timestamp) -> String {
    time::OffsetDateTime::from_unix_timestamp(t.seconds)
        .map(|d| d + time::Duration::nanoseconds(i64::from(t.nanoseconds)))
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

pub fn parse_rfc3339(s: &str) -> Option<Timestamp> {
    let d = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some(Timestamp {
        seconds: d.unix_timestamp(),
        nanoseconds: d.nanosecond(),
    })
}
