//! Embedding a signature in a `.skv` file, and taking it out again (format 1.3 trailer,
//! FORMAT.md 2.5). Both write a new file atomically; what the signature covers (the signed
//! file) is the same before and after.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use skvault_format::manifest::HEADER_LEN;
use skvault_format::trailer::{Trailer, MAX_SIGNATURE_LEN};
use skvault_format::SkvFile;

use crate::error::{Result, SignError};

/// Writes to `dest` the file at `model` with `bundle` embedded (replacing an embedded
/// signature it already has). `dest` may be `model` itself: the write is atomic.
pub fn embed(model: &Path, bundle: &[u8], dest: &Path) -> Result<()> {
    if bundle.is_empty() || bundle.len() as u64 > MAX_SIGNATURE_LEN {
        return Err(SignError::BundleTooLarge {
            size: bundle.len() as u64,
            max: MAX_SIGNATURE_LEN,
        });
    }
    let (header, content_len) = signed_layout(model)?;
    let embedded = Trailer::embedded_header(&header).to_bytes();
    let footer = Trailer::footer(bundle.len() as u64, header.minor);
    copy_content(model, dest, &embedded, content_len, |w| {
        w.write_all(bundle)?;
        w.write_all(&footer)
    })
}

/// Writes to `dest` the signed file of `model`: without its embedded signature, byte for
/// byte the file that was signed (what `model_signing verify` must be given). A file
/// without an embedded signature is copied unchanged.
pub fn strip(model: &Path, dest: &Path) -> Result<()> {
    let (header, content_len) = signed_layout(model)?;
    copy_content(model, dest, &header.to_bytes(), content_len, |_| Ok(()))
}

/// The signed file's header and length, from a fully validated file.
fn signed_layout(model: &Path) -> Result<(skvault_format::manifest::Header, u64)> {
    let file = SkvFile::open(model).map_err(SignError::NotSkv)?;
    let header = match file.trailer() {
        Some(t) => t.signed_header(file.header()),
        None => file.header().clone(),
    };
    Ok((header, file.content_len()))
}

fn copy_content(
    model: &Path,
    dest: &Path,
    head: &[u8; 64],
    content_len: u64,
    tail: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let io = |source| SignError::Io {
        path: model.to_path_buf(),
        source,
    };
    let mut src = std::fs::File::open(model).map_err(io)?;
    src.seek(SeekFrom::Start(HEADER_LEN)).map_err(io)?;
    let body_len = content_len.saturating_sub(HEADER_LEN);
    skvault_format::atomic::write_atomic(dest, |w| {
        w.write_all(head)?;
        let copied = std::io::copy(&mut (&mut src).take(body_len), w)?;
        if copied != body_len {
            // The file shrank since it was validated.
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("{} changed while being copied", model.display()),
            ));
        }
        tail(w)
    })
    .map_err(|f| SignError::Io {
        path: f.path,
        source: f.source,
    })
}
