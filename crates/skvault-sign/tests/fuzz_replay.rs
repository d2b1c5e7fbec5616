//! The `sign_bundle` fuzz target's calls without nightly: the committed corpus
//! (`fuzz/corpus/sign_bundle`) and any crash artifacts are replayed, then a bounded,
//! deterministic mutation run starts from the seeds. Every input must give `Ok` or `Err`,
//! never a panic, and none may take long.
//!
//! `SKVAULT_FUZZ_MUTATIONS=<n>` and `SKVAULT_FUZZ_SEED=<n>` make longer or different runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use skvault_format::fuzzing::{Replay, Rng};
use skvault_sign::fuzzing::exercise;

const MUTATIONS: u64 = 5_000;
const SEED: u64 = 0x5160_b0d1_e5ee_d000;

fn replay() -> Replay {
    let (dir, tmp) = (env!("CARGO_MANIFEST_DIR"), env!("CARGO_TARGET_TMPDIR"));
    Replay::new("sign_bundle", dir, tmp, "json")
}

fn check(bytes: &[u8], label: &str) -> bool {
    replay().check(bytes, label, || exercise(bytes))
}

#[test]
fn seeds_are_signed_bundles_or_statements_that_parse() {
    let seeds = replay().files("corpus");
    assert!(seeds.len() >= 5, "too few seeds in fuzz/corpus/sign_bundle");
    for p in seeds {
        let bytes = std::fs::read(&p).unwrap();
        assert!(
            check(&bytes, &p.display().to_string()),
            "{} is neither a bundle that verifies nor a statement",
            p.display()
        );
    }
}

#[test]
fn corpus_and_artifacts_replay_without_panics() {
    replay().replay_committed(exercise);
}

/// JSON pieces that reach the parsers' type checks and the base64 and hex decoders.
const SNIPPETS: [&[u8]; 10] = [
    b"null",
    b"[]",
    b"{}",
    b"\"\"",
    b"1e400",
    b"\"==\"",
    b"\"\\u0000\"",
    b"[[[[[[[[[[[[[[[[",
    b"\"ff\"",
    b"\"sha256\"",
];

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, _other: &[u8]) {
    let len = bytes.len();
    match rng.below(4) {
        0 if len > 0 => {
            let i = rng.below(len);
            bytes[i] ^= 1 << rng.below(8);
        }
        1 => bytes.truncate(rng.below(len + 1)),
        2 => {
            let at = rng.below(len + 1);
            bytes.splice(at..at, rng.pick(&SNIPPETS).iter().copied());
        }
        _ if len > 0 => {
            let at = rng.below(len);
            let end = (at + 1 + rng.below(16)).min(len);
            bytes.splice(at..end, rng.pick(&SNIPPETS).iter().copied());
        }
        _ => {}
    }
}

#[test]
fn mutated_seeds_never_panic() {
    replay().mutated(SEED, MUTATIONS, mutate, exercise);
}
