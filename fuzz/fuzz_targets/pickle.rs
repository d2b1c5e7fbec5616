//! Any bytes through the pickle reader: scan (with joblib's reading and the plain re-read),
//! then decompress and convert. `crates/skvault-pickle/tests/fuzz_replay.rs` runs the same
//! calls without nightly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(disagreement) = skvault_pickle::fuzzing::exercise(data) {
        panic!("{disagreement}");
    }
});
