//! The `pickle` fuzz target's calls without nightly: the committed seeds (`fuzz/corpus/pickle`)
//! and any crash artifacts are replayed, every seed is cut at every offset, and a bounded,
//! deterministic mutation run starts from the seeds. Every input must give a report or an
//! error, never a panic, and none may take long.
//!
//! `cargo test -p skvault-pickle --test fuzz_replay -- --ignored write_seed_corpus` rewrites
//! the seeds (from the Python-built corpus). `SKVAULT_FUZZ_MUTATIONS=1000000` and
//! `SKVAULT_FUZZ_SEED=<n>` make longer or different runs (best with `--release`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use skvault_format::fuzzing::{guarded, Rng};

const MUTATIONS: usize = 4_000;
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;
/// Any single input slower than this (debug build) is reported as a hang.
const SLOW: Duration = Duration::from_secs(5);

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/pickle")
}

/// What `fuzz/fuzz_targets/pickle.rs` does with its input.
fn exercise(data: &[u8]) {
    if let Err(disagreement) = skvault_pickle::fuzzing::exercise(data) {
        panic!("{disagreement}");
    }
}

/// Runs `exercise` under the replay guard: a panic or a slow input fails the test, naming a
/// saved copy of the input.
fn check(data: &[u8], label: &str) {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    guarded(data, label, tmp, "pkl", SLOW, || exercise(data));
}

fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in [
        corpus_dir(),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/artifacts/pickle"),
    ] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for p in paths {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

fn mutate(rng: &mut Rng, data: &[u8], other: &[u8]) -> Vec<u8> {
    let mut d = data.to_vec();
    for _ in 0..=rng.below(4) {
        let len = d.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                d[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                d[i] = rng.next_u64() as u8;
            }
            2 => {
                let i = rng.below(len + 1);
                d.insert(i, rng.next_u64() as u8);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(16).min(len - i);
                d.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = rng.below(64).min(len - i);
                let chunk = d[i..i + n].to_vec();
                let at = rng.below(len + 1);
                d.splice(at..at, chunk);
            }
            5 if !other.is_empty() => {
                let i = rng.below(other.len());
                let n = rng.below(64).min(other.len() - i);
                let at = rng.below(len + 1);
                d.splice(at..at, other[i..i + n].iter().copied());
            }
            6 if len > 4 => {
                // A length-like field set to something huge.
                let i = rng.below(len - 4);
                d[i..i + 4].copy_from_slice(&[0xff, 0xff, 0xff, 0x7f]);
            }
            _ => d.truncate(rng.below(len + 1)),
        }
    }
    d
}

#[test]
fn seeds_and_artifacts_replay() {
    let seeds = seeds();
    assert!(
        seeds.len() >= 10,
        "the seed corpus is missing: {}",
        corpus_dir().display()
    );
    for (label, data) in &seeds {
        check(data, label);
    }
}

#[test]
fn every_truncation_of_every_seed() {
    for (label, data) in seeds() {
        // Long seeds at 400 evenly spread cuts, short ones at every offset.
        let step = (data.len() / 400).max(1);
        for cut in (0..data.len()).step_by(step) {
            check(&data[..cut], &format!("{label}[..{cut}]"));
        }
    }
}

#[test]
fn bounded_mutation_run() {
    let n: usize = std::env::var("SKVAULT_FUZZ_MUTATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MUTATIONS);
    let seed: u64 = std::env::var("SKVAULT_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(SEED);
    let seeds = seeds();
    let mut rng = Rng::new(seed);
    for i in 0..n {
        let (label, data) = &seeds[rng.below(seeds.len())];
        let other = &seeds[rng.below(seeds.len())].1;
        let input = mutate(&mut rng, data, other);
        check(&input, &format!("mutation {i} of {label}"));
    }
}

/// Rewrites `fuzz/corpus/pickle` from the Python-built corpus plus a few hand-made streams.
#[test]
#[ignore]
fn write_seed_corpus() {
    let dir = common::corpus().expect("the seeds come from the Python corpus");
    let out = corpus_dir();
    std::fs::create_dir_all(&out).unwrap();
    for f in [
        "benign/logreg.p0.pkl",
        "benign/logreg.p1.pkl",
        "benign/logreg.p2.pkl",
        "benign/logreg.p3.pkl",
        "benign/logreg.p4.pkl",
        "benign/logreg.p5.pkl",
        "benign/logreg.joblib",
        "benign/pipeline.joblib",
        "benign/gridsearch.p4.pkl",
        "benign/rf.joblib.zlib",
        "benign/rf.joblib.gzip",
        "benign/rf.joblib.bz2",
        "benign/rf.joblib.xz",
        "benign/rf.joblib.lzma",
        "malicious/os_system.p0.pkl",
        "malicious/os_system.p4.pkl",
        "malicious/object_array_payload.joblib",
        "malicious/memo_indirection.pkl",
        "malicious/inst_os_system.pkl",
        "malicious/obj_os_system.pkl",
        "malicious/build_monkeypatch.pkl",
        "malicious/forged_dtype_joblib.joblib",
        "malicious/forged_dtype_joblib_nested.joblib",
        "malicious/forged_dtype_reconstruct.pkl",
        "malicious/forged_dtype_masked.pkl",
        "malicious/forged_dtype_itemsize.pkl",
        "malicious/dtype_not_copied.pkl",
        "malicious/memmap_pth_write.pkl",
        "benign/values.p2.pkl",
        "benign/values.joblib",
    ] {
        let name = f.replace('/', "-");
        std::fs::copy(dir.join(f), out.join(name)).unwrap();
    }
    let mut joblib = common::joblib_wrapper(2);
    joblib.push(3);
    joblib.extend([0xff; 3]);
    joblib.extend([0u8; 16]);
    joblib.push(b'.');
    std::fs::write(out.join("handmade-joblib-wrapper.pkl"), joblib).unwrap();
    std::fs::write(
        out.join("handmade-protocol0-text.pkl"),
        b"((I7\nI00\nL-12345678901234567890L\nF1.5\nS'a\\n'\nVu\\u00e9\nNlp0\ng0\ntp1\n.",
    )
    .unwrap();
}
