//! The host's timestamps: written the way protocols write them, read from
//! what runtimes report, and the wall clock now (for backends).

/// RFC 3339 in UTC of `seconds` + `nanoseconds` since the Unix epoch
/// (fractional seconds only when non-zero); `None` when out of range.
pub fn rfc3339(seconds: i64, nanoseconds: u32) -> Option<String> {
    let nanos = i128::from(seconds) * 1_000_000_000 + i128::from(nanoseconds);
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// Seconds and nanoseconds since the Unix epoch of an RFC 3339 time; `None`
/// when empty, unreadable, or Go's zero time (`0001-01-01...`), which Docker
/// and Podman report for "never" (a container not started yet).
pub fn parse_rfc3339(s: &str) -> Option<(i64, u32)> {
    if s.is_empty() || s.starts_with("0001-01-01") {
        return None;
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp(), t.nanosecond()))
}

#[cfg(feature = "backend")]
mod backend_times {
    use crate::backend::gantry::plugin::types::Timestamp;

    /// The wall clock now, as a record's timestamp.
    pub fn now() -> Timestamp {
        let t = wasip2::clocks::wall_clock::now();
        Timestamp {
            seconds: i64::try_from(t.seconds).unwrap_or(i64::MAX),
            nanoseconds: t.nanoseconds,
        }
    }

    /// An RFC 3339 time a runtime reported, as a record's timestamp
    /// ([`super::parse_rfc3339`]: none for empty or Go's zero time).
    pub fn timestamp(s: &str) -> Option<Timestamp> {
        let (seconds, nanoseconds) = super::parse_rfc3339(s)?;
        Some(Timestamp {
            seconds,
            nanoseconds,
        })
    }
}
#[cfg(feature = "backend")]
pub use backend_times::{now, timestamp};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_are_read_and_the_zero_time_is_none() {
        assert_eq!(
            parse_rfc3339("2023-09-22T15:36:06.5Z"),
            Some((1_695_396_966, 500_000_000))
        );
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339(""), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn whole_and_fractional_seconds() {
        assert_eq!(rfc3339(0, 0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            rfc3339(1_795_421_927, 5_000).as_deref(),
            Some("2026-11-23T08:18:47.000005Z")
        );
    }
}
