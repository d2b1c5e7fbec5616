//! Maps Rust errors onto the Python exceptions of `skvault.exceptions`; `docs/ERRORS.md`
//! tables every variant's exception.

use pyo3::exceptions::PyOSError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyTuple, PyType};
use pyo3::IntoPyObjectExt;
use skvault_format::atomic::RefusedDestination;
use skvault_format::trust::TrustError;
use skvault_format::FormatError;

/// Looks up an exception class of `skvault.exceptions` (cached).
pub(crate) fn exception_class<'py>(
    py: Python<'py>,
    name: &'static str,
) -> PyResult<Bound<'py, PyType>> {
    static MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();
    let module =
        MODULE.get_or_try_init(py, || py.import("skvault.exceptions").map(Bound::unbind))?;
    Ok(module.bind(py).getattr(name)?.cast_into::<PyType>()?)
}

/// Builds `skvault.exceptions.<name>(*args)` as a `PyErr`.
pub fn new_err<'py, A: IntoPyObject<'py>>(py: Python<'py>, name: &'static str, args: A) -> PyErr {
    let built = exception_class(py, name).and_then(|class| {
        let args = args.into_bound_py_any(py)?;
        match args.cast::<PyTuple>() {
            Ok(t) => class.call1(t.clone()),
            Err(_) => class.call1((args,)),
        }
    });
    match built {
        Ok(instance) => PyErr::from_value(instance),
        Err(e) => e,
    }
}

pub fn unsupported(py: Python<'_>, message: String) -> PyErr {
    new_err(py, "UnsupportedObjectError", message)
}

pub fn format_error(py: Python<'_>, message: String) -> PyErr {
    new_err(py, "FormatError", message)
}

pub fn untrusted(py: Python<'_>, names: Vec<String>) -> PyErr {
    new_err(py, "UntrustedTypesError", (names,))
}

/// Converts a format error: I/O problems become the matching `OSError` subclass
/// (`FileNotFoundError`, `PermissionError`, ...; a destination that is not a regular file
/// `DestinationError`), a digest mismatch an `IntegrityError`, a bad compression level an
/// `InvalidOptionError`, what the format cannot hold an `UnsupportedObjectError`, failures
/// that are not the data's a `SkvaultError`, and every problem with a file a `FormatError`.
pub fn from_format(py: Python<'_>, err: FormatError) -> PyErr {
    match err {
        FormatError::Io { path, source } => {
            let filename = path.display().to_string();
            let message = source.to_string();
            if let Some(refused) = RefusedDestination::of(&source) {
                return new_err(
                    py,
                    "DestinationError",
                    (
                        format!("{filename}: {message}"),
                        filename,
                        refused.kind.name(),
                    ),
                );
            }
            // OSError(errno, strerror, filename) picks the matching subclass, e.g. FileNotFoundError.
            let built = match source.raw_os_error() {
                Some(errno) => {
                    let strerror = message
                        .split(" (os error")
                        .next()
                        .unwrap_or(&message)
                        .to_string();
                    py.get_type::<PyOSError>()
                        .call1((errno, strerror, filename.clone()))
                }
                None => py
                    .get_type::<PyOSError>()
                    .call1((format!("{filename}: {message}"),)),
            };
            match built {
                Ok(e) => PyErr::from_value(e),
                Err(e) => e,
            }
        }
        FormatError::BadMagic { ref found } => {
            let hint = skvault_pickle::convertible_kind(found).map(|kind| {
                format!(
                    "; this looks like {kind}: check it without running it with \
                     skvault.scan(path), then make a .skv file with skvault.convert(path, new_path)"
                )
            });
            format_error(py, format!("{err}{}", hint.unwrap_or_default()))
        }
        FormatError::DigestMismatch { .. } => new_err(py, "IntegrityError", err.to_string()),
        FormatError::CompressionLevel { .. } => new_err(py, "InvalidOptionError", err.to_string()),
        FormatError::ArrayData { .. }
        | FormatError::ArraysTooLarge
        | FormatError::TooDeep { .. } => unsupported(py, err.to_string()),
        FormatError::Compress { .. } | FormatError::Internal { .. } => {
            new_err(py, "SkvaultError", err.to_string())
        }
        other => format_error(py, other.to_string()),
    }
}

pub fn from_trust(py: Python<'_>, err: TrustError) -> PyErr {
    new_err(py, "SkvaultError", err.to_string())
}

/// Extension trait: `.py_err(py)?` on format results.
pub trait IntoPyResult<T> {
    fn py_err(self, py: Python<'_>) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, FormatError> {
    fn py_err(self, py: Python<'_>) -> PyResult<T> {
        self.map_err(|e| from_format(py, e))
    }
}
