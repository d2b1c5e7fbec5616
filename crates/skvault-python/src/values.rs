//! JSON values across the boundary without JSON text: Python objects to `serde_json::Value`
//! (metadata, lineage, ... going in) and back (documents and reports coming out).
//!
//! Both directions give what a round trip through text gave before: Python's
//! `json.dumps(allow_nan=False)` read back by serde_json, and serde_json's text read by
//! `json.loads`. The same values, keys in the same order, the same errors.

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use pyo3::IntoPyObjectExt;
use serde_json::{Map, Number, Value};

/// serde_json's parser refuses text nested this deep (containers, the outermost included).
pub const NESTING_LIMIT: usize = 128;

/// Converts a Python value as `json.dumps(value, allow_nan=False)` would write it: `None`,
/// `bool`, `str`, `int`, `float`, `list`, `tuple` and `dict` (and their subclasses), dict keys
/// that are `str`, `int`, `float`, `bool` or `None`. Other types raise `TypeError` and NaN or
/// infinity `ValueError`, as `json.dumps` does.
///
/// `depth` is the number of containers around `obj` in the document it goes into. What
/// serde_json used to refuse when it read the text (nesting beyond [`NESTING_LIMIT`], a lone
/// surrogate in a string, an integer beyond binary64) raises `invalid()`, the error that
/// text gave.
pub fn from_py(
    obj: &Bound<'_, PyAny>,
    depth: usize,
    invalid: &dyn Fn() -> PyErr,
) -> PyResult<Value> {
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(text(s, invalid)?));
    }
    if obj.is_instance_of::<PyInt>() {
        return int(obj, invalid);
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return float(f.value(), obj).map(Value::Number);
    }
    let nested = depth + 1;
    if let Ok(list) = obj.cast::<PyList>() {
        check_depth(nested, invalid)?;
        return list
            .iter()
            .map(|item| from_py(&item, nested, invalid))
            .collect::<PyResult<Vec<_>>>()
            .map(Value::Array);
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        check_depth(nested, invalid)?;
        return tuple
            .iter()
            .map(|item| from_py(&item, nested, invalid))
            .collect::<PyResult<Vec<_>>>()
            .map(Value::Array);
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        check_depth(nested, invalid)?;
        return object(dict, nested, invalid).map(Value::Object);
    }
    Err(PyTypeError::new_err(format!(
        "Object of type {} is not JSON serializable",
        type_name(obj)
    )))
}

/// A dict as a JSON object (see [`from_py`]); `depth` counts the dict itself.
pub fn object(
    dict: &Bound<'_, PyDict>,
    depth: usize,
    invalid: &dyn Fn() -> PyErr,
) -> PyResult<Map<String, Value>> {
    let mut map = Map::with_capacity(dict.len());
    for (k, v) in dict.iter() {
        let key = key(&k, invalid)?;
        // A later key equal to an earlier one replaces its value in the earlier place, as
        // serde_json did reading `{"1": .., "1": ..}` from `{1: .., "1": ..}`.
        map.insert(key, from_py(&v, depth, invalid)?);
    }
    Ok(map)
}

fn check_depth(depth: usize, invalid: &dyn Fn() -> PyErr) -> PyResult<()> {
    if depth >= NESTING_LIMIT {
        return Err(invalid());
    }
    Ok(())
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "?".to_string(), |n| n.to_string())
}

/// A `str` (lone surrogates cannot be UTF-8: serde_json refused their `\ud800` escapes).
fn text(s: &Bound<'_, PyString>, invalid: &dyn Fn() -> PyErr) -> PyResult<String> {
    s.to_str().map(str::to_owned).map_err(|_| invalid())
}

/// An `int`: exact within 64 bits; beyond, the float serde_json made of its digits.
fn int(obj: &Bound<'_, PyAny>, invalid: &dyn Fn() -> PyErr) -> PyResult<Value> {
    if let Ok(n) = obj.extract::<u64>() {
        return Ok(Value::from(n));
    }
    if let Ok(n) = obj.extract::<i64>() {
        return Ok(Value::from(n));
    }
    let digits = int_text(obj)?;
    match serde_json::from_str::<Value>(&digits) {
        Ok(v @ Value::Number(_)) => Ok(v),
        _ => Err(invalid()),
    }
}

/// `int.__repr__`: the digits `json.dumps` writes, whatever a subclass's `__str__` says.
fn int_text(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    obj.py()
        .get_type::<PyInt>()
        .call_method1(intern!(obj.py(), "__repr__"), (obj,))?
        .extract()
}

fn float(value: f64, obj: &Bound<'_, PyAny>) -> PyResult<Number> {
    Number::from_f64(value).ok_or_else(|| {
        let shown = obj
            .py()
            .get_type::<PyFloat>()
            .call_method1(intern!(obj.py(), "__repr__"), (obj,))
            .and_then(|r| r.extract::<String>())
            .unwrap_or_else(|_| value.to_string());
        PyValueError::new_err(format!(
            "Out of range float values are not JSON compliant: {shown}"
        ))
    })
}

/// A dict key as `json.dumps` writes it.
fn key(k: &Bound<'_, PyAny>, invalid: &dyn Fn() -> PyErr) -> PyResult<String> {
    if let Ok(s) = k.cast::<PyString>() {
        return text(s, invalid);
    }
    if let Ok(b) = k.cast::<PyBool>() {
        return Ok(if b.is_true() { "true" } else { "false" }.to_string());
    }
    if k.is_none() {
        return Ok("null".to_string());
    }
    if k.is_instance_of::<PyInt>() {
        return int_text(k);
    }
    if let Ok(f) = k.cast::<PyFloat>() {
        float(f.value(), k)?;
        return k
            .py()
            .get_type::<PyFloat>()
            .call_method1(intern!(k.py(), "__repr__"), (k,))?
            .extract();
    }
    Err(PyTypeError::new_err(format!(
        "keys must be str, int, float, bool or None, not {}",
        type_name(k)
    )))
}

/// A JSON value as Python objects, as `json.loads` reads serde_json's text of it: objects
/// become dicts in the same key order, integers `int`, other numbers `float`.
pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => number(py, n)?,
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => map_to_py(py, map)?.into_any(),
    })
}

/// A JSON object as a dict (see [`to_py`]).
pub fn map_to_py<'py>(py: Python<'py>, map: &Map<String, Value>) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, v) in map {
        dict.set_item(k, to_py(py, v)?)?;
    }
    Ok(dict)
}

fn number<'py>(py: Python<'py>, n: &Number) -> PyResult<Bound<'py, PyAny>> {
    if let Some(u) = n.as_u64() {
        return u.into_bound_py_any(py);
    }
    if let Some(i) = n.as_i64() {
        return i.into_bound_py_any(py);
    }
    // Numbers that are neither are f64 (serde_json without arbitrary precision).
    n.as_f64().unwrap_or(f64::NAN).into_bound_py_any(py)
}
