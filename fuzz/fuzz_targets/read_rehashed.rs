//! Like `read`, but the header's manifest digest is recomputed first, so that mutations of the
//! manifest reach the JSON parser, the schema checks and the layout checks instead of all
//! stopping at `ManifestDigestMismatch`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use skvault_format::{SkvFile, TrustSet};

fuzz_target!(|data: &[u8]| {
    let mut data = data.to_vec();
    let manifest_len = data
        .get(16..24)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes);
    let end = manifest_len.and_then(|n| usize::try_from(n).ok()?.checked_add(64));
    if let Some(manifest) = end.and_then(|end| data.get(64..end)) {
        let digest = skvault_format::write::digest(manifest);
        data[24..56].copy_from_slice(&digest);
    }
    let Ok(file) = SkvFile::from_bytes(data) else {
        return;
    };
    for i in 0..file.manifest().arrays.len() {
        let _ = file.read_array(i, true);
    }
    let _ = TrustSet::default().untrusted_names(&file.manifest().root);
    let _ = TrustSet::default().untrusted_in(file.manifest());
    let _ = file.verify();
    let _ = file.describe();
});
