//! What the registry and the pickle scanner report, as frozen Python classes: registry
//! documents (`VersionDoc`, `VersionInfo`, `GcReport`), the options of a registration
//! (`RegisterOptions`), scan reports (`ScanReport`, `GlobalFinding`, `FileScan`) and
//! conversions (`Conversion`, `Migration`).
//!
//! Each wraps the Rust type of the same name, has typed getters, `__eq__` (equal values),
//! `__repr__` and `to_dict()`: plain dicts and lists, the same as `json.loads` of the JSON
//! the Rust type serializes to (what `skvault ... --json` prints for it).

mod registry;
mod scan;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::Value;

pub use registry::{FileRef, GcReport, Lineage, RegisterOptions, VersionDoc, VersionInfo};
pub use scan::{Conversion, FileScan, GlobalFinding, Migration, ScanReport};

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
