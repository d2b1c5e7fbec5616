//! `import_json` of mutated portable JSON documents (in memory).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    skvault_export::fuzzing::exercise_import(data);
});
