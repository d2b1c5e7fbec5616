//! The `serve_request` fuzz target's calls without nightly: the committed corpus
//! (`fuzz/corpus/serve_request`) and any crash artifacts are replayed, then a bounded,
//! deterministic mutation run starts from the seeds. Every input must give `Ok` or `Err`,
//! never a panic or an abort, and none may take long.
//!
//! `SKVAULT_FUZZ_MUTATIONS=<n>` and `SKVAULT_FUZZ_SEED=<n>` make longer or different runs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use skvault_format::fuzzing::{Replay, Rng};
use skvault_serve::request::fuzzing::exercise;

const MUTATIONS: u64 = 20_000;
const SEED: u64 = 0x5e4e_5e4e_0000_d00d;

fn replay() -> Replay {
    let (dir, tmp) = (env!("CARGO_MANIFEST_DIR"), env!("CARGO_TARGET_TMPDIR"));
    Replay::new("serve_request", dir, tmp, "bin")
}

fn check(bytes: &[u8], label: &str) -> bool {
    replay().check(bytes, label, || exercise(bytes))
}

#[test]
fn seeds_cover_every_media_type_and_are_parsed() {
    let seeds = replay().files("corpus");
    for prefix in ["json-", "csv-", "npy-", "parquet-people"] {
        let of_kind: Vec<_> = seeds
            .iter()
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .collect();
        assert!(
            !of_kind.is_empty(),
            "no {prefix} seed in fuzz/corpus/serve_request"
        );
        for p in of_kind {
            let bytes = std::fs::read(p).unwrap();
            assert!(
                check(&bytes, &p.display().to_string()),
                "{} is refused",
                p.display()
            );
        }
    }
}

#[test]
fn corpus_and_artifacts_replay_without_panics() {
    replay().replay_committed(exercise);
}

/// Pieces of JSON, CSV and binary headers that reach the parsers' branches.
const SNIPPETS: [&[u8]; 18] = [
    b"{\"dataframe_split\": {\"columns\": [\"age\"], \"data\": [[",
    b"{\"dataframe_records\": [{",
    b"{\"inputs\": {\"city\": [",
    b"{\"instances\": [[",
    b"\"params\": {\"a\": 1}, ",
    b"null, ",
    b"true, ",
    b"\"age\": ",
    b"\"city\": \"x\", ",
    b"1e999",
    b"-0.0, ",
    b"\"\\ud800\"",
    b"]]}",
    b"},{",
    b",,\n",
    b"\"a\"\"b\"",
    b"(4294967296, 4)",
    b"PAR1",
];

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, other: &[u8]) {
    let len = bytes.len();
    match rng.below(6) {
        // The first byte picks the media type: keep it most of the time.
        0 if len > 1 => {
            let i = 1 + rng.below(len - 1);
            bytes[i] ^= 1 << rng.below(8);
        }
        1 => bytes.truncate(1 + rng.below(len.max(1))),
        2 => {
            let at = rng.below(len + 1).max(1.min(len));
            bytes.splice(at..at, rng.pick(&SNIPPETS).iter().copied());
        }
        3 if len > 1 => {
            let at = 1 + rng.below(len - 1);
            let end = (at + 1 + rng.below(16)).min(len);
            bytes.splice(at..end, rng.pick(&SNIPPETS).iter().copied());
        }
        4 if len > 0 => bytes[0] = rng.next_u64() as u8,
        _ if !other.is_empty() => {
            let at = rng.below(len + 1).max(1.min(len));
            let from = rng.below(other.len());
            let end = (from + 1 + rng.below(64)).min(other.len());
            bytes.splice(at..at, other[from..end].iter().copied());
        }
        _ => {}
    }
}

#[test]
fn mutated_seeds_never_panic() {
    let parsed = replay().mutated(SEED, MUTATIONS, mutate, exercise);
    // Mutations that keep a body valid reach the frame checks, not only the refusals.
    assert!(parsed.contains(&true), "no mutated body was parsed");
}
