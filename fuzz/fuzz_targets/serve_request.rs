//! The request parsers of `skvault serve` (JSON shapes, CSV, Parquet, `.npy`) on arbitrary
//! bytes: the first byte picks the media type and the model, the rest is the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    skvault_serve::request::fuzzing::exercise(data);
});
