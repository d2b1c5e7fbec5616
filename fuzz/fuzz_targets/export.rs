//! ONNX and portable JSON export of mutated files (and the JSON document imported back).
//! The manifest digest is recomputed first, as in `model`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skvault_format::fuzzing::rehash;

fuzz_target!(|data: &[u8]| {
    skvault_export::fuzzing::exercise_export(rehash(data.to_vec()));
});
