//! The `model` fuzz target's calls without nightly: the committed corpus and any crash
//! artifacts are replayed, then a bounded, deterministic run of structure-aware manifest
//! mutations starts from the seeds. Every input must give `Ok` or `Err`, never a panic, and
//! none may take long. `SKVAULT_FUZZ_MUTATIONS` and `SKVAULT_FUZZ_SEED` change the run;
//! `cargo test -p skvault-infer --test fuzz_replay -- --ignored write_seed_corpus` rewrites
//! `fuzz/corpus/model/`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use skvault_format::fuzzing::{guarded, Rng};
use skvault_infer::fuzzing::{exercise, mutate_manifest, seeds};

const MUTATIONS: usize = 3_000;
const SEED: u64 = 0x6d6f_6465_6c5f_6675;
const SLOW: Duration = Duration::from_secs(5);

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn check(bytes: Vec<u8>, label: &str) -> bool {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let copy = bytes.clone();
    guarded(&copy, label, tmp, "skv", SLOW, || exercise(bytes))
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn seeds_build_models() {
    for (name, bytes) in seeds() {
        assert!(check(bytes, name), "{name} does not build");
    }
}

#[test]
fn corpus_and_artifacts_replay_without_panics() {
    for dir in ["corpus/model", "artifacts/model"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir)) else {
            continue;
        };
        for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
            let bytes = std::fs::read(&path).unwrap();
            check(bytes, &path.display().to_string());
        }
    }
}

#[test]
fn seeded_mutations() {
    let n = env_or("SKVAULT_FUZZ_MUTATIONS", MUTATIONS as u64);
    let mut rng = Rng::new(env_or("SKVAULT_FUZZ_SEED", SEED));
    let seeds = seeds();
    let mut built = 0;
    for i in 0..n {
        let (name, seed) = rng.pick(&seeds);
        // Mutations stack: a mutated file is mutated again half of the time.
        let mut bytes = seed.clone();
        for _ in 0..1 + rng.below(3) {
            bytes = mutate_manifest(&mut rng, &bytes).unwrap_or(bytes);
        }
        if check(bytes, &format!("mutation-{i}-of-{name}")) {
            built += 1;
        }
    }
    // The mutations must leave some files openable, or the run exercises nothing.
    assert!(built > 0 || n == 0);
}

#[test]
#[ignore = "rewrites fuzz/corpus/model"]
fn write_seed_corpus() {
    let dir = fuzz_dir().join("corpus/model");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in seeds() {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
