//! Like `read`, but the header's manifest digest is recomputed first, so that mutations of the
//! manifest reach the JSON parser, the schema checks and the layout checks instead of all
//! stopping at `ManifestDigestMismatch`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skvault_format::fuzzing::{exercise, rehash};

fuzz_target!(|data: &[u8]| {
    exercise(rehash(data.to_vec()));
});
