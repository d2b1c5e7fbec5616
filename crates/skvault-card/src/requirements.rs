//! The pip requirements of a record (`skvault requirements`, the model card): pins the
//! packages a model was saved with, from the environment its manifest records
//! (`metadata.environment`), so that `pip install -r` rebuilds that environment for loading it.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Map, Value};
use skvault_format::SkvFile;

/// Pinned first, in this order; any other recorded distribution follows, sorted.
const CORE: [&str; 3] = ["scikit-learn", "numpy", "scipy"];

/// Environment entries that are not pip distributions a model needs.
const NOT_PACKAGES: [&str; 3] = ["skvault", "python", "platform"];

/// The requirements file for `file`, whose header names it `name`.
pub fn text(file: &SkvFile, name: &str) -> String {
    let manifest = file.manifest();
    let empty = Map::new();
    let env = match manifest.metadata.get("environment") {
        Some(Value::Object(env)) => env,
        _ => &empty,
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# pip requirements of {}: the package versions it was saved with.",
        one_line(name)
    );
    let saved_by: Vec<String> = NOT_PACKAGES
        .iter()
        .filter_map(|key| env.get(*key).and_then(Value::as_str).map(|v| (key, v)))
        .map(|(key, v)| format!("{key} {}", one_line(v)))
        .collect();
    if !saved_by.is_empty() {
        let _ = writeln!(out, "# Saved with {}.", saved_by.join(", "));
    }
    let _ = writeln!(out, "# Install with: pip install -r THIS_FILE");

    let others: BTreeSet<&str> = env
        .keys()
        .map(String::as_str)
        .filter(|k| !CORE.contains(k) && !NOT_PACKAGES.contains(k))
        .collect();
    let mut pinned = BTreeSet::new();
    for dist in CORE.iter().copied().chain(others) {
        match env.get(dist) {
            Some(Value::String(version)) if is_name(dist) && is_version(version) => {
                let _ = writeln!(out, "{dist}=={version}");
                pinned.insert(normalize(dist));
            }
            Some(Value::String(version)) => {
                let _ = writeln!(
                    out,
                    "# left out: {} {} is not a valid package name and version",
                    one_line(dist),
                    one_line(version)
                );
            }
            Some(Value::Null) => {
                let _ = writeln!(
                    out,
                    "# {}: not installed when the file was saved",
                    one_line(dist)
                );
            }
            _ => {
                let _ = writeln!(out, "# {}: no version recorded in the file", one_line(dist));
            }
        }
    }

    // Names the file needs beyond the default allow-list come from packages that a load must
    // import (e.g. xgboost.sklearn.XGBClassifier); say which ones have no recorded version.
    let untrusted = skvault_format::TrustSet::default().untrusted_in(manifest);
    let mut roots: BTreeSet<&str> = BTreeSet::new();
    for n in &untrusted {
        let root = n.split('.').next().unwrap_or(n);
        if !pinned.contains(&normalize(root)) {
            roots.insert(root);
        }
    }
    for root in roots {
        let _ = writeln!(
            out,
            "# {}: the file also names objects of this module (see skvault inspect) but records no version of it",
            one_line(root)
        );
    }
    out
}

/// A PEP 508 distribution name.
fn is_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    let inner_ok = bytes
        .iter()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    let ends_ok = |b: Option<&u8>| b.is_some_and(u8::is_ascii_alphanumeric);
    inner_ok && ends_ok(bytes.first()) && ends_ok(bytes.last())
}

/// The characters of a PEP 440 version (public and local parts): enough to keep a recorded
/// value from adding a second requirement or a pip option (`--index-url ...`) to the file.
fn is_version(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.as_bytes().first().is_some_and(u8::is_ascii_alphanumeric)
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'+' | b'!' | b'_' | b'-'))
}

/// PEP 503 normalisation, to match a module name with a distribution name.
fn normalize(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

/// A value from the file, shown on one comment line whatever it holds.
fn one_line(s: &str) -> String {
    if s.chars().any(char::is_control) {
        format!("{s:?}")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions_that_could_add_lines_or_options_are_refused() {
        assert!(is_name("scikit-learn") && is_name("xgboost") && is_name("zope.interface"));
        assert!(!is_name("-r evil.txt") && !is_name("a b") && !is_name("") && !is_name("x\n"));
        assert!(is_version("1.5.2") && is_version("2.0.0rc1") && is_version("1.0+local.1"));
        assert!(
            !is_version("1.0\n--index-url http://evil")
                && !is_version("1; os_name")
                && !is_version("")
        );
        assert_eq!(one_line("a\nb"), "\"a\\nb\"");
    }
}
