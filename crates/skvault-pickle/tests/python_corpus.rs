//! The corpus built by `tests/fixtures/make_fixtures.py` with the project's Python: every
//! malicious file is unsafe, every benign one safe, and converting a benign file gives the
//! tree and arrays `skvault.dumps` writes for the same object.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::io::Write;

use common::{canonical, corpus, expanded, first_difference, index, read_skv, ArrayInfo, Entry};
use skvault_pickle::{convert, decompress, scan, Limits, Verdict};

fn read(dir: &std::path::Path, e: &Entry) -> Vec<u8> {
    std::fs::read(dir.join(&e.file)).unwrap()
}

#[test]
fn malicious_corpus_is_unsafe() {
    let Some(dir) = corpus() else { return };
    let entries: Vec<Entry> = index(dir)
        .into_iter()
        .filter(|e| e.expect == "unsafe")
        .collect();
    assert!(entries.len() > 80, "the malicious corpus is too small");
    let mut failures = Vec::new();
    for e in &entries {
        let report = scan(&read(dir, e));
        if report.verdict != Verdict::Unsafe {
            failures.push(format!("{}: {:?}", e.file, report.to_json()));
        }
    }
    assert!(
        failures.is_empty(),
        "not reported unsafe:\n{}",
        failures.join("\n")
    );
}

#[test]
fn benign_corpus_is_safe() {
    let Some(dir) = corpus() else { return };
    let mut failures = Vec::new();
    for e in index(dir).iter().filter(|e| e.expect != "unsafe") {
        let report = scan(&read(dir, e));
        if report.verdict.as_str() != e.expect {
            failures.push(format!("{}: {}", e.file, report.to_json()));
        }
    }
    assert!(
        failures.is_empty(),
        "not reported safe:\n{}",
        failures.join("\n")
    );
}

fn try_converted(bytes: &[u8]) -> skvault_pickle::Result<(skvault_format::Node, Vec<ArrayInfo>)> {
    let limits = Limits::default();
    let (_, stream) = decompress(bytes, &limits)?;
    let c = convert(&stream, &limits)?;
    let arrays = c
        .arrays
        .iter()
        .map(|a| ArrayInfo {
            dtype: a.dtype.clone(),
            shape: a.shape.clone(),
            order: a.order,
            data: a.data.to_vec(),
        })
        .collect();
    Ok((c.root, arrays))
}

fn converted(bytes: &[u8]) -> (skvault_format::Node, Vec<ArrayInfo>) {
    try_converted(bytes).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn benign_conversions_match_skvault_dump() {
    let Some(dir) = corpus() else { return };
    let mut failures = Vec::new();
    let mut checked = 0;
    for e in index(dir).iter().filter(|e| e.expect != "unsafe") {
        let Some(skv) = &e.skv else { continue };
        let bytes = read(dir, e);
        let (root, arrays) = match try_converted(&bytes) {
            Ok(c) => c,
            Err(err) => {
                failures.push(format!("{}: {err}", e.file));
                continue;
            }
        };
        let mine = canonical(root, &arrays);
        let (root, arrays) = read_skv(&dir.join(skv));
        let theirs = canonical(root, &arrays);
        // joblib writes an array once per reference: only the expanded trees are equal. Plain
        // pickles keep identity, so their trees must match declaration for declaration.
        let (a, b) = if e.kind == "joblib" {
            (expanded(mine).to_json(), expanded(theirs).to_json())
        } else {
            (mine.to_json(), theirs.to_json())
        };
        if let Some(diff) = first_difference(&a, &b, "") {
            failures.push(format!("{}: {diff}", e.file));
        }
        checked += 1;
    }
    assert!(checked > 50, "only {checked} files compared");
    assert!(
        failures.is_empty(),
        "conversions differ from skvault.dumps:\n{}",
        failures.join("\n")
    );
}

#[test]
fn lz4_joblib_files_are_read_by_magic_bytes() {
    let Some(dir) = corpus() else { return };
    for (file, expect) in [
        ("benign/rf.joblib", Verdict::Safe),
        ("malicious/os_system.joblib", Verdict::Unsafe),
        ("malicious/object_array_payload.joblib", Verdict::Unsafe),
    ] {
        let raw = std::fs::read(dir.join(file)).unwrap();
        let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
        enc.write_all(&raw).unwrap();
        let packed = enc.finish().unwrap();
        let report = scan(&packed);
        assert_eq!(report.verdict, expect, "{file}: {}", report.to_json());
        assert_eq!(
            report.format,
            skvault_pickle::Format::Compressed(skvault_pickle::Compression::Lz4)
        );
    }
    let raw = std::fs::read(dir.join("benign/rf.joblib")).unwrap();
    let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
    enc.write_all(&raw).unwrap();
    let packed = enc.finish().unwrap();
    let (a, _) = converted(&packed);
    let (b, _) = converted(&raw);
    assert_eq!(a, b);
}

#[test]
fn scan_reports_every_global_with_its_kind() {
    let Some(dir) = corpus() else { return };
    let report =
        scan(&std::fs::read(dir.join("malicious/sklearn_estimator_with_payload.p4.pkl")).unwrap());
    let names: Vec<(String, &str)> = report
        .globals
        .iter()
        .map(|g| (g.qualified(), g.kind.as_str()))
        .collect();
    assert!(
        names.contains(&("posix.system".into(), "dangerous")),
        "{names:?}"
    );
    assert!(
        names.contains(&(
            "sklearn.linear_model._logistic.LogisticRegression".into(),
            "safe"
        )),
        "{names:?}"
    );
    let report = scan(&std::fs::read(dir.join("benign/rf.joblib.xz")).unwrap());
    assert!(report.joblib_arrays > 0);
    assert!(report.globals.iter().all(|g| g.count >= 1));
}

#[test]
fn converted_models_load_and_predict_like_the_originals() {
    let Some(dir) = corpus() else { return };
    let Some(py) = common::python() else { return };
    let out = dir.join("converted");
    std::fs::create_dir_all(&out).unwrap();
    let mut args = Vec::new();
    for f in [
        "benign/logreg.p0.pkl",
        "benign/rf.p4.pkl",
        "benign/rf.joblib.xz",
        "benign/pipeline.p2.pkl",
        "benign/hgb.p5.pkl",
        "benign/hgb.joblib",
        "benign/knn.p3.pkl",
        "benign/gridsearch.joblib",
    ] {
        let bytes = std::fs::read(dir.join(f)).unwrap();
        let limits = Limits::default();
        let (_, stream) = decompress(&bytes, &limits).unwrap();
        let c = convert(&stream, &limits).unwrap();
        let prepared = skvault_format::prepare(
            c.root.clone(),
            &c.array_inputs(),
            serde_json::Map::new(),
            skvault_format::WriteOptions::default(),
        )
        .unwrap();
        let target = out.join(format!("{}.skv", f.replace('/', "-")));
        prepared.write_file(&target, &mut |_| {}).unwrap();
        args.push(dir.join(f));
        args.push(target);
    }
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/check_converted.py");
    let output = std::process::Command::new(py)
        .arg(script)
        .args(&args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("ok")).count(),
        8,
        "{text}"
    );
}
