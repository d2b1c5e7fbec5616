//! `skvault diff A B`: what differs between two saved models, from their manifests.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;
use skvault_format::manifest::hex;
use skvault_format::SkvFile;

use crate::inspect::array_paths;
use crate::CliError;

/// Flattens nested JSON objects into `a.b.c = value` lines.
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

fn section(md: &serde_json::Map<String, Value>, pointer: &[&str]) -> BTreeMap<String, String> {
    let mut v = Some(Value::Object(md.clone()));
    for key in pointer {
        v = v.and_then(|x| x.get(*key).cloned());
    }
    let mut out = BTreeMap::new();
    if let Some(v) = v {
        flatten("", &v, &mut out);
    }
    out
}

/// Prints `- key: a` / `+ key: b` lines for keys whose values differ; returns how many.
fn compare(title: &str, a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> usize {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    let changed: Vec<&String> = keys
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .collect();
    if !changed.is_empty() {
        outln!("{title}:");
        for k in &changed {
            let show = |x: Option<&String>| x.cloned().unwrap_or_else(|| "(absent)".into());
            outln!("  {k}: {} -> {}", show(a.get(*k)), show(b.get(*k)));
        }
    }
    changed.len()
}

fn arrays(file: &SkvFile) -> BTreeMap<String, String> {
    let m = file.manifest();
    let paths = array_paths(m);
    m.arrays
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let shape: Vec<String> = e.shape.iter().map(u64::to_string).collect();
            let digest = hex(&e.digest);
            let desc = format!("({}) {}", shape.join(", "), digest.get(..16).unwrap_or(""));
            let path = paths
                .get(&i)
                .cloned()
                .unwrap_or_else(|| format!("array {i}"));
            (path, desc)
        })
        .collect()
}

/// Exit code 0 when the models are the same (same params, versions, metrics, array digests), 1 if not.
pub fn run(a: &Path, b: &Path) -> Result<u8, CliError> {
    let fa = SkvFile::open(a)?;
    let fb = SkvFile::open(b)?;
    let (ma, mb) = (&fa.manifest().metadata, &fb.manifest().metadata);
    outln!("--- {}\n+++ {}", a.display(), b.display());
    let mut changes = 0;
    changes += compare(
        "class",
        &section(ma, &["object"]),
        &section(mb, &["object"]),
    );
    changes += compare(
        "params",
        &section(ma, &["estimator", "params"]),
        &section(mb, &["estimator", "params"]),
    );
    changes += compare(
        "versions",
        &section(ma, &["environment"]),
        &section(mb, &["environment"]),
    );
    changes += compare(
        "metrics",
        &section(ma, &["metrics"]),
        &section(mb, &["metrics"]),
    );
    changes += compare(
        "user metadata",
        &section(ma, &["user"]),
        &section(mb, &["user"]),
    );
    changes += compare("arrays (shape, digest)", &arrays(&fa), &arrays(&fb));
    if changes == 0 {
        outln!("no differences in class, params, versions, metrics or arrays");
        Ok(0)
    } else {
        Ok(1)
    }
}
