//! What the `export` and `import_json` fuzz targets do with their input, shared with the
//! replay test (`tests/fuzz_replay.rs`) so that both always exercise the same calls.

use skvault_format::{SkvFile, TrustSet, WriteOptions};

/// Opens `bytes` and exports it to ONNX (through the native model) and to the portable
/// JSON document, then imports that document back. Returns whether the file opened. Must
/// never panic, overflow the stack or allocate without bound, whatever the input.
pub fn exercise_export(bytes: Vec<u8>) -> bool {
    let Ok(file) = SkvFile::from_bytes(bytes) else {
        return false;
    };
    if let Ok(model) = skvault_infer::Model::from_file(&file) {
        let _ = crate::onnx::to_onnx_bytes(&model);
    }
    if let Ok(doc) = crate::json::to_document(&file, &mut |_, _| {}) {
        let _ = crate::json::from_document(doc, &TrustSet::default(), WriteOptions::default());
    }
    true
}

/// Parses `bytes` as a portable JSON document and imports it (in memory). Returns whether
/// it became a `.skv` file. Must never panic or allocate without bound, whatever the input.
pub fn exercise_import(bytes: &[u8]) -> bool {
    let Ok(doc) = skvault_format::strict_json::from_slice(bytes) else {
        return false;
    };
    crate::json::from_document(doc, &TrustSet::default(), WriteOptions::default()).is_ok()
}
