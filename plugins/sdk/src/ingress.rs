//! Container URLs: the host names under which the host's ingress routes a
//! request to a workload's port.
//!
//! A workload answers at `<label>.<ingress-domain>`, where `label` is the
//! lower-case base32hex of its UUID (26 characters, see [`label`]); a
//! frontend may also claim a name for it with the [`NAME_ANNOTATION`]
//! annotation (ARM claims `<dnsNameLabel>.<location>`), which then answers
//! at `<name>.<ingress-domain>`. The host keeps claimed names unique and
//! hands each HTTP frontend the domain under the [`DOMAIN_KEY`] config key.

/// Annotation a frontend sets to claim a host name for a workload (the part
/// before the ingress domain, DNS labels joined by dots). The host refuses a
/// name another workload holds, with `conflict`.
pub const NAME_ANNOTATION: &str = "io.gantry.ingress.name";

/// How the message of the `conflict` error refusing a claimed name begins.
pub const NAME_TAKEN: &str = "ingress name taken";

/// Annotation restricting which exposed TCP ports the ingress reaches
/// (decimal ports joined by commas, the first being the default); without
/// it every TCP port the spec exposes is reachable.
pub const PORTS_ANNOTATION: &str = "io.gantry.ingress.ports";

/// Config key under which the host gives HTTP frontends its ingress domain.
pub const DOMAIN_KEY: &str = "ingress-domain";

/// Config key under which the host gives HTTP frontends the address its
/// ingress listens on (an IP address), when it listens on a single one.
pub const ADDRESS_KEY: &str = "ingress-address";

/// The ingress domain when none is configured.
pub const DEFAULT_DOMAIN: &str = "ingress.gantry.localhost";

const BASE32HEX: &[u8; 32] = b"0123456789abcdefghijklmnopqrstuv";

/// The 26-character host label of a workload: the lower-case base32hex
/// (RFC 4648, unpadded) of its UUID's 16 bytes.
pub fn label(workload_id: &str) -> String {
    let hex: String = workload_id
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect();
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    let mut out = String::with_capacity(26);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32HEX[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32HEX[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// The workload id (hyphenated UUID) a [`label`] stands for; none when
/// `label` is not 26 base32hex characters that encode 16 bytes exactly.
pub fn workload_id(label: &str) -> Option<String> {
    if label.len() != 26 {
        return None;
    }
    let mut bytes = Vec::with_capacity(16);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in label.bytes() {
        let v = BASE32HEX
            .iter()
            .position(|&a| a == c.to_ascii_lowercase())?;
        buffer = (buffer << 5) | v as u32;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            bytes.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    // 26 × 5 = 130 bits: the 2 left over must be the encoder's zero padding.
    if bytes.len() != 16 || buffer != 0 {
        return None;
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

/// Whether `name` may be claimed with [`NAME_ANNOTATION`]: DNS labels of
/// 1–63 lower-case letters, digits or inner hyphens, joined by dots, 200
/// characters at most.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_is_26_base32hex_characters_and_decodes_back() {
        let id = "fa71f25f-f982-4bde-bc14-1d250776325d";
        let l = label(id);
        assert_eq!(l.len(), 26);
        assert!(
            l.chars()
                .all(|c| c.is_ascii_digit() || ('a'..='v').contains(&c)),
            "{l}"
        );
        assert_eq!(workload_id(&l).as_deref(), Some(id));
        assert_eq!(workload_id(&l.to_uppercase()).as_deref(), Some(id));
    }

    #[test]
    fn what_is_not_a_label_decodes_to_nothing() {
        assert_eq!(workload_id("short"), None);
        assert_eq!(
            workload_id("wwwwwwwwwwwwwwwwwwwwwwwwww"),
            None,
            "w is not base32hex"
        );
        // The last character carries 2 padding bits, which must be zero.
        let mut l = label("fa71f25f-f982-4bde-bc14-1d250776325d");
        l.pop();
        l.push('v');
        assert_eq!(workload_id(&l), None);
    }

    #[test]
    fn names_are_dns_labels() {
        assert!(valid_name("myapp.westeurope"));
        assert!(valid_name("a-1"));
        for bad in ["", "-a", "a-", "A", "a..b", "a_b", &"x".repeat(64)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
