//! The `export` and `import_json` fuzz targets' calls without nightly: the committed corpora
//! and any crash artifacts are replayed, then bounded, deterministic runs of mutations start
//! from the seeds (structure-aware manifest mutations of model files for export; edits of
//! the documents' JSON for import). `SKVAULT_FUZZ_MUTATIONS` and `SKVAULT_FUZZ_SEED` change
//! the runs; `cargo test -p skvault-export --test fuzz_replay -- --ignored write_seed_corpus`
//! rewrites `fuzz/corpus/export/` and `fuzz/corpus/import_json/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use skvault_export::fuzzing::{exercise_export, exercise_import};
use skvault_format::fuzzing::{guarded, Rng};
use skvault_format::SkvFile;
use skvault_infer::fuzzing::{mutate_manifest, seeds};

const MUTATIONS: usize = 2_000;
const SEED: u64 = 0x6578_706f_7274_5f66;
const SLOW: Duration = Duration::from_secs(5);

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn tmp() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The portable JSON documents of the model seeds, plus hostile shapes the import must
/// bound before allocating (a 170-byte document declared 2^60 elements).
fn documents() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, bytes) in seeds() {
        let file = SkvFile::from_bytes(bytes).unwrap();
        let doc = skvault_export::json::to_document(&file, &mut |_, _| {}).unwrap();
        out.push((
            name.replace(".skv", ".json"),
            serde_json::to_vec(&doc).unwrap(),
        ));
    }
    let array = |dtype: &str, shape: Value, data: Value| {
        json!({"format": "skvault-json", "version": 1, "writer": "t",
               "root": {"array": 0},
               "arrays": [{"dtype": dtype, "shape": shape, "order": "C", "data": data}]})
    };
    let hostile = [
        (
            "seed-huge-shape.json",
            array("<f8", json!([1u64 << 60]), json!([])),
        ),
        (
            "seed-huge-zero-width.json",
            array("|V0", json!([1u64 << 62]), json!([])),
        ),
        (
            "seed-empty-extent.json",
            array("<f8", json!([0u64, u64::MAX]), json!([])),
        ),
        (
            "seed-small-array.json",
            array("<i4", json!([2, 2]), json!([[1, 2], [3, 4]])),
        ),
    ];
    for (name, doc) in hostile {
        out.push((name.to_string(), serde_json::to_vec(&doc).unwrap()));
    }
    out
}

fn mutate_json(rng: &mut Rng, text: &[u8]) -> Vec<u8> {
    let mut bytes = text.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len().max(1));
        match rng.below(4) {
            0 if !bytes.is_empty() => bytes[at] = *rng.pick(b"0123456789[]{},\":-e"),
            1 => {
                let digits = rng.pick(&[
                    "18446744073709551615",
                    "1152921504606846976",
                    "0",
                    "1048577",
                ]);
                bytes.splice(at..at, digits.bytes());
            }
            2 if !bytes.is_empty() => {
                bytes.remove(at);
            }
            _ => {
                let end = (at + rng.below(32)).min(bytes.len());
                let chunk = bytes[at..end].to_vec();
                let to = rng.below(bytes.len().max(1));
                bytes.splice(to..to, chunk);
            }
        }
    }
    bytes
}

#[test]
fn seeds_export_and_import() {
    for (name, bytes) in seeds() {
        let copy = bytes.clone();
        assert!(guarded(
            &copy,
            name,
            tmp(),
            "skv",
            SLOW,
            || exercise_export(bytes)
        ));
    }
    for (name, doc) in documents() {
        let ok = guarded(&doc, &name, tmp(), "json", SLOW, || exercise_import(&doc));
        assert_eq!(
            ok,
            !name.contains("huge") && !name.contains("extent"),
            "{name}"
        );
    }
}

#[test]
fn corpus_and_artifacts_replay_without_panics() {
    for (target, ext) in [("export", "skv"), ("import_json", "json")] {
        for dir in ["corpus", "artifacts"] {
            let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir).join(target)) else {
                continue;
            };
            for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
                let bytes = std::fs::read(&path).unwrap();
                let label = path.display().to_string();
                guarded(&bytes.clone(), &label, tmp(), ext, SLOW, || match target {
                    "export" => exercise_export(bytes),
                    _ => exercise_import(&bytes),
                });
            }
        }
    }
}

#[test]
fn seeded_mutations() {
    let n = env_or("SKVAULT_FUZZ_MUTATIONS", MUTATIONS as u64);
    let mut rng = Rng::new(env_or("SKVAULT_FUZZ_SEED", SEED));
    let seeds = seeds();
    let docs = documents();
    for i in 0..n {
        let (name, seed) = rng.pick(&seeds);
        let mut bytes = seed.clone();
        for _ in 0..1 + rng.below(3) {
            bytes = mutate_manifest(&mut rng, &bytes).unwrap_or(bytes);
        }
        let label = format!("export-mutation-{i}-of-{name}");
        guarded(&bytes.clone(), &label, tmp(), "skv", SLOW, || {
            exercise_export(bytes)
        });
        let (name, doc) = rng.pick(&docs);
        let doc = mutate_json(&mut rng, doc);
        let label = format!("import-mutation-{i}-of-{name}");
        guarded(&doc, &label, tmp(), "json", SLOW, || exercise_import(&doc));
    }
}

#[test]
#[ignore = "rewrites fuzz/corpus/export and fuzz/corpus/import_json"]
fn write_seed_corpus() {
    let export = fuzz_dir().join("corpus/export");
    std::fs::create_dir_all(&export).unwrap();
    for (name, bytes) in seeds() {
        std::fs::write(export.join(name), bytes).unwrap();
    }
    let import = fuzz_dir().join("corpus/import_json");
    std::fs::create_dir_all(&import).unwrap();
    for (name, doc) in documents() {
        std::fs::write(import.join(name), doc).unwrap();
    }
}
