//! What a name may hold, the same for every protocol: a workload, a
//! container, a variable, a label or an annotation key. No whitespace, no
//! control character and no invisible formatting character (a bidi override
//! such as U+202E, a zero-width space, a soft hyphen): a name is shown to
//! people, and what it shows must be what it is.

/// Whether `c` may not appear in a name.
pub fn forbidden(c: char) -> bool {
    c.is_whitespace() || c.is_control() || is_format(c)
}

/// Unicode's format characters (general category Cf): invisible, and able
/// to reorder or hide the text around them.
pub fn is_format(c: char) -> bool {
    matches!(
        u32::from(c),
        0x00AD
            | 0x0600..=0x0605
            | 0x061C
            | 0x06DD
            | 0x070F
            | 0x0890..=0x0891
            | 0x08E2
            | 0x180E
            | 0x200B..=0x200F
            | 0x202A..=0x202E
            | 0x2060..=0x2064
            | 0x2066..=0x206F
            | 0xFEFF
            | 0xFFF9..=0xFFFB
            | 0x110BD
            | 0x110CD
            | 0x13430..=0x1343F
            | 0x1BCA0..=0x1BCA3
            | 0x1D173..=0x1D17A
            | 0xE0001
            | 0xE0020..=0xE007F
    )
}

/// Check a name of at most `max` characters: not empty, nothing
/// [`forbidden`]. The error says what is wrong, without the name.
pub fn check(name: &str, max: usize) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".into());
    }
    if name.chars().count() > max {
        return Err(format!("at most {max} characters"));
    }
    match name.chars().find(|c| forbidden(*c)) {
        Some(c) => Err(format!(
            "U+{:04X} is not allowed: no whitespace, control or invisible formatting characters",
            u32::from(c)
        )),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidi_overrides_controls_and_spaces_are_refused() {
        for bad in [
            "evil\u{202E}txt",
            "a\u{200B}b",
            "tab\tname",
            "nul\0",
            "soft\u{AD}",
            "x\u{FEFF}",
        ] {
            assert!(check(bad, 128).is_err(), "{bad:?}");
        }
        let e = check("evil\u{202E}txt", 128).expect_err("refused");
        assert!(e.contains("U+202E"), "{e}");
    }

    #[test]
    fn ordinary_names_pass_in_any_script_up_to_the_limit() {
        for good in ["web", "api-1.2_x", "café", "名前", "Ωμέγα"] {
            check(good, 128).expect(good);
        }
        assert!(check(&"a".repeat(129), 128).is_err());
        assert!(check("", 128).is_err());
    }
}
