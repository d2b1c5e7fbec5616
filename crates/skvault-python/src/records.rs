//! What the registry and the pickle scanner report, as frozen Python classes: registry
//! documents (`VersionDoc`, `VersionInfo`, `GcReport`), the options of a registration
//! (`RegisterOptions`), scan reports (`ScanReport`, `GlobalFinding`, `FileScan`) and
//! conversions (`Conversion`, `Migration`).
//!
//! Each wraps the Rust type of the same name, has typed getters, `__eq__` (equal values),
//! `__repr__` and `to_dict()`: plain dicts and lists, the same as `json.loads` of the JSON
//! the Rust type serializes to (what `skvault ... --json` prints for it).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::{json, Map, Value};
use skvault_registry as registry;

use crate::values;

/// `Class(name=repr(value), ...)`.
fn repr_of(class: &str, fields: &[(&str, Bound<'_, PyAny>)]) -> PyResult<String> {
    let mut parts = Vec::with_capacity(fields.len());
    for (name, value) in fields {
        parts.push(format!("{name}={}", value.repr()?));
    }
    Ok(format!("{class}({})", parts.join(", ")))
}

fn any<'py, T: IntoPyObject<'py>>(py: Python<'py>, value: T) -> PyResult<Bound<'py, PyAny>> {
    pyo3::IntoPyObjectExt::into_bound_py_any(value, py)
}

fn dict<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyDict>> {
    Ok(values::to_py(py, value)?.cast_into::<PyDict>()?)
}

/// A registry type as dicts and lists, through the `serde_json::Value` it serializes to: the
/// same as `json.loads` of its JSON text.
fn serialized_dict<'py, T: serde::Serialize>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyDict>> {
    let v = serde_json::to_value(value).map_err(|e| PyValueError::new_err(e.to_string()))?;
    dict(py, &v)
}

// -- registry -----------------------------------------------------------------------------

/// How a registered file is stored: its digest and size, and the blobs it is made of.
#[pyclass(frozen, eq, module = "skvault._native")]
#[derive(Clone, PartialEq)]
pub struct FileRef(pub registry::FileRef);

#[pymethods]
impl FileRef {
    /// BLAKE3 of the whole `.skv` file.
    #[getter]
    fn blake3(&self) -> &str {
        &self.0.blake3
    }
    #[getter]
    fn size(&self) -> u64 {
        self.0.size
    }
    /// Digest of the head blob (header and manifest).
    #[getter]
    fn head(&self) -> &str {
        &self.0.head
    }
    /// Digests of the arrays' stored bytes, in array-table order.
    #[getter]
    fn blobs(&self) -> Vec<String> {
        self.0.blobs.clone()
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        serialized_dict(py, &self.0)
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        repr_of(
            "FileRef",
            &[
                ("blake3", any(py, &self.0.blake3)?),
                ("size", any(py, self.0.size)?),
                ("head", any(py, &self.0.head)?),
                ("blobs", any(py, self.0.blobs.len())?),
            ],
        )
    }
}

/// Where a version came from.
#[pyclass(frozen, eq, module = "skvault._native")]
#[derive(Clone, PartialEq)]
pub struct Lineage(pub registry::Lineage);

#[pymethods]
impl Lineage {
    /// The path the file was registered from, as given.
    #[getter]
    fn source_path(&self) -> Option<&str> {
        self.0.source_path.as_deref()
    }
    #[getter]
    fn source_blake3(&self) -> &str {
        &self.0.source_blake3
    }
    /// The `.skv` writer recorded in the file.
    #[getter]
    fn writer(&self) -> &str {
        &self.0.writer
    }
    /// The environment recorded in the file's metadata (usually a dict, `None` if absent).
    #[getter]
    fn environment<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        values::to_py(py, &self.0.environment)
    }
    /// The saved object's class.
    #[getter]
    fn object(&self) -> Option<&str> {
        self.0.object.as_deref()
    }
    /// User-supplied references: run ids, data sets, commits, ...
    #[getter]
    fn refs<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        values::map_to_py(py, &self.0.refs)
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        serialized_dict(py, &self.0)
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        repr_of(
            "Lineage",
            &[
                ("source_path", any(py, &self.0.source_path)?),
                ("object", any(py, &self.0.object)?),
                ("refs", self.refs(py)?.into_any()),
            ],
        )
    }
}

/// An immutable version document (`models/<name>/versions/<n>.json`).
#[pyclass(frozen, eq, module = "skvault._native")]
#[derive(Clone, PartialEq)]
pub struct VersionDoc(pub registry::VersionDoc);

#[pymethods]
impl VersionDoc {
    /// The document format, `skvault-registry-version/1`.
    #[getter]
    fn format(&self) -> &str {
        &self.0.format
    }
    #[getter]
    fn name(&self) -> &str {
        &self.0.name
    }
    #[getter]
    fn version(&self) -> u64 {
        self.0.version
    }
    #[getter]
    fn created_at(&self) -> &str {
        &self.0.created_at
    }
    #[getter]
    fn file(&self) -> FileRef {
        FileRef(self.0.file.clone())
    }
    #[getter]
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        values::map_to_py(py, &self.0.metadata)
    }
    #[getter]
    fn metrics(&self) -> BTreeMap<String, f64> {
        self.0.metrics.clone()
    }
    /// The tags given at registration (`VersionInfo.tags` has the current ones).
    #[getter]
    fn tags(&self) -> BTreeMap<String, String> {
        self.0.tags.clone()
    }
    #[getter]
    fn lineage(&self) -> Lineage {
        Lineage(self.0.lineage.clone())
    }
    #[getter]
    fn writer_id(&self) -> &str {
        &self.0.writer_id
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        serialized_dict(py, &self.0)
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        repr_of(
            "VersionDoc",
            &[
                ("name", any(py, &self.0.name)?),
                ("version", any(py, self.0.version)?),
                ("created_at", any(py, &self.0.created_at)?),
                ("size", any(py, self.0.file.size)?),
            ],
        )
    }
}

/// A version as listings and searches show it: its document with the current tags, whether
/// it is archived, and the aliases pointing at it.
#[pyclass(frozen, eq, module = "skvault._native")]
#[derive(Clone, PartialEq)]
pub struct VersionInfo(pub registry::VersionInfo);

#[pymethods]
impl VersionInfo {
    /// The document, with the current tags.
    #[getter]
    fn doc(&self) -> VersionDoc {
        VersionDoc(self.0.doc.clone())
    }
    #[getter]
    fn name(&self) -> &str {
        &self.0.doc.name
    }
    #[getter]
    fn version(&self) -> u64 {
        self.0.doc.version
    }
    #[getter]
    fn archived(&self) -> bool {
        self.0.archived
    }
    #[getter]
    fn aliases(&self) -> Vec<String> {
        self.0.aliases.clone()
    }
    /// The document's fields with `archived` and `aliases` (as `skvault registry info`).
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        serialized_dict(py, &self.0)
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        repr_of(
            "VersionInfo",
            &[
                ("name", any(py, &self.0.doc.name)?),
                ("version", any(py, self.0.doc.version)?),
                ("archived", any(py, self.0.archived)?),
                ("aliases", any(py, &self.0.aliases)?),
            ],
        )
    }
}

/// What `gc` (or the collection after deleting a version) did.
#[pyclass(frozen, eq, module = "skvault._native")]
#[derive(Clone, PartialEq)]
pub struct GcReport(pub registry::GcReport);

#[pymethods]
impl GcReport {
    /// Blobs some version refers to.
    #[getter]
    fn referenced(&self) -> u64 {
        self.0.referenced
    }
    #[getter]
    fn deleted(&self) -> u64 {
        self.0.deleted
    }
    #[getter]
    fn deleted_bytes(&self) -> u64 {
        self.0.deleted_bytes
    }
    /// Unreferenced blobs kept because they are younger than the grace period.
    #[getter]
    fn kept_recent(&self) -> u64 {
        self.0.kept_recent
    }
    /// Entries under `blobs/` that the registry did not write (never deleted).
    #[getter]
    fn foreign(&self) -> u64 {
        self.0.foreign
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        serialized_dict(py, &self.0)
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let r = &self.0;
        repr_of(
            "GcReport",
            &[
                ("referenced", any(py, r.referenced)?),
                ("deleted", any(py, r.deleted)?),
                ("deleted_bytes", any(py, r.deleted_bytes)?),
                ("kept_recent", any(py, r.kept_recent)?),
                ("foreign", any(py, r.foreign)?),
            ],
        )
    }
}

/// What to record with a new version besides the file: checked and converted when built,
/// so a bad value is refused before anything is written.
#[pyclass(frozen, eq, module = "skvault._native")]
#[derive(Clone, PartialEq)]
pub struct RegisterOptions {
    metadata: Map<String, Value>,
    metrics: BTreeMap<String, f64>,
    tags: BTreeMap<String, String>,
    lineage: Map<String, Value>,
}

impl RegisterOptions {
    pub fn to_registry(&self) -> registry::RegisterOptions {
        registry::RegisterOptions {
            metadata: self.metadata.clone(),
            metrics: self.metrics.clone(),
            tags: self.tags.clone(),
            lineage: self.lineage.clone(),
        }
    }
}

#[pymethods]
impl RegisterOptions {
    /// Values are converted as `json.dumps` would write them (`TypeError` for other types,
    /// `ValueError` for NaN or infinity); `metrics` must map names to numbers and `tags`
    /// strings to strings (`InvalidNameError` otherwise).
    #[new]
    #[pyo3(signature = (*, metadata=None, metrics=None, tags=None, lineage=None))]
    fn new(
        py: Python<'_>,
        metadata: Option<Bound<'_, PyDict>>,
        metrics: Option<Bound<'_, PyDict>>,
        tags: Option<Bound<'_, PyDict>>,
        lineage: Option<Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        // The four were one JSON object {metadata, metrics, tags, lineage}: the same order
        // of checks, and the same nesting limit one level down.
        let invalid =
            || crate::errors::new_err(py, "InvalidNameError", "options must be a JSON object");
        let convert = |d: Option<Bound<'_, PyDict>>| match d {
            Some(d) => values::object(&d, 2, &invalid),
            None => Ok(Map::new()),
        };
        let metadata = convert(metadata)?;
        let metrics = convert(metrics)?;
        let tags = convert(tags)?;
        let lineage = convert(lineage)?;
        let metrics = serde_json::from_value(Value::Object(metrics)).map_err(|e| {
            crate::errors::new_err(
                py,
                "InvalidNameError",
                format!("metrics must map names to numbers: {e}"),
            )
        })?;
        let tags = serde_json::from_value(Value::Object(tags)).map_err(|e| {
            crate::errors::new_err(
                py,
                "InvalidNameError",
                format!("tags must map strings to strings: {e}"),
            )
        })?;
        Ok(RegisterOptions {
            metadata,
            metrics,
            tags,
            lineage,
        })
    }
    #[getter]
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        values::map_to_py(py, &self.metadata)
    }
    #[getter]
    fn metrics(&self) -> BTreeMap<String, f64> {
        self.metrics.clone()
    }
    #[getter]
    fn tags(&self) -> BTreeMap<String, String> {
        self.tags.clone()
    }
    #[getter]
    fn lineage<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        values::map_to_py(py, &self.lineage)
    }
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        dict(
            py,
            &json!({
                "metadata": self.metadata,
                "metrics": self.metrics,
                "tags": self.tags,
                "lineage": self.lineage,
            }),
        )
    }
    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        repr_of(
            "RegisterOptions",
            &[
                ("metadata", self.metadata(py)?.into_any()),
                ("metrics", any(py, &self.metrics)?),
                ("tags", any(py, &self.tags)?),
                ("lineage", self.lineage(py)?.into_any()),
            ],
        )
    }
}

// -- scans and conversions ----------------------------------------------------------------

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

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<FileRef>()?;
    m.add_class::<Lineage>()?;
    m.add_class::<VersionDoc>()?;
    m.add_class::<VersionInfo>()?;
    m.add_class::<GcReport>()?;
    m.add_class::<RegisterOptions>()?;
    m.add_class::<GlobalFinding>()?;
    m.add_class::<ScanReport>()?;
    m.add_class::<FileScan>()?;
    m.add_class::<Migration>()?;
    m.add_class::<Conversion>()?;
    Ok(())
}
