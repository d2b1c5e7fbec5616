//! `skvault diff A B`: what differs between two saved models, from their manifests (the
//! comparison is skvault-card's, which the registry page shows too).

use std::path::Path;

use serde_json::{json, Value};
use skvault_card::diff::{array_text, sections, Change};
use skvault_format::SkvFile;

use crate::CliError;

/// Exit code 0 when the models are the same (same params, versions, metrics, array
/// digests), 1 if not.
pub fn run(a: &Path, b: &Path, as_json: bool) -> Result<u8, CliError> {
    let fa = SkvFile::open(a)?;
    let fb = SkvFile::open(b)?;
    let sections = sections(&fa, &fb);
    let same = sections.iter().all(|(_, _, changes)| changes.is_empty());
    if as_json {
        let mut by_key = serde_json::Map::new();
        for (key, _, changes) in &sections {
            let list: Vec<Value> = changes
                .iter()
                .map(|c| json!({"key": c.key, "a": c.a, "b": c.b}))
                .collect();
            by_key.insert((*key).to_string(), Value::Array(list));
        }
        crate::output::print_json(&json!({
            "a": a.display().to_string(),
            "b": b.display().to_string(),
            "same": same,
            "changes": by_key,
        }))?;
    } else {
        outln!("--- {}\n+++ {}", a.display(), b.display());
        for (key, title, changes) in &sections {
            print_section(title, changes, *key == "arrays");
        }
        if same {
            outln!("no differences in class, params, versions, metrics or arrays");
        }
    }
    Ok(if same { 0 } else { 1 })
}

/// Prints `title:` and `  key: a -> b` lines, or nothing when no value changed.
fn print_section(title: &str, changes: &[Change], is_array: bool) {
    if changes.is_empty() {
        return;
    }
    outln!("{title}:");
    let show = |x: &Option<Value>| match x {
        None => "(absent)".to_string(),
        Some(v) if is_array => array_text(v),
        Some(v) => v.to_string(),
    };
    for c in changes {
        outln!("  {}: {} -> {}", c.key, show(&c.a), show(&c.b));
    }
}
