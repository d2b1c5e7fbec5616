//! Naming rules. Model names and aliases become path segments in the store, so they are
//! restricted to a charset that no backend interprets (no `/`, no `..`, no control or
//! percent-encoded characters) and that is the same on every filesystem.

use crate::error::{RegistryError, Result};

pub const MAX_NAME_LEN: usize = 128;
pub const MAX_ALIAS_LEN: usize = 64;
pub const MAX_TAG_LEN: usize = 256;

fn invalid(what: &'static str, value: &str, message: &str) -> RegistryError {
    RegistryError::InvalidName {
        what,
        value: value.to_string(),
        message: message.to_string(),
    }
}

fn is_tail_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// A model name: 1-128 characters from `[A-Za-z0-9._-]`, starting with a letter or digit.
pub fn check_model_name(name: &str) -> Result<()> {
    check_segment("model name", name, MAX_NAME_LEN, |c| {
        c.is_ascii_alphanumeric()
    })
}

/// An alias: 1-64 characters from `[A-Za-z0-9._-]`, starting with a letter (so that an alias
/// can never be mistaken for a version number).
pub fn check_alias(alias: &str) -> Result<()> {
    check_segment("alias", alias, MAX_ALIAS_LEN, |c| c.is_ascii_alphabetic())
}

fn check_segment(
    what: &'static str,
    value: &str,
    max: usize,
    first_ok: impl Fn(char) -> bool,
) -> Result<()> {
    let mut chars = value.chars();
    let Some(first) = chars.next() else {
        return Err(invalid(what, value, "must not be empty"));
    };
    if value.len() > max {
        return Err(invalid(
            what,
            value,
            &format!("longer than {max} characters"),
        ));
    }
    if !first_ok(first) {
        return Err(invalid(
            what,
            value,
            if what == "alias" {
                "must start with an ASCII letter"
            } else {
                "must start with an ASCII letter or digit"
            },
        ));
    }
    if let Some(bad) = chars.find(|c| !is_tail_char(*c)) {
        return Err(invalid(
            what,
            value,
            &format!("character {bad:?} is not allowed (only A-Z a-z 0-9 . _ -)"),
        ));
    }
    Ok(())
}

/// A tag key or value, or a metric name: stored inside JSON only, so any text without control
/// characters, 1-256 characters for keys.
pub fn check_tag_key(key: &str) -> Result<()> {
    if key.is_empty() || key.chars().count() > MAX_TAG_LEN {
        return Err(invalid("tag key", key, "must have 1 to 256 characters"));
    }
    if key.chars().any(char::is_control) {
        return Err(invalid(
            "tag key",
            key,
            "control characters are not allowed",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names() {
        for ok in [
            "iris",
            "Iris-2",
            "a",
            "7",
            "fraud_model.v2",
            &"x".repeat(128),
        ] {
            assert!(check_model_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "..",
            ".",
            "a/b",
            "a\\b",
            "-x",
            ".hidden",
            "a b",
            "é",
            "a%2Fb",
            "a\0",
            &"x".repeat(129),
        ] {
            assert!(
                matches!(
                    check_model_name(bad),
                    Err(RegistryError::InvalidName { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn aliases() {
        assert!(check_alias("champion").is_ok());
        assert!(check_alias("prod-eu.1").is_ok());
        for bad in ["", "1", "12", "_x", "a/b", "../a"] {
            assert!(check_alias(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tag_keys() {
        assert!(check_tag_key("team").is_ok());
        assert!(check_tag_key("données / 2026").is_ok());
        assert!(check_tag_key("").is_err());
        assert!(check_tag_key("a\nb").is_err());
    }
}
