//! `skvault._native.NativeModel`: native inference (the `skvault-infer` crate) seen from Python.
//!
//! The input is copied out of a C-contiguous float64 array or buffer (so the GIL can be
//! released while predicting without another thread mutating it underneath). A plain
//! float64 C-contiguous `numpy.ndarray` is taken as it is by `matrix_as_is` and
//! `predict_as_is`, which return numpy arrays (one call from Python: a one-row prediction's
//! latency); other inputs are converted by the thin Python layer first, and their outputs
//! come back as `bytearray`s that `skvault.native` views with numpy (writable, no further
//! copy). This module only checks dtypes and shapes.

use std::path::PathBuf;
use std::sync::Arc;

use numpy::ndarray::ArrayView2;
use numpy::{PyArray1, PyArray2, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyAttributeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyFloat, PyInt, PyList, PyString};
use pyo3::IntoPyObjectExt;
use skvault_frame::{Column, DictBuilder, DictColumn, Frame, Value};
use skvault_infer::{InferError, Labels, Matrix, MatrixView, Method, Model, Output, Prediction};

use crate::errors::{from_format, new_err};

fn infer_error(py: Python<'_>, err: InferError) -> PyErr {
    match err {
        InferError::Format(e) => from_format(py, e),
        e @ InferError::Unsupported { .. } => new_err(py, "UnsupportedModelError", e.to_string()),
        e @ (InferError::Malformed { .. } | InferError::LimitExceeded { .. }) => {
            new_err(py, "FormatError", e.to_string())
        }
        e @ InferError::NotAvailable { .. } => PyAttributeError::new_err(e.to_string()),
        InferError::Validation {
            method,
            rows,
            max_diff,
            detail,
        } => validation_error(py, method, rows, max_diff, detail),
        e @ InferError::Frame(skvault_frame::FrameError::MissingColumns(_)) => {
            PyValueError::new_err(e.to_string())
        }
        e @ InferError::NotFitted { .. } => new_err(py, "NotFittedError", e.to_string()),
        e => PyValueError::new_err(e.to_string()),
    }
}

/// `skvault.ValidationError(method, n_rows, max_diff, detail)`.
fn validation_error(
    py: Python<'_>,
    method: String,
    rows: usize,
    max_diff: Option<f64>,
    detail: String,
) -> PyErr {
    let detail = (!detail.is_empty()).then_some(detail);
    let made = py
        .import("skvault.exceptions")
        .and_then(|m| m.getattr("ValidationError"))
        .and_then(|cls| cls.call1((method, rows, max_diff, detail)));
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// A `.skv` model built for native inference.
#[pyclass(frozen, module = "skvault._native")]
pub struct NativeModel {
    model: Arc<Model>,
    /// The file it was built from and its manifest digest, for `validate`.
    path: PathBuf,
    digest: [u8; 32],
}

/// Output bytes: the f64 values in native byte order.
fn f64_bytes<'py>(py: Python<'py>, values: &[f64]) -> PyResult<Bound<'py, PyByteArray>> {
    PyByteArray::new_with(py, std::mem::size_of_val(values), |buf| {
        for (dst, v) in buf.chunks_exact_mut(8).zip(values) {
            dst.copy_from_slice(&v.to_ne_bytes());
        }
        Ok(())
    })
}

/// `(bytes, n_rows, n_cols, flat)`.
type MatrixOut<'py> = (Bound<'py, PyByteArray>, usize, usize, bool);

fn matrix_out(py: Python<'_>, m: Matrix) -> PyResult<MatrixOut<'_>> {
    Ok((f64_bytes(py, &m.data)?, m.n_rows, m.n_cols, m.flat))
}

/// `("labels", int64 bytes, n_rows, 1, True)` or `("values", f64 bytes, n_rows, n_cols, flat)`.
fn prediction_out(
    py: Python<'_>,
    p: Prediction,
) -> PyResult<(&'static str, Bound<'_, PyAny>, usize, usize, bool)> {
    match p {
        Prediction::Labels(idx) => {
            let n = idx.len();
            let bytes = PyByteArray::new_with(py, n * 8, |buf| {
                for (dst, i) in buf.chunks_exact_mut(8).zip(&idx) {
                    dst.copy_from_slice(&(*i as i64).to_ne_bytes());
                }
                Ok(())
            })?;
            Ok(("labels", bytes.into_any(), n, 1, true))
        }
        Prediction::Values(m) => {
            let (b, r, c, flat) = matrix_out(py, m)?;
            Ok(("values", b.into_bound_py_any(py)?, r, c, flat))
        }
    }
}

/// `x` as the extension takes it without conversion: exactly a `numpy.ndarray` (not a
/// subclass, whose methods the Python layer's conversion respects), 2-d, C-contiguous,
/// aligned, float64 in native byte order; `None` for anything else.
fn as_is<'a, 'py>(x: &'a Bound<'py, PyAny>) -> Option<&'a Bound<'py, PyArray2<f64>>> {
    if !x.is_exact_instance_of::<PyUntypedArray>() {
        return None;
    }
    let array = x.cast::<PyArray2<f64>>().ok()?;
    (array.is_c_contiguous() && array.is_aligned()).then_some(array)
}

/// A matrix output as a new numpy array of its shape (1-d when `flat`), owning the values.
fn matrix_array(py: Python<'_>, m: Matrix) -> PyResult<Bound<'_, PyAny>> {
    if m.flat {
        return Ok(PyArray1::from_slice(py, &m.data).into_any());
    }
    // Copied into an array numpy allocates: a one-row call's output is a few values.
    let values = ArrayView2::from_shape((m.n_rows, m.n_cols), &m.data)
        .map_err(|e| PyValueError::new_err(format!("output of the wrong size: {e}")))?;
    Ok(PyArray2::from_array(py, &values).into_any())
}

impl NativeModel {
    /// Copies a 2-d C-contiguous float64 buffer, then runs `f` without the GIL.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        f: impl FnOnce(&Model, &MatrixView<'_>) -> Result<T, InferError> + Send,
    ) -> PyResult<T> {
        let buf = PyBuffer::<f64>::get(x)?;
        if buf.dimensions() != 2 || !buf.is_c_contiguous() {
            return Err(PyValueError::new_err(
                "X must be a 2-d C-contiguous float64 array",
            ));
        }
        let (n_rows, n_cols) = (buf.shape()[0], buf.shape()[1]);
        self.run_copied(py, buf.to_vec(py)?, n_rows, n_cols, f)
    }

    /// `run` for `x` taken as it is ([`as_is`]); `None` when `x` is to be converted first.
    fn run_as_is<T: Send>(
        &self,
        py: Python<'_>,
        x: &Bound<'_, PyAny>,
        f: impl FnOnce(&Model, &MatrixView<'_>) -> Result<T, InferError> + Send,
    ) -> PyResult<Option<T>> {
        let Some(array) = as_is(x) else {
            return Ok(None);
        };
        let (n_rows, n_cols) = (array.shape()[0], array.shape()[1]);
        self.run_copied(py, array.to_vec()?, n_rows, n_cols, f)
            .map(Some)
    }

    /// Runs `f` without the GIL on `data`, a copy of the input (another thread may write
    /// to the input meanwhile), `n_rows` rows of `n_cols` values.
    fn run_copied<T: Send>(
        &self,
        py: Python<'_>,
        data: Vec<f64>,
        n_rows: usize,
        n_cols: usize,
        f: impl FnOnce(&Model, &MatrixView<'_>) -> Result<T, InferError> + Send,
    ) -> PyResult<T> {
        let model = self.model.clone();
        py.detach(move || {
            let view = MatrixView::new(&data, n_rows, n_cols)?;
            f(&model, &view)
        })
        .map_err(|e| infer_error(py, e))
    }
}

/// One object of an `object` column as a frame value: text, a number, a boolean, `None`,
/// NaN or pandas' `NA` (recognised by its type, pandas is not imported).
fn py_value(column: &str, row: usize, item: &Bound<'_, PyAny>) -> PyResult<Value> {
    if item.is_none() {
        return Ok(Value::None);
    }
    if let Ok(s) = item.cast::<PyString>() {
        return Ok(Value::Str(s.to_str()?.to_string()));
    }
    if let Ok(b) = item.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if item.is_instance_of::<PyInt>() || item.is_instance_of::<PyFloat>() {
        return Ok(Value::number(item.extract::<f64>()?));
    }
    let ty = item.get_type();
    let (module, name) = (ty.module()?.to_string(), ty.name()?.to_string());
    if name == "NAType" && module.starts_with("pandas") {
        return Ok(Value::NA);
    }
    if module == "numpy" {
        if let Ok(v) = item.extract::<f64>() {
            return Ok(Value::number(v));
        }
    }
    Err(PyValueError::new_err(format!(
        "column {column:?}, row {row}: a value of type {module}.{name} is neither text, a number, a boolean nor missing"
    )))
}

/// A column given by `skvault.native`: `("numbers", float64 buffer)`, `("objects", list)`,
/// `("arrow", list)` (the values of an Arrow column: its nulls, `None` here, read as NaN, as
/// pandas reads a null string) or `("category", codes list, categories list)` (code -1:
/// missing).
fn py_column(py: Python<'_>, name: &str, spec: &Bound<'_, PyAny>) -> PyResult<Column> {
    let kind: String = spec.get_item(0)?.extract()?;
    match kind.as_str() {
        "numbers" => {
            let buf = PyBuffer::<f64>::get(&spec.get_item(1)?)?;
            if buf.dimensions() != 1 {
                return Err(PyValueError::new_err("a numeric column must be 1-d"));
            }
            Ok(Column::Numeric(buf.to_vec(py)?))
        }
        kind @ ("objects" | "arrow") => {
            let null_is_nan = kind == "arrow";
            let items = spec.get_item(1)?.cast_into::<PyList>()?;
            let mut b = DictBuilder::with_capacity(name, items.len());
            for (row, item) in items.iter().enumerate() {
                // Text is looked up by its UTF-8 view: only distinct values are copied.
                let pushed = match item.cast::<PyString>() {
                    Ok(s) => b.push_str(s.to_str()?),
                    Err(_) if null_is_nan && item.is_none() => b.push(Value::NaN),
                    Err(_) => b.push(py_value(name, row, &item)?),
                };
                pushed.map_err(|e| PyValueError::new_err(e.to_string()))?;
            }
            Ok(Column::Dict(b.finish()))
        }
        "category" => {
            let codes: Vec<i64> = spec.get_item(1)?.extract()?;
            let cats = spec.get_item(2)?.cast_into::<PyList>()?;
            let mut values = Vec::with_capacity(cats.len() + 1);
            for (i, c) in cats.iter().enumerate() {
                values.push(py_value(name, i, &c)?);
            }
            // pandas marks a missing value with code -1; it reads back as NaN.
            let missing = values.len();
            values.push(Value::NaN);
            let codes = codes
                .into_iter()
                .map(|c| match c {
                    -1 => Ok(missing as u32),
                    c if c >= 0 && (c as u64) < missing as u64 => Ok(c as u32),
                    c => Err(PyValueError::new_err(format!(
                        "column {name:?}: category code {c} is outside its {missing} categories"
                    ))),
                })
                .collect::<PyResult<Vec<u32>>>()?;
            DictColumn::new(name, values, codes)
                .map(Column::Dict)
                .map_err(|e| PyValueError::new_err(e.to_string()))
        }
        other => Err(PyValueError::new_err(format!(
            "unknown column kind {other:?}"
        ))),
    }
}

fn method_named(name: &str) -> PyResult<Method> {
    Method::from_name(name).ok_or_else(|| PyValueError::new_err(format!("no method {name:?}")))
}

#[pymethods]
impl NativeModel {
    /// The qualified class name of the model.
    #[getter]
    fn class_name(&self) -> &str {
        self.model.class()
    }

    /// The manifest digest (BLAKE3, lowercase hex) of the file the model was built from. It
    /// covers every array's digest, all of which were checked while building: it names the
    /// model's content, which `skvault.native` pickles references by.
    #[getter]
    fn digest(&self) -> String {
        self.digest.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[getter]
    fn n_features_in(&self) -> usize {
        self.model.n_features()
    }

    #[getter]
    fn feature_names_in(&self) -> Option<Vec<String>> {
        self.model.feature_names().map(<[String]>::to_vec)
    }

    /// Builds now what the first prediction on a few rows would build (a forest's one-row
    /// layout); whether the model has one.
    fn prepare_few_rows(&self, py: Python<'_>) -> bool {
        py.detach(|| self.model.prepare_few_rows())
    }

    /// The names of the methods the model has.
    #[getter]
    fn methods(&self) -> Vec<&'static str> {
        self.model.methods().iter().map(|m| m.name()).collect()
    }

    /// `(labels, dtype)` for classifiers (labels as a list, dtype as numpy's `dtype.str`),
    /// `None` otherwise.
    #[getter]
    fn classes<'py>(&self, py: Python<'py>) -> PyResult<Option<(Bound<'py, PyAny>, String)>> {
        let Some(c) = self.model.classes() else {
            return Ok(None);
        };
        let list = match &c.labels {
            Labels::Int(v) => PyList::new(py, v)?.into_any(),
            Labels::Float(v) => PyList::new(py, v)?.into_any(),
            Labels::Bool(v) => PyList::new(py, v)?.into_any(),
            Labels::Str(v) => PyList::new(py, v)?.into_any(),
        };
        Ok(Some((list, c.dtype.clone())))
    }

    /// `("labels", int64 bytes, n_rows, 1, True)` for classifiers, else `("values", f64 bytes,
    /// n_rows, n_cols, flat)`.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<(&'static str, Bound<'py, PyAny>, usize, usize, bool)> {
        let p = self.run(py, x, |m, v| m.predict(v))?;
        prediction_out(py, p)
    }

    fn predict_proba<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<MatrixOut<'py>> {
        let m = self.run(py, x, |m, v| m.predict_proba(v))?;
        matrix_out(py, m)
    }

    fn decision_function<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<MatrixOut<'py>> {
        let m = self.run(py, x, |m, v| m.decision_function(v))?;
        matrix_out(py, m)
    }

    fn transform<'py>(&self, py: Python<'py>, x: &Bound<'py, PyAny>) -> PyResult<MatrixOut<'py>> {
        let m = self.run(py, x, |m, v| m.transform(v))?;
        matrix_out(py, m)
    }

    fn score_samples<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<MatrixOut<'py>> {
        let m = self.run(py, x, |m, v| m.score_samples(v))?;
        matrix_out(py, m)
    }

    /// `method` on a frame: `names` and one column spec each (see `py_column`). Returns
    /// what `predict` returns for predict, else what the matrix methods return.
    fn call_frame<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        names: Vec<String>,
        columns: Vec<Bound<'py, PyAny>>,
    ) -> PyResult<(&'static str, Bound<'py, PyAny>, usize, usize, bool)> {
        let method = method_named(method)?;
        let columns = names
            .iter()
            .zip(&columns)
            .map(|(n, c)| py_column(py, n, c))
            .collect::<PyResult<Vec<Column>>>()?;
        let frame = Frame::new(names, columns).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let model = self.model.clone();
        let out = py
            .detach(move || model.call_frame(method, &frame))
            .map_err(|e| infer_error(py, e))?;
        match out {
            Output::Prediction(p) => prediction_out(py, p),
            Output::Matrix(m) => {
                let (b, r, c, flat) = matrix_out(py, m)?;
                Ok(("values", b.into_bound_py_any(py)?, r, c, flat))
            }
        }
    }

    /// Re-checks the file's validation rows natively: `(n_rows, methods, skipped)` where
    /// `skipped` lists `(method, reason)`; `None` when the file has none. A mismatch raises
    /// `skvault.ValidationError`.
    #[allow(clippy::type_complexity)]
    fn validate(
        &self,
        py: Python<'_>,
    ) -> PyResult<Option<(usize, Vec<&'static str>, Vec<(String, String)>)>> {
        let (model, path, digest) = (self.model.clone(), self.path.clone(), self.digest);
        let checked = py
            .detach(move || {
                let file = skvault_format::SkvFile::open(&path)?;
                if file.header().manifest_digest != digest {
                    return Err(InferError::Format(skvault_format::FormatError::Io {
                        path: path.clone(),
                        source: std::io::Error::other(
                            "the file changed since the model was loaded: load it again",
                        ),
                    }));
                }
                skvault_infer::validation::check(&model, &file)
            })
            .map_err(|e| infer_error(py, e))?;
        Ok(checked.map(|c| (c.n_rows, c.methods, c.skipped)))
    }

    /// `method` (any but a classifier's `predict`) on `x` as a new float64 array of the
    /// output's shape, when `x` is what the extension takes as it is (exactly a
    /// `numpy.ndarray`, 2-d, C-contiguous, aligned, native float64); `None` otherwise, and
    /// the Python layer converts `x`. One call from Python: the checks and the output array
    /// made in Python were a tenth of a one-row prediction's latency.
    fn matrix_as_is<'py>(
        &self,
        py: Python<'py>,
        method: &str,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let method = method_named(method)?;
        let Some(out) = self.run_as_is(py, x, |m, v| m.call(method, v))? else {
            return Ok(None);
        };
        match out.into_matrix() {
            Some(m) => matrix_array(py, m).map(Some),
            None => Err(PyValueError::new_err(format!(
                "{} gives labels, not a matrix",
                method.name()
            ))),
        }
    }

    /// `predict` on `x` taken as it is (the inputs [`Self::matrix_as_is`] takes): a
    /// classifier's labels as an int64 array of indices into its classes (the Python layer
    /// takes its labels with them), anything else's values as a float64 array; `None` when
    /// `x` is to be converted first.
    fn predict_as_is<'py>(
        &self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let Some(p) = self.run_as_is(py, x, |m, v| m.predict(v))? else {
            return Ok(None);
        };
        // The Python layer tells labels from values by `classes_`: the two must agree.
        match (p, self.model.classes().is_some()) {
            (Prediction::Labels(idx), true) => {
                let idx = idx.iter().map(|&i| i64::try_from(i).unwrap_or(i64::MAX));
                Ok(Some(PyArray1::from_iter(py, idx).into_any()))
            }
            (Prediction::Values(m), false) => matrix_array(py, m).map(Some),
            _ => Err(PyValueError::new_err(
                "internal error: predict's labels and the model's classes disagree",
            )),
        }
    }

    fn has(&self, method: &str) -> bool {
        self.model.methods().iter().any(|m| m.name() == method)
    }
}

enum LoadFailure {
    Infer(InferError),
    Sign(skvault_sign::SignError),
}

/// Opens a `.skv` file for native inference (the GIL is released while it is built).
#[pyfunction]
#[pyo3(signature = (path, *, signature_policy="env", signature_keys=None))]
pub fn native_load(
    py: Python<'_>,
    path: PathBuf,
    signature_policy: &str,
    signature_keys: Option<Vec<PathBuf>>,
) -> PyResult<NativeModel> {
    let signers = crate::sign::policy_keys(py, signature_policy, signature_keys)?;
    let opened = path.clone();
    let (model, digest) = py
        .detach(move || {
            let file =
                skvault_format::SkvFile::open(&opened).map_err(|e| LoadFailure::Infer(e.into()))?;
            if let Some(keys) = &signers {
                // Checked before the model is built, on the file as opened.
                skvault_sign::check_open(&file, None, keys).map_err(LoadFailure::Sign)?;
            }
            let model = Model::from_file(&file).map_err(LoadFailure::Infer)?;
            Ok((model, file.header().manifest_digest))
        })
        .map_err(|e| match e {
            LoadFailure::Infer(e) => infer_error(py, e),
            LoadFailure::Sign(e) => crate::sign::from_sign(py, e),
        })?;
    Ok(NativeModel {
        model: Arc::new(model),
        path,
        digest,
    })
}
