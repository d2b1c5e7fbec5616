//! The `table` fuzz target's calls without nightly: the committed corpus
//! (`fuzz/corpus/table`) and any crash artifacts are replayed, then a bounded, deterministic
//! mutation run starts from the seeds. Every input must give `Ok` or `Err` from every reader,
//! never a panic or an abort, and none may take long.
//!
//! `SKVAULT_FUZZ_MUTATIONS=<n>` and `SKVAULT_FUZZ_SEED=<n>` make longer or different runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use skvault_format::fuzzing::{Replay, Rng};
use skvault_table::fuzzing::exercise;

const MUTATIONS: u64 = 20_000;
const SEED: u64 = 0x7ab1_e5ee_d5ee_d000;

fn replay() -> Replay {
    let (dir, tmp) = (env!("CARGO_MANIFEST_DIR"), env!("CARGO_TARGET_TMPDIR"));
    Replay::new("table", dir, tmp, "bin")
}

fn check(bytes: &[u8], label: &str) -> usize {
    replay().check(bytes, label, || exercise(bytes))
}

#[test]
fn seeds_cover_every_reader_and_are_read() {
    let seeds = replay().files("corpus");
    let ext = |p: &PathBuf| p.extension().and_then(|e| e.to_str()).map(str::to_owned);
    for wanted in ["npy", "csv", "parquet"] {
        let of_kind: Vec<_> = seeds
            .iter()
            .filter(|p| ext(p).as_deref() == Some(wanted))
            .collect();
        assert!(
            !of_kind.is_empty(),
            "no .{wanted} seed in fuzz/corpus/table"
        );
        for p in of_kind {
            let bytes = std::fs::read(p).unwrap();
            // A valid seed is read by its own reader (CSV text may also pass as nothing else).
            assert!(
                check(&bytes, &p.display().to_string()) >= 1,
                "{} is not read",
                p.display()
            );
        }
    }
}

#[test]
fn corpus_and_artifacts_replay_without_panics() {
    replay().replay_committed(exercise);
}

/// Header values and cells that reach the readers' size arithmetic and number parsing.
const SNIPPETS: [&[u8]; 14] = [
    b"'<f0'",
    b"'|O'",
    b"'>u8'",
    b"(18446744073709551615, 2)",
    b"(4294967296, 4294967296)",
    b"(0, 0)",
    b"True ",
    b"\"\"",
    b"\"a\"\"b\"",
    b",,,\n",
    b"\r\n",
    b"nan,-inf,1e309",
    b"PAR1",
    b"\xff\xff\xff\x7f",
];

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, other: &[u8]) {
    let len = bytes.len();
    match rng.below(6) {
        0 if len > 0 => {
            let i = rng.below(len);
            bytes[i] ^= 1 << rng.below(8);
        }
        1 => bytes.truncate(rng.below(len + 1)),
        2 => {
            let at = rng.below(len + 1);
            bytes.splice(at..at, rng.pick(&SNIPPETS).iter().copied());
        }
        3 if len > 0 => {
            let at = rng.below(len);
            let end = (at + 1 + rng.below(16)).min(len);
            bytes.splice(at..end, rng.pick(&SNIPPETS).iter().copied());
        }
        4 if len >= 4 => {
            // Parquet's footer length and page headers are little-endian integers.
            let at = rng.below(len - 3);
            let v = (rng.next_u64() as u32).to_le_bytes();
            bytes[at..at + 4].copy_from_slice(&v);
        }
        _ if !other.is_empty() => {
            // Splice in part of another seed.
            let at = rng.below(len + 1);
            let from = rng.below(other.len());
            let end = (from + 1 + rng.below(64)).min(other.len());
            bytes.splice(at..at, other[from..end].iter().copied());
        }
        _ => {}
    }
}

#[test]
fn mutated_seeds_never_panic() {
    replay().mutated(SEED, MUTATIONS, mutate, exercise);
}
