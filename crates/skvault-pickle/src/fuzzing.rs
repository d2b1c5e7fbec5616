//! What the `pickle` fuzz target does with its input, shared with the replay test
//! (`tests/fuzz_replay.rs`) so that both always exercise the same calls.

use crate::{convert, decompress, scan_with, Limits, ScanOptions};

/// Scans `data` (joblib's reading and the plain re-read), then decompresses and converts it.
/// Must never panic, whatever the input. Returns an error message when the scanner and the
/// converter disagree: a dtype the converter calls forged must never scan safe.
pub fn exercise(data: &[u8]) -> Result<(), String> {
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
            Err(e) if e.to_string().contains("forged numpy dtype") && report.is_safe() => {
                return Err(format!("scan says safe, convert found a forged dtype: {e}"));
            }
            Err(_) => {}
        }
    }
    Ok(())
}
