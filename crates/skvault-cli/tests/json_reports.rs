//! `--json` on every command that prints a report: one JSON document on stdout whose content
//! matches the files it describes; errors stay on stderr with the same exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{model, s, skvault, small_pickle, tree_model};
use serde_json::{json, Value};
use skvault_format::manifest::hex;
use skvault_format::SkvFile;

fn digests(path: &std::path::Path) -> Vec<String> {
    let file = SkvFile::open(path).unwrap();
    file.manifest()
        .arrays
        .iter()
        .map(|a| hex(&a.digest))
        .collect()
}

#[test]
fn verify_json_reports_the_arrays_and_the_damaged_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = model(dir.path(), "m.skv");
    let ok = skvault(dir.path(), &["verify", "--json", s(&path)]);
    assert_eq!(ok.code, 0, "{}", ok.err);
    let doc = ok.json();
    let n = SkvFile::open(&path).unwrap().manifest().arrays.len();
    assert_eq!(doc["ok"], json!(true));
    assert_eq!(doc["arrays"], json!(n));
    assert_eq!(doc["file"], json!(s(&path)));
    assert_eq!(
        (doc["error"].clone(), doc["array"].clone()),
        (Value::Null, Value::Null)
    );

    // Damage the last array's bytes (the leaf values): a verdict, exit 1, named in the JSON.
    let mut bytes = std::fs::read(&path).unwrap();
    let leaves: Vec<u8> = [1.0f64, 2.0, 3.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let at = bytes
        .windows(leaves.len())
        .position(|w| w == leaves.as_slice())
        .expect("the leaf values are stored uncompressed");
    bytes[at] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let bad = skvault(dir.path(), &["verify", "--json", s(&path)]);
    assert_eq!(bad.code, 1);
    let doc = bad.json();
    assert_eq!(doc["ok"], json!(false));
    assert_eq!(doc["array"], json!("model.tree_.values"));
    assert!(doc["error"].as_str().unwrap().contains("digest"), "{doc}");
    assert!(bad.err.contains("FAILED"), "{}", bad.err);

    // An error is not a report: stderr, exit 2, nothing on stdout.
    let missing = skvault(dir.path(), &["verify", "--json", "missing.skv"]);
    assert_eq!((missing.code, missing.out.as_str()), (2, ""));
    assert!(missing.err.contains("missing.skv"), "{}", missing.err);
}

#[test]
fn diff_json_lists_each_change_with_both_values() {
    let dir = tempfile::tempdir().unwrap();
    let a = model(dir.path(), "a.skv");
    let b = tree_model(
        &dir.path().join("b.skv"),
        [1.0, 2.0, 4.0],
        json!({"max_depth": 3, "random_state": 0}),
    );
    let same = skvault(dir.path(), &["diff", "--json", s(&a), s(&a)]);
    assert_eq!(same.code, 0, "{}", same.err);
    let doc = same.json();
    assert_eq!(doc["same"], json!(true));
    for (_, changes) in doc["changes"].as_object().unwrap() {
        assert_eq!(changes, &json!([]));
    }

    let differ = skvault(dir.path(), &["diff", "--json", s(&a), s(&b)]);
    assert_eq!(differ.code, 1, "{}", differ.err);
    let doc = differ.json();
    assert_eq!(doc["same"], json!(false));
    assert_eq!(
        (doc["a"].clone(), doc["b"].clone()),
        (json!(s(&a)), json!(s(&b)))
    );
    assert_eq!(
        doc["changes"]["params"],
        json!([{"key": "max_depth", "a": 2, "b": 3}])
    );
    let (da, db) = (digests(&a), digests(&b));
    let changed: Vec<(String, String, String)> = doc["changes"]["arrays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["key"].as_str().unwrap().to_string(),
                c["a"]["blake3"].as_str().unwrap().to_string(),
                c["b"]["blake3"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        changed,
        [(
            "model.tree_.values".to_string(),
            da[1].clone(),
            db[1].clone()
        )]
    );
    assert_ne!(da[1], db[1]);
    assert_eq!(doc["changes"]["arrays"][0]["a"]["shape"], json!([5, 1, 1]));
}

#[test]
fn convert_export_and_import_json_describe_the_written_files() {
    let dir = tempfile::tempdir().unwrap();
    let src = small_pickle(&dir.path().join("d.pkl"));
    let dst = dir.path().join("d.skv");
    let r = skvault(dir.path(), &["convert", "--json", s(&src), s(&dst)]);
    assert_eq!(r.code, 0, "{}", r.err);
    let doc = r.json();
    let size = std::fs::metadata(&dst).unwrap().len();
    let arrays = SkvFile::open(&dst).unwrap().manifest().arrays.len();
    assert_eq!(doc["bytes"], json!(size));
    assert_eq!(doc["arrays"], json!(arrays));
    assert_eq!(doc["format"], json!("pickle"));
    assert_eq!(
        (doc["source"].clone(), doc["output"].clone()),
        (json!(s(&src)), json!(s(&dst)))
    );
    assert_eq!(doc["migrations"], json!([]));

    let m = model(dir.path(), "m.skv");
    let out = dir.path().join("m.json");
    let r = skvault(dir.path(), &["export", "--json", s(&m), s(&out)]);
    assert_eq!(r.code, 0, "{}", r.err);
    let doc = r.json();
    assert_eq!(doc["format"], json!("json"));
    assert_eq!(doc["bytes"], json!(std::fs::metadata(&out).unwrap().len()));
    let back = dir.path().join("back.skv");
    let r = skvault(dir.path(), &["import", "--json", s(&out), s(&back)]);
    assert_eq!(r.code, 0, "{}", r.err);
    let doc = r.json();
    assert_eq!(doc["format"], json!("skv"));
    assert_eq!(doc["bytes"], json!(std::fs::metadata(&back).unwrap().len()));
}

#[test]
fn diff_orders_numbered_keys_by_value_end_to_end() {
    // Parameters named like the arrays of an ensemble: estimators_[2] before estimators_[10].
    let dir = tempfile::tempdir().unwrap();
    let params = |x: i64| json!({"estimators_[10]": x, "estimators_[2]": x, "estimators_[1]": x});
    let a = tree_model(&dir.path().join("a.skv"), [1.0, 2.0, 3.0], params(1));
    let b = tree_model(&dir.path().join("b.skv"), [1.0, 2.0, 3.0], params(2));
    let doc = skvault(dir.path(), &["diff", "--json", s(&a), s(&b)]).json();
    let keys: Vec<&str> = doc["changes"]["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        keys,
        ["estimators_[1]", "estimators_[2]", "estimators_[10]"]
    );
}
