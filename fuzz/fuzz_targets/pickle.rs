//! Any bytes through the pickle reader: scan (with joblib's reading and the plain re-read),
//! then decompress and convert. `crates/skvault-pickle/tests/fuzz_replay.rs` runs the same
//! calls without nightly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skvault_pickle::{convert, decompress, scan_with, Limits, ScanOptions};

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_decompressed: 64 << 20,
        max_alloc: 256 << 20,
        ..Limits::default()
    };
    let options = ScanOptions {
        limits: limits.clone(),
        ..ScanOptions::default()
    };
    let _ = scan_with(data, &options).to_json();
    if let Ok((_, stream)) = decompress(data, &limits) {
        if let Ok(c) = convert(&stream, &limits) {
            let _ = c.root.to_json();
            let _ = c.array_inputs();
        }
    }
});
