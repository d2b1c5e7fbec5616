//! Any bytes through the reader: open, read and verify every array, audit the names.
//! `crates/skvault-format/tests/fuzz_replay.rs` runs the same calls without nightly.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    skvault_format::fuzzing::exercise(data.to_vec());
});
