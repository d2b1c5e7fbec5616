//! `scan` and `convert` of pickle and joblib files (the `skvault-pickle` crate), for Python.
//! Reports cross as JSON text; `python/skvault/_legacy.py` turns them into objects.

use std::path::PathBuf;

use pyo3::prelude::*;
use serde_json::{json, Value};
use skvault_pickle::{ConvertOptions, FileError, ScanOptions};

use crate::errors::{from_format, new_err};

fn file_error(py: Python<'_>, err: FileError) -> PyErr {
    let message = err.to_string();
    match err {
        FileError::Io { path, source } => {
            from_format(py, skvault_format::FormatError::Io { path, source })
        }
        FileError::Unsafe { report, .. } => new_err(
            py,
            "UnsafeFileError",
            (message, report.to_json().to_string()),
        ),
        FileError::Untrusted { names, .. } => new_err(py, "UntrustedTypesError", (names,)),
        FileError::Unmigratable { .. } => new_err(py, "MigrationError", message),
        FileError::Convert {
            source: skvault_pickle::PickleError::Migrate { .. },
            ..
        } => new_err(py, "MigrationError", message),
        FileError::Convert { .. } => new_err(py, "UnsupportedObjectError", message),
        FileError::AlreadySkv { .. } => new_err(py, "FormatError", message),
        FileError::Write(e) => from_format(py, e),
        _ => new_err(py, "SkvaultError", message),
    }
}

/// Scans files and folders; returns a JSON list of reports, each with its `path` and `size`.
/// Raises `OSError` for a path that cannot be read.
#[pyfunction]
#[pyo3(signature = (paths, *, trusted=Vec::new()))]
pub fn scan_paths(py: Python<'_>, paths: Vec<PathBuf>, trusted: Vec<String>) -> PyResult<String> {
    let options = ScanOptions {
        trust: crate::trust_set(py, trusted)?,
        ..ScanOptions::default()
    };
    let mut reports: Vec<Value> = Vec::new();
    let mut failure: Option<FileError> = None;
    py.detach(|| {
        skvault_pickle::scan_paths(&paths, &options, &mut |scan| match scan.result {
            Ok(r) => {
                let mut v = r.to_json();
                if let Value::Object(m) = &mut v {
                    m.insert("path".into(), json!(scan.path));
                    m.insert("size".into(), json!(scan.size));
                }
                reports.push(v);
            }
            Err(e) => {
                failure.get_or_insert(e);
            }
        })
    });
    match failure {
        Some(e) => Err(file_error(py, e)),
        None => Ok(Value::Array(reports).to_string()),
    }
}

/// Converts a pickle or joblib file to `.skv`; returns what was done as JSON text.
#[pyfunction]
#[pyo3(signature = (src, dst, *, trusted=Vec::new(), compress=None, level=None))]
pub fn convert(
    py: Python<'_>,
    src: PathBuf,
    dst: PathBuf,
    trusted: Vec<String>,
    compress: Option<&str>,
    level: Option<i32>,
) -> PyResult<String> {
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
    Ok(json!({
        "report": done.report.to_json(),
        "sklearn_versions": done.sklearn_versions,
        "migrations": done.migrations.iter().map(|m| json!({
            "id": m.id, "what": m.what, "count": m.count, "first_path": m.first_path,
        })).collect::<Vec<_>>(),
        "arrays": done.arrays,
        "bytes_written": done.bytes_written,
    })
    .to_string())
}
