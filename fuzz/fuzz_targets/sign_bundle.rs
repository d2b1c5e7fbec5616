//! Signature bundles (Sigstore bundle, DSSE envelope, in-toto statement) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    skvault_sign::fuzzing::exercise(data);
});
