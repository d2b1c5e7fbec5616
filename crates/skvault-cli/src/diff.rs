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

/// Orders text with its numbers by value: `estimators_[2]` before `estimators_[10]`.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn runs(s: &str) -> impl Iterator<Item = &str> {
        let mut rest = s;
        std::iter::from_fn(move || {
            let first = rest.chars().next()?;
            let digit = first.is_ascii_digit();
            let end = rest
                .find(|c: char| c.is_ascii_digit() != digit)
                .unwrap_or(rest.len());
            let (run, tail) = rest.split_at(end);
            rest = tail;
            Some(run)
        })
    }
    let (mut x, mut y) = (runs(a), runs(b));
    loop {
        let order = match (x.next(), y.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(p), Some(q))
                if p.starts_with(|c: char| c.is_ascii_digit())
                    && q.starts_with(|c: char| c.is_ascii_digit()) =>
            {
                let (p, q) = (p.trim_start_matches('0'), q.trim_start_matches('0'));
                p.len().cmp(&q.len()).then_with(|| p.cmp(q))
            }
            (Some(p), Some(q)) => p.cmp(q),
        };
        if order.is_ne() {
            return order;
        }
    }
}

/// The keys of both sides, once each, in natural order.
fn sorted_keys<'m>(
    a: &'m BTreeMap<String, String>,
    b: &'m BTreeMap<String, String>,
) -> Vec<&'m String> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort_by(|p, q| natural_cmp(p, q));
    keys.dedup();
    keys
}

/// Prints `- key: a` / `+ key: b` lines for keys whose values differ; returns how many.
fn compare(title: &str, a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> usize {
    let keys = sorted_keys(a, b);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_with_their_numbers_by_value() {
        let a: BTreeMap<String, String> = [
            "estimators_[10].tree_.value",
            "estimators_[2].tree_.value",
            "estimators_[1].tree_.value",
            "coef_",
        ]
        .iter()
        .map(|k| (k.to_string(), String::new()))
        .collect();
        let b: BTreeMap<String, String> =
            [("estimators_[2].tree_.value".to_string(), "x".to_string())]
                .into_iter()
                .collect();
        let keys: Vec<&str> = sorted_keys(&a, &b)
            .into_iter()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "coef_",
                "estimators_[1].tree_.value",
                "estimators_[2].tree_.value",
                "estimators_[10].tree_.value"
            ]
        );
        assert!(natural_cmp("a007", "a7").is_ne()); // equal numbers: the text decides, never Equal
        assert!(natural_cmp("x2y", "x10") == std::cmp::Ordering::Less);
    }
}
