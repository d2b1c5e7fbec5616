//! Registry documents (`skvault-registry`) and the options of a registration.

use std::collections::BTreeMap;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::{json, Map, Value};
use skvault_registry as registry;

use super::{any, dict, repr_of, serialized_dict};
use crate::values;

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
            ..Default::default()
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
