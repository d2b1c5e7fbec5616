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
    let report = scan_with(data, &options);
    let _ = report.to_json();
    if let Ok((_, stream)) = decompress(data, &limits) {
        match convert(&stream, &limits) {
            Ok(c) => {
                let _ = c.root.to_json();
                let _ = c.array_inputs();
            }
            // The scanner and the converter read dtypes the same way: a dtype the converter
            // calls forged never scans safe.
            Err(e) => assert!(
                !(e.to_string().contains("forged numpy dtype") && report.is_safe()),
                "scan says safe, convert found a forged dtype: {e}"
            ),
        }
    }
});
