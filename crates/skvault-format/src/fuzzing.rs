//! What the fuzz targets do with their input, shared with the replay test
//! (`tests/fuzz_replay.rs`) so that both always exercise the same calls.

use crate::{SkvFile, TrustSet};

/// Opens `bytes` and, if that works, reads and verifies every array and audits the names.
/// Returns whether the file opened. Must never panic, whatever the input.
pub fn exercise(bytes: Vec<u8>) -> bool {
    let Ok(file) = SkvFile::from_bytes(bytes) else {
        return false;
    };
    for i in 0..file.manifest().arrays.len() {
        let _ = file.read_array(i, true);
    }
    let _ = TrustSet::default().untrusted_names(&file.manifest().root);
    let _ = TrustSet::default().untrusted_in(file.manifest());
    let _ = file.verify();
    let _ = file.describe();
    true
}

/// Recomputes the header's manifest digest, so that mutations of the manifest reach the JSON
/// parser and the schema and layout checks instead of stopping at the digest check.
pub fn rehash(mut bytes: Vec<u8>) -> Vec<u8> {
    let manifest_len = bytes
        .get(16..24)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes);
    let end = manifest_len.and_then(|n| usize::try_from(n).ok()?.checked_add(64));
    if let Some(digest) = end
        .and_then(|end| bytes.get(64..end))
        .map(crate::write::digest)
    {
        if let Some(slot) = bytes.get_mut(24..56) {
            slot.copy_from_slice(&digest);
        }
    }
    bytes
}
