//! Parsing the quantities protocols send: memory and storage sizes
//! (Kubernetes `512Mi`, `1.5Gi`, Docker `500M`, `100m`, plain bytes) and
//! ACI's `memoryInGB`.

/// Why a quantity could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantityError(pub String);

impl std::fmt::Display for QuantityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Bytes of a size such as `512Mi`, `1.5Gi`, `10G`, `500M`, `100m` (Docker's
/// lower-case binary suffixes), `64k` or `1048576`.
pub fn parse_bytes(s: &str) -> Result<u64, QuantityError> {
    let s = s.trim();
    let bad = || {
        QuantityError(format!(
            "`{s}` is not a size (examples: 512Mi, 1.5Gi, 500M, 1048576)"
        ))
    };
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    if num.is_empty() || num.starts_with('.') || num.ends_with('.') || num.matches('.').count() > 1
    {
        return Err(bad());
    }
    let factor: u64 = match unit {
        "" | "b" | "B" => 1,
        "Ki" | "k" | "K" | "kb" | "KB" | "KiB" => 1 << 10,
        "Mi" | "m" | "M" | "mb" | "MB" | "MiB" => 1 << 20,
        "Gi" | "g" | "G" | "gb" | "GB" | "GiB" => 1 << 30,
        "Ti" | "t" | "T" | "tb" | "TB" | "TiB" => 1 << 40,
        _ => return Err(bad()),
    };
    // Kubernetes' decimal suffixes (k, M, G, T as powers of 1000) are read as
    // Docker reads them, binary: the two lineages disagree and containers are
    // sized by the runtime, which is Docker's.
    let value: f64 = num.parse().map_err(|_| bad())?;
    let bytes = value * factor as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(QuantityError(format!("`{s}` is out of range")));
    }
    Ok(bytes.round() as u64)
}

/// Bytes of ACI's `memoryInGB` (binary gigabytes, fractions allowed).
pub fn gb_to_bytes(gb: f64) -> Result<u64, QuantityError> {
    if !gb.is_finite() || gb <= 0.0 {
        return Err(QuantityError(format!(
            "{gb} is not a positive number of GB"
        )));
    }
    Ok((gb * (1u64 << 30) as f64).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spellings_protocols_use() {
        assert_eq!(parse_bytes("512Mi"), Ok(512 << 20));
        assert_eq!(parse_bytes("1.5Gi"), Ok(3 << 29));
        assert_eq!(parse_bytes("500M"), Ok(500 << 20));
        assert_eq!(parse_bytes("100m"), Ok(100 << 20));
        assert_eq!(parse_bytes("10Gi"), Ok(10 << 30));
        assert_eq!(parse_bytes("1048576"), Ok(1 << 20));
        assert_eq!(gb_to_bytes(1.5), Ok(3 << 29));
    }

    #[test]
    fn refuses_what_is_not_a_size() {
        for bad in ["", "Mi", "12Qi", "-5Mi", "1..5Gi", "0", "abc", "5 Mi"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
        assert!(gb_to_bytes(0.0).is_err());
    }
}
