//! Any bytes through the reader: open, read and verify every array, audit the names.
//! `crates/skvault-format/tests/fuzz_replay.rs` runs the same calls without nightly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skvault_format::{SkvFile, TrustSet};

fuzz_target!(|data: &[u8]| {
    let Ok(file) = SkvFile::from_bytes(data.to_vec()) else {
        return;
    };
    for i in 0..file.manifest().arrays.len() {
        let _ = file.read_array(i, true);
    }
    let _ = TrustSet::default().untrusted_names(&file.manifest().root);
    let _ = TrustSet::default().untrusted_in(file.manifest());
    let _ = file.verify();
    let _ = file.describe();
});
