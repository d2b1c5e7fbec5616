//! Exports that report their progress and can be stopped: the command line's bars and Ctrl-C.
//! The callback gets each [`Step`] as the work goes; an error it returns stops the export
//! (between two arrays, or two chunks written), nothing is left at the destination, and the
//! error comes back as an [`ExportError::Io`] on the output path.

use std::io::Write;
use std::path::Path;

use skvault_format::write::PROGRESS_CHUNK;
use skvault_format::SkvFile;

use crate::error::{ExportError, Result};

/// Where an export stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// Opening the file and building the model (no sizes known yet).
    Reading,
    /// `done` of `total` raw bytes of arrays turned into JSON values.
    Arrays { done: u64, total: u64 },
    /// `done` of `total` bytes of the output written.
    Writing { done: u64, total: u64 },
}

/// The callback: `Err` stops the export.
pub type Checked<'a> = &'a mut dyn FnMut(Step) -> std::io::Result<()>;

fn stopped(out: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: out.to_path_buf(),
        source,
    }
}

/// Writes `bytes` to `out` atomically, in chunks, reporting each.
fn write_reported(out: &Path, bytes: &[u8], progress: Checked<'_>) -> Result<u64> {
    let total = bytes.len() as u64;
    crate::write_atomic(out, |w: &mut dyn Write| {
        let mut done = 0u64;
        progress(Step::Writing { done, total })?;
        for chunk in bytes.chunks(PROGRESS_CHUNK) {
            w.write_all(chunk)?;
            done += chunk.len() as u64;
            progress(Step::Writing { done, total })?;
        }
        Ok(())
    })?;
    Ok(total)
}

/// [`crate::export_onnx`], reporting its steps. Returns the bytes written.
pub fn export_onnx_checked(src: &Path, out: &Path, progress: Checked<'_>) -> Result<u64> {
    export_onnx_checked_with(src, out, crate::OnnxOptions::default(), progress)
}

/// [`export_onnx_checked`] with options.
pub fn export_onnx_checked_with(
    src: &Path,
    out: &Path,
    options: crate::OnnxOptions,
    progress: Checked<'_>,
) -> Result<u64> {
    crate::refuse_input_as_output(out, src)?;
    progress(Step::Reading).map_err(stopped(out))?;
    let file = SkvFile::open(src)?;
    let model = skvault_infer::Model::from_file(&file)?;
    let bytes = crate::onnx::to_onnx_bytes_with(&model, options)?;
    write_reported(out, &bytes, progress)
}

/// [`crate::export_json`], reporting its steps. Returns the bytes written. The document's
/// text is made in memory first, so that the write has a known length.
pub fn export_json_checked(src: &Path, out: &Path, progress: Checked<'_>) -> Result<u64> {
    crate::refuse_input_as_output(out, src)?;
    progress(Step::Reading).map_err(stopped(out))?;
    let file = SkvFile::open(src)?;
    let doc = crate::json::document_checked(&file, &mut |done, total| {
        progress(Step::Arrays { done, total }).map_err(stopped(out))
    })?;
    let mut text = serde_json::to_vec(&doc).map_err(|e| ExportError::Io {
        path: out.to_path_buf(),
        source: std::io::Error::other(e),
    })?;
    drop(doc);
    text.push(b'\n');
    write_reported(out, &text, progress)
}
