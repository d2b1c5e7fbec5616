//! `skvault._native.export_onnx / export_json / import_json`: the `skvault-export` crate seen
//! from Python. Errors map onto `skvault.exceptions` (`ExportError` for refusals and bad
//! documents, `UntrustedTypesError`, `OSError` subclasses for I/O; see `docs/ERRORS.md`).

use std::path::PathBuf;

use pyo3::prelude::*;
use skvault_export::ExportError;
use skvault_format::{Codec, TrustSet, WriteOptions};
use skvault_infer::InferError;

use crate::errors::{from_format, from_trust, new_err, untrusted};

fn export_error(py: Python<'_>, err: ExportError) -> PyErr {
    match err {
        ExportError::Format(e) | ExportError::Infer(InferError::Format(e)) => from_format(py, e),
        ExportError::Io { path, source } => {
            from_format(py, skvault_format::FormatError::Io { path, source })
        }
        ExportError::Untrusted { names } => untrusted(py, names),
        ExportError::Infer(e @ InferError::NotFitted { .. }) => {
            new_err(py, "NotFittedError", e.to_string())
        }
        // Refusals (an estimator the exporter does not write), hostile sizes, bad documents.
        e => new_err(py, "ExportError", e.to_string()),
    }
}

/// Writes the ONNX model of the `.skv` file `src` to `out`; returns the bytes written.
#[pyfunction]
#[pyo3(signature = (src, out, *, float32_trees=false))]
pub fn export_onnx(
    py: Python<'_>,
    src: PathBuf,
    out: PathBuf,
    float32_trees: bool,
) -> PyResult<u64> {
    let options = skvault_export::OnnxOptions { float32_trees };
    py.detach(|| skvault_export::export_onnx_with(&src, &out, options))
        .map_err(|e| export_error(py, e))
}

/// Writes the portable JSON document of the `.skv` file `src` to `out`.
#[pyfunction]
pub fn export_json(py: Python<'_>, src: PathBuf, out: PathBuf) -> PyResult<()> {
    py.detach(|| skvault_export::export_json(&src, &out, &mut |_, _| {}))
        .map_err(|e| export_error(py, e))
}

/// Reads a JSON document written by `export_json` and writes the `.skv` file `out`.
#[pyfunction]
#[pyo3(signature = (src, out, trusted=Vec::new(), compression=None))]
pub fn import_json(
    py: Python<'_>,
    src: PathBuf,
    out: PathBuf,
    trusted: Vec<String>,
    compression: Option<String>,
) -> PyResult<()> {
    let trust = TrustSet::new(trusted).map_err(|e| from_trust(py, e))?;
    let codec = match compression.as_deref() {
        None | Some("none") => Codec::None,
        Some(name) => Codec::from_name(name).ok_or_else(|| {
            new_err(
                py,
                "InvalidOptionError",
                format!("unknown compression {name:?} (none, zstd or lz4)"),
            )
        })?,
    };
    let options = WriteOptions { codec, level: None };
    py.detach(|| skvault_export::import_json(&src, &out, &trust, options))
        .map_err(|e| export_error(py, e))
}
