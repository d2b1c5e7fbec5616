//! `scan` and `convert` of pickle and joblib files (the `skvault-pickle` crate), for Python.
//! Reports cross as the classes of `records`; `python/skvault/_legacy.py` makes the public
//! dataclasses of them.

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use skvault_pickle::{ConvertOptions, FileError, ScanOptions};

use crate::errors::{from_format, new_err};
use crate::records::{Conversion, FileScan, ScanReport};

fn file_error(py: Python<'_>, err: FileError) -> PyErr {
    let message = err.to_string();
    match err {
        FileError::Io { path, source } => {
            from_format(py, skvault_format::FormatError::Io { path, source })
        }
        FileError::Unsafe { report, .. } => new_err(
            py,
            "UnsafeFileError",
            (message, ScanReport(Arc::new(*report))),
        ),
        FileError::Untrusted { names, .. } => new_err(py, "UntrustedTypesError", (names,)),
        FileError::Unmigratable { .. } => new_err(py, "MigrationError", message),
        FileError::Convert {
            source: skvault_pickle::PickleError::Migrate { .. },
            ..
        } => new_err(py, "MigrationError", message),
        FileError::Convert { .. } => new_err(py, "UnsupportedObjectError", message),
        FileError::AlreadySkv { .. } | FileError::NotAPickle { .. } => {
            new_err(py, "FormatError", message)
        }
        FileError::Write(e) => from_format(py, e),
        _ => new_err(py, "SkvaultError", message),
    }
}

/// Scans files and folders; returns a report per file met. Raises `OSError` for a path that
/// cannot be read.
#[pyfunction]
#[pyo3(signature = (paths, *, trusted=Vec::new()))]
pub fn scan_paths(
    py: Python<'_>,
    paths: Vec<PathBuf>,
    trusted: Vec<String>,
) -> PyResult<Vec<FileScan>> {
    let options = ScanOptions {
        trust: crate::trust_set(py, trusted)?,
        ..ScanOptions::default()
    };
    let mut scans: Vec<FileScan> = Vec::new();
    let mut failure: Option<FileError> = None;
    py.detach(|| {
        skvault_pickle::scan_paths(&paths, &options, &mut |scan| match scan.result {
            Ok(r) => scans.push(FileScan {
                path: scan.path,
                size: scan.size,
                report: ScanReport(Arc::new(r)),
            }),
            Err(e) => {
                failure.get_or_insert(e);
            }
        })
    });
    match failure {
        Some(e) => Err(file_error(py, e)),
        None => Ok(scans),
    }
}

/// Converts a pickle or joblib file to `.skv`; returns what was done.
#[pyfunction]
#[pyo3(signature = (src, dst, *, trusted=Vec::new(), compress=None, level=None))]
pub fn convert(
    py: Python<'_>,
    src: PathBuf,
    dst: PathBuf,
    trusted: Vec<String>,
    compress: Option<&str>,
    level: Option<i32>,
) -> PyResult<Conversion> {
    let options = ConvertOptions {
        scan: ScanOptions {
            trust: crate::trust_set(py, trusted)?,
            ..ScanOptions::default()
        },
        write: crate::options(py, compress, level)?,
    };
    let done = py
        .detach(|| skvault_pickle::convert_file(&src, &dst, &options, &mut |_| {}))
        .map_err(|e| file_error(py, e))?;
    Ok(Conversion::from(done))
}
