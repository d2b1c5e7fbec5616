//! Export of `.skv` models: to ONNX (from the native model that skvault-infer builds, no
//! Python involved) and to a portable JSON document of the whole object tree, which
//! [`import_json`] turns back into a `.skv` file. See docs/EXPORT.md.
//!
//! Every output is written atomically (temporary file, fsync, rename): an error leaves
//! nothing at the destination.
#![forbid(unsafe_code)]

mod error;
pub mod fuzzing;
pub mod json;
pub mod onnx;
pub mod proto;
mod steps;

use std::path::Path;

use skvault_format::SkvFile;

pub use error::{ExportError, Result};
pub use json::{export_json, import_json};
pub use onnx::OnnxOptions;
pub use steps::{
    export_json_checked, export_onnx_checked, export_onnx_checked_with, Checked, Step,
};

/// [`skvault_format::atomic::write_atomic`], its failure as an [`ExportError::Io`].
pub(crate) fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
) -> Result<()> {
    skvault_format::atomic::write_atomic(path, fill).map_err(|f| ExportError::Io {
        path: f.path,
        source: f.source,
    })
}

/// `out` must not be the file `src` (see [`skvault_format::atomic::refuse_input_as_output`]).
pub(crate) fn refuse_input_as_output(out: &Path, src: &Path) -> Result<()> {
    skvault_format::atomic::refuse_input_as_output(out, &[src]).map_err(|source| ExportError::Io {
        path: out.to_path_buf(),
        source,
    })
}

/// Writes the ONNX model of the `.skv` file `src` to `out`. An estimator the exporter does
/// not support is an [`ExportError::Unsupported`] naming it, and nothing is written.
pub fn export_onnx(src: &Path, out: &Path) -> Result<u64> {
    export_onnx_with(src, out, onnx::OnnxOptions::default())
}

/// [`export_onnx`] with options (float32 trees).
pub fn export_onnx_with(src: &Path, out: &Path, options: onnx::OnnxOptions) -> Result<u64> {
    refuse_input_as_output(out, src)?;
    let file = SkvFile::open(src)?;
    let model = skvault_infer::Model::from_file(&file)?;
    let bytes = onnx::to_onnx_bytes_with(&model, options)?;
    write_atomic(out, |w| w.write_all(&bytes))?;
    Ok(bytes.len() as u64)
}
