//! Any bytes through a loader's array path: open, plan where each array goes, fill the
//! arrays into owned buffers on 0 or 2 workers in an order drawn from the input, and compare
//! each with `read_array`. The manifest digest is recomputed first, so that mutations of the
//! array table and of the trees (which decide the pool) get past the digest check.
//! `crates/skvault-format/tests/fuzz_replay.rs` runs the same calls without nightly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skvault_format::fuzzing::{exercise_fill, rehash};

fuzz_target!(|data: &[u8]| {
    exercise_fill(rehash(data.to_vec()));
});
