//! Native model building from mutated files: `skvault_infer::Model::from_file`, then every
//! method on a small matrix. The manifest digest is recomputed first, so that mutations of
//! the object tree (refs, shapes, sizes) reach the model builders.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skvault_format::fuzzing::rehash;

fuzz_target!(|data: &[u8]| {
    skvault_infer::fuzzing::exercise(rehash(data.to_vec()));
});
