//! The input readers of native prediction (`.npy`, CSV, Parquet) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    skvault_table::fuzzing::exercise(data);
});
