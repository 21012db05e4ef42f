//! Formatting the host's timestamps the way protocols write them.

/// RFC 3339 in UTC of `seconds` + `nanoseconds` since the Unix epoch
/// (fractional seconds only when non-zero); `None` when out of range.
pub fn rfc3339(seconds: i64, nanoseconds: u32) -> Option<String> {
    let nanos = i128::from(seconds) * 1_000_000_000 + i128::from(nanoseconds);
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()?
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_and_fractional_seconds() {
        assert_eq!(rfc3339(0, 0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(
            rfc3339(1_795_421_927, 5_000).as_deref(),
            Some("2026-11-23T08:18:47.000005Z")
        );
    }
}
