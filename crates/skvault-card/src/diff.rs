//! What differs between two records (`skvault diff`, the registry page's diff): class,
//! parameters, versions, metrics, user metadata and arrays by path, shape and digest.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use skvault_format::manifest::hex;
use skvault_format::SkvFile;

use crate::census::array_paths;

/// Flattens nested JSON objects into `a.b.c = value` entries.
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
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
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

fn section(md: &serde_json::Map<String, Value>, pointer: &[&str]) -> BTreeMap<String, Value> {
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
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
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
    a: &'m BTreeMap<String, Value>,
    b: &'m BTreeMap<String, Value>,
) -> Vec<&'m String> {
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort_by(|p, q| natural_cmp(p, q));
    keys.dedup();
    keys
}

/// One key whose values differ (`None`: absent on that side).
pub struct Change {
    pub key: String,
    pub a: Option<Value>,
    pub b: Option<Value>,
}

/// The keys whose values differ, in natural order.
fn compare(a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>) -> Vec<Change> {
    sorted_keys(a, b)
        .into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| Change {
            key: k.clone(),
            a: a.get(k).cloned(),
            b: b.get(k).cloned(),
        })
        .collect()
}

/// Each array by its path: shape and BLAKE3 digest.
fn arrays(file: &SkvFile) -> BTreeMap<String, Value> {
    let m = file.manifest();
    let paths = array_paths(m);
    m.arrays
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let path = paths
                .get(&i)
                .cloned()
                .unwrap_or_else(|| format!("array {i}"));
            (path, json!({"shape": e.shape, "blake3": hex(&e.digest)}))
        })
        .collect()
}

/// An array as the text report shows it: `(shape) first 16 hex digits of the digest`.
pub fn array_text(v: &Value) -> String {
    let shape: Vec<String> = v["shape"]
        .as_array()
        .map(|s| s.iter().map(Value::to_string).collect())
        .unwrap_or_default();
    let digest = v["blake3"].as_str().unwrap_or("");
    format!("({}) {}", shape.join(", "), digest.get(..16).unwrap_or(""))
}

/// The sections compared: the JSON key, the text report's title, and the values.
pub fn sections(fa: &SkvFile, fb: &SkvFile) -> Vec<(&'static str, &'static str, Vec<Change>)> {
    let (ma, mb) = (&fa.manifest().metadata, &fb.manifest().metadata);
    let meta = |pointer: &[&str]| compare(&section(ma, pointer), &section(mb, pointer));
    vec![
        ("class", "class", meta(&["object"])),
        ("params", "params", meta(&["estimator", "params"])),
        ("versions", "versions", meta(&["environment"])),
        ("metrics", "metrics", meta(&["metrics"])),
        ("user", "user metadata", meta(&["user"])),
        (
            "arrays",
            "arrays (shape, digest)",
            compare(&arrays(fa), &arrays(fb)),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_with_their_numbers_by_value() {
        let a: BTreeMap<String, Value> = [
            "estimators_[10].tree_.value",
            "estimators_[2].tree_.value",
            "estimators_[1].tree_.value",
            "coef_",
        ]
        .iter()
        .map(|k| (k.to_string(), Value::Null))
        .collect();
        let b: BTreeMap<String, Value> = [("estimators_[2].tree_.value".to_string(), json!("x"))]
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
