//! Taking a `.skv` file apart into content-addressed pieces, and putting it back together.
//!
//! A file is its *head* (the 64-byte header and the manifest), zero padding, and its blobs in
//! file order (the arrays stored on their own, then the packs), each at the offset the
//! manifest gives (FORMAT.md 2.4).
//! The manifest fixes every byte position, so the head plus the blobs determine the file
//! exactly: reassembly is byte-identical.

use skvault_format::manifest::{Header, HEADER_LEN};
use skvault_format::{Manifest, SkvFile};

use crate::error::{RegistryError, Result};

/// BLAKE3 of `data` as 64 lowercase hex digits (threads for large inputs).
pub(crate) fn hash_hex(data: &[u8]) -> String {
    skvault_format::write::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A file cut into pieces that borrow its bytes.
pub(crate) struct Pieces<'a> {
    pub head: &'a [u8],
    /// Stored bytes of each blob, in file order.
    pub blobs: Vec<&'a [u8]>,
}

/// Cuts a validated file (`file` was opened from exactly `bytes`).
pub(crate) fn split<'a>(bytes: &'a [u8], file: &SkvFile, path: &str) -> Result<Pieces<'a>> {
    let err = |reason| RegistryError::Split {
        path: path.to_string(),
        reason,
    };
    let head_len = usize::try_from(HEADER_LEN + file.header().manifest_len)
        .map_err(|_| err("manifest too large"))?;
    let head = bytes
        .get(..head_len)
        .ok_or_else(|| err("file shorter than its head"))?;
    let data_start = file.header().data_start();
    let mut blobs = Vec::with_capacity(file.manifest().arrays.len());
    for (_, entry) in file.manifest().blobs() {
        let start = data_start
            .checked_add(entry.offset)
            .and_then(|s| usize::try_from(s).ok());
        let end = start.and_then(|s| s.checked_add(usize::try_from(entry.length).ok()?));
        let blob = match (start, end) {
            (Some(s), Some(e)) => bytes.get(s..e),
            _ => None,
        };
        blobs.push(blob.ok_or_else(|| err("blob outside the file"))?);
    }
    Ok(Pieces { head, blobs })
}

/// The manifest of a stored head, checked against the header's digest.
pub(crate) fn parse_head(head: &[u8], file_len: u64, path: &str) -> Result<Manifest> {
    let fmt = |source| RegistryError::Format {
        path: path.to_string(),
        source,
    };
    let header = Header::parse(head, file_len).map_err(fmt)?;
    let manifest_bytes = head
        .get(HEADER_LEN as usize..)
        .filter(|m| m.len() as u64 == header.manifest_len)
        .ok_or_else(|| RegistryError::document(path, "head length differs from its header"))?;
    if blake3::hash(manifest_bytes).as_bytes() != &header.manifest_digest {
        return Err(fmt(skvault_format::FormatError::ManifestDigestMismatch));
    }
    let text = header.manifest_text(manifest_bytes).map_err(fmt)?;
    Manifest::from_bytes(&text).map_err(fmt)
}

/// Lays out head and blobs as the manifest says. `blobs` are in file order.
pub(crate) fn reassemble(
    head: &[u8],
    manifest: &Manifest,
    blobs: &[bytes::Bytes],
    file_len: u64,
    path: &str,
) -> Result<Vec<u8>> {
    let bad = |message: String| RegistryError::document(path, message);
    let expected = manifest.blobs().count();
    if blobs.len() != expected {
        return Err(bad(format!(
            "{} blobs listed, the manifest has {expected}",
            blobs.len(),
        )));
    }
    let cap = usize::try_from(file_len).map_err(|_| bad("file too large".into()))?;
    let mut out = Vec::with_capacity(cap);
    out.extend_from_slice(head);
    let data_start = skvault_format::manifest::align_up(head.len() as u64)
        .ok_or_else(|| bad("head too large".into()))?;
    for (i, ((_, entry), blob)) in manifest.blobs().zip(blobs).enumerate() {
        if blob.len() as u64 != entry.length {
            return Err(bad(format!(
                "blob {i} has {} bytes, the manifest says {}",
                blob.len(),
                entry.length
            )));
        }
        let at = data_start
            .checked_add(entry.offset)
            .filter(|at| *at <= file_len && *at >= out.len() as u64)
            .ok_or_else(|| bad(format!("blob {i}: offset out of place")))?;
        out.resize(at as usize, 0);
        out.extend_from_slice(blob);
    }
    if expected == 0 {
        out.resize(usize::try_from(data_start).unwrap_or(cap), 0);
    }
    if out.len() as u64 != file_len {
        return Err(bad(format!(
            "reassembled {} bytes, the version says {file_len}",
            out.len()
        )));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use skvault_format::{prepare, ArrayInput, DType, Node, Order, WriteOptions};

    use super::*;

    #[test]
    fn bytes_that_are_not_the_opened_file_cannot_be_split() {
        let data = [1u8; 64];
        let arrays = [ArrayInput {
            dtype: DType::parse_scalar("<f8", "test").unwrap(),
            shape: vec![8],
            order: Order::C,
            data: &data,
        }];
        let bytes = prepare(
            Node::Array(0),
            &arrays,
            Default::default(),
            WriteOptions::default(),
        )
        .unwrap()
        .to_vec()
        .unwrap();
        let file = SkvFile::from_bytes(bytes.clone()).unwrap();
        assert_eq!(split(&bytes, &file, "m.skv").unwrap().blobs, [&data[..]]);
        for (cut, why) in [
            (10, "file shorter than its head"),
            (bytes.len() - 1, "blob outside the file"),
        ] {
            match split(&bytes[..cut], &file, "m.skv") {
                Err(RegistryError::Split { path, reason }) => {
                    assert_eq!((path.as_str(), reason), ("m.skv", why))
                }
                Err(e) => panic!("{e:?}"),
                Ok(_) => panic!("split {cut} bytes"),
            }
        }
    }

    #[test]
    fn encoding_errors_keep_serde_json_as_source() {
        use std::error::Error as _;
        let source = serde_json::from_str::<u8>("x").unwrap_err();
        let e = RegistryError::Encode {
            what: "a registry document",
            source,
        };
        assert!(e
            .to_string()
            .starts_with("cannot encode a registry document: "));
        assert!(e.source().is_some_and(|s| s.is::<serde_json::Error>()));
    }
}
