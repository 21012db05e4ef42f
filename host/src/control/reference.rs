//! Image references as Docker's distribution library reads them:
//! `[domain[:port]/]path[:tag][@algorithm:hex]`, a path of lower-case
//! components joined by `/` (separators `.`, `_`, `__` or dashes inside a
//! component), a name of at most 255 characters, a tag of at most 128. A
//! reference every runtime would refuse is refused before any runtime sees it.

/// Longest name (domain and path), as Docker allows.
const NAME_MAX: usize = 255;
/// Longest tag.
const TAG_MAX: usize = 128;

/// Check `reference`; the error says which part is wrong, not the reference.
pub fn check(reference: &str) -> Result<(), String> {
    if reference.is_empty() {
        return Err("an image reference is required".into());
    }
    let (rest, digest) = match reference.split_once('@') {
        Some((r, d)) => (r, Some(d)),
        None => (reference, None),
    };
    if let Some(d) = digest {
        digest_ok(d)?;
    }
    // A tag follows the last ':' unless a '/' comes after it (a port).
    let (name, tag) = match rest.rfind(':') {
        Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(t) = tag {
        tag_ok(t)?;
    }
    if name.len() > NAME_MAX {
        return Err(format!(
            "the image name is {} characters; at most {NAME_MAX}",
            name.len()
        ));
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, path)) if is_domain(first) => (Some(first), path),
        _ => (None, name),
    };
    if let Some(d) = domain {
        domain_ok(d)?;
    }
    if path.is_empty() || !path.split('/').all(component_ok) {
        return Err(
            "invalid image reference: the repository is lower-case letters and digits, separated by '.', '_', '__', '-' or '/'"
                .into(),
        );
    }
    Ok(())
}

/// Docker's rule: the first part is a registry when it has a '.' or ':',
/// is `localhost`, or has an upper-case letter.
fn is_domain(first: &str) -> bool {
    first.contains(['.', ':'])
        || first == "localhost"
        || first.chars().any(|c| c.is_ascii_uppercase())
}

fn domain_ok(domain: &str) -> Result<(), String> {
    let bad = || Err("invalid image reference: the registry is not a host[:port]".into());
    // An IPv6 address in brackets, or a host name; then an optional port.
    let (host, port) = if let Some(inner) = domain.strip_prefix('[') {
        let Some((addr, after)) = inner.split_once(']') else {
            return bad();
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return bad();
        }
        match after {
            "" => (None, None),
            after => match after.strip_prefix(':') {
                Some(p) => (None, Some(p)),
                None => return bad(),
            },
        }
    } else {
        match domain.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(domain), None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return bad();
    }
    let host_ok = host.is_none_or(|h| {
        !h.is_empty()
            && h.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                    && !label.starts_with('-')
                    && !label.ends_with('-')
            })
    });
    if host_ok { Ok(()) } else { bad() }
}

/// `[a-z0-9]+` joined by `.`, `_`, `__` or one or more `-`.
fn component_ok(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn tag_ok(tag: &str) -> Result<(), String> {
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let ok = tag.len() <= TAG_MAX
        && tag.bytes().next().is_some_and(word)
        && tag.bytes().all(|x| word(x) || x == b'.' || x == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid image tag: letters, digits, '_', '.' and '-', at most {TAG_MAX} characters, not starting with '.' or '-'"
        ))
    }
}

/// `algorithm:hex`, the hex at least 32 digits.
fn digest_ok(digest: &str) -> Result<(), String> {
    let ok = digest.split_once(':').is_some_and(|(alg, hex)| {
        !alg.is_empty()
            && alg.split(['+', '.', '-', '_']).all(|part| {
                part.bytes().next().is_some_and(|x| x.is_ascii_alphabetic())
                    && part.bytes().all(|x| x.is_ascii_alphanumeric())
            })
            && hex.len() >= 32
            && hex.bytes().all(|x| x.is_ascii_hexdigit())
    });
    if ok {
        Ok(())
    } else {
        Err("invalid image digest: algorithm:hex, at least 32 hex digits".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_docker_takes_pass() {
        for good in [
            "busybox",
            "busybox:1.36",
            "gantry-test/busybox:1.0",
            "library/busy_box__x.y-z:latest",
            "127.0.0.1:5000/team/app:v1",
            "localhost/app",
            "localhost:5000/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
            "docker.io/library/busybox:1.36@sha256:0123456789abcdef0123456789abcdef",
            "[::1]:5000/app:tag",
            "Registry.Example/app",
        ] {
            check(good).unwrap_or_else(|e| panic!("{good}: {e}"));
        }
    }

    #[test]
    fn references_docker_refuses_are_refused() {
        for bad in [
            "",
            "Busybox",
            "busy box",
            "app:",
            "app:-tag",
            "app@sha256:short",
            "-app",
            "app/",
            "app//x",
            "app..x",
            "registry:port/app",
            "a\u{202E}b",
        ] {
            assert!(check(bad).is_err(), "{bad:?} passed");
        }
        let long = format!("r/{}", "a".repeat(10_000));
        assert!(check(&long).expect_err("too long").contains("at most 255"));
        let tag = format!("app:{}", "t".repeat(129));
        assert!(check(&tag).is_err());
    }
}
