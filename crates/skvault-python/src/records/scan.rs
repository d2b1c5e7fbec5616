//! Scan reports and conversions of pickle and joblib files (`skvault-pickle`).

use std::path::PathBuf;
use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::{json, Value};

use super::{any, dict, repr_of};

/// One global a pickle names, how the scanner rates it, how often it is named and where first.
#[pyclass(frozen, eq, module = "skvault._native")]
#[derive(Clone, PartialEq)]
pub struct GlobalFinding(pub skvault_pickle::GlobalFinding);

#[pymethods]
impl GlobalFinding {
    #[getter]
    fn module(&self) -> &str {
        &self.0.module
    }
    #[getter]
    fn name(&self) -> &str {
        &self.0.name
    }
    /// `"safe"`, `"unknown"` or `"dangerous"`.
    #[getter]
    fn kind(&self) -> &'static str {
        self.0.kind.as_str()
    }
    /// Opcodes naming it.
    #[getter]
    fn count(&self) -> usize {
        self.0.count
    }
    /// Stream offset of the first of them.
    #[getter]
    fn first_offset(&self) -> u64 {
        self.0.first_offset
    }
    #[getter]
    fn qualified(&self) -> String {
        self.0.qualified()
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        dict(py, &self.0.to_json())
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        repr_of(
            "GlobalFinding",
            &[
                ("module", any(py, &self.0.module)?),
                ("name", any(py, &self.0.name)?),
                ("kind", any(py, self.0.kind.as_str())?),
                ("count", any(py, self.0.count)?),
                ("first_offset", any(py, self.0.first_offset)?),
            ],
        )
    }
}

/// What the scanner found in one file. Two reports are equal when they report the same
/// (their `to_dict()` are equal).
#[pyclass(frozen, eq, module = "skvault._native")]
#[derive(Clone)]
pub struct ScanReport(pub Arc<skvault_pickle::ScanReport>);

impl PartialEq for ScanReport {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_json() == other.0.to_json()
    }
}

#[pymethods]
impl ScanReport {
    /// `"safe"`, `"unknown"` or `"unsafe"`.
    #[getter]
    fn verdict(&self) -> &'static str {
        self.0.verdict.as_str()
    }
    /// The file's kind by its magic bytes (`"pickle"`, `"joblib"`, `"skv"`, ...).
    #[getter]
    fn format(&self) -> &'static str {
        self.0.format.name()
    }
    /// The highest pickle protocol declared.
    #[getter]
    fn protocol(&self) -> Option<u8> {
        self.0.protocol
    }
    /// Pickles read to their STOP.
    #[getter]
    fn pickles(&self) -> usize {
        self.0.pickles
    }
    /// joblib arrays whose bytes were skipped.
    #[getter]
    fn joblib_arrays(&self) -> usize {
        self.0.joblib_arrays
    }
    /// Every global, in order of first appearance.
    #[getter]
    fn globals(&self) -> Vec<GlobalFinding> {
        self.0.globals.iter().cloned().map(GlobalFinding).collect()
    }
    /// Suspicious constructs that do not depend on the globals.
    #[getter]
    fn issues(&self) -> Vec<String> {
        self.0.issues.iter().map(ToString::to_string).collect()
    }
    /// Why the file could not be read to its end.
    #[getter]
    fn error(&self) -> Option<String> {
        self.0.error.as_ref().map(ToString::to_string)
    }
    fn is_safe(&self) -> bool {
        self.0.is_safe()
    }
    /// As `skvault scan --json` prints it, without the path and size.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        dict(py, &self.0.to_json())
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let r = &self.0;
        repr_of(
            "ScanReport",
            &[
                ("verdict", any(py, r.verdict.as_str())?),
                ("format", any(py, r.format.name())?),
                ("protocol", any(py, r.protocol)?),
                ("globals", any(py, r.globals.len())?),
                ("issues", any(py, r.issues.len())?),
                ("error", any(py, self.error())?),
            ],
        )
    }
}

/// One file met by `scan_paths`: its path, size and report.
#[pyclass(frozen, eq, module = "skvault._native")]
#[derive(Clone, PartialEq)]
pub struct FileScan {
    pub path: PathBuf,
    pub size: u64,
    pub report: ScanReport,
}

#[pymethods]
impl FileScan {
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }
    #[getter]
    fn size(&self) -> u64 {
        self.size
    }
    #[getter]
    fn report(&self) -> ScanReport {
        self.report.clone()
    }
    /// The report's fields with `path` and `size`, as `skvault scan --json` lists files.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = self.report.to_dict(py)?;
        // As `os.fsdecode` gives it: text even when the path is not UTF-8.
        d.set_item("path", self.path.as_os_str())?;
        d.set_item("size", self.size)?;
        Ok(d)
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        repr_of(
            "FileScan",
            &[
                ("path", any(py, &self.path)?),
                ("size", any(py, self.size)?),
                ("report", any(py, self.report.clone())?),
            ],
        )
    }
}

/// One kind of change made to state saved by an older scikit-learn.
#[pyclass(frozen, eq, module = "skvault._native")]
#[derive(Clone, PartialEq)]
pub struct Migration(pub skvault_pickle::migrate::Migration);

impl Migration {
    fn to_json(&self) -> Value {
        let m = &self.0;
        json!({"id": m.id, "what": m.what, "count": m.count, "first_path": m.first_path})
    }
}

#[pymethods]
impl Migration {
    /// Stable identifier of the change.
    #[getter]
    fn id(&self) -> &'static str {
        self.0.id
    }
    #[getter]
    fn what(&self) -> &'static str {
        self.0.what
    }
    /// How many objects were changed this way.
    #[getter]
    fn count(&self) -> usize {
        self.0.count
    }
    /// Path of the first of them in the tree.
    #[getter]
    fn first_path(&self) -> &str {
        &self.0.first_path
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        dict(py, &self.to_json())
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let m = &self.0;
        repr_of(
            "Migration",
            &[
                ("id", any(py, m.id)?),
                ("count", any(py, m.count)?),
                ("first_path", any(py, &m.first_path)?),
            ],
        )
    }
}

/// What `convert` did.
#[pyclass(frozen, eq, module = "skvault._native")]
#[derive(Clone, PartialEq)]
pub struct Conversion {
    report: ScanReport,
    migrations: Vec<Migration>,
    sklearn_versions: Vec<String>,
    arrays: usize,
    bytes_written: u64,
}

impl From<skvault_pickle::Conversion> for Conversion {
    fn from(c: skvault_pickle::Conversion) -> Self {
        Conversion {
            report: ScanReport(Arc::new(c.report)),
            migrations: c.migrations.into_iter().map(Migration).collect(),
            sklearn_versions: c.sklearn_versions,
            arrays: c.arrays,
            bytes_written: c.bytes_written,
        }
    }
}

#[pymethods]
impl Conversion {
    /// The scan of the source file.
    #[getter]
    fn report(&self) -> ScanReport {
        self.report.clone()
    }
    #[getter]
    fn migrations(&self) -> Vec<Migration> {
        self.migrations.clone()
    }
    /// The scikit-learn versions recorded in the source file.
    #[getter]
    fn sklearn_versions(&self) -> Vec<String> {
        self.sklearn_versions.clone()
    }
    /// Arrays written.
    #[getter]
    fn arrays(&self) -> usize {
        self.arrays
    }
    #[getter]
    fn bytes_written(&self) -> u64 {
        self.bytes_written
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        dict(
            py,
            &json!({
                "report": self.report.0.to_json(),
                "sklearn_versions": self.sklearn_versions,
                "migrations": self.migrations.iter().map(Migration::to_json).collect::<Vec<_>>(),
                "arrays": self.arrays,
                "bytes_written": self.bytes_written,
            }),
        )
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        repr_of(
            "Conversion",
            &[
                ("report", any(py, self.report.clone())?),
                ("sklearn_versions", any(py, &self.sklearn_versions)?),
                ("migrations", any(py, self.migrations.len())?),
                ("arrays", any(py, self.arrays)?),
                ("bytes_written", any(py, self.bytes_written)?),
            ],
        )
    }
}
